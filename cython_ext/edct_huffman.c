/*
 * edct_huffman.c - built-in Huffman decoder for the common JPEG case.
 *
 * Scope: one sequential (baseline/extended) 8-bit Huffman scan holding every
 * component, any sampling factors, restart intervals.  edct_decode.c takes
 * the tables and geometry from libjpeg's parsed header and falls back to
 * libjpeg, from the start of the image, whenever this returns
 * EDCT_SCAN_ANOMALY.  So the rule here is: decode only what every decoder
 * reads the same way, and call anything else an anomaly - an invalid code, a
 * coefficient index past 63, a marker other than the next RSTn where a
 * restart is due, extra bytes before a marker, data ending early, a scan not
 * followed by EOI.  libjpeg then decides what such a file means, with its
 * own warnings and errors.
 *
 * Why it is faster than libjpeg-turbo's decoder (which it replaces only for
 * these files): a 64-bit bit buffer refilled 8 bytes at a time when those
 * hold no 0xFF; one table lookup that usually yields a coefficient's run,
 * size and sign-extended value together; coefficients written straight
 * into the caller's plane in natural order, dequantized on the way.
 */
#include <string.h>

#include "edct_internal.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif

#define LOOKUP_BITS EDCT_HUFF_LOOKUP_BITS

/* Lookup entries (uint32), indexed by the next LOOKUP_BITS bits:
 *   0                     the code is longer than LOOKUP_BITS: search by length;
 *   RESOLVED | n | r << 8 | value << 16
 *                         code and extra bits fit: consume n bits, the value is
 *                         final (sign-extended); r is the zero run before it
 *                         (AC), RUN_EOB for an end of block;
 *   n | r << 8 | s << 16  the code (n bits) fits but its s extra bits do not.
 * The bit count sits in the low 6 bits so that it can feed a shift as is.
 * (Entries decoding two AC symbols at once were measured: no faster, as the
 * loop is bound by the end-of-block branch and instruction count, not by
 * the lookups' latency.) */
#define RESOLVED 0x80u
#define RUN_EOB 80 /* > 63 + 15: no coefficient run reaches it */
#define LEN_MASK 0x3Fu

/* Natural (row-major) index of each zigzag position (edct_internal.h). */
const uint8_t edct__natural_order[64] = {
    0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,  12, 19, 26, 33, 40, 48,
    41, 34, 27, 20, 13, 6,  7,  14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23,
    30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63};

/* Figure F.12: the s-bit value v as a signed coefficient (s >= 1). */
EDCT_HOT int extend(int v, int s) { return v < (1 << (s - 1)) ? v - (1 << s) + 1 : v; }

/* ---- tables ----------------------------------------------------------------- */

static void fill(uint32_t *e, uint32_t n, uint32_t v) {
  for (uint32_t j = 0; j < n; j++) e[j] = v;
}

/* Fills the lookup entries of one code (len <= LOOKUP_BITS bits): the
 * entries starting with it, in runs sharing the same extra bits. */
static void fill_lookup(edct_huff_table *t, uint32_t code, int len, int symbol, int is_dc) {
  int r = is_dc ? 0 : symbol >> 4, s = is_dc ? symbol : symbol & 15;
  int free_bits = LOOKUP_BITS - len;
  uint32_t *e = t->lookup + (code << free_bits);
  if (!is_dc && s == 0) { /* ZRL: 16 zeros (a zero written 15 on); any other run: end of block */
    fill(e, 1u << free_bits, RESOLVED | (uint32_t)len | (uint32_t)(r == 15 ? 15 : RUN_EOB) << 8);
  } else if (s <= free_bits) {
    uint32_t run = 1u << (free_bits - s);
    for (uint32_t extra = 0; extra < 1u << s; extra++) {
      int value = s ? extend((int)extra, s) : 0;
      fill(e + extra * run, run,
           RESOLVED | (uint32_t)(len + s) | (uint32_t)r << 8 | (uint32_t)(uint16_t)value << 16);
    }
  } else {
    fill(e, 1u << free_bits, (uint32_t)len | (uint32_t)r << 8 | (uint32_t)s << 16);
  }
}

