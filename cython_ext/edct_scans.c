/*
 * edct_scans.c - the scans of a progressive JPEG that a consumer of low frequencies needs.
 *
 * A progressive file spreads each coefficient over several scans.  A consumer that reads only
 * some coefficients (edct_transcode with a keep region: DC terms alone for a camera photo on a
 * 224-pixel grid) needs only the scans that code them, and the scans those depend on: an AC
 * refinement scan (Ah > 0) is decoded against the history of every coefficient of its band, so
 * keeping one keeps every earlier scan that touches its band.  First scans (Ah = 0) and DC
 * refinements stand alone.  edct__needed_scans copies the others out of the stream, so libjpeg
 * decodes a valid progressive file with fewer scans (their coefficients stay zero).
 *
 * Only the marker structure is parsed (memchr over entropy-coded data for the next marker);
 * anything unexpected makes it decline, and the caller decodes the stream as it is.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "edct.h"
#include "edct_internal.h"

/* One marker segment after the first scan's header: [start, end) in the input, the entropy-
 * coded data included for a scan. */
typedef struct segment {
  size_t start, end;
  int sos;             /* a scan */
  unsigned comps;      /* its components, a bit per frame index */
  int ss, se, ah;
  int keep;
} segment;

/* Where the entropy-coded data from i ends: the 0xFF of the next marker that is not a
 * restart (fill bytes 0xFF included in the data), or n. */
static size_t entropy_end(const uint8_t *p, size_t i, size_t n) {
  while (i < n) {
    const uint8_t *q = memchr(p + i, 0xFF, n - i);
    if (q == NULL) return n;
    size_t j = (size_t)(q - p) + 1;
    while (j < n && p[j] == 0xFF) j++;
    if (j >= n) return n;
    if (p[j] != 0x00 && !(p[j] >= 0xD0 && p[j] <= 0xD7)) return j - 1;
    i = j + 1;
  }
  return n;
}

/* The zigzag band [ss, se] as a bit mask. */
static uint64_t band(int ss, int se) {
  uint64_t m = 0;
  for (int z = ss; z <= se && z < 64; z++) m |= (uint64_t)1 << z;
  return m;
}

int edct__needed_scans(const uint8_t *data, size_t size, const int *ids, int num_components,
                       const uint8_t *frequencies, int max_scans, uint8_t **out,
                       size_t *out_size) {
  *out = NULL;
  *out_size = 0;
  if (num_components < 1 || num_components > EDCT_MAX_COMPONENTS) return 0;
  size_t cap = 16, n = 0;
  segment *seg = malloc(cap * sizeof *seg);
  if (seg == NULL) return 0;
  size_t first_end = entropy_end(data, 0, size), at = first_end;
  int ok = 0, scans = 1;
  while (at + 1 < size) { /* the marker segments after the first scan, up to EOI */
    if (data[at] != 0xFF) goto done; /* garbage between segments: libjpeg's to judge */
    while (at + 2 < size && data[at + 1] == 0xFF) at++; /* fill bytes before the marker */
    int code = data[at + 1];
    if (code == 0xD9) { ok = 1; break; } /* EOI */
    if (code == 0xD8 || code == 0x01 || (code >= 0xD0 && code <= 0xD7)) goto done;
    if (at + 4 > size) goto done;
    size_t len = (size_t)data[at + 2] << 8 | data[at + 3], end = at + 2 + len;
    if (len < 2 || end > size) goto done;
    segment s = {at, end, 0, 0, 0, 0, 0, 1};
    if (code == 0xDA) { /* SOS: Ns, Ns x (Cs, Td/Ta), Ss, Se, Ah/Al */
      int ns = len >= 3 ? data[at + 4] : 0;
      if (ns < 1 || ns > num_components || len != (size_t)(6 + 2 * ns)) goto done;
      for (int i = 0; i < ns; i++) {
        int c = 0;
        while (c < num_components && ids[c] != data[at + 5 + 2 * i]) c++;
        if (c == num_components) goto done;
        s.comps |= 1u << c;
      }
      const uint8_t *t = data + at + 5 + 2 * ns;
      s.sos = 1;
      s.ss = t[0];
      s.se = t[1];
      s.ah = t[2] >> 4;
      if (s.ss > s.se || s.se > 63) goto done;
      s.end = entropy_end(data, end, size);
      if (max_scans > 0 && ++scans > max_scans) goto done; /* libjpeg refuses it as it is */
    }
    if (n == cap) {
      segment *bigger = realloc(seg, 2 * cap * sizeof *seg);
      if (bigger == NULL) goto done;
      seg = bigger;
      cap *= 2;
    }
    seg[n++] = s;
    at = s.end;
  }
  if (!ok) goto done; /* no EOI: let libjpeg say what it makes of the end */
  uint64_t needed[EDCT_MAX_COMPONENTS];
  for (int c = 0; c < num_components; c++) {
    int k = frequencies[c] >= 1 && frequencies[c] <= 8 ? frequencies[c] : 8;
    needed[c] = 0;
    for (int z = 0; z < 64; z++) {
      int nat = edct__natural_order[z];
      if (nat / 8 < k && nat % 8 < k) needed[c] |= (uint64_t)1 << z;
    }
  }
  int dropped = 0;
  for (size_t i = n; i-- > 0;) { /* backwards: a kept refinement needs its band's history */
    segment *s = &seg[i];
    if (!s->sos) continue;
    uint64_t b = band(s->ss, s->se);
    s->keep = 0;
    for (int c = 0; c < num_components; c++)
      if (s->comps & 1u << c && needed[c] & b) s->keep = 1;
    if (s->keep && s->ah > 0 && s->ss > 0)
      for (int c = 0; c < num_components; c++)
        if (s->comps & 1u << c) needed[c] |= b;
    dropped += !s->keep;
  }
  if (dropped == 0) goto done; /* nothing to gain */
  uint8_t *buf = malloc(at + 2);
  if (buf == NULL) goto done;
  size_t m = first_end;
  memcpy(buf, data, first_end);
  for (size_t i = 0; i < n; i++)
    if (seg[i].keep) {
      memcpy(buf + m, data + seg[i].start, seg[i].end - seg[i].start);
      m += seg[i].end - seg[i].start;
    }
  buf[m++] = 0xFF;
  buf[m++] = 0xD9;
  *out = buf;
  *out_size = m;
  ok = 2;
done:
  free(seg);
  return ok == 2;
}
