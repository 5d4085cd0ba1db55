/*
 * edct_encode.c - JPEG output through libjpeg-turbo's compressor: pixels (edct_encode) and
 * coefficients requantized in the DCT domain (edct_transcode).
 *
 * Output goes to a growable buffer owned here until the call succeeds, so a failure at any
 * point leaves nothing allocated and hands out no partial file.  edct_encode catches
 * libjpeg's errors with its own setjmp; edct_transcode runs inside the decoder's error funnel
 * (edct__with_coefficients), and the compressor's errors leave through the same funnel.
 */
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h> /* first: jconfig.h decides which messages jerror.h declares */
#include <jerror.h>

#include "edct.h"
#include "edct_internal.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* libjpeg's Huffman table builder of Annex K.2 (declared in jchuff.h, which is not installed;
 * a global function of libjpeg-turbo's library, static or shared, and of IJG's since 6b). */
EXTERN(void) jpeg_gen_optimal_table(j_compress_ptr cinfo, JHUFF_TBL *htbl, long freq[]);

#define INITIAL_OUTPUT 65536

/* ---- growable output buffer (a libjpeg destination manager) ------------------ */

typedef struct out_buf {
  struct jpeg_destination_mgr pub; /* first: libjpeg sees a jpeg_destination_mgr */
  uint8_t *data;
  size_t cap, size;
} out_buf;

static void out_init(j_compress_ptr cinfo) {
  out_buf *b = (out_buf *)cinfo->dest;
  b->data = malloc(b->cap);
  if (b->data == NULL) ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 0);
  b->pub.next_output_byte = b->data;
  b->pub.free_in_buffer = b->cap;
}

static boolean out_grow(j_compress_ptr cinfo) {
  out_buf *b = (out_buf *)cinfo->dest;
  if (b->cap > SIZE_MAX / 2) ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 1);
  uint8_t *bigger = realloc(b->data, 2 * b->cap);
  if (bigger == NULL) ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 1); /* b->data is still ours */
  b->data = bigger;
  b->pub.next_output_byte = b->data + b->cap; /* libjpeg filled the whole buffer */
  b->pub.free_in_buffer = b->cap;
  b->cap *= 2;
  return TRUE;
}

static void out_term(j_compress_ptr cinfo) {
  out_buf *b = (out_buf *)cinfo->dest;
  b->size = b->cap - b->pub.free_in_buffer;
}

/* ---- the compressor and its errors -------------------------------------------------- */

typedef struct compressor {
  struct jpeg_compress_struct cinfo; /* first: callbacks cast cinfo back */
  struct jpeg_error_mgr jerr;
  out_buf dest;
  edct_decoder *dec; /* edct_transcode: errors leave through the decoder's funnel */
  jmp_buf jump;      /* edct_encode: errors land here */
  edct_error *err;
  int created;
} compressor;

static int compressor_status(int code, int transcoding) {
  if (code == JERR_OUT_OF_MEMORY) return EDCT_ERR_NOMEM;
  if (code == JERR_IMAGE_TOO_BIG) return EDCT_ERR_TOO_LARGE;
  /* the compressor refuses what the decoder accepted: outside what can be re-coded */
  return transcoding ? EDCT_ERR_UNSUPPORTED : EDCT_ERR_ARGUMENT;
}

static void compressor_error(j_common_ptr cinfo) {
  compressor *k = (compressor *)cinfo;
  char buf[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, buf);
  int status = compressor_status(cinfo->err->msg_code, k->dec != NULL);
  if (k->dec != NULL) edct__raise(k->dec, status, "JPEG compressor: %s", buf);
  edct__failf(k->err, status, -1, "JPEG compressor: %s", buf);
  longjmp(k->jump, 1);
}

static void compressor_message(j_common_ptr cinfo, int level) { (void)cinfo; (void)level; }

/* Allocates a compressor; NULL when memory ran out.  Its libjpeg object is created by
 * compressor_start, inside the caller's error handling. */
