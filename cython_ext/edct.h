/*
 * edct.h - public C API of the edge_dct partial JPEG decoder.
 *
 * Plain C99, no Python.  The same sources are used by the Python extension
 * (edge_dct._jpeg, through Cython), by training (through Python) and by the
 * Android bridge (through JNI), so every client sees bit-identical output.
 *
 * Entropy decoding is done by libjpeg-turbo's decoder running in single-pass
 * (streaming) mode; its inverse DCT is replaced by a per-block consumer, so
 * quantized coefficients are handed out MCU row by MCU row and no pixels are
 * ever reconstructed.  Multi-scan files (progressive, non-interleaved) are
 * buffered by libjpeg until the last scan, then streamed the same way.
 *
 * Coefficients are in natural (row-major) order inside a block:
 * k = 8*v + u, v = vertical and u = horizontal frequency (libjpeg's order,
 * not zigzag).
 *
 * Every function that can fail returns an edct_status and fills an
 * edct_error; callers funnel both through one place (see _jpeg.pyx).
 */
#ifndef EDCT_H
#define EDCT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EDCT_MAX_COMPONENTS 4 /* components a decodable image may have */
#define EDCT_MESSAGE_LEN 200
#define EDCT_DEFAULT_MAX_PIXELS 89478485ULL /* same bomb limit as Pillow */
#define EDCT_DEFAULT_MAX_SCANS 500

typedef enum edct_status {
  EDCT_OK = 0,
  EDCT_ERR_INVALID = 1,     /* malformed or corrupt data */
  EDCT_ERR_UNSUPPORTED = 2, /* valid JPEG outside our scope (12-bit, lossless...) */
  EDCT_ERR_TOO_LARGE = 3,   /* width*height exceeds max_pixels */
  EDCT_ERR_NOMEM = 4,       /* an allocation failed */
  EDCT_ERR_ARGUMENT = 5,    /* the caller passed something inconsistent */
  EDCT_ERR_ABORTED = 6      /* a consumer callback asked to stop */
} edct_status;

typedef enum edct_color_space {
  EDCT_CS_UNKNOWN = 0,
  EDCT_CS_GRAY = 1,
  EDCT_CS_YCBCR = 2,
  EDCT_CS_RGB = 3,
  EDCT_CS_CMYK = 4,
  EDCT_CS_YCCK = 5
} edct_color_space;

/* What went wrong, and the warnings seen on the way (corrupt-data warnings
 * are errors in strict mode). */
typedef struct edct_error {
  int status;                       /* an edct_status */
  int code;                         /* libjpeg message code, -1 if none */
  long offset;                      /* byte offset in the input, -1 if unknown */
  char message[EDCT_MESSAGE_LEN];
  int num_warnings;
  char first_warning[EDCT_MESSAGE_LEN];
} edct_error;

typedef struct edct_component {
  int id;               /* component identifier from the SOF marker */
  int h_samp, v_samp;   /* sampling factors, 1..4 */
  int width_in_blocks;  /* libjpeg's per-component block grid (no MCU padding) */
  int height_in_blocks;
  int quant_tbl_no;
  uint16_t quant[64];   /* header-time quantization table, natural order; 0s if undefined */
} edct_component;

typedef struct edct_info {
  int width, height;
  int num_components;
  int precision;        /* bits per sample: always 8 for decodable files */
  int progressive;
  int arithmetic;
  int restart_interval; /* in MCUs, from the DRI seen before the first scan */
  int orientation;      /* EXIF orientation 1..8, 1 when absent or invalid */
  int color_space;      /* an edct_color_space */
  int max_h_samp, max_v_samp;
  edct_component comp[EDCT_MAX_COMPONENTS];
} edct_info;

typedef struct edct_options {
  uint64_t max_pixels; /* 0 = no limit */
  int max_scans;       /* 0 = no limit */
  int strict;          /* corrupt-data warnings become errors */
} edct_options;

/* Fills opts with the defaults (EDCT_DEFAULT_*, strict). */
void edct_default_options(edct_options *opts);

/*
 * Per-block consumer.  `coef` holds the 64 *quantized* coefficients of block
 * (by, bx) of component `comp`, natural order; `quant` is the quantization
 * table in force for that block (natural order).  Blocks arrive in iMCU-row
 * order: every block of iMCU row r (v_samp block rows of each component)
 * arrives before any block of row r + 1, after which end_row(ctx, r) is
 * called.  A non-zero return from either callback stops decoding with
 * EDCT_ERR_ABORTED.  Only blocks inside height_in_blocks x width_in_blocks
 * are delivered (MCU padding is dropped).
 */
typedef struct edct_consumer {
  void *ctx;
  int (*block)(void *ctx, int comp, int by, int bx, const int16_t *coef,
               const uint16_t *quant);
  int (*end_row)(void *ctx, int imcu_row);
} edct_consumer;

typedef struct edct_decoder edct_decoder;

/*
 * Opens a decoder on an in-memory JPEG and reads its header (markers up to
 * the first scan; no entropy decoding).  The data must stay alive and
 * unchanged until edct_close.  On failure returns NULL with err filled;
 * the caller owns nothing then.
 */
edct_decoder *edct_open(const uint8_t *data, size_t size, const edct_options *opts,
                        edct_error *err);

/* The header of an open decoder. */
const edct_info *edct_get_info(const edct_decoder *dec);

/*
 * Entropy-decodes the whole image, handing every block to `consumer`.
 * Can be called once per decoder.  Returns EDCT_OK or an error status with
 * err filled.  Warnings seen (non-strict mode) are counted in err.
 */
int edct_decode(edct_decoder *dec, const edct_consumer *consumer, edct_error *err);

/*
 * Convenience consumer: decodes into caller-owned planes.  planes[c] points
 * to height_in_blocks * width_in_blocks * 64 int16 values of component c
 * (row-major blocks, natural order inside a block).  With dequantize != 0
 * each coefficient is multiplied by its quantization value, saturating to
 * the int16 range.  quant_out (may be NULL) receives the tables actually
 * used, 64 values per component.
 */
int edct_decode_planes(edct_decoder *dec, int16_t *const *planes, int dequantize,
                       uint16_t (*quant_out)[64], edct_error *err);

/* Frees everything the decoder owns.  NULL is allowed. */
void edct_close(edct_decoder *dec);

/* Short English name of a status, e.g. "invalid JPEG". */
const char *edct_status_name(int status);

/* EXIF orientation (1..8) from the payload of an APP1 marker (starting at
 * "Exif\0\0"); 0 when the payload holds no valid orientation. */
int edct_exif_orientation(const uint8_t *app1, size_t size);

#ifdef __cplusplus
}
#endif
#endif /* EDCT_H */
