/*
 * edct_bundle.c - finds a named metadata buffer in a .tflite flatbuffer.
 *
 * An edge_dct bundle is one .tflite file whose metadata entry "edge_dct"
 * holds the InputSpec and labels as JSON.  This reads just enough of the
 * TFLite schema (Model.buffers, Model.metadata; Metadata.name, .buffer;
 * Buffer.data, .offset, .size) to locate it, checking every offset against
 * the file size, so a corrupt model gives an error, never a bad read.
 */
#include <string.h>

#include "edct.h"
#include "edct_internal.h"

typedef struct fb {
  const uint8_t *p;
  size_t n;
} fb;

static int in_range(const fb *b, size_t at, size_t len) { return at <= b->n && len <= b->n - at; }

static int u32(const fb *b, size_t at, uint32_t *v) {
  if (!in_range(b, at, 4)) return 0;
  *v = (uint32_t)b->p[at] | (uint32_t)b->p[at + 1] << 8 | (uint32_t)b->p[at + 2] << 16 |
       (uint32_t)b->p[at + 3] << 24;
  return 1;
}

static int u64(const fb *b, size_t at, uint64_t *v) {
  uint32_t lo, hi;
  if (!u32(b, at, &lo) || !u32(b, at + 4, &hi)) return 0;
  *v = (uint64_t)hi << 32 | lo;
  return 1;
}

static int u16(const fb *b, size_t at, uint16_t *v) {
  if (!in_range(b, at, 2)) return 0;
  *v = (uint16_t)(b->p[at] | b->p[at + 1] << 8);
  return 1;
}

/* Position of field `index` of the table at `table`, 0 if absent, -1 if corrupt. */
static long field(const fb *b, size_t table, int index) {
  uint32_t soff;
  uint16_t vsize, off;
  if (!u32(b, table, &soff)) return -1;
  long vt = (long)table - (long)(int32_t)soff;
  if (vt < 0 || !u16(b, (size_t)vt, &vsize)) return -1;
  if ((size_t)(4 + 2 * index) + 2 > vsize) return 0;
  if (!u16(b, (size_t)vt + 4 + 2 * (size_t)index, &off)) return -1;
  return off == 0 ? 0 : (long)(table + off);
}

/* Follows the uoffset stored at `at`; returns the target or -1. */
static long deref(const fb *b, size_t at) {
  uint32_t rel;
  if (!u32(b, at, &rel) || !in_range(b, at + rel, 0)) return -1;
  return (long)(at + rel);
}

/* A vector field: *start is its first element, *len its length; 0 absent, -1 corrupt. */
static int vector(const fb *b, size_t table, int index, size_t elem, size_t *start, uint32_t *len) {
  long f = field(b, table, index);
  if (f <= 0) return (int)f;
  long v = deref(b, (size_t)f);
  if (v < 0 || !u32(b, (size_t)v, len)) return -1;
  if (!in_range(b, (size_t)v + 4, (size_t)*len * elem)) return -1;
  *start = (size_t)v + 4;
  return 1;
}

int edct_find_metadata(const uint8_t *model, size_t size, const char *name, size_t *offset,
                       size_t *length, edct_error *err) {
  edct__clear_error(err);
  fb b = {model, size};
  if (model == NULL || size < 8 || memcmp(model + 4, "TFL3", 4) != 0)
    return edct__failf(err, EDCT_ERR_INVALID, -1, "not a TFLite model (no TFL3 identifier)");
  long root = deref(&b, 0);
  size_t metas, bufs;
  uint32_t nmeta = 0, nbuf = 0;
  int r;
  if (root < 0 || (r = vector(&b, (size_t)root, 6, 4, &metas, &nmeta)) < 0 ||
      vector(&b, (size_t)root, 4, 4, &bufs, &nbuf) < 0)
    return edct__failf(err, EDCT_ERR_INVALID, -1, "corrupt TFLite model (bad offsets)");
  size_t want = strlen(name);
  for (uint32_t i = 0; i < nmeta; i++) {
    long m = deref(&b, metas + 4 * (size_t)i);
    long nf = m < 0 ? -1 : field(&b, (size_t)m, 0);
    long s = nf <= 0 ? -1 : deref(&b, (size_t)nf);
    uint32_t slen;
    if (s < 0 || !u32(&b, (size_t)s, &slen) || !in_range(&b, (size_t)s + 4, slen))
      return edct__failf(err, EDCT_ERR_INVALID, -1, "corrupt TFLite metadata entry %u", i);
    if (slen != want || memcmp(model + s + 4, name, want) != 0) continue;
    long bf = field(&b, (size_t)m, 1);
    uint32_t bi = 0;
    if (bf < 0 || (bf > 0 && !u32(&b, (size_t)bf, &bi)) || bi >= nbuf)
      return edct__failf(err, EDCT_ERR_INVALID, -1, "metadata '%s' names a missing buffer", name);
    long buf = deref(&b, bufs + 4 * (size_t)bi);
    size_t data;
    uint32_t dlen = 0;
    if (buf < 0 || (r = vector(&b, (size_t)buf, 0, 1, &data, &dlen)) < 0)
      return edct__failf(err, EDCT_ERR_INVALID, -1, "corrupt buffer of metadata '%s'", name);
    if (r == 0) { /* large models keep buffers after the flatbuffer: offset, size */
      long fo = field(&b, (size_t)buf, 1), fs = field(&b, (size_t)buf, 2);
      uint64_t o = 0, sz = 0;
      if (fo <= 0 || fs <= 0 || !u64(&b, (size_t)fo, &o) || !u64(&b, (size_t)fs, &sz) ||
          o > size || sz > size - o)
        return edct__failf(err, EDCT_ERR_INVALID, -1, "metadata '%s' has no data", name);
      data = (size_t)o;
      dlen = (uint32_t)sz;
    }
    *offset = data;
    *length = dlen;
    return EDCT_OK;
  }
  return edct__failf(err, EDCT_ERR_UNSUPPORTED, -1,
                     "no '%s' metadata (InputSpec + labels): not an edge_dct bundle", name);
}