static compressor *compressor_new(edct_error *err, size_t initial_output) {
  compressor *k = calloc(1, sizeof *k);
  if (k == NULL) return NULL;
  k->err = err;
  k->cinfo.err = jpeg_std_error(&k->jerr);
  k->jerr.error_exit = compressor_error;
  k->jerr.emit_message = compressor_message;
  k->dest.cap = initial_output > INITIAL_OUTPUT ? initial_output : INITIAL_OUTPUT;
  return k;
}

static void compressor_start(compressor *k) {
  jpeg_create_compress(&k->cinfo);
  k->created = 1;
  k->dest.pub.init_destination = out_init;
  k->dest.pub.empty_output_buffer = out_grow;
  k->dest.pub.term_destination = out_term;
  k->cinfo.dest = &k->dest.pub;
}

static void compressor_free(compressor *k) {
  if (k == NULL) return;
  if (k->created) jpeg_destroy_compress(&k->cinfo);
  free(k->dest.data);
  free(k);
}

/* Hands the finished output to the caller. */
static void compressor_take(compressor *k, uint8_t **out, size_t *out_size) {
  *out = k->dest.data;
  *out_size = k->dest.size;
  k->dest.data = NULL;
}

/* ---- options ------------------------------------------------------------------------------ */

void edct_default_encode_options(edct_encode_options *opts) {
  memset(opts, 0, sizeof *opts);
  opts->subsampling = EDCT_SUB_420;
  opts->optimize = 1;
  opts->keep_markers = 1;
}

int edct_check_encode_options(const edct_encode_options *o, edct_error *err) {
  if (o == NULL) return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "no options");
  if (o->quality < 0 || o->quality > 100)
    return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "quality=%d: expected 1..100", o->quality);
  if (o->use_tables)
    for (int t = 0; t < 2; t++)
      for (int k = 0; k < 64; k++)
        if (o->tables[t][k] < 1 || o->tables[t][k] > 255)
          return edct__failf(err, EDCT_ERR_ARGUMENT, -1,
                             "tables: %s[%d] = %d, baseline JPEG needs 1..255",
                             t ? "chroma" : "luma", k, o->tables[t][k]);
  if (o->subsampling < EDCT_SUB_444 || o->subsampling > EDCT_SUB_440)
    return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "subsampling=%d: unknown", o->subsampling);
  if (o->restart_interval < 0 || o->restart_interval > 65535)
    return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "restart_interval=%d: expected 0..65535",
                       o->restart_interval);
  if (o->use_keep)
    for (int c = 0; c < EDCT_MAX_COMPONENTS; c++) {
      const edct_region *r = &o->keep;
      if (r->frequencies[c] > 8)
        return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "keep: frequencies[%d] = %d, expected 0..8",
                           c, r->frequencies[c]);
      if (r->rows[c][0] < 0 || r->rows[c][1] < r->rows[c][0] || r->cols[c][0] < 0 ||
          r->cols[c][1] < r->cols[c][0])
        return edct__failf(err, EDCT_ERR_ARGUMENT, -1,
                           "keep: component %d's block rows [%d, %d) or columns [%d, %d) are "
                           "not ranges", c, r->rows[c][0], r->rows[c][1], r->cols[c][0],
                           r->cols[c][1]);
    }
  return EDCT_OK;
}

/* Quantization tables 0 (luma) and 1 (chroma) from opts, component 0 on table 0 and the
 * others on table 1.  quality 0 keeps what cinfo holds (with keep_assignment) or uses
 * `default_quality`. */
static void set_tables(j_compress_ptr c, const edct_encode_options *o, int default_quality) {
  if (o->use_tables) {
    unsigned int t[64];
    for (int n = 0; n < 2; n++) {
      for (int k = 0; k < 64; k++) t[k] = o->tables[n][k];
      jpeg_add_quant_table(c, n, t, 100, TRUE); /* scale 100%: the values as given */
    }
  } else {
    jpeg_set_quality(c, o->quality ? o->quality : default_quality, TRUE);
  }
  for (int ci = 0; ci < c->num_components; ci++) c->comp_info[ci].quant_tbl_no = ci ? 1 : 0;
}

