/*
 * edct_huffenc.c - the built-in baseline JPEG writer behind edct_transcode's fast path (see
 * edct_internal.h): what libjpeg-turbo's jpeg_write_coefficients writes for a sequential,
 * non-optimized stream, byte for byte, but fed one block at a time in scan order, so that the
 * built-in Huffman decoder can hand it each block as it decodes it and no whole-image
 * coefficient buffer is ever made.
 *
 * Marker layouts follow ITU T.81 Annex B (and JFIF 1.02 for APP0), in the order libjpeg emits
 * them; entropy coding follows Annex F.1.2 (DC differences, AC run/size symbols, ZRL, EOB) with
 * the Huffman tables of the compressor (libjpeg's defaults are Annex K.3's), codes per Annex C.
 */
#include <stdint.h>
#include <stdio.h> /* jpeglib.h needs FILE */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "edct.h"
#include "edct_internal.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define MAX_BLOCKS_IN_MCU 10 /* T.81 B.2.3 */
#define BLOCK_BYTES 1024     /* room one block can need: 64 codes of <= 27 bits, stuffed */

typedef struct code_table {
  uint32_t code[256]; /* code of each symbol, right-aligned */
  uint8_t size[256];  /* its length in bits; 0: the symbol has no code */
} code_table;

typedef struct mcu_slot {
  int comp, dy, dx;
} mcu_slot;

struct edct__writer {
  int counting; /* tallies symbols (counts) instead of writing */
  long counts[2 * NUM_HUFF_TBLS][257]; /* per DC slot, then AC slot: libjpeg's layout */
  uint8_t *buf;
  size_t size, cap;
  int failed; /* 0, or the edct_status every later call returns */
  uint64_t acc; /* bits not yet written: the low `nbits` */
  int nbits;
  int started; /* frame and scan headers written */

  const struct jpeg_compress_struct *c;
  int num_comps, mcus_per_row, mcu_rows, nslots;
  mcu_slot slot[MAX_BLOCKS_IN_MCU];
  int mcu_w[MAX_COMPONENTS], mcu_h[MAX_COMPONENTS];
  int width_in_blocks[MAX_COMPONENTS], height_in_blocks[MAX_COMPONENTS];
  const code_table *dc[MAX_COMPONENTS], *ac[MAX_COMPONENTS];
  int dc_slot[MAX_COMPONENTS], ac_slot[MAX_COMPONENTS]; /* their counts[] rows */
  code_table tables[2 * NUM_HUFF_TBLS]; /* DC slots, then AC slots */
  int pred[MAX_COMPONENTS];
  int requantize[MAX_COMPONENTS];          /* edct__writer_requantize */
  float q_old[MAX_COMPONENTS][64], step[MAX_COMPONENTS][64]; /* zigzag order */

  long mcu, mcus;  /* the MCU the next block belongs to, and how many there are */
  int mx, my;      /* its column and row */
  int next;        /* its next slot */
  unsigned restarts_to_go;
  int next_restart;
};

/* ---- output ------------------------------------------------------------------------------ */

static int fail(edct__writer *w, int status) {
  if (!w->failed) w->failed = status;
  return w->failed;
}

/* Makes room for n more bytes. */
static int reserve(edct__writer *w, size_t n) {
  if (w->failed) return w->failed;
  if (w->cap - w->size >= n) return 0;
  size_t cap = w->cap;
  while (cap - w->size < n) {
    if (cap > SIZE_MAX / 2) return fail(w, EDCT_ERR_NOMEM);
    cap *= 2;
  }
  uint8_t *bigger = realloc(w->buf, cap);
  if (bigger == NULL) return fail(w, EDCT_ERR_NOMEM);
  w->buf = bigger;
  w->cap = cap;
  return 0;
}

/* Marker bytes (room reserved by the caller). */
static void byte(edct__writer *w, unsigned v) { w->buf[w->size++] = (uint8_t)v; }
static void word(edct__writer *w, unsigned v) {
  byte(w, v >> 8);
  byte(w, v & 0xFF);
}
static void marker(edct__writer *w, unsigned code, unsigned length) {
  byte(w, 0xFF);
  byte(w, code);
  word(w, length);
}

/* ---- entropy-coded bits ------------------------------------------------------------------ */