/* Whether libjpeg accepts the table (jpeg_make_d_derived_tbl): at most 256
 * codes, no code length over-subscribed, no all-ones code, DC symbols 0..15.
 * Checked first: until libjpeg starts decoding, nobody else has. */
static int table_ok(const uint8_t counts[17], const uint8_t *symbols, int is_dc) {
  uint32_t code = 0;
  int total = 0;
  for (int len = 1; len <= 16; len++) {
    total += counts[len];
    code += counts[len];
    if (total > 256 || code >= 1u << len) return 0;
    code <<= 1;
  }
  for (int p = 0; is_dc && p < total; p++)
    if (symbols[p] > 15) return 0;
  return 1;
}

int edct__huff_build(edct_huff_table *t, const uint8_t counts[17], const uint8_t *symbols,
                     int is_dc) {
  if (!table_ok(counts, symbols, is_dc)) return 0;
  int total = 0;
  for (int len = 1; len <= 16; len++) total += counts[len];
  memcpy(t->symbols, symbols, (size_t)total);
  memset(t->lookup, 0, sizeof t->lookup);
  /* Annex C: canonical codes, consecutive within a length. */
  uint32_t code = 0;
  int p = 0;
  for (int len = 1; len <= 16; len++) {
    t->valoffset[len] = p - (int32_t)code;
    for (int i = 0; i < counts[len]; i++, p++, code++)
      if (len <= LOOKUP_BITS) fill_lookup(t, code, len, symbols[p], is_dc);
    t->maxcode[len] = counts[len] ? (int32_t)code - 1 : -1;
    code <<= 1;
  }
  return 1;
}

/* ---- bit reader ----------------------------------------------------------------- */

/* Lives in registers: every function taking a pointer to it is inlined, the
 * out-of-line ones take and return it by value. */
typedef struct bitreader {
  uint64_t buf;      /* next stream bits, MSB first */
  int nbits;         /* valid bits in buf; < 0 once the decoder read past the data */
  const uint8_t *p;  /* next byte to load */
  const uint8_t *end;
  int stopped;       /* p is at a marker (or the end): only zero bits follow */
} bitreader;

EDCT_HOT uint64_t load_be64(const uint8_t *p) {
  return (uint64_t)p[0] << 56 | (uint64_t)p[1] << 48 | (uint64_t)p[2] << 40 |
         (uint64_t)p[3] << 32 | (uint64_t)p[4] << 24 | (uint64_t)p[5] << 16 |
         (uint64_t)p[6] << 8 | (uint64_t)p[7];
}

/* Whether any byte of w is 0xFF (a zero byte of ~w). */
EDCT_HOT int has_ff(uint64_t w) {
  uint64_t v = ~w;
  return ((v - 0x0101010101010101u) & ~v & 0x8080808080808080u) != 0;
}

/* Byte-at-a-time refill: FF 00 is a data FF; FF anything else is a marker,
 * where loading stops.  Below the valid bits buf then holds zeros. */
static bitreader refill_bytes(bitreader br) {
  while (br.nbits <= 56 && !br.stopped) {
    const uint8_t *p = br.p;
    if (p == br.end || (p[0] == 0xFF && (p + 1 == br.end || p[1] != 0))) {
      br.stopped = 1;
      break;
    }
    br.buf |= (uint64_t)p[0] << (56 - br.nbits);
    br.nbits += 8;
    br.p = p + (p[0] == 0xFF ? 2 : 1);
  }
  return br;
}

/* Tops the buffer up to >= 56 valid bits unless the data stops first.  The
 * fast case loads 8 bytes and keeps the whole ones (Giesen's branchless
 * refill); the bits of the next, partly loaded byte are its own, so loading
 * it again later changes nothing. */
EDCT_HOT void refill(bitreader *br) {
  if (br->end - br->p >= 8) {
    uint64_t w = load_be64(br->p);
    if (!has_ff(w)) {
      br->buf |= w >> br->nbits;
      br->p += (63 - br->nbits) >> 3;
      br->nbits |= 56;
      return;
    }
  }
  *br = refill_bytes(*br);
}

