/* edct_internal.h - helpers shared by the edct sources; not part of the API. */
#ifndef EDCT_INTERNAL_H
#define EDCT_INTERNAL_H

#include <stdarg.h>

#include "edct.h"

#include <stddef.h>
#include <stdint.h>

/* Symbols shared by the core's files only: hidden, so that a shared library reaches them
 * without a GOT load (they are read in hot loops). */
#if defined(__GNUC__)
#define EDCT_INTERNAL __attribute__((visibility("hidden")))
#else
#define EDCT_INTERNAL
#endif

/* Natural (row-major) index of each zigzag position (defined in edct_huffman.c). */
extern EDCT_INTERNAL const uint8_t edct__natural_order[64];

/*
 * Requantization of one coefficient c from step q_old to the step whose reciprocal is `step`:
 * sign(c) min(floor(|c q_old| step + HALF_UP), limit), exactly round(c q_old / q_new) with
 * halves away from zero, clamped to what baseline Huffman coding carries (1023, or 1024 for a
 * negative DC term).  Exact in single precision: |c q_old| < 2^24 is exact in a float, and
 * HALF_UP is 1/2 plus a margin above the float error of |c q_old| * (1 / q_new) (< 2^-11 for
 * results below 2048): ties (x.5) round up, and every other result is further than
 * 1 / (2 q_new) >= 2^-9 from a rounding boundary, more than the error and the margin together.
 */
#define EDCT_HALF_UP (0.5f + 1.0f / 1024.0f)
static inline int edct__requantize1(int c, float q_old, float step, int is_dc) {
  float num = (float)c * q_old;
  float mag = (num < 0.0f ? -num : num) * step + EDCT_HALF_UP; /* >= 0: truncation is floor */
  float lim = (num < 0.0f && is_dc ? 1024.0f : 1023.0f) + 0.5f;
  int m = (int)(mag < lim ? mag : lim);
  return num < 0.0f ? -m : m;
}

/* A whole block (in may equal out; index 0 is the DC term, the rest in any order matching
 * q_old and step): edct__requantize1's operations, eight terms at a time with SSE2 (the same
 * single-precision results). */
void edct__requantize_block(const int16_t *in, int16_t *out, const float *q_old,
                            const float *step);

/* Resets err to "no error" (status 0, code and offset -1). */
void edct__clear_error(edct_error *err);

/*
 * The one way a failure is recorded: fills err with status, the byte offset
 * in the input (-1 if unknown), no libjpeg code (-1) and a printf-style
 * message; warnings already counted are kept.  Returns status.  err may be
 * NULL.  edct__vfailf takes a va_list (for wrappers such as the decoder's).
 */