/* Writes the 32 oldest pending bits, a zero byte stuffed after each 0xFF (F.1.2.3). */
static inline void flush32(edct__writer *w) {
  uint32_t v = (uint32_t)(w->acc >> (w->nbits - 32));
  w->nbits -= 32;
  uint8_t *p = w->buf + w->size;
  if ((~v - 0x01010101u) & v & 0x80808080u) { /* a 0xFF byte: one at a time */
    for (int s = 24; s >= 0; s -= 8) {
      uint8_t b = (uint8_t)(v >> s);
      *p++ = b;
      if (b == 0xFF) *p++ = 0;
    }
  } else {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    p += 4;
  }
  w->size = (size_t)(p - w->buf);
}

/* Appends the n (<= 32) low bits of v; room reserved by the caller. */
static inline void put(edct__writer *w, uint32_t v, int n) {
  w->acc = (w->acc << n) | v;
  w->nbits += n;
  if (w->nbits >= 32) flush32(w);
}

/* Pads the last byte with 1 bits (F.1.2.3) and writes what is pending. */
static void flush_bytes(edct__writer *w) {
  int pad = (8 - (w->nbits & 7)) & 7;
  w->acc = (w->acc << pad) | ((1u << pad) - 1);
  w->nbits += pad;
  while (w->nbits >= 8) {
    uint8_t b = (uint8_t)(w->acc >> (w->nbits - 8));
    w->nbits -= 8;
    w->buf[w->size++] = b;
    if (b == 0xFF) w->buf[w->size++] = 0;
  }
}

static inline int bit_length(unsigned a) { return a ? 32 - __builtin_clz(a) : 0; }

/* The bits after a size-s symbol: v itself, or v - 1 for v < 0, its s low bits (F.1.2.1). */
static inline uint32_t extra_bits(int v, int s) {
  return (uint32_t)(v < 0 ? v - 1 : v) & ((1u << s) - 1);
}

/* Bit k set where coefficient k (zigzag order) of the block is nonzero, k >= 1. */
static inline uint64_t nonzero_ac(const int16_t *zz) {
#if defined(__SSE2__)
  uint64_t mask = 0;
  for (int i = 0; i < 64; i += 16) {
    __m128i a = _mm_cmpeq_epi16(_mm_loadu_si128((const __m128i *)(zz + i)), _mm_setzero_si128());
    __m128i b = _mm_cmpeq_epi16(_mm_loadu_si128((const __m128i *)(zz + i + 8)), _mm_setzero_si128());
    mask |= (uint64_t)(~(unsigned)_mm_movemask_epi8(_mm_packs_epi16(a, b)) & 0xFFFFu) << i;
  }
  return mask & ~(uint64_t)1;
#else
  uint64_t mask = 0;
  for (int k = 1; k < 64; k++) mask |= (uint64_t)(zz[k] != 0) << k;
  return mask;
#endif
}

/* Symbol sym of table t, then the n low bits of v: written, or (counting) tallied. */
#define EMIT(t, counts, sym, v, n)                                          \
  do {                                                                      \
    if (counting) {                                                         \
      (counts)[sym]++;                                                      \
    } else {                                                                \
      if ((t)->size[sym] == 0) return fail(w, EDCT_ERR_UNSUPPORTED);        \
      put(w, ((t)->code[sym] << (n)) | (v), (t)->size[sym] + (n));          \
    }                                                                       \
  } while (0)

/* Blocks with more nonzero terms than this are requantized whole, eight terms at a time
 * (SSE2), sparser ones term by term (their nonzero terms only). */
#define DENSE_BLOCK 3

void edct__requantize_block(const int16_t *in, int16_t *out, const float *q_old,
                            const float *step) {
  int16_t dc = (int16_t)edct__requantize1(in[0], q_old[0], step[0], 1); /* its own limit */
#if defined(__SSE2__)
  const __m128 abs_mask = _mm_castsi128_ps(_mm_set1_epi32(0x7FFFFFFF));
  const __m128 half_up = _mm_set1_ps(EDCT_HALF_UP), lim = _mm_set1_ps(1023.5f);
  for (int k = 0; k < 64; k += 8) {
    __m128i c = _mm_loadu_si128((const __m128i *)(in + k));
    __m128i half[2] = {_mm_srai_epi32(_mm_unpacklo_epi16(c, c), 16), /* sign-extended */
                       _mm_srai_epi32(_mm_unpackhi_epi16(c, c), 16)};
    for (int h = 0; h < 2; h++) {
      __m128i neg = _mm_srai_epi32(half[h], 31); /* -1 where c < 0 */
      __m128 num = _mm_mul_ps(_mm_cvtepi32_ps(half[h]), _mm_loadu_ps(q_old + k + 4 * h));
      __m128 mag = _mm_add_ps(_mm_mul_ps(_mm_and_ps(num, abs_mask), _mm_loadu_ps(step + k + 4 * h)),
                              half_up);
      __m128i m = _mm_cvttps_epi32(_mm_min_ps(mag, lim));
      half[h] = _mm_sub_epi32(_mm_xor_si128(m, neg), neg); /* -m where c < 0 */
    }
    _mm_storeu_si128((__m128i *)(out + k), _mm_packs_epi32(half[0], half[1]));
  }
#else
  for (int k = 1; k < 64; k++) out[k] = (int16_t)edct__requantize1(in[k], q_old[k], step[k], 0);
#endif
  out[0] = dc;
}