EDCT_HOT uint32_t peek(const bitreader *br) {
  return (uint32_t)(br->buf >> (64 - LOOKUP_BITS));
}

EDCT_HOT void consume(bitreader *br, uint32_t n) {
  br->buf <<= n;
  br->nbits -= (int)n;
}

/* Symbol and length (symbol | length << 8) of a code longer than
 * LOOKUP_BITS at the top of buf (Figure F.16 from there on); -1 if none. */
static int long_code(const edct_huff_table *t, uint64_t buf) {
  for (int len = LOOKUP_BITS + 1; len <= 16; len++) {
    int32_t code = (int32_t)(buf >> (64 - len));
    if (code <= t->maxcode[len]) return t->symbols[code + t->valoffset[len]] | len << 8;
  }
  return -1;
}

/* A decoded symbol: run << 16 | (uint16_t)value, or BAD_CODE. */
#define BAD_CODE 0xFFFFFFFFu

EDCT_HOT uint32_t pack(int run, int value) { return (uint32_t)run << 16 | (uint16_t)value; }

/* The symbol whose lookup entry e is not RESOLVED, with its extra bits (DC:
 * run 0; AC end of block / ZRL: run RUN_EOB / 15, value 0).  The hot loops
 * only guarantee LOOKUP_BITS valid bits; a code and its extra bits take up
 * to 31, so this tops the buffer up first. */
EDCT_HOT uint32_t decode_slow(bitreader *br, const edct_huff_table *t, uint32_t e,
                                   int is_dc) {
  if (br->nbits < 31) refill(br);
  int r, s;
  if (e != 0) {
    consume(br, e & LEN_MASK);
    r = (int)(e >> 8 & 0x7F);
    s = (int)(e >> 16 & 15);
  } else {
    int code = long_code(t, br->buf);
    if (code < 0) return BAD_CODE;
    consume(br, (uint32_t)code >> 8);
    r = is_dc ? 0 : (code & 0xFF) >> 4;
    s = is_dc ? code & 0xFF : code & 15;
    if (!is_dc && s == 0) return pack(r == 15 ? 15 : RUN_EOB, 0);
  }
  if (s == 0) return pack(r, 0);
  int v = (int)(br->buf >> (64 - s));
  consume(br, (uint32_t)s);
  return pack(r, extend(v, s));
}

/* ---- blocks ------------------------------------------------------------------------ */

/* What happens to a block's AC coefficients. */
enum { AC_DEQUANTIZE, AC_STORE, AC_STORE_ZIGZAG, AC_SKIP };

EDCT_HOT int16_t saturate16(int32_t v) {
  return (int16_t)(v > INT16_MAX ? INT16_MAX : v < INT16_MIN ? INT16_MIN : v);
}

EDCT_HOT void zero_block(int16_t *dst) {
#if defined(__SSE2__)
  for (int i = 0; i < 64; i += 8) _mm_storeu_si128((__m128i *)(dst + i), _mm_setzero_si128());
#elif defined(__ARM_NEON)
  for (int i = 0; i < 64; i += 8) vst1q_s16(dst + i, vdupq_n_s16(0));
#else
  memset(dst, 0, 64 * sizeof *dst);
#endif
}

/* The DC difference of one block, or BAD_CODE.  Refills unconditionally:
 * 56+ bits cover most blocks whole, and a refill at every block start is one
 * branch the CPU predicts, unlike "is the buffer low" tests between symbols. */
EDCT_HOT uint32_t decode_dc(bitreader *br, const edct_huff_table *t) {
  refill(br);
  uint32_t e = t->lookup[peek(br)];
  if (e & RESOLVED) {
    consume(br, e & LEN_MASK);
    return e >> 16;
  }
  return decode_slow(br, t, e, 1);
}

