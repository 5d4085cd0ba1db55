/*
 * edct_decode.c - streaming coefficient decoder on top of libjpeg-turbo.
 *
 * libjpeg-turbo entropy-decodes (Huffman or arithmetic, sequential or
 * progressive) in raw-data mode; its per-component inverse-DCT entry points
 * are replaced by consume_block(), which hands each block's quantized
 * coefficients to an edct_consumer instead of computing pixels.  For
 * single-scan files this is libjpeg's one-pass path: one MCU in flight, no
 * whole-image buffer.  Every libjpeg error lands in on_error() and leaves
 * through one longjmp to the API function that was running.
 *
 * Decodes whose consumer tolerates a rerun (edct_decode_planes, prepare)
 * first try the built-in Huffman decoder (edct_huffman.c) on files it
 * covers, with libjpeg's parsed header; libjpeg's own decoder, untouched so
 * far, takes over from the start if the built-in one meets anything unusual.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h> /* first: jconfig.h decides which messages jerror.h declares */
#include <jerror.h>

#include "edct.h"
#include "edct_internal.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif

#if JPEG_LIB_VERSION >= 70
#define EDCT_SCALED_SIZE(c) ((c)->DCT_h_scaled_size)
#else
#define EDCT_SCALED_SIZE(c) ((c)->DCT_scaled_size)
#endif

typedef void (*idct_fn)(j_decompress_ptr, jpeg_component_info *, JCOEFPTR, JSAMPARRAY,
                        JDIMENSION);

/* Leading members of libjpeg's private struct jpeg_inverse_dct (jpegint.h,
 * not installed).  This layout is shared by libjpeg 6b-9 and libjpeg-turbo
 * 1.x-3.x; the 8-bit entry points are the ones used here. */
typedef struct idct_module {
  void (*start_pass)(j_decompress_ptr cinfo);
  idct_fn inverse_DCT[MAX_COMPONENTS];
} idct_module;

typedef struct error_mgr {
  struct jpeg_error_mgr pub; /* first: libjpeg sees a jpeg_error_mgr */
  jmp_buf jump;
} error_mgr;

struct edct_decoder {
  struct jpeg_decompress_struct cinfo; /* first: callbacks cast cinfo back */
  error_mgr jerr;
  struct jpeg_progress_mgr progress;
  const uint8_t *data;
  size_t size;
  edct_options opts;
  edct_info info;
  edct_error *err;        /* report target of the call in progress */
  int exif_orientation;   /* 0 until an APP1 with a valid orientation */
  int hit_eof;            /* libjpeg ran past the end of the data */
  int decoded;
  const edct_consumer *consumer;
  int builtin_disabled;   /* edct__disable_builtin: libjpeg decodes everything */
  int path;               /* an edct__path: how the last decode went */
  int imcu_row;           /* iMCU row being delivered */
  int scale_shift[MAX_COMPONENTS]; /* log2 of each component's IDCT size */
  JSAMPARRAY rows[MAX_COMPONENTS];
  uint8_t *scans;         /* the needed scans of a progressive file, when read from these */
};

/* ---- the error funnel ---------------------------------------------------- */

static long input_offset(edct_decoder *d) {
  const JOCTET *p = d->cinfo.src ? d->cinfo.src->next_input_byte : NULL;
  if (p >= d->data && p <= d->data + d->size) return (long)(p - d->data);
  return (long)d->size; /* libjpeg is reading its fake EOI past the end */
}

static int status_of_code(int code) {
  switch (code) {
    case JERR_BAD_PRECISION:
    case JERR_SOF_UNSUPPORTED:
    case JERR_COMPONENT_COUNT:
    case JERR_NOT_COMPILED:
    case JERR_ARITH_NOTIMPL:
    case JERR_NOTIMPL:
    case JERR_EMPTY_IMAGE: /* height defined by a DNL marker */
      return EDCT_ERR_UNSUPPORTED;
    case JERR_OUT_OF_MEMORY:
    case JERR_NO_BACKING_STORE:
      return EDCT_ERR_NOMEM;
    case JERR_IMAGE_TOO_BIG:
    case JERR_WIDTH_OVERFLOW:
      return EDCT_ERR_TOO_LARGE;
    default:
      return EDCT_ERR_INVALID;
  }
}

int edct__vfailf(edct_error *err, int status, long offset, const char *fmt, va_list ap) {
  if (err == NULL) return status;
  err->status = status;
  err->code = -1;
  err->offset = offset;
  vsnprintf(err->message, sizeof err->message, fmt, ap);
  return status;
}

int edct__failf(edct_error *err, int status, long offset, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  edct__vfailf(err, status, offset, fmt, ap);
  va_end(ap);
  return status;
}