/* One block (zigzag order) with the component's running DC, requantized on the way when
 * `requantize` (only its nonzero terms: zero stays zero); counting and requantize are
 * constants at each call, so each combination is its own loop (libjpeg's encode_one_block and
 * htest_one_block). */
EDCT_HOT int code_block(edct__writer *w, int comp, const int16_t *coef, const int counting,
                        const int requantize, const int dc_only) {
  const code_table *dc = w->dc[comp], *ac = w->ac[comp];
  long *dc_counts = w->counts[w->dc_slot[comp]], *ac_counts = w->counts[w->ac_slot[comp]];
  const float *q_old = w->q_old[comp], *step = w->step[comp];
  uint64_t nonzero = dc_only ? 0 : nonzero_ac(coef); /* dc_only: coef[0] is all there is */
  int16_t re[64];
  int dc_value = coef[0];
  if (requantize && !nonzero) { /* the DC term alone (smooth areas, coarse tables) */
    dc_value = edct__requantize1(coef[0], q_old[0], step[0], 1);
  } else if (requantize) { /* into re[], then coded as it is: no data-dependent branch per term */
#if defined(__SSE2__)
    uint64_t more = nonzero; /* (no popcount: baseline x86-64 lacks the instruction) */
    for (int i = 0; i < DENSE_BLOCK; i++) more &= more - 1;
    if (more) {
      edct__requantize_block(coef, re, q_old, step);
    } else
#endif
    {
      memset(re, 0, sizeof re);
      re[0] = (int16_t)edct__requantize1(coef[0], q_old[0], step[0], 1);
      for (uint64_t m = nonzero; m; m &= m - 1) {
        int k = __builtin_ctzll(m);
        re[k] = (int16_t)edct__requantize1(coef[k], q_old[k], step[k], 0);
      }
    }
    coef = re;
    nonzero = nonzero_ac(coef);
    dc_value = coef[0];
  }
  /* a block kept as it is: baseline's DC range, as libjpeg's path checks it (check_range) */
  if (!requantize && (dc_value < -1024 || dc_value > 1023)) return fail(w, EDCT_ERR_UNSUPPORTED);
  int diff = dc_value - w->pred[comp];
  w->pred[comp] = dc_value;
  int s = bit_length((unsigned)(diff < 0 ? -diff : diff));
  if (s > 11) return fail(w, EDCT_ERR_UNSUPPORTED);
  EMIT(dc, dc_counts, s, extra_bits(diff, s), s);

  int last = 0;
  while (nonzero) {
    int k = __builtin_ctzll(nonzero);
    nonzero &= nonzero - 1;
    int v = coef[k];
    int run = k - last - 1;
    last = k;
    for (; run > 15; run -= 16) EMIT(ac, ac_counts, 0xF0, 0u, 0);
    s = bit_length((unsigned)(v < 0 ? -v : v));
    if (s > 10) return fail(w, EDCT_ERR_UNSUPPORTED);
    EMIT(ac, ac_counts, run << 4 | s, extra_bits(v, s), s);
  }
  if (last != 63) EMIT(ac, ac_counts, 0, 0u, 0);
  return 0;
}

/* An MCU padding block: libjpeg repeats the block before (same DC, difference 0), no AC. */
static int code_padding(edct__writer *w, int comp) {
  int16_t dc = (int16_t)w->pred[comp]; /* already requantized */
  return w->counting ? code_block(w, comp, &dc, 1, 0, 1) : code_block(w, comp, &dc, 0, 0, 1);
}

/* One block through the code_block variant its pass and component need. */
EDCT_HOT int code_any(edct__writer *w, int comp, const int16_t *coef, const int dc_only) {
  if (w->counting)
    return w->requantize[comp] ? code_block(w, comp, coef, 1, 1, dc_only)
                               : code_block(w, comp, coef, 1, 0, dc_only);
  return w->requantize[comp] ? code_block(w, comp, coef, 0, 1, dc_only)
                             : code_block(w, comp, coef, 0, 0, dc_only);
}