/*
 * The AC terms of one block into dst (zeroed; only the DC term is set), in
 * natural order: multiplied by quant and saturated like libjpeg's values
 * would be (AC_DEQUANTIZE), as they are (AC_STORE), or decoded and dropped
 * (AC_SKIP).  mode is a constant at every call, so each becomes its own loop.
 * Returns 0 on an anomaly.
 */
EDCT_HOT int decode_ac(bitreader *br, const edct_huff_table *t, int16_t *dst,
                            const uint16_t *quant, int mode) {
  for (int k = 1; k < 64; k++) {
    if (br->nbits < LOOKUP_BITS) refill(br);
    uint32_t e = t->lookup[peek(br)];
    int value;
    if (e & RESOLVED) {
      consume(br, e & LEN_MASK);
      k += (int)(e >> 8 & 0x7F);
      value = (int16_t)(e >> 16);
    } else {
      uint32_t sym = decode_slow(br, t, e, 0);
      if (sym == BAD_CODE) return 0;
      k += (int)(sym >> 16);
      value = (int16_t)sym;
    }
    if (k > 63) return k > 63 + 15; /* end of block, or a run past the block */
    if (mode == AC_DEQUANTIZE) {
      int z = edct__natural_order[k];
      dst[z] = saturate16((int32_t)value * quant[z]);
    } else if (mode == AC_STORE) {
      dst[edct__natural_order[k]] = (int16_t)value;
    } else if (mode == AC_STORE_ZIGZAG) {
      dst[k] = (int16_t)value;
    }
  }
  return 1;
}

/* ---- the scan ---------------------------------------------------------------------- */

/* A block of the MCU: scan component c, offset (dy, dx) inside the
 * component's part of the MCU; and, while an MCU row is decoded, its block
 * position and where it goes in the component's plane. */
typedef struct mcu_block {
  const edct_scan_comp *sc;
  int c, dy, dx;
  int mode;          /* consumer: AC_STORE (AC_STORE_ZIGZAG), or AC_SKIP for DC-only components */
  int by, bx;
  int16_t *row;      /* planes: block row by of the plane, NULL in the MCU padding */
} mcu_block;

static int list_mcu_blocks(const edct_scan *s, mcu_block *blocks) {
  int n = 0;
  for (int c = 0; c < s->num_comps; c++) {
    const edct_scan_comp *sc = &s->comp[c];
    for (int dy = 0; dy < sc->mcu_h; dy++)
      for (int dx = 0; dx < sc->mcu_w; dx++)
        blocks[n++] = (mcu_block){sc, c, dy, dx,
                                  sc->dc_only ? AC_SKIP : s->zigzag ? AC_STORE_ZIGZAG : AC_STORE,
                                  0, 0, NULL};
  }
  return n;
}

/* Points the blocks at the first MCU of MCU row my. */
static void start_mcu_row(const edct_scan *s, mcu_block *blocks, int nblocks, int my) {
  for (int i = 0; i < nblocks; i++) {
    mcu_block *b = &blocks[i];
    b->by = my * b->sc->mcu_h + b->dy;
    b->bx = b->dx;
    b->row = s->planes != NULL && b->by < b->sc->height_in_blocks
                 ? s->planes[b->sc->comp] + (size_t)b->by * (size_t)b->sc->width_in_blocks * 64
                 : NULL;
  }
}

/* Whether the bytes at p are a marker (after optional FF fill bytes) with code
 * `marker`, and nothing was left unread before it; moves p past it. */
static int at_marker(bitreader *br, int marker) {
  const uint8_t *p = br->p;
  if (br->nbits < 0 || br->nbits >= 8) return 0; /* read past it, or whole bytes unused */
  if (p == br->end || *p != 0xFF) return 0;
  while (p < br->end && *p == 0xFF) p++;
  if (p == br->end || *p != marker) return 0;
  br->p = p + 1;
  return 1;
}

/* Section F.2.2.5 restart: RSTn (n = 0..7 in turn) must follow directly. */
static int restart(bitreader *br, int n) {
  if (!at_marker(br, 0xD0 + n)) return 0;
  br->buf = 0;
  br->nbits = 0;
  br->stopped = 0;
  return 1;
}