static void set_coding(j_compress_ptr c, const edct_encode_options *o) {
  c->optimize_coding = o->optimize ? TRUE : FALSE;
  c->restart_interval = (unsigned int)o->restart_interval;
  if (o->progressive) jpeg_simple_progression(c);
}

/* ---- edct_encode --------------------------------------------------------------------------- */

int edct_encode(const uint8_t *pixels, int width, int height, int components, size_t stride,
                const edct_encode_options *opts, uint8_t **out, size_t *out_size,
                edct_error *err) {
  edct__clear_error(err);
  if (out == NULL || out_size == NULL)
    return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "no output pointers");
  *out = NULL;
  *out_size = 0;
  if (pixels == NULL) return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "no pixels");
  if (width < 1 || height < 1 || width > JPEG_MAX_DIMENSION || height > JPEG_MAX_DIMENSION)
    return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "%dx%d pixels, JPEG needs 1..%d per side",
                       width, height, (int)JPEG_MAX_DIMENSION);
  if (components != 1 && components != 3)
    return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "%d channels, expected 1 or 3",
                       components);
  if (stride < (size_t)width * (size_t)components)
    return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "row stride %zu below %d bytes",
                       stride, width * components);
  int status = edct_check_encode_options(opts, err);
  if (status != EDCT_OK) return status;

  compressor *k = compressor_new(err, (size_t)width * (size_t)height / 4);
  if (k == NULL) return edct__failf(err, EDCT_ERR_NOMEM, -1, "out of memory");
  if (setjmp(k->jump)) {
    compressor_free(k);
    return err ? err->status : EDCT_ERR_ARGUMENT;
  }
  compressor_start(k);
  struct jpeg_compress_struct *c = &k->cinfo;
  c->image_width = (JDIMENSION)width;
  c->image_height = (JDIMENSION)height;
  c->input_components = components;
  c->in_color_space = components == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_set_defaults(c);
  c->dct_method = JDCT_ISLOW;
  set_tables(c, opts, 75);
  if (components == 3) {
    static const int h[] = {1, 2, 2, 1}, v[] = {1, 1, 2, 2}; /* by edct_subsampling */
    c->comp_info[0].h_samp_factor = h[opts->subsampling];
    c->comp_info[0].v_samp_factor = v[opts->subsampling];
    for (int ci = 1; ci < 3; ci++) c->comp_info[ci].h_samp_factor = c->comp_info[ci].v_samp_factor = 1;
  }
  set_coding(c, opts);
  jpeg_start_compress(c, TRUE);
  while (c->next_scanline < c->image_height) {
    JSAMPROW row = (JSAMPROW)(pixels + (size_t)c->next_scanline * stride);
    jpeg_write_scanlines(c, &row, 1);
  }
  jpeg_finish_compress(c);
  compressor_take(k, out, out_size);
  compressor_free(k);
  return EDCT_OK;
}

/* ---- edct_transcode ------------------------------------------------------------------------- */

/* What a keep region leaves of component c's block (by, bx): 0 = nothing (the block becomes
 * all zero), else k (its k x k lowest frequencies; 8: all of it). */
static int kept_frequencies(const edct_region *r, int c, int by, int bx) {
  if (c >= EDCT_MAX_COMPONENTS || by < r->rows[c][0] || by >= r->rows[c][1] ||
      bx < r->cols[c][0] || bx >= r->cols[c][1])
    return 0;
  return r->frequencies[c];
}

/* Zeroes the terms of a block (natural order) outside its k x k lowest frequencies; k = 0
 * zeroes all of them. */
static void keep_block(JCOEF *blk, int k) {
  if (k >= 8) return;
  for (int n = 0; n < 64; n++)
    if (n / 8 >= k || n % 8 >= k) blk[n] = 0;
}

/* Applies the region to one component's whole-image coefficients. */
static void keep_component(j_decompress_ptr src, jvirt_barray_ptr arr,
                           const jpeg_component_info *comp, const edct_region *r) {
  int c = comp->component_index;
  for (JDIMENSION by = 0; by < comp->height_in_blocks; by++) {
    JBLOCKARRAY row = (*src->mem->access_virt_barray)((j_common_ptr)src, arr, by, 1, TRUE);
    for (JDIMENSION bx = 0; bx < comp->width_in_blocks; bx++)
      keep_block(row[0][bx], kept_frequencies(r, c, (int)by, (int)bx));
  }
}