/* Fails the running API call: records the reason (printf-style) at the
 * current input position and jumps back to the call. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4), noreturn))
#endif
static void fail(edct_decoder *d, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  edct__vfailf(d->err, status, input_offset(d), fmt, ap);
  va_end(ap);
  longjmp(d->jerr.jump, 1);
}

static void on_error(j_common_ptr cinfo) {
  edct_decoder *d = (edct_decoder *)cinfo;
  char buf[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, buf);
  edct__failf(d->err, status_of_code(cinfo->err->msg_code), input_offset(d), "%s", buf);
  if (d->err != NULL) d->err->code = cinfo->err->msg_code;
  longjmp(d->jerr.jump, 1);
}

/* Warnings that mean coefficients are missing or wrong. */
static int is_corruption(int code) {
  switch (code) {
#ifdef D_ARITH_CODING_SUPPORTED
    case JWRN_ARITH_BAD_CODE:
#endif
    case JWRN_BOGUS_PROGRESSION:
    case JWRN_HIT_MARKER:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_JPEG_EOF:
    case JWRN_MUST_RESYNC:
    case JWRN_NOT_SEQUENTIAL:
      return 1;
    default:
      return 0;
  }
}

static void on_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return; /* trace messages */
  edct_decoder *d = (edct_decoder *)cinfo;
  int code = cinfo->err->msg_code;
  if (code == JWRN_JPEG_EOF) d->hit_eof = 1;
  if (d->opts.strict && is_corruption(code)) on_error(cinfo);
  cinfo->err->num_warnings++;
  if (d->err != NULL && d->err->num_warnings++ == 0) {
    char buf[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, buf);
    snprintf(d->err->first_warning, sizeof d->err->first_warning, "%s", buf);
  }
}

static void on_output(j_common_ptr cinfo) { (void)cinfo; /* never print */ }

static void on_progress(j_common_ptr cinfo) {
  edct_decoder *d = (edct_decoder *)cinfo;
  if (d->opts.max_scans > 0 && d->cinfo.input_scan_number > d->opts.max_scans)
    fail(d, EDCT_ERR_INVALID, "more than %d scans (max_scans)", d->opts.max_scans);
}

/* ---- APP1: EXIF orientation read in place, nothing saved ------------------ */

static boolean on_app1(j_decompress_ptr cinfo) {
  edct_decoder *d = (edct_decoder *)cinfo;
  struct jpeg_source_mgr *src = cinfo->src;
  size_t avail = src->bytes_in_buffer;
  if (avail < 2) { /* truncated inside the marker: let libjpeg hit the end */
    (*src->skip_input_data)(cinfo, (long)avail + 2);
    return TRUE;
  }
  const uint8_t *p = src->next_input_byte;
  size_t length = (size_t)p[0] << 8 | p[1];
  src->next_input_byte += 2;
  src->bytes_in_buffer -= 2;
  if (length < 2) return TRUE;
  length -= 2;
  if (d->exif_orientation == 0) {
    size_t n = length < avail - 2 ? length : avail - 2;
    d->exif_orientation = edct_exif_orientation(p + 2, n);
  }
  if (length > 0) (*src->skip_input_data)(cinfo, (long)length);
  return TRUE;
}

/* ---- header --------------------------------------------------------------- */

static int color_space_of(J_COLOR_SPACE cs) {
  switch (cs) {
    case JCS_GRAYSCALE: return EDCT_CS_GRAY;
    case JCS_YCbCr: return EDCT_CS_YCBCR;
    case JCS_RGB: return EDCT_CS_RGB;
    case JCS_CMYK: return EDCT_CS_CMYK;
    case JCS_YCCK: return EDCT_CS_YCCK;
    default: return EDCT_CS_UNKNOWN;
  }
}

static void fill_info(edct_decoder *d) {
  struct jpeg_decompress_struct *c = &d->cinfo;
  edct_info *info = &d->info;
  memset(info, 0, sizeof *info);
  info->width = (int)c->image_width;
  info->height = (int)c->image_height;
  info->num_components = c->num_components;
  info->precision = c->data_precision;
  info->progressive = c->progressive_mode ? 1 : 0;
  info->arithmetic = c->arith_code ? 1 : 0;
  info->restart_interval = (int)c->restart_interval;
  info->orientation = d->exif_orientation ? d->exif_orientation : 1;
  info->color_space = color_space_of(c->jpeg_color_space);
  info->max_h_samp = c->max_h_samp_factor;
  info->max_v_samp = c->max_v_samp_factor;
  for (int ci = 0; ci < c->num_components && ci < EDCT_MAX_COMPONENTS; ci++) {
    jpeg_component_info *comp = &c->comp_info[ci];
    edct_component *out = &info->comp[ci];
    out->id = comp->component_id;
    out->h_samp = comp->h_samp_factor;
    out->v_samp = comp->v_samp_factor;
    out->width_in_blocks = (int)comp->width_in_blocks;
    out->height_in_blocks = (int)comp->height_in_blocks;
    out->quant_tbl_no = comp->quant_tbl_no;
    JQUANT_TBL *q = (comp->quant_tbl_no >= 0 && comp->quant_tbl_no < NUM_QUANT_TBLS)
                        ? c->quant_tbl_ptrs[comp->quant_tbl_no]
                        : NULL;
    for (int k = 0; k < 64; k++) out->quant[k] = q ? (uint16_t)q->quantval[k] : 0;
  }
}