/* Decodes one block into dst (AC_SKIP: its DC term only) with the running
 * DC *pred; 0 on an anomaly. */
EDCT_HOT int decode_block(bitreader *br, const edct_scan_comp *sc, int32_t *pred,
                               int16_t *dst, int mode) {
  if (mode != AC_SKIP) zero_block(dst);
  uint32_t diff = decode_dc(br, sc->dc);
  if (diff == BAD_CODE) return 0;
  /* libjpeg keeps the running DC in an int and stores it cast to int16 */
  *pred = (int32_t)((uint32_t)*pred + (uint32_t)(int16_t)diff);
  int16_t dc = (int16_t)*pred;
  dst[0] = mode == AC_DEQUANTIZE ? saturate16((int32_t)dc * sc->quant[0]) : dc;
  switch (mode) {
    case AC_DEQUANTIZE: return decode_ac(br, sc->ac, dst, sc->quant, AC_DEQUANTIZE);
    case AC_STORE: return decode_ac(br, sc->ac, dst, sc->quant, AC_STORE);
    case AC_STORE_ZIGZAG: return decode_ac(br, sc->ac, dst, sc->quant, AC_STORE_ZIGZAG);
    default: return decode_ac(br, sc->ac, dst, sc->quant, AC_SKIP);
  }
}

/* Where decoded blocks go; a constant at each call of decode_mcus, which
 * thus becomes one specialised loop per sink. */
enum { SINK_DEQUANTIZE, SINK_STORE, SINK_CONSUMER };

EDCT_HOT int decode_mcus(const edct_scan *s, mcu_block *blocks, int nblocks, int sink) {
  int16_t scratch[64] = {0}; /* MCU padding blocks, and every block for a consumer */
  int32_t pred[EDCT_MAX_COMPONENTS] = {0};
  bitreader br = {0, 0, s->data, s->end, 0};
  unsigned todo = s->restart_interval;
  int next_rst = 0;
  for (int my = 0; my < s->mcu_rows; my++) {
    start_mcu_row(s, blocks, nblocks, my);
    for (int mx = 0; mx < s->mcus_per_row; mx++) {
      if (s->restart_interval) {
        if (todo == 0) {
          if (!restart(&br, next_rst)) return EDCT_SCAN_ANOMALY;
          next_rst = (next_rst + 1) & 7;
          todo = s->restart_interval;
          memset(pred, 0, sizeof pred);
        }
        todo--;
      }
      for (int i = 0; i < nblocks; i++) {
        mcu_block *b = &blocks[i];
        int inside = b->by < b->sc->height_in_blocks && b->bx < b->sc->width_in_blocks;
        int16_t *dst = sink != SINK_CONSUMER && inside ? b->row + (size_t)b->bx * 64 : scratch;
        int mode = sink == SINK_DEQUANTIZE ? AC_DEQUANTIZE : sink == SINK_STORE ? AC_STORE : b->mode;
        if (!decode_block(&br, b->sc, &pred[b->c], dst, mode)) return EDCT_SCAN_ANOMALY;
        if (sink == SINK_CONSUMER && inside &&
            s->consumer->block(s->consumer->ctx, b->sc->comp, b->by, b->bx, dst, b->sc->quant))
          return EDCT_SCAN_ABORTED;
        b->bx += b->sc->mcu_w;
      }
      if (br.nbits < 0) return EDCT_SCAN_ANOMALY; /* the MCU needed bits the data lacks */
    }
  }
  return at_marker(&br, 0xD9) ? EDCT_SCAN_DONE : EDCT_SCAN_ANOMALY;
}

int edct__huff_decode_scan(const edct_scan *s) {
  mcu_block blocks[EDCT_MAX_COMPONENTS * 16];
  int nblocks = list_mcu_blocks(s, blocks);
  if (s->planes == NULL) return decode_mcus(s, blocks, nblocks, SINK_CONSUMER);
  if (s->dequantize) return decode_mcus(s, blocks, nblocks, SINK_DEQUANTIZE);
  return decode_mcus(s, blocks, nblocks, SINK_STORE);
}