void edct__writer_requantize(edct__writer *w, int comp, const uint16_t *q_old,
                             const uint16_t *q_new) {
  w->requantize[comp] = memcmp(q_old, q_new, 64 * sizeof *q_old) != 0;
  for (int z = 0; z < 64; z++) {
    w->q_old[comp][z] = (float)q_old[edct__natural_order[z]];
    w->step[comp][z] = 1.0f / (float)q_new[edct__natural_order[z]];
  }
}

/* ---- headers ------------------------------------------------------------------------------ */

/* Annex C: the codes of a DHT's counts and symbols. */
static int build_codes(code_table *t, const JHUFF_TBL *h) {
  memset(t->size, 0, sizeof t->size);
  uint32_t code = 0;
  int n = 0;
  for (int len = 1; len <= 16; len++) {
    for (int i = 0; i < h->bits[len]; i++, n++) {
      if (n >= 256 || t->size[h->huffval[n]]) return 0; /* too many symbols, or one twice */
      t->code[h->huffval[n]] = code++;
      t->size[h->huffval[n]] = (uint8_t)len;
    }
    if (code > (1u << len)) return 0; /* over-subscribed */
    code <<= 1;
  }
  return 1;
}

static void write_dht(edct__writer *w, const JHUFF_TBL *h, int index) {
  int count = 0;
  for (int len = 1; len <= 16; len++) count += h->bits[len];
  marker(w, 0xC4, (unsigned)(2 + 1 + 16 + count));
  byte(w, (unsigned)index);
  for (int len = 1; len <= 16; len++) byte(w, h->bits[len]);
  for (int i = 0; i < count; i++) byte(w, h->huffval[i]);
}

/* DQT per table in first use, SOF0, DHT per table in first use, DRI, SOS: as libjpeg's
 * write_frame_header and write_scan_header order them. */
static int write_headers(edct__writer *w) {
  const struct jpeg_compress_struct *c = w->c;
  if (reserve(w, 4096)) return w->failed;
  int sent = 0;
  for (int ci = 0; ci < c->num_components; ci++) {
    int t = c->comp_info[ci].quant_tbl_no; /* its values go out in zigzag order */
    if (sent & 1 << t) continue;
    sent |= 1 << t;
    marker(w, 0xDB, 2 + 1 + 64);
    byte(w, (unsigned)t); /* 8-bit values */
    for (int k = 0; k < 64; k++) byte(w, c->quant_tbl_ptrs[t]->quantval[edct__natural_order[k]]);
  }
  marker(w, 0xC0, (unsigned)(8 + 3 * c->num_components));
  byte(w, 8);
  word(w, c->image_height);
  word(w, c->image_width);
  byte(w, (unsigned)c->num_components);
  for (int ci = 0; ci < c->num_components; ci++) {
    const jpeg_component_info *comp = &c->comp_info[ci];
    byte(w, (unsigned)comp->component_id);
    byte(w, (unsigned)(comp->h_samp_factor << 4 | comp->v_samp_factor));
    byte(w, (unsigned)comp->quant_tbl_no);
  }
  sent = 0;
  for (int ci = 0; ci < c->num_components; ci++) {
    int dc = c->comp_info[ci].dc_tbl_no, ac = c->comp_info[ci].ac_tbl_no;
    if (!(sent & 1 << dc)) write_dht(w, c->dc_huff_tbl_ptrs[dc], dc);
    if (!(sent & 1 << (NUM_HUFF_TBLS + ac))) write_dht(w, c->ac_huff_tbl_ptrs[ac], 0x10 | ac);
    sent |= 1 << dc | 1 << (NUM_HUFF_TBLS + ac);
  }
  if (c->restart_interval) {
    marker(w, 0xDD, 4);
    word(w, c->restart_interval);
  }
  marker(w, 0xDA, (unsigned)(6 + 2 * c->num_components));
  byte(w, (unsigned)c->num_components);
  for (int ci = 0; ci < c->num_components; ci++) {
    byte(w, (unsigned)c->comp_info[ci].component_id);
    byte(w, (unsigned)(c->comp_info[ci].dc_tbl_no << 4 | c->comp_info[ci].ac_tbl_no));
  }
  byte(w, 0);  /* Ss */
  byte(w, 63); /* Se */
  byte(w, 0);  /* Ah, Al */
  w->started = 1;
  return 0;
}