void edct_default_options(edct_options *opts) {
  opts->max_pixels = EDCT_DEFAULT_MAX_PIXELS;
  opts->max_scans = EDCT_DEFAULT_MAX_SCANS;
  opts->strict = 1;
  opts->keep_markers = 0;
}

void edct__clear_error(edct_error *err) {
  if (err == NULL) return;
  memset(err, 0, sizeof *err);
  err->code = -1;
  err->offset = -1;
}

edct_decoder *edct_open(const uint8_t *data, size_t size, const edct_options *opts,
                        edct_error *err) {
  edct__clear_error(err);
  if (data == NULL || size == 0) {
    edct__failf(err, EDCT_ERR_INVALID, 0, "empty input (0 bytes)");
    return NULL;
  }
  if (size > ULONG_MAX) {
    edct__failf(err, EDCT_ERR_TOO_LARGE, -1, "input larger than this platform can address");
    return NULL;
  }
  edct_decoder *d = calloc(1, sizeof *d);
  if (d == NULL) {
    edct__failf(err, EDCT_ERR_NOMEM, -1, "out of memory");
    return NULL;
  }
  d->data = data;
  d->size = size;
  d->err = err;
  if (opts != NULL)
    d->opts = *opts;
  else
    edct_default_options(&d->opts);

  d->cinfo.err = jpeg_std_error(&d->jerr.pub);
  d->jerr.pub.error_exit = on_error;
  d->jerr.pub.emit_message = on_message;
  d->jerr.pub.output_message = on_output;
  if (setjmp(d->jerr.jump)) {
    edct_close(d);
    return NULL;
  }
  jpeg_create_decompress(&d->cinfo);
  d->progress.progress_monitor = on_progress;
  d->cinfo.progress = &d->progress;
  jpeg_mem_src(&d->cinfo, data, (unsigned long)size);
  if (d->opts.keep_markers) { /* transcoding copies them: save every APPn and COM */
    jpeg_save_markers(&d->cinfo, JPEG_COM, 0xFFFF);
    for (int m = 0; m < 16; m++) jpeg_save_markers(&d->cinfo, JPEG_APP0 + m, 0xFFFF);
  } else {
    jpeg_set_marker_processor(&d->cinfo, JPEG_APP0 + 1, on_app1);
  }

  /* A tables-only (abbreviated) datastream may precede the image. */
  while (jpeg_read_header(&d->cinfo, FALSE) == JPEG_HEADER_TABLES_ONLY) {
    if (d->cinfo.src->bytes_in_buffer == 0 || input_offset(d) >= (long)size)
      fail(d, EDCT_ERR_INVALID, "%s",
           d->hit_eof ? "file ends before its first scan (truncated)"
                      : "datastream holds only tables (abbreviated), no image");
  }
  if (d->cinfo.num_components > EDCT_MAX_COMPONENTS)
    fail(d, EDCT_ERR_UNSUPPORTED, "%d components (at most %d are supported)",
         d->cinfo.num_components, EDCT_MAX_COMPONENTS);
  for (jpeg_saved_marker_ptr m = d->cinfo.marker_list; m != NULL && !d->exif_orientation; m = m->next)
    if (m->marker == JPEG_APP0 + 1) d->exif_orientation = edct_exif_orientation(m->data, m->data_length);
  fill_info(d);
  uint64_t pixels = (uint64_t)d->info.width * (uint64_t)d->info.height;
  if (d->opts.max_pixels > 0 && pixels > d->opts.max_pixels)
    fail(d, EDCT_ERR_TOO_LARGE, "%dx%d = %llu pixels exceeds max_pixels=%llu", d->info.width,
         d->info.height, (unsigned long long)pixels, (unsigned long long)d->opts.max_pixels);
  d->err = NULL;
  return d;
}

const edct_info *edct_get_info(const edct_decoder *dec) { return &dec->info; }

void edct_close(edct_decoder *dec) {
  if (dec == NULL) return;
  jpeg_destroy_decompress(&dec->cinfo);
  free(dec->scans);
  free(dec);
}

/* ---- streaming decode ------------------------------------------------------ */

