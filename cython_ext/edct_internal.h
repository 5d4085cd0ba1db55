/* edct_internal.h - helpers shared by the edct sources; not part of the API. */
#ifndef EDCT_INTERNAL_H
#define EDCT_INTERNAL_H

#include <stdarg.h>

#include "edct.h"

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
 * component.  Any libjpeg error, and any edct__raise from fn (or from callbacks of libjpeg
 * objects fn creates), lands back here: fn is then called once more with coef NULL to release
 * what it holds, and the status is returned with err filled.  A decoder is decoded once.
 */
typedef void (*edct__coef_fn)(edct_decoder *dec, void *cinfo, void *coef, void *ctx);
int edct__with_coefficients(edct_decoder *dec, edct__coef_fn fn, void *ctx, edct_error *err);

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

/* Forbids the built-in Huffman decoder for this decoder (tests compare both paths). */
void edct__disable_builtin(edct_decoder *dec);

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
} edct_scan;

typedef enum edct_scan_result {
  EDCT_SCAN_DONE = 0,    /* decoded; the scan data ends at an EOI marker */
  EDCT_SCAN_ANOMALY = 1, /* something libjpeg might treat differently (or warn about) */
  EDCT_SCAN_ABORTED = 2  /* the consumer asked to stop */
} edct_scan_result;

/* Decodes the scan; an edct_scan_result. */
int edct__huff_decode_scan(const edct_scan *scan);

#endif /* EDCT_INTERNAL_H */