/* The frequencies the decoder must read for a keep region (an edct_consumer's): no more than
 * it keeps, 1 for a component it drops (the least a decoder can read); all without one. */
static void keep_frequencies(const edct_encode_options *o, uint8_t f[EDCT_MAX_COMPONENTS]) {
  for (int c = 0; c < EDCT_MAX_COMPONENTS; c++)
    f[c] = (uint8_t)(!o->use_keep ? 0 : o->keep.frequencies[c] ? o->keep.frequencies[c] : 1);
}

typedef struct transcode_ctx {
  const edct_encode_options *opts;
  size_t input_size;
  compressor *k;
  uint8_t *out;
  size_t out_size;
} transcode_ctx;

/* A component kept as it is must fit baseline Huffman coding (DC in -1024..1023, |AC| <= 1023:
 * libjpeg-turbo's encoder does not check, and writes a broken stream).  A decoder accepts
 * more: the symbols of a corrupt or hand-made file can carry up to 15 bits. */
static void check_range(edct_decoder *dec, j_decompress_ptr src, jvirt_barray_ptr arr,
                        const jpeg_component_info *comp) {
  for (JDIMENSION by = 0; by < comp->height_in_blocks; by++) {
    JBLOCKARRAY row = (*src->mem->access_virt_barray)((j_common_ptr)src, arr, by, 1, FALSE);
    for (JDIMENSION bx = 0; bx < comp->width_in_blocks; bx++) {
      const JCOEF *blk = row[0][bx];
      int bad = blk[0] < -1024 || blk[0] > 1023;
      for (int k = 1; k < 64; k++) bad |= blk[k] < -1023 || blk[k] > 1023;
      if (bad)
        edct__raise(dec, EDCT_ERR_UNSUPPORTED,
                    "component %d, block (%u, %u): a coefficient outside baseline JPEG's range "
                    "cannot be re-coded as it is (give new tables or a quality)",
                    comp->component_index, (unsigned)by, (unsigned)bx);
    }
  }
}

/* c' = round(c * q_old / q_new) of one component, halves away from zero, clamped to what
 * baseline Huffman coding can carry (|AC| <= 1023, DC in -1024..1023; every coefficient of
 * an 8-bit image fits).  Components whose table is unchanged are not touched, only checked
 * (check_range).
 *
 * One block at a time by edct__requantize_block (edct_internal.h, which says why it is exact;
 * tests/test_codec.py checks it against the integer formula). */
static void requantize(edct_decoder *dec, j_decompress_ptr src, jvirt_barray_ptr arr,
                       const jpeg_component_info *comp, const UINT16 *q_new) {
  const JQUANT_TBL *old = comp->quant_table; /* latched when its first scan began */
  if (old == NULL || memcmp(old->quantval, q_new, sizeof old->quantval) == 0) {
    check_range(dec, src, arr, comp);
    return;
  }
  float q_old[64], step[64];
  for (int k = 0; k < 64; k++) {
    q_old[k] = (float)old->quantval[k];
    step[k] = 1.0f / (float)q_new[k];
  }
  for (JDIMENSION by = 0; by < comp->height_in_blocks; by++) {
    JBLOCKARRAY row = (*src->mem->access_virt_barray)((j_common_ptr)src, arr, by, 1, TRUE);
    for (JDIMENSION bx = 0; bx < comp->width_in_blocks; bx++) {
      edct__requantize_block(row[0][bx], row[0][bx], q_old, step);
    }
  }
}

/* The JFIF APP0 / Adobe APP14 markers libjpeg writes itself are not copied a second time. */
static int written_by_libjpeg(j_compress_ptr c, jpeg_saved_marker_ptr m) {
  if (m->marker == JPEG_APP0 && c->write_JFIF_header && m->data_length >= 5 &&
      memcmp(m->data, "JFIF", 5) == 0)
    return 1;
  if (m->marker == JPEG_APP0 + 14 && c->write_Adobe_marker && m->data_length >= 5 &&
      memcmp(m->data, "Adobe", 5) == 0)
    return 1;
  return 0;
}