/* Stands in for libjpeg's inverse DCT: receives one block's quantized
 * coefficients (natural order) and the row pointers we handed to
 * jpeg_read_raw_data, from which the block's position follows. */
static void consume_block(j_decompress_ptr cinfo, jpeg_component_info *comp, JCOEFPTR coef,
                          JSAMPARRAY out, JDIMENSION col) {
  edct_decoder *d = (edct_decoder *)cinfo;
  int ci = comp->component_index;
  int shift = d->scale_shift[ci]; /* IDCT sizes are powers of two */
  long row = (long)(out - d->rows[ci]);
  int by = d->imcu_row * comp->v_samp_factor + (int)(row >> shift);
  int bx = (int)(col >> shift);
  if (row < 0 || by >= (int)comp->height_in_blocks || bx >= (int)comp->width_in_blocks)
    return; /* never happens with libjpeg's row geometry; ignore if it did */
  /* A component no scan has reached yet (truncated multi-scan file) has no
   * latched table; its coefficients are all zero, and so is its table. */
  static const uint16_t no_table[64];
  const uint16_t *quant = comp->quant_table ? comp->quant_table->quantval : no_table;
  if (d->consumer->block(d->consumer->ctx, ci, by, bx, coef, quant))
    fail(d, EDCT_ERR_ABORTED, "stopped by the consumer");
}

static int frequency_limit_of(const uint8_t *frequencies, int ci) {
  int f = ci < EDCT_MAX_COMPONENTS ? frequencies[ci] : 0;
  return f >= 1 && f <= 8 ? f : 8;
}

static int frequency_limit(const edct_consumer *cs, int ci) {
  return frequency_limit_of(cs->frequencies, ci);
}

static int dc_only(const struct jpeg_decompress_struct *c, const edct_consumer *cs) {
  for (int ci = 0; ci < c->num_components; ci++)
    if (frequency_limit(cs, ci) != 1) return 0;
  return 1;
}

/* Whether every coefficient the consumer reads is final (progressive files). */
static int needed_complete(const struct jpeg_decompress_struct *c, const edct_consumer *cs) {
  for (int ci = 0; ci < c->num_components; ci++) {
    int f = frequency_limit(cs, ci);
    for (int z = 0; z < 64; z++) {
      int n = edct__natural_order[z]; /* libjpeg's coef_bits are zigzag */
      if (n / 8 < f && n % 8 < f && c->coef_bits[ci][z] != 0) return 0;
    }
  }
  return 1;
}

/* Progressive files whose consumer reads only low frequencies: read scans
 * until those are complete (buffered-image mode), skip the rest. */
static void consume_needed_scans(edct_decoder *d, const edct_consumer *cs) {
  struct jpeg_decompress_struct *c = &d->cinfo;
  for (;;) {
    int r = jpeg_consume_input(c);
    if (d->opts.max_scans > 0 && c->input_scan_number > d->opts.max_scans) on_progress((j_common_ptr)c);
    if (r == JPEG_REACHED_EOI) break;
    if (r == JPEG_SUSPENDED) fail(d, EDCT_ERR_INVALID, "decoder made no progress");
    if (r == JPEG_SCAN_COMPLETED && needed_complete(c, cs)) break;
  }
  jpeg_start_output(c, c->input_scan_number);
}

/* ---- the built-in Huffman decoder ------------------------------------------------ */

/* Where edct_decode_planes wants the coefficients (see edct.h). */
typedef struct planes_out {
  int16_t *const *planes;
  int dequantize;
  uint16_t (*quant_out)[64];
} planes_out;

/* The quantization table of a component's blocks (libjpeg latches this one
 * when the scan starts), NULL if missing. */
static const JQUANT_TBL *quant_table(const struct jpeg_decompress_struct *c,
                                     const jpeg_component_info *comp) {
  int no = comp->quant_tbl_no;
  return no >= 0 && no < NUM_QUANT_TBLS ? c->quant_tbl_ptrs[no] : NULL;
}

/* DHT table `no` (DC or AC), NULL if missing. */
static const JHUFF_TBL *huff_tbl(const struct jpeg_decompress_struct *c, int is_dc, int no) {
  if (no < 0 || no >= NUM_HUFF_TBLS) return NULL;
  return is_dc ? c->dc_huff_tbl_ptrs[no] : c->ac_huff_tbl_ptrs[no];
}

/* Whether the file's only scan is the built-in decoder's case: one
 * sequential 8-bit Huffman scan holding every component, at most
 * D_MAX_BLOCKS_IN_MCU blocks per MCU, its data in our buffer from libjpeg's
 * read position on, every table it uses defined.  (MJPEG frames without DHT
 * qualify once jpeg_start_decompress has installed the standard tables.)
 * Anything else, libjpeg decodes or refuses. */