int edct__failf(edct_error *err, int status, long offset, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
int edct__vfailf(edct_error *err, int status, long offset, const char *fmt, va_list ap);

/*
 * edct_decode for consumers that tolerate a rerun: block() only overwrites
 * that block's own output and end_row is NULL.  Such a decode may use the
 * built-in Huffman decoder (edct_huffman.c), which on any anomaly gives up
 * and lets libjpeg decode the image from the start, delivering every block
 * again; the result is then exactly libjpeg's.
 */
int edct__decode_rerunnable(edct_decoder *dec, const edct_consumer *consumer, edct_error *err);

/*
 * Reads the decoder's whole-image coefficients (libjpeg's jpeg_read_coefficients, with the
 * decoder's limits, strictness and error funnel) and calls fn(dec, cinfo, coef, ctx) with
 * cinfo a struct jpeg_decompress_struct * and coef its jvirt_barray_ptr array, one per
 * component.  frequencies (NULL: all) as an edct_consumer's: of a progressive file only the
 * scans those need are decoded (edct__needed_scans), the other coefficients may be anything.
 * Any libjpeg error, and any edct__raise from fn (or from callbacks of libjpeg
 * objects fn creates), lands back here: fn is then called once more with coef NULL to release
 * what it holds, and the status is returned with err filled.  A decoder is decoded once.
 */
typedef void (*edct__coef_fn)(edct_decoder *dec, void *cinfo, void *coef, void *ctx);
int edct__with_coefficients(edct_decoder *dec, edct__coef_fn fn, void *ctx,
                            const uint8_t *frequencies, edct_error *err);

/*
 * Of a progressive stream, the scans a consumer of the k x k lowest frequencies of each
 * component (frequencies[c], frame index c; 0 = all 64) needs, and those they depend on
 * (edct_scans.c).  data: from the entropy-coded data of the first scan (its header read) to
 * the end of the input; ids: the frame's component identifiers.  Returns 1 with *out (the
 * caller free()s it) holding the same stream without the other scans, ending in EOI; 0 when
 * nothing can be dropped or the stream is not as expected (the caller decodes it as it is).
 */
int edct__needed_scans(const uint8_t *data, size_t size, const int *ids, int num_components,
                       const uint8_t *frequencies, int max_scans, uint8_t **out,
                       size_t *out_size);

/*
 * The built-in Huffman decoder alone, for consumers that need blocks in the scan's own order:
 * every block of the file's one sequential scan goes to consumer->block in MCU order (scan
 * components in turn, MCU padding left out; coefficients quantized, in zigzag order, the
 * order of the stream, unlike every other consumer's natural order).  Returns
 * 1 when the scan was decoded to its end and, with `last` set, the decoder is used up (last 0:
 * a first pass, the decoder may be decoded again by any entry point); 0 when the file is outside
 * the built-in decoder's scope (edct__disable_builtin included), it met anything libjpeg might
 * treat differently, or the consumer returned nonzero: the decoder is then as it was and any
 * entry point may still decode it (the consumer must forget what it was handed).
 */
int edct__decode_builtin_only(edct_decoder *dec, const edct_consumer *consumer, int last);

/* The decoder's libjpeg object (a struct jpeg_decompress_struct *), its header read. */
void *edct__header_cinfo(edct_decoder *dec);

/* Size of the decoder's input in bytes. */
size_t edct__input_size(const edct_decoder *dec);

/* Fails the edct__with_coefficients call in progress (printf-style reason; no return). */
void edct__raise(edct_decoder *dec, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4), noreturn))
#endif
    ;

/* Which entropy decoder the last decode of a decoder used (tests, benchmarks). */
typedef enum edct__path {
  EDCT__PATH_NONE = 0,     /* not decoded yet */
  EDCT__PATH_LIBJPEG = 1,  /* libjpeg only (the file is outside the built-in decoder's scope) */
  EDCT__PATH_BUILTIN = 2,  /* the built-in Huffman decoder, start to end */
  EDCT__PATH_FALLBACK = 3  /* the built-in decoder gave up; libjpeg decoded from the start */
} edct__path;
int edct__entropy_path(const edct_decoder *dec);

/* Forbids the built-in Huffman decoder for this decoder, and edct_transcode's built-in writer
 * (libjpeg decodes and codes everything: tests compare both paths). */
void edct__disable_builtin(edct_decoder *dec);
int edct__builtin_disabled(const edct_decoder *dec);

/* ---- built-in Huffman decoder (edct_huffman.c) ----------------------------- */

/* For the entropy decoder's per-symbol helpers: clang (zig cc, the wheels' compiler) otherwise
 * leaves some out of line and spills the bit reader, 14% slower than gcc's build (measured). */
#if defined(__GNUC__)
#define EDCT_HOT static inline __attribute__((always_inline))
#else
#define EDCT_HOT static inline
#endif

#define EDCT_HUFF_LOOKUP_BITS 10 /* measured best of 9-12: 4 KB tables, most codes resolved */

/* Decoding tables of one DHT table; see edct_huffman.c for the lookup entries. */
typedef struct edct_huff_table {
  uint32_t lookup[1 << EDCT_HUFF_LOOKUP_BITS]; /* indexed by the next LOOKUP_BITS bits */
  int32_t maxcode[17];   /* largest code of each length, -1 if none (codes > LOOKUP_BITS) */
  int32_t valoffset[17]; /* symbols[] index of a code of that length, minus the code */
  uint8_t symbols[256];
} edct_huff_table;

/* Builds t from a DHT's code counts (counts[l] codes of length l, l = 1..16)
 * and symbols.  Returns 0 for a table libjpeg would refuse. */
int edct__huff_build(edct_huff_table *t, const uint8_t counts[17], const uint8_t *symbols,
                     int is_dc);