static int arrays_transcode(edct_decoder *dec, j_decompress_ptr src, jvirt_barray_ptr *arrays,
                            transcode_ctx *t);

static void transcode_coefficients(edct_decoder *dec, void *src_info, void *coef, void *ctx) {
  transcode_ctx *t = ctx;
  if (coef == NULL) { /* the call failed: release */
    compressor_free(t->k);
    t->k = NULL;
    return;
  }
  j_decompress_ptr src = src_info;
  jvirt_barray_ptr *arrays = coef;
  const edct_encode_options *o = t->opts;
  if (arrays_transcode(dec, src, arrays, t)) return;
  t->k = compressor_new(NULL, t->input_size);
  if (t->k == NULL) edct__raise(dec, EDCT_ERR_NOMEM, "out of memory");
  t->k->dec = dec;
  compressor_start(t->k);
  j_compress_ptr c = &t->k->cinfo;
  jpeg_copy_critical_parameters(src, c);
  if (o->use_tables || o->quality) set_tables(c, o, 0);
  for (int ci = 0; o->use_keep && ci < c->num_components; ci++)
    keep_component(src, arrays[ci], &src->comp_info[ci], &o->keep);
  for (int ci = 0; ci < c->num_components; ci++)
    requantize(dec, src, arrays[ci], &src->comp_info[ci],
               c->quant_tbl_ptrs[c->comp_info[ci].quant_tbl_no]->quantval);
  set_coding(c, o);
  jpeg_write_coefficients(c, arrays);
  if (o->keep_markers)
    for (jpeg_saved_marker_ptr m = src->marker_list; m != NULL; m = m->next)
      if (!written_by_libjpeg(c, m)) jpeg_write_marker(c, m->marker, m->data, m->data_length);
  jpeg_finish_compress(c);
  compressor_take(t->k, &t->out, &t->out_size);
  compressor_free(t->k);
  t->k = NULL;
}

/* ---- the fused path: the built-in decoder feeding the built-in writer --------------------- */

/* Sequential output (optimized Huffman tables or not) of a baseline file the built-in
 * Huffman decoder reads (4:2:0 YCbCr photos, MJPEG frames...): each block is requantized and
 * coded as it is decoded, with the compressor libjpeg's path would set up (tables, JFIF fields, Huffman
 * tables) and the same bytes as that path writes (tests/test_codec.py compares them).  No
 * whole-image coefficient buffer: one pass over the input, two for optimized tables (the
 * first tallies the symbols). */

typedef struct fused_ctx {
  edct__writer *w; /* the pass's writer: counting first (optimized tables), then writing */
  const edct_region *keep; /* or NULL */
  int16_t kept[64];        /* all zero between blocks */
  uint8_t corner[8][64];   /* corner[k - 1]: the zigzag positions of the k x k lowest frequencies */
} fused_ctx;

static void list_corners(uint8_t corner[8][64]) {
  for (int k = 1; k <= 8; k++) {
    int n = 0;
    for (int z = 0; z < 64; z++) {
      int nat = edct__natural_order[z];
      if (nat / 8 < k && nat % 8 < k) corner[k - 1][n++] = (uint8_t)z;
    }
  }
}

/* Blocks go to the writer as they are, or what the keep region leaves of them: the writer
 * requantizes them (edct__writer_requantize) as it codes them. */
static int fused_block(void *ctx, int comp, int by, int bx, const int16_t *coef,
                       const uint16_t *quant) {
  (void)quant; /* the component's table, handed to the writer beforehand */
  fused_ctx *f = ctx;
  int k = f->keep != NULL ? kept_frequencies(f->keep, comp, by, bx) : 8;
  if (k == 8) return edct__writer_block(f->w, comp, by, bx, coef) != 0;
  if (k <= 1) return edct__writer_dc(f->w, comp, by, bx, k ? coef[0] : 0) != 0;
  /* the k x k corner alone: the terms beyond it may be undefined (never read) */
  const uint8_t *zz = f->corner[k - 1];
  for (int i = 0; i < k * k; i++) f->kept[zz[i]] = coef[zz[i]];
  int r = edct__writer_block(f->w, comp, by, bx, f->kept) != 0;
  for (int i = 0; i < k * k; i++) f->kept[zz[i]] = 0;
  return r;
}