static int builtin_applies(const edct_decoder *d) {
  const struct jpeg_decompress_struct *c = &d->cinfo;
  if (c->progressive_mode || c->arith_code || c->data_precision != 8) return 0;
  if (c->comps_in_scan != c->num_components || c->Ss != 0 || c->Se != DCTSIZE2 - 1 ||
      c->Ah != 0 || c->Al != 0 || c->unread_marker != 0)
    return 0;
  const JOCTET *p = c->src->next_input_byte;
  if (p < d->data || p > d->data + d->size ||
      c->src->bytes_in_buffer != (size_t)(d->data + d->size - p))
    return 0;
  int blocks = 0;
  for (int i = 0; i < c->comps_in_scan; i++) {
    const jpeg_component_info *comp = c->cur_comp_info[i];
    if (quant_table(c, comp) == NULL || huff_tbl(c, 1, comp->dc_tbl_no) == NULL ||
        huff_tbl(c, 0, comp->ac_tbl_no) == NULL)
      return 0;
    blocks += c->comps_in_scan == 1 ? 1 : comp->h_samp_factor * comp->v_samp_factor;
  }
  return blocks <= D_MAX_BLOCKS_IN_MCU;
}

/* The decoding table of DHT slot `no` (DC or AC), built on first use into
 * tables[] (DC slots 0-3, AC 4-7); NULL if the table is refused. */
static const edct_huff_table *huff_table(const struct jpeg_decompress_struct *c,
                                         edct_huff_table *tables, unsigned *built, int is_dc,
                                         int no) {
  int slot = is_dc ? no : NUM_HUFF_TBLS + no;
  const JHUFF_TBL *h = huff_tbl(c, is_dc, no);
  if (!(*built & 1u << slot)) {
    if (!edct__huff_build(&tables[slot], h->bits, h->huffval, is_dc)) return NULL;
    *built |= 1u << slot;
  }
  return &tables[slot];
}

static int ceil_div(long a, long b) { return (int)((a + b - 1) / b); }

/* Describes the scan for edct__huff_decode_scan, with libjpeg's MCU
 * geometry (jdinput.c); 0 if a Huffman table is refused. */
static int describe_scan(edct_decoder *d, const edct_consumer *consumer, const planes_out *out,
                         edct_huff_table *tables, edct_scan *s) {
  struct jpeg_decompress_struct *c = &d->cinfo;
  int interleaved = c->comps_in_scan > 1;
  unsigned built = 0;
  memset(s, 0, sizeof *s);
  s->data = c->src->next_input_byte;
  s->end = d->data + d->size;
  if (interleaved) {
    s->mcus_per_row = ceil_div((long)c->image_width, (long)c->max_h_samp_factor * DCTSIZE);
    s->mcu_rows = ceil_div((long)c->image_height, (long)c->max_v_samp_factor * DCTSIZE);
  } else { /* one block per MCU */
    s->mcus_per_row = (int)c->cur_comp_info[0]->width_in_blocks;
    s->mcu_rows = (int)c->cur_comp_info[0]->height_in_blocks;
  }
  s->restart_interval = c->restart_interval;
  s->num_comps = c->comps_in_scan;
  s->planes = out ? out->planes : NULL;
  s->dequantize = out ? out->dequantize : 0;
  s->consumer = consumer;
  for (int i = 0; i < c->comps_in_scan; i++) {
    const jpeg_component_info *comp = c->cur_comp_info[i];
    edct_scan_comp *sc = &s->comp[i];
    sc->comp = comp->component_index;
    sc->mcu_w = interleaved ? comp->h_samp_factor : 1;
    sc->mcu_h = interleaved ? comp->v_samp_factor : 1;
    sc->width_in_blocks = (int)comp->width_in_blocks;
    sc->height_in_blocks = (int)comp->height_in_blocks;
    sc->dc = huff_table(c, tables, &built, 1, comp->dc_tbl_no);
    sc->ac = huff_table(c, tables, &built, 0, comp->ac_tbl_no);
    sc->quant = quant_table(c, comp)->quantval;
    sc->dc_only = frequency_limit(consumer, sc->comp) == 1;
    if (sc->dc == NULL || sc->ac == NULL) return 0;
  }
  return 1;
}

/* Decodes the scan with the built-in decoder (builtin_applies holds);
 * returns 1 when done: the file is then decoded exactly as libjpeg would
 * have.  0: libjpeg decodes, from the start of the scan, as nothing of its
 * state has moved. */