/* One component of a scan, in scan order. */
typedef struct edct_scan_comp {
  int comp;                 /* component index: plane / consumer argument */
  int mcu_w, mcu_h;         /* its blocks per MCU across and down */
  int width_in_blocks, height_in_blocks; /* blocks kept; the rest is MCU padding */
  const edct_huff_table *dc, *ac;
  const uint16_t *quant;    /* the table handed to the consumer / multiplied into planes */
  int dc_only;              /* consumer mode: only the DC term is read; AC terms are skipped */
} edct_scan_comp;

/* A single sequential Huffman scan holding every component of the frame. */
typedef struct edct_scan {
  const uint8_t *data;      /* first byte of entropy-coded data */
  const uint8_t *end;       /* end of the input */
  int mcus_per_row, mcu_rows;
  unsigned restart_interval; /* MCUs per interval, 0 = none */
  int num_comps;
  edct_scan_comp comp[EDCT_MAX_COMPONENTS];
  /* Where blocks go: planes[comp] (edct_decode_planes' layout), dequantized
   * with quant when dequantize is set; or, with planes NULL, the consumer. */
  int16_t *const *planes;
  int dequantize;
  const edct_consumer *consumer;
  int zigzag; /* the consumer gets coefficients in zigzag order, not natural */
} edct_scan;

typedef enum edct_scan_result {
  EDCT_SCAN_DONE = 0,    /* decoded; the scan data ends at an EOI marker */
  EDCT_SCAN_ANOMALY = 1, /* something libjpeg might treat differently (or warn about) */
  EDCT_SCAN_ABORTED = 2  /* the consumer asked to stop */
} edct_scan_result;

/* Decodes the scan; an edct_scan_result. */
int edct__huff_decode_scan(const edct_scan *scan);

/* ---- built-in baseline writer (edct_huffenc.c) ------------------------------ */

/*
 * Writes the sequential baseline JPEG that libjpeg-turbo's jpeg_write_coefficients would write
 * for a compressor set up for it (cinfo: a struct jpeg_compress_struct * after
 * jpeg_copy_critical_parameters and the table and coding settings, never started; Huffman
 * tables as given, no optimization, 8-bit quantization tables, no Adobe marker): SOI and JFIF
 * APP0, the markers added, DQT, SOF0, DHT, DRI, SOS, the blocks, EOI.  MCU padding blocks are
 * made as libjpeg makes them (the DC of the block before, no AC).  Every failure is sticky and
 * makes the calls that follow return nonzero: EDCT_ERR_NOMEM, or EDCT_ERR_UNSUPPORTED for what
 * the writer cannot code (a coefficient outside baseline's range, a block out of order).
 */
typedef struct edct__writer edct__writer;

/* A writer with the stream's start (SOI, JFIF) written; NULL when memory ran out or cinfo is
 * outside the writer's scope (checked: components, sampling, tables).  counting: a first
 * pass for optimized Huffman tables instead, which writes nothing and tallies each table's
 * symbols as libjpeg's gathering pass does (edct__writer_counts; finish hands out nothing). */
edct__writer *edct__writer_new(const void *cinfo, size_t initial_capacity, int counting);
/* Makes the writer requantize component comp's blocks from table q_old to q_new (natural
 * order) as it codes them, with edct__requantize1; nothing to do when they are equal. */
void edct__writer_requantize(edct__writer *w, int comp, const uint16_t *q_old,
                             const uint16_t *q_new);
/* A counting writer's tally of DC or AC table `slot`: 257 entries, as
 * jpeg_gen_optimal_table takes them (which overwrites them). */
long *edct__writer_counts(edct__writer *w, int is_ac, int slot);
/* An APPn / COM marker segment, before the first block. */
int edct__writer_marker(edct__writer *w, int marker, const uint8_t *data, unsigned length);
/* Component comp's block (by, bx): quantized coefficients, zigzag order.  Blocks come in MCU
 * order, padding left out; the first one writes the frame and scan headers. */
int edct__writer_block(edct__writer *w, int comp, int by, int bx, const int16_t *coef);
/* The same for a block whose AC terms are all zero: only its DC term is given (faster). */
int edct__writer_dc(edct__writer *w, int comp, int by, int bx, int16_t dc);
/* Ends the stream (the MCU padding left, EOI) and hands its bytes to the caller (free()). */
int edct__writer_finish(edct__writer *w, uint8_t **out, size_t *size);
void edct__writer_free(edct__writer *w);

#endif /* EDCT_INTERNAL_H */