/* The writer for one pass: requantizing each component from q_old[ci] (its table in the file)
 * to the compressor's (c). */
static edct__writer *pass_writer(const uint16_t *const *q_old, j_compress_ptr c, size_t capacity,
                                 int counting) {
  edct__writer *w = edct__writer_new(c, capacity, counting);
  for (int ci = 0; w != NULL && ci < c->num_components; ci++)
    edct__writer_requantize(w, ci, q_old[ci], c->quant_tbl_ptrs[c->comp_info[ci].quant_tbl_no]->quantval);
  return w;
}

/* Replaces c's Huffman tables by the optimal ones for the counts a counting writer made
 * (libjpeg's finish_pass_gather: each table the components use, once). */
static void optimal_tables(j_compress_ptr c, edct__writer *w) {
  int done = 0;
  for (int ci = 0; ci < c->num_components; ci++) {
    int dc = c->comp_info[ci].dc_tbl_no, ac = c->comp_info[ci].ac_tbl_no;
    if (!(done & 1 << dc)) jpeg_gen_optimal_table(c, c->dc_huff_tbl_ptrs[dc], edct__writer_counts(w, 0, dc));
    if (!(done & 1 << (NUM_HUFF_TBLS + ac)))
      jpeg_gen_optimal_table(c, c->ac_huff_tbl_ptrs[ac], edct__writer_counts(w, 1, ac));
    done |= 1 << dc | 1 << (NUM_HUFF_TBLS + ac);
  }
}

/* Where the built-in writer's blocks come from: feed() hands every block of the image to
 * consumer->block (zigzag order, MCU order of the frame, padding left out) and returns 1 when
 * all of them were handed; `last` marks the writing pass (the counting pass comes first with
 * optimized Huffman tables). */
typedef int (*block_feed)(void *feed_ctx, const edct_consumer *consumer, int last);

/* Sequential output by the built-in writer (edct_huffenc.c), the compressor set up as libjpeg's
 * path sets it up: the same bytes jpeg_write_coefficients writes.  Returns 1 with the result
 * (status, and the output on EDCT_OK) once the writing pass's feed succeeded; 0 when the
 * writer declined or a feed failed (the caller then takes libjpeg's path, which reports what
 * the writer could not code). */
static int writer_transcode(j_decompress_ptr src, const uint16_t *const *q_old,
                            const edct_encode_options *o, size_t capacity, block_feed feed,
                            void *feed_ctx, uint8_t **out, size_t *out_size, int *status,
                            edct_error *err) {
  compressor *k = compressor_new(err, capacity);
  fused_ctx *f = calloc(1, sizeof *f);
  volatile int taken = 0; /* read after a longjmp */
  if (k == NULL || f == NULL) goto done;
  if (setjmp(k->jump)) goto done; /* the compressor refused: libjpeg's path reports it */
  compressor_start(k);
  j_compress_ptr c = &k->cinfo;
  jpeg_copy_critical_parameters(src, c);
  if (o->use_tables || o->quality) set_tables(c, o, 0);
  set_coding(c, o);
  edct_consumer consumer = {f, fused_block, NULL, {0}};
  keep_frequencies(o, consumer.frequencies);
  f->keep = o->use_keep ? &o->keep : NULL;
  list_corners(f->corner);
  if (o->optimize) { /* a first pass tallies the symbols, as libjpeg's gathering pass does */
    f->w = pass_writer(q_old, c, 0, 1);
    if (f->w == NULL || !feed(feed_ctx, &consumer, 0) || edct__writer_finish(f->w, NULL, NULL) != EDCT_OK)
      goto done;
    optimal_tables(c, f->w); /* may longjmp: done, the feed can run again */
    edct__writer_free(f->w);
  }
  f->w = pass_writer(q_old, c, capacity, 0);
  if (f->w == NULL) goto done;
  if (o->keep_markers)
    for (jpeg_saved_marker_ptr m = src->marker_list; m != NULL; m = m->next)
      if (!written_by_libjpeg(c, m) && edct__writer_marker(f->w, m->marker, m->data, m->data_length))
        goto done;
  if (!feed(feed_ctx, &consumer, 1)) goto done;
  taken = 1; /* the feed's source is used up: what follows is the result */
  *status = edct__writer_finish(f->w, out, out_size);
  if (*status != EDCT_OK)
    edct__failf(err, *status, -1, "JPEG writer: %s",
                *status == EDCT_ERR_NOMEM ? "out of memory" : "the blocks did not make the image");
done:
  if (f != NULL) edct__writer_free(f->w);
  free(f);
  compressor_free(k);
  return taken;
}