static int decode_builtin(edct_decoder *d, const edct_consumer *consumer, const planes_out *out) {
  edct_huff_table *tables = malloc(2 * NUM_HUFF_TBLS * sizeof *tables);
  edct_scan scan;
  int result = EDCT_SCAN_ANOMALY;
  if (tables != NULL && describe_scan(d, consumer, out, tables, &scan))
    result = edct__huff_decode_scan(&scan);
  free(tables);
  if (result == EDCT_SCAN_ABORTED) fail(d, EDCT_ERR_ABORTED, "stopped by the consumer");
  d->path = result == EDCT_SCAN_DONE ? EDCT__PATH_BUILTIN : EDCT__PATH_FALLBACK;
  if (result != EDCT_SCAN_DONE || out == NULL || out->quant_out == NULL) return result == EDCT_SCAN_DONE;
  for (int i = 0; i < scan.num_comps; i++)
    memcpy(out->quant_out[scan.comp[i].comp], scan.comp[i].quant, 64 * sizeof(uint16_t));
  return 1;
}

/* ---- decode ------------------------------------------------------------------------ */

/* The decode behind every entry point.  rerunnable: the consumer tolerates
 * a rerun (edct__decode_rerunnable), so the built-in decoder may try first;
 * out, when given, is where that decoder writes instead of calling the
 * consumer (it must match what the consumer would have written). */
static int decode(edct_decoder *d, const edct_consumer *consumer, int rerunnable,
                  const planes_out *out, edct_error *err) {
  edct__clear_error(err);
  if (d == NULL || consumer == NULL || consumer->block == NULL)
    return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "no decoder or no block consumer");
  if (d->decoded)
    return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "edct_decode called twice on one decoder");
  d->decoded = 1;
  d->err = err;
  d->consumer = consumer;
  d->path = EDCT__PATH_LIBJPEG;
  struct jpeg_decompress_struct *c = &d->cinfo;
  if (setjmp(d->jerr.jump)) {
    jpeg_abort_decompress(c);
    d->err = NULL;
    return err ? err->status : EDCT_ERR_INVALID;
  }
  /* The scan data is next in the input, and what follows it up to EOI
   * carries nothing the built-in decoder does not check: done means done.
   * It runs before libjpeg sets up its own decoder, which it never needs then
   * (for such files jpeg_start_decompress could not fail or warn). */
  int builtin = rerunnable && consumer->end_row == NULL && !d->builtin_disabled;
  if (builtin && builtin_applies(d)) {
    builtin = 0;
    if (decode_builtin(d, consumer, out)) {
      d->err = NULL;
      return EDCT_OK;
    }
  }
  int early = 0;
  if (c->progressive_mode)
    for (int ci = 0; ci < c->num_components; ci++) early |= frequency_limit(consumer, ci) < 8;
  c->raw_data_out = TRUE;
  c->do_block_smoothing = FALSE; /* would invent AC terms in progressive files */
  c->buffered_image = early ? TRUE : FALSE;
  /* We never write samples, so the scale only matters for one thing: at 1/8
   * (IDCT size 1) libjpeg skips storing AC coefficients, which only a
   * DC-only consumer can afford. */
  c->scale_num = 1;
  c->scale_denom = dc_only(c, consumer) ? 8 : 4;
  jpeg_start_decompress(c);
  if (early) consume_needed_scans(d, consumer);
  if (builtin && builtin_applies(d) && decode_builtin(d, consumer, out)) { /* tables filled in */
    jpeg_abort_decompress(c);
    d->err = NULL;
    return EDCT_OK;
  }

  /* After output setup (which installs libjpeg's IDCTs): ours instead. */
  idct_module *idct = (idct_module *)c->idct;
  for (int ci = 0; ci < c->num_components; ci++) idct->inverse_DCT[ci] = consume_block;

  /* Row pointers for one iMCU row; consume_block only reads their position. */
  for (int ci = 0; ci < c->num_components; ci++) {
    jpeg_component_info *comp = &c->comp_info[ci];
    JDIMENSION nrows = (JDIMENSION)(comp->v_samp_factor * EDCT_SCALED_SIZE(comp));
    d->scale_shift[ci] = 0;
    while ((1 << d->scale_shift[ci]) < EDCT_SCALED_SIZE(comp)) d->scale_shift[ci]++;
    JDIMENSION width = (JDIMENSION)(EDCT_SCALED_SIZE(comp) * comp->h_samp_factor);
    d->rows[ci] = (*c->mem->alloc_sarray)((j_common_ptr)c, JPOOL_IMAGE, width, nrows);
  }
  JDIMENSION lines = (JDIMENSION)(c->max_v_samp_factor * c->min_DCT_scaled_size);
  for (d->imcu_row = 0; c->output_scanline < c->output_height; d->imcu_row++) {
    if (jpeg_read_raw_data(c, d->rows, lines) == 0)
      fail(d, EDCT_ERR_INVALID, "decoder made no progress");
    if (consumer->end_row != NULL && consumer->end_row(consumer->ctx, d->imcu_row))
      fail(d, EDCT_ERR_ABORTED, "stopped by the consumer");
  }
  if (early)
    jpeg_abort_decompress(c); /* the remaining scans carry nothing we read */
  else
    jpeg_finish_decompress(c);
  d->err = NULL;
  return EDCT_OK;
}