static int ceil_div(long a, long b) { return (int)((a + b - 1) / b); }

edct__writer *edct__writer_new(const void *cinfo, size_t initial_capacity, int counting) {
  const struct jpeg_compress_struct *c = cinfo;
  if (c->num_components < 1 || c->num_components > MAX_COMPONENTS || c->write_Adobe_marker ||
      c->image_width < 1 || c->image_height < 1 || c->image_width > 65535 ||
      c->image_height > 65535)
    return NULL;
  edct__writer *w = calloc(1, sizeof *w);
  if (w == NULL) return NULL;
  w->c = c;
  w->counting = counting;
  w->num_comps = c->num_components;
  int max_h = 1, max_v = 1;
  for (int ci = 0; ci < c->num_components; ci++) {
    const jpeg_component_info *comp = &c->comp_info[ci];
    if (comp->h_samp_factor < 1 || comp->h_samp_factor > 4 || comp->v_samp_factor < 1 ||
        comp->v_samp_factor > 4 || comp->quant_tbl_no < 0 || comp->quant_tbl_no >= NUM_QUANT_TBLS ||
        c->quant_tbl_ptrs[comp->quant_tbl_no] == NULL)
      goto refuse;
    for (int k = 0; k < 64; k++)
      if (c->quant_tbl_ptrs[comp->quant_tbl_no]->quantval[k] > 255) goto refuse; /* not 8-bit */
    int dc = comp->dc_tbl_no, ac = comp->ac_tbl_no;
    if (dc < 0 || dc >= NUM_HUFF_TBLS || ac < 0 || ac >= NUM_HUFF_TBLS ||
        c->dc_huff_tbl_ptrs[dc] == NULL || c->ac_huff_tbl_ptrs[ac] == NULL ||
        !build_codes(&w->tables[dc], c->dc_huff_tbl_ptrs[dc]) ||
        !build_codes(&w->tables[NUM_HUFF_TBLS + ac], c->ac_huff_tbl_ptrs[ac]))
      goto refuse;
    w->dc[ci] = &w->tables[dc];
    w->ac[ci] = &w->tables[NUM_HUFF_TBLS + ac];
    w->dc_slot[ci] = dc;
    w->ac_slot[ci] = NUM_HUFF_TBLS + ac;
    if (comp->h_samp_factor > max_h) max_h = comp->h_samp_factor;
    if (comp->v_samp_factor > max_v) max_v = comp->v_samp_factor;
  }
  /* libjpeg's geometry (jcmaster.c): blocks of each component, MCUs of the scan */
  for (int ci = 0; ci < c->num_components; ci++) {
    const jpeg_component_info *comp = &c->comp_info[ci];
    w->width_in_blocks[ci] = ceil_div((long)c->image_width * comp->h_samp_factor, (long)max_h * 8);
    w->height_in_blocks[ci] = ceil_div((long)c->image_height * comp->v_samp_factor, (long)max_v * 8);
    int interleaved = c->num_components > 1;
    w->mcu_w[ci] = interleaved ? comp->h_samp_factor : 1;
    w->mcu_h[ci] = interleaved ? comp->v_samp_factor : 1;
    for (int dy = 0; dy < w->mcu_h[ci]; dy++)
      for (int dx = 0; dx < w->mcu_w[ci]; dx++) {
        if (w->nslots == MAX_BLOCKS_IN_MCU) goto refuse;
        w->slot[w->nslots++] = (mcu_slot){ci, dy, dx};
      }
  }
  if (c->num_components > 1) {
    w->mcus_per_row = ceil_div((long)c->image_width, (long)max_h * 8);
    w->mcu_rows = ceil_div((long)c->image_height, (long)max_v * 8);
  } else {
    w->mcus_per_row = w->width_in_blocks[0];
    w->mcu_rows = w->height_in_blocks[0];
  }
  w->mcus = (long)w->mcus_per_row * w->mcu_rows;
  w->restarts_to_go = c->restart_interval;
  w->cap = initial_capacity > 4096 ? initial_capacity : 4096;
  w->buf = malloc(w->cap);
  if (w->buf == NULL) goto refuse;
  /* SOI, then JFIF APP0 (libjpeg's write_file_header) */
  byte(w, 0xFF);
  byte(w, 0xD8);
  if (c->write_JFIF_header) {
    marker(w, 0xE0, 16);
    static const uint8_t jfif[5] = {'J', 'F', 'I', 'F', 0};
    for (int i = 0; i < 5; i++) byte(w, jfif[i]);
    byte(w, c->JFIF_major_version);
    byte(w, c->JFIF_minor_version);
    byte(w, c->density_unit);
    word(w, c->X_density);
    word(w, c->Y_density);
    byte(w, 0); /* no thumbnail */
    byte(w, 0);
  }
  return w;
refuse:
  edct__writer_free(w);
  return NULL;
}

