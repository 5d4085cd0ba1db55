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
 * edct_decode_planes and edct_prepare decode the common case - one
 * sequential 8-bit Huffman scan holding every component - with a faster
 * built-in Huffman decoder (edct_huffman.c) that hands anything unusual
 * back to libjpeg, so that results, warnings and errors stay libjpeg's.
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
  int keep_markers;    /* save every APPn and COM marker (edct_transcode copies them) */
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
 *
 * frequencies[c] = f in 1..8 declares that the consumer reads only the f x f
 * lowest frequencies (u < f and v < f) of component c; 0 means all 64.  The
 * other terms it receives are then undefined, and the decoder saves work:
 * with f = 1 everywhere (DC only) sequential files decode at libjpeg's
 * 1/8-scale speed, and progressive files stop reading scans as soon as the
 * declared frequencies are complete.
 */
typedef struct edct_consumer {
  void *ctx;
  int (*block)(void *ctx, int comp, int by, int bx, const int16_t *coef,
               const uint16_t *quant);
  int (*end_row)(void *ctx, int imcu_row);
  uint8_t frequencies[EDCT_MAX_COMPONENTS];
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
 * Entropy-decodes the whole image, handing every block to `consumer`
 * exactly once (always with libjpeg's decoder).  Can be called once per
 * decoder.  Returns EDCT_OK or an error status with err filled.  Warnings
 * seen (non-strict mode) are counted in err.
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

/* ---- prepare: any JPEG onto a model's DCT grid (InputSpec v1) ------------- */

typedef enum edct_resize_mode {
  EDCT_RESIZE_SHORTER_SIDE = 0, /* shorter side to `size`, then centre crop */
  EDCT_RESIZE_STRETCH = 1       /* whole image onto the grid */
} edct_resize_mode;

typedef enum edct_layout {
  EDCT_LAYOUT_SPLIT = 0, /* y [H][W][Cy], cbcr [H/2][W/2][Ccb + Ccr] */
  EDCT_LAYOUT_MERGED = 1 /* dct [H][W][Cy + Ccb + Ccr], chroma repeated 2x2 */
} edct_layout;

typedef enum edct_dtype { EDCT_FLOAT32 = 0, EDCT_INT8 = 1 } edct_dtype;

/* The model contract (docs/design.md, InputSpec v1), in C terms. */
typedef struct edct_spec {
  int grid_h, grid_w;   /* luma blocks, even; chroma (4:2:0) is grid / 2 */
  int resize_mode;      /* an edct_resize_mode */
  int resize_size;      /* shorter side in pixels (EDCT_RESIZE_SHORTER_SIDE) */
  int layout;           /* an edct_layout */
  int num_channels[3];  /* selected coefficients of Y, Cb, Cr (0..64 each) */
  uint8_t channels[3][64]; /* their indices k = 8*v + u */
  int normalize;        /* apply (x - mean) / std per selected channel */
  float mean[3][64], std[3][64];
} edct_spec;

/*
 * Which part of the (EXIF-oriented) image lands on the grid: a rectangle in
 * oriented pixel coordinates, optionally mirrored left-right.  Training
 * augmentation (random resized crops, flips) passes its own; NULL means the
 * spec's evaluation transform (edct_eval_window).
 */
typedef struct edct_window {
  double x, y, width, height;
  int hflip;
} edct_window;

/* Where prepare writes.  Tensors are batch-1 NHWC, row-major; with
 * EDCT_INT8, q = clamp(round(x / scale) + zero_point, -128, 127). */
typedef struct edct_output {
  int dtype;           /* an edct_dtype */
  void *tensor[2];     /* split: y, cbcr; merged: dct, NULL */
  float scale[2];
  int zero_point[2];
} edct_output;

/* Scratch memory for edct_prepare, reused across calls by one thread at a
 * time; with it a stream of images allocates nothing after the first. */
typedef struct edct_workspace edct_workspace;
edct_workspace *edct_workspace_new(void);
void edct_workspace_free(edct_workspace *ws);

/* Oriented image size (EXIF orientation applied) of an open decoder. */
void edct_oriented_size(const edct_info *info, int *width, int *height);

/* The evaluation window of a spec for an oriented width x height image. */
edct_window edct_eval_window(const edct_spec *spec, int width, int height);

/* Checks a spec; returns EDCT_OK or EDCT_ERR_ARGUMENT with err naming the field. */
int edct_check_spec(const edct_spec *spec, edct_error *err);

/*
 * Decodes and maps the image onto the spec's grid in one streaming pass:
 * EXIF orientation (exact coefficient transposes and sign flips), a reduced
 * image obtained in the DCT domain (k-point IDCT of the k x k lowest
 * frequencies, k chosen from the scale), area/linear resampling of that
 * reduced image onto the window, chroma to 4:2:0 geometry, forward DCT,
 * channel selection, normalization and optional int8 quantization.
 * Grayscale gives zero chroma; RGB files are converted to YCbCr (a linear
 * map); CMYK/YCCK give EDCT_ERR_UNSUPPORTED.  Without normalization the
 * output holds JPEG's orthonormal 8x8 DCT of level-shifted samples, like
 * dequantized coefficients.  Can be called once per decoder.  workspace may
 * be NULL (scratch memory is then allocated and freed by the call).
 */
int edct_prepare(edct_decoder *dec, const edct_spec *spec, const edct_window *window,
                 int apply_orientation, const edct_output *out, edct_workspace *workspace,
                 edct_error *err);

/*
 * What edct_prepare reads of an image (same arguments as edct_prepare): of component c, the
 * k x k lowest frequencies (u < k and v < k, k = frequencies[c]) of the blocks in block rows
 * [rows[c][0], rows[c][1]) and block columns [cols[c][0], cols[c][1]) of the file (before
 * orientation).  frequencies[c] = 0: component c is not read at all.  Every other coefficient
 * cannot change prepare's output, so re-coding a file for the model may drop it
 * (edct_encode_options.keep).
 */
typedef struct edct_region {
  uint8_t frequencies[EDCT_MAX_COMPONENTS];
  int rows[EDCT_MAX_COMPONENTS][2];
  int cols[EDCT_MAX_COMPONENTS][2];
} edct_region;

/* Fills *region with what edct_prepare would read (header only). */
int edct_prepare_region(const edct_info *info, const edct_spec *spec, const edct_window *window,
                        int apply_orientation, edct_region *region, edct_error *err);

/* ---- model bundles -------------------------------------------------------- */

/* The metadata entry of an edge_dct bundle: InputSpec v1 + labels as JSON. */
#define EDCT_METADATA_NAME "edge_dct"

/*
 * Locates the metadata buffer `name` (EDCT_METADATA_NAME for a bundle) in a
 * .tflite flatbuffer: its bytes are model[*offset, *offset + *length).
 * Every offset is checked against size.  Returns EDCT_OK, EDCT_ERR_INVALID
 * for a corrupt or non-TFLite file, EDCT_ERR_UNSUPPORTED when the model has
 * no such entry (for a bundle: not an edge_dct bundle).
 */
int edct_find_metadata(const uint8_t *model, size_t size, const char *name, size_t *offset,
                       size_t *length, edct_error *err);

/* ---- encode and transcode (edct_encode.c) ---------------------------------- */

typedef enum edct_subsampling {
  EDCT_SUB_444 = 0,
  EDCT_SUB_422 = 1, /* chroma halved across */
  EDCT_SUB_420 = 2, /* halved across and down */
  EDCT_SUB_440 = 3  /* halved down */
} edct_subsampling;

/* What libjpeg-turbo's compressor writes.  Tables are natural order (k = 8*v + u), values
 * 1..255 (baseline).  Component 0 is coded with tables[0], the others with tables[1]. */
typedef struct edct_encode_options {
  int quality;            /* 1..100: libjpeg's standard tables at that quality (use_tables 0);
                             0: edct_encode uses 75, edct_transcode keeps the file's tables */
  int use_tables;         /* 1: code with `tables` instead */
  uint16_t tables[2][64]; /* luma, chroma */
  int subsampling;        /* an edct_subsampling (edct_encode of RGB pixels only) */
  int optimize;           /* optimized Huffman tables (two passes) */
  int progressive;        /* libjpeg's standard progressive scan script */
  int restart_interval;   /* MCUs between restart markers, 0..65535 */
  int keep_markers;       /* edct_transcode: copy the APPn / COM markers the decoder saved */
  int use_keep;           /* edct_transcode: every coefficient outside `keep` becomes 0 */
  edct_region keep;       /* what a consumer reads (edct_prepare_region) */
} edct_encode_options;

/* Fills opts with the defaults: quality 0, standard tables, 4:2:0, optimized, sequential,
 * no restarts, markers kept, every coefficient kept. */
void edct_default_encode_options(edct_encode_options *opts);

/* Checks options; returns EDCT_OK or EDCT_ERR_ARGUMENT with err naming the field. */
int edct_check_encode_options(const edct_encode_options *opts, edct_error *err);

/*
 * Compresses pixels: height rows of width * components bytes (components 1 = gray, 3 = RGB),
 * rows `stride` bytes apart.  On EDCT_OK *out holds *out_size bytes of JPEG that the caller
 * releases with edct_free; on failure *out is NULL and nothing is left allocated.
 */
int edct_encode(const uint8_t *pixels, int width, int height, int components, size_t stride,
                const edct_encode_options *opts, uint8_t **out, size_t *out_size,
                edct_error *err);

/*
 * Re-codes an open decoder's image without pixels: its quantized coefficients c (read whole,
 * with the decoder's limits and strictness) are requantized to each component's new table,
 * c' = round(c * q_old / q_new) (halves away from zero; unchanged where q_new == q_old, so the
 * file's own tables give the same coefficients), and entropy-coded by libjpeg-turbo
 * (jpeg_write_coefficients) with the same geometry; APPn / COM markers are copied when the
 * decoder saved them (edct_options.keep_markers) and opts->keep_markers is set.
 * Sequential output (optimized or not) of a YCbCr or grayscale image is coded by a built-in
 * baseline writer (edct_huffenc.c) that writes the very bytes jpeg_write_coefficients writes:
 * fed by the built-in Huffman decoder block by block where that decoder reads the file (one
 * sequential scan: no whole-image buffer), else, with a keep region, from libjpeg's
 * whole-image coefficients (progressive and multi-scan inputs).  A component kept as it is (unchanged table) must fit
 * baseline coding (DC -1024..1023, |AC| <= 1023), else EDCT_ERR_UNSUPPORTED.
 * With opts->use_keep, every coefficient outside opts->keep is 0 in the output (the blocks
 * outside its rows and columns entirely, DC included), and the decoder reads no more than
 * that needs: DC terms only where k = 1, and of a progressive file only the scans the kept
 * coefficients depend on (corrupt data in the other scans then goes unnoticed).
 * Output and errors as edct_encode; uses up the decoder like edct_decode.
 */
int edct_transcode(edct_decoder *dec, const edct_encode_options *opts, uint8_t **out,
                   size_t *out_size, edct_error *err);

/* Releases a buffer returned by edct_encode / edct_transcode.  NULL is allowed. */
void edct_free(void *p);

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