int edct_decode(edct_decoder *d, const edct_consumer *consumer, edct_error *err) {
  return decode(d, consumer, 0, NULL, err);
}

int edct__decode_rerunnable(edct_decoder *d, const edct_consumer *consumer, edct_error *err) {
  return decode(d, consumer, 1, NULL, err);
}

int edct__decode_builtin_only(edct_decoder *d, const edct_consumer *consumer, int last) {
  if (d == NULL || consumer == NULL || consumer->block == NULL || d->decoded ||
      d->builtin_disabled || !builtin_applies(d))
    return 0;
  edct_huff_table *tables = malloc(2 * NUM_HUFF_TBLS * sizeof *tables);
  edct_scan scan;
  int result = EDCT_SCAN_ANOMALY;
  if (tables != NULL && describe_scan(d, consumer, NULL, tables, &scan)) {
    scan.zigzag = 1;
    result = edct__huff_decode_scan(&scan);
  }
  free(tables);
  if (result != EDCT_SCAN_DONE) return 0; /* nothing of libjpeg's state has moved */
  if (!last) return 1;
  d->decoded = 1;
  d->path = EDCT__PATH_BUILTIN;
  return 1;
}

void *edct__header_cinfo(edct_decoder *d) { return &d->cinfo; }

/* ---- whole-image coefficients (transcoding) ---------------------------------- */

void edct__raise(edct_decoder *d, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  edct__vfailf(d->err, status, -1, fmt, ap);
  va_end(ap);
  longjmp(d->jerr.jump, 1);
}

/* Points libjpeg at the scans a consumer of `frequencies` needs (progressive files whose
 * header is read and whose first scan's data is next); leaves it as it is otherwise.  Offsets
 * in messages then count in that stream. */
static void read_needed_scans(edct_decoder *d, const uint8_t *frequencies) {
  struct jpeg_decompress_struct *c = &d->cinfo;
  int limited = 0;
  for (int ci = 0; ci < c->num_components; ci++) limited |= frequency_limit_of(frequencies, ci) < 8;
  const JOCTET *p = c->src->next_input_byte;
  if (!limited || !c->progressive_mode || c->unread_marker != 0 || p < d->data ||
      p > d->data + d->size || c->src->bytes_in_buffer != (size_t)(d->data + d->size - p))
    return;
  int ids[EDCT_MAX_COMPONENTS];
  for (int ci = 0; ci < c->num_components; ci++) ids[ci] = c->comp_info[ci].component_id;
  uint8_t *buf;
  size_t n;
  if (!edct__needed_scans(p, c->src->bytes_in_buffer, ids, c->num_components, frequencies,
                          d->opts.max_scans, &buf, &n))
    return;
  d->scans = buf;
  d->data = buf;
  d->size = n;
  c->src->next_input_byte = buf;
  c->src->bytes_in_buffer = n;
}

int edct__with_coefficients(edct_decoder *d, edct__coef_fn fn, void *ctx,
                            const uint8_t *frequencies, edct_error *err) {
  edct__clear_error(err);
  if (d == NULL || fn == NULL) return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "no decoder or no function");
  if (d->decoded)
    return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "a decoder can be decoded once");
  d->decoded = 1;
  d->err = err;
  d->path = EDCT__PATH_LIBJPEG;
  struct jpeg_decompress_struct *c = &d->cinfo;
  if (setjmp(d->jerr.jump)) {
    fn(d, c, NULL, ctx); /* failed: NULL coefficients ask fn to release what it holds */
    jpeg_abort_decompress(c);
    d->err = NULL;
    return err ? err->status : EDCT_ERR_INVALID;
  }
  if (frequencies != NULL) read_needed_scans(d, frequencies);
  jvirt_barray_ptr *coef = jpeg_read_coefficients(c);
  if (coef == NULL) fail(d, EDCT_ERR_INVALID, "decoder made no progress");
  fn(d, c, coef, ctx);
  jpeg_finish_decompress(c);
  d->err = NULL;
  return EDCT_OK;
}

size_t edct__input_size(const edct_decoder *d) { return d->size; }

int edct__entropy_path(const edct_decoder *d) { return d->path; }

void edct__disable_builtin(edct_decoder *d) { d->builtin_disabled = 1; }

int edct__builtin_disabled(const edct_decoder *d) { return d->builtin_disabled; }

/* ---- the plane consumer ----------------------------------------------------- */