int edct__writer_marker(edct__writer *w, int code, const uint8_t *data, unsigned length) {
  if (w->failed) return w->failed;
  if (w->started || length > 65533) return fail(w, EDCT_ERR_UNSUPPORTED);
  if (reserve(w, (size_t)length + 4)) return w->failed;
  marker(w, (unsigned)code, length + 2);
  memcpy(w->buf + w->size, data, length);
  w->size += length;
  return 0;
}

/* Starts the MCU w->mcu: a restart marker every restart_interval MCUs (F.1.2.3, jchuff.c). */
static void start_mcu(edct__writer *w) {
  if (!w->c->restart_interval) return;
  if (w->restarts_to_go == 0) {
    if (!w->counting) {
      flush_bytes(w);
      w->buf[w->size++] = 0xFF;
      w->buf[w->size++] = (uint8_t)(0xD0 + w->next_restart);
    }
    w->next_restart = (w->next_restart + 1) & 7;
    w->restarts_to_go = w->c->restart_interval;
    memset(w->pred, 0, sizeof w->pred);
  }
  w->restarts_to_go--;
}

/* Moves the cursor to the next block of the MCU, or to the next MCU. */
static inline void next_slot(edct__writer *w) {
  if (++w->next < w->nslots) return;
  w->next = 0;
  w->mcu++;
  if (++w->mx == w->mcus_per_row) {
    w->mx = 0;
    w->my++;
  }
}

/* Codes the MCU padding up to the next block inside the image; 1 if that is (comp, by, bx),
 * 0 at the end of the image (comp < 0) or on a mismatch. */
static int advance(edct__writer *w, int comp, int by, int bx) {
  while (w->mcu < w->mcus) {
    if (reserve(w, BLOCK_BYTES)) return 0;
    if (w->next == 0) start_mcu(w);
    const mcu_slot *s = &w->slot[w->next];
    int y = w->my * w->mcu_h[s->comp] + s->dy, x = w->mx * w->mcu_w[s->comp] + s->dx;
    if (y < w->height_in_blocks[s->comp] && x < w->width_in_blocks[s->comp])
      return comp == s->comp && by == y && bx == x;
    if (code_padding(w, s->comp)) return 0;
    next_slot(w);
  }
  return 0;
}

EDCT_HOT int writer_block(edct__writer *w, int comp, int by, int bx, const int16_t *coef,
                               const int dc_only) {
  if (w->failed) return w->failed;
  if (!w->started && !w->counting && write_headers(w)) return w->failed;
  if (!advance(w, comp, by, bx)) return fail(w, EDCT_ERR_UNSUPPORTED);
  if (code_any(w, comp, coef, dc_only)) return w->failed;
  next_slot(w);
  return 0;
}

int edct__writer_block(edct__writer *w, int comp, int by, int bx, const int16_t *coef) {
  return writer_block(w, comp, by, bx, coef, 0);
}

int edct__writer_dc(edct__writer *w, int comp, int by, int bx, int16_t dc) {
  return writer_block(w, comp, by, bx, &dc, 1);
}

int edct__writer_finish(edct__writer *w, uint8_t **out, size_t *size) {
  if (w->failed) return w->failed;
  if (!w->started && !w->counting && write_headers(w)) return w->failed;
  advance(w, -1, 0, 0);
  if (w->failed) return w->failed;
  if (w->mcu != w->mcus) return fail(w, EDCT_ERR_UNSUPPORTED); /* blocks missing */
  if (w->counting) return 0;
  if (reserve(w, 16)) return w->failed;
  flush_bytes(w);
  byte(w, 0xFF);
  byte(w, 0xD9);
  *out = w->buf;
  *size = w->size;
  w->buf = NULL;
  return 0;
}

long *edct__writer_counts(edct__writer *w, int is_ac, int slot) {
  return w->counts[(is_ac ? NUM_HUFF_TBLS : 0) + slot];
}

void edct__writer_free(edct__writer *w) {
  if (w == NULL) return;
  free(w->buf);
  free(w);
}