/* Whether the built-in writer may code this frame's blocks (YCbCr or grayscale, sequential
 * output). */
static int writer_applies(j_decompress_ptr src, const edct_encode_options *o) {
  return !o->progressive && ((src->jpeg_color_space == JCS_YCbCr && src->num_components == 3) ||
                             (src->jpeg_color_space == JCS_GRAYSCALE && src->num_components == 1));
}

/* The fused path's feed: the built-in Huffman decoder, block by block. */
static int decoder_feed(void *dec, const edct_consumer *consumer, int last) {
  return edct__decode_builtin_only(dec, consumer, last);
}

/* The fused transcode: the built-in decoder feeding the built-in writer.  Returns 1 with the
 * result or 0 when it does not apply, the decoder untouched (the libjpeg path then runs). */
static int fused_transcode(edct_decoder *dec, const edct_encode_options *o, uint8_t **out,
                           size_t *out_size, int *status, edct_error *err) {
  j_decompress_ptr src = edct__header_cinfo(dec);
  if (!writer_applies(src, o) || src->comps_in_scan != src->num_components) return 0;
  const uint16_t *q_old[MAX_COMPONENTS];
  for (int ci = 0; ci < src->num_components; ci++) {
    if (src->cur_comp_info[ci] != &src->comp_info[ci]) return 0; /* scan order != frame order */
    int no = src->comp_info[ci].quant_tbl_no; /* as the header says: not checked yet */
    const JQUANT_TBL *q = no >= 0 && no < NUM_QUANT_TBLS ? src->quant_tbl_ptrs[no] : NULL;
    if (q == NULL) return 0;
    q_old[ci] = q->quantval;
  }
  return writer_transcode(src, q_old, o, edct__input_size(dec), decoder_feed, dec, out, out_size,
                          status, err);
}

/* libjpeg's whole-image coefficients as a feed (natural order, converted to zigzag; of a
 * block the keep region drops nothing is read, of a corner only the corner). */
typedef struct arrays_feed_ctx {
  j_decompress_ptr src;
  jvirt_barray_ptr *arrays;
  const edct_region *keep; /* or NULL */
  uint8_t corner[8][64];
} arrays_feed_ctx;