typedef struct planes_ctx {
  planes_out out;
  int width_in_blocks[EDCT_MAX_COMPONENTS];
  /* per component: the table whose range was checked last, and whether all
   * its values are below 32768 (libjpeg keeps one table copy per component) */
  const uint16_t *checked_quant[EDCT_MAX_COMPONENTS];
  int narrow_quant[EDCT_MAX_COMPONENTS];
} planes_ctx;

/* Dequantizes one block: each product saturated to int16.  With every table
 * value below 32768 (all 8-bit tables) this is a widening int16 multiply and
 * a saturating narrow, done 8 lanes at a time where SSE2 or NEON exist; the
 * portable loop is the reference and handles 16-bit tables. */
static void dequantize_block(int16_t *restrict dst, const int16_t *restrict coef,
                             const uint16_t *restrict quant, int narrow_quant) {
#if defined(__SSE2__)
  if (narrow_quant) {
    for (int k = 0; k < 64; k += 8) {
      __m128i c = _mm_loadu_si128((const __m128i *)(coef + k));
      __m128i q = _mm_loadu_si128((const __m128i *)(quant + k));
      __m128i lo = _mm_mullo_epi16(c, q), hi = _mm_mulhi_epi16(c, q);
      __m128i p = _mm_packs_epi32(_mm_unpacklo_epi16(lo, hi), _mm_unpackhi_epi16(lo, hi));
      _mm_storeu_si128((__m128i *)(dst + k), p);
    }
    return;
  }
#elif defined(__ARM_NEON)
  if (narrow_quant) {
    for (int k = 0; k < 64; k += 8) {
      int16x8_t c = vld1q_s16(coef + k);
      int16x8_t q = vreinterpretq_s16_u16(vld1q_u16(quant + k));
      int32x4_t p0 = vmull_s16(vget_low_s16(c), vget_low_s16(q));
      int32x4_t p1 = vmull_s16(vget_high_s16(c), vget_high_s16(q));
      vst1q_s16(dst + k, vcombine_s16(vqmovn_s32(p0), vqmovn_s32(p1)));
    }
    return;
  }
#else
  (void)narrow_quant;
#endif
  for (int k = 0; k < 64; k++) {
    int32_t v = (int32_t)coef[k] * (int32_t)quant[k];
    v = v > INT16_MAX ? INT16_MAX : v;
    v = v < INT16_MIN ? INT16_MIN : v;
    dst[k] = (int16_t)v;
  }
}

static int store_block(void *ctx, int comp, int by, int bx, const int16_t *coef,
                       const uint16_t *quant) {
  planes_ctx *p = ctx;
  int16_t *dst = p->out.planes[comp] + ((size_t)by * (size_t)p->width_in_blocks[comp] + bx) * 64;
  if (p->out.dequantize) {
    if (quant != p->checked_quant[comp]) {
      p->checked_quant[comp] = quant;
      p->narrow_quant[comp] = 1;
      for (int k = 0; k < 64; k++) p->narrow_quant[comp] &= quant[k] <= INT16_MAX;
    }
    dequantize_block(dst, coef, quant, p->narrow_quant[comp]);
  }
  else
    memcpy(dst, coef, 64 * sizeof *dst);
  if (p->out.quant_out != NULL && by == 0 && bx == 0) memcpy(p->out.quant_out[comp], quant, 128);
  return 0;
}

int edct_decode_planes(edct_decoder *dec, int16_t *const *planes, int dequantize,
                       uint16_t (*quant_out)[64], edct_error *err) {
  edct__clear_error(err);
  if (dec == NULL || planes == NULL)
    return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "no decoder or no planes");
  planes_ctx ctx = {{planes, dequantize, quant_out}, {0}, {NULL}, {0}};
  for (int ci = 0; ci < dec->info.num_components; ci++) {
    if (planes[ci] == NULL) return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "missing plane buffer");
    ctx.width_in_blocks[ci] = dec->info.comp[ci].width_in_blocks;
  }
  edct_consumer consumer = {&ctx, store_block, NULL, {0}};
  /* A rerun rewrites every block; the built-in decoder writes the planes itself. */
  return decode(dec, &consumer, 1, &ctx.out, err);
}

const char *edct_status_name(int status) {
  switch (status) {
    case EDCT_OK: return "ok";
    case EDCT_ERR_INVALID: return "invalid JPEG";
    case EDCT_ERR_UNSUPPORTED: return "unsupported JPEG";
    case EDCT_ERR_TOO_LARGE: return "image too large";
    case EDCT_ERR_NOMEM: return "out of memory";
    case EDCT_ERR_ARGUMENT: return "bad argument";
    case EDCT_ERR_ABORTED: return "aborted";
    default: return "unknown error";
  }
}