static int arrays_feed(void *ctx, const edct_consumer *consumer, int last) {
  (void)last; /* the arrays stay as they are */
  arrays_feed_ctx *a = ctx;
  j_decompress_ptr src = a->src;
  int n = src->num_components, interleaved = n > 1;
  long mcus_per_row = interleaved ? (long)(src->image_width + 8 * src->max_h_samp_factor - 1) /
                                        (8 * src->max_h_samp_factor)
                                  : (long)src->comp_info[0].width_in_blocks;
  long mcu_rows = interleaved ? (long)(src->image_height + 8 * src->max_v_samp_factor - 1) /
                                    (8 * src->max_v_samp_factor)
                              : (long)src->comp_info[0].height_in_blocks;
  int16_t zz[64] = {0};
  for (long my = 0; my < mcu_rows; my++) {
    JBLOCKARRAY rows[MAX_COMPONENTS];
    for (int ci = 0; ci < n; ci++) { /* arrays hold whole iMCU rows (rounded up to v_samp) */
      int v = interleaved ? src->comp_info[ci].v_samp_factor : 1;
      rows[ci] = (*src->mem->access_virt_barray)((j_common_ptr)src, a->arrays[ci],
                                                 (JDIMENSION)(my * v), (JDIMENSION)v, FALSE);
    }
    for (long mx = 0; mx < mcus_per_row; mx++)
      for (int ci = 0; ci < n; ci++) {
        const jpeg_component_info *comp = &src->comp_info[ci];
        int h = interleaved ? comp->h_samp_factor : 1, v = interleaved ? comp->v_samp_factor : 1;
        for (int dy = 0; dy < v; dy++)
          for (int dx = 0; dx < h; dx++) {
            long by = my * v + dy, bx = mx * h + dx;
            if (by >= (long)comp->height_in_blocks || bx >= (long)comp->width_in_blocks) continue;
            const JCOEF *blk = rows[ci][dy][bx];
            int k = a->keep != NULL ? kept_frequencies(a->keep, ci, (int)by, (int)bx) : 8;
            if (k == 8) {
              for (int z = 0; z < 64; z++) zz[z] = blk[edct__natural_order[z]];
            } else {
              for (int i = 0; i < k * k; i++)
                zz[a->corner[k - 1][i]] = blk[edct__natural_order[a->corner[k - 1][i]]];
            }
            if (consumer->block(consumer->ctx, ci, (int)by, (int)bx, zz, NULL)) return 0;
          }
      }
  }
  return 1;
}

/* Sequential output of whole-image coefficients (progressive and multi-scan inputs) with a
 * keep region, by the built-in writer instead of jpeg_write_coefficients: the same bytes, the
 * region applied as the blocks are coded (DC-only re-codes of 8-15 MP progressive photos:
 * 1.2-1.27x faster than zeroing the arrays and coding them with libjpeg).  Without a region libjpeg
 * codes them (measured 3-5% faster on dense re-codes: the writer gathers every block into
 * zigzag order first).  Returns 1 when done (t->out set), 0 when the writer declined (the
 * arrays untouched). */
static int arrays_transcode(edct_decoder *dec, j_decompress_ptr src, jvirt_barray_ptr *arrays,
                            transcode_ctx *t) {
  const edct_encode_options *o = t->opts;
  if (!o->use_keep || !writer_applies(src, o) || edct__builtin_disabled(dec)) return 0;
  const uint16_t *q_old[MAX_COMPONENTS];
  for (int ci = 0; ci < src->num_components; ci++) {
    if (src->comp_info[ci].quant_table == NULL) return 0; /* a component no scan reached */
    q_old[ci] = src->comp_info[ci].quant_table->quantval; /* latched when its first scan began */
  }
  arrays_feed_ctx a = {src, arrays, o->use_keep ? &o->keep : NULL, {{0}}};
  list_corners(a.corner);
  int status = EDCT_OK;
  if (!writer_transcode(src, q_old, o, t->input_size, arrays_feed, &a, &t->out, &t->out_size,
                        &status, NULL))
    return 0;
  if (status != EDCT_OK) edct__raise(dec, status, "JPEG writer: %s", edct_status_name(status));
  return 1;
}

int edct_transcode(edct_decoder *dec, const edct_encode_options *opts, uint8_t **out,
                   size_t *out_size, edct_error *err) {
  edct__clear_error(err);
  if (out == NULL || out_size == NULL)
    return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "no output pointers");
  *out = NULL;
  *out_size = 0;
  if (dec == NULL) return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "no decoder");
  int status = edct_check_encode_options(opts, err);
  if (status != EDCT_OK) return status;
  if (fused_transcode(dec, opts, out, out_size, &status, err)) return status;
  edct__clear_error(err);
  transcode_ctx t = {opts, edct__input_size(dec), NULL, NULL, 0};
  uint8_t frequencies[EDCT_MAX_COMPONENTS];
  keep_frequencies(opts, frequencies);
  status = edct__with_coefficients(dec, transcode_coefficients, &t, frequencies, err);
  if (status != EDCT_OK) return status;
  *out = t.out;
  *out_size = t.out_size;
  return EDCT_OK;
}

void edct_free(void *p) { free(p); }
