/*
 * fuzz_decode.c - libFuzzer harness over the edct C core (cython_ext/).
 *
 * Every input is treated as a JPEG and decoded twice:
 *   1. strict, through edct_decode_planes, dequantized or not;
 *   2. lenient (strict = 0), with the other dequantize mode, either through
 *      edct_decode_planes or through edct_decode with a consumer that checks
 *      the streaming contract of edct.h (blocks in range, in iMCU-row order,
 *      each delivered exactly once, all of them on success).
 * The byte in the middle of the input picks the modes, so mutations explore
 * all combinations while valid seeds stay valid.  Decodes that may use the
 * built-in Huffman decoder (edct_decode_planes, prepare) run a second time
 * with libjpeg's decoder alone, and both must agree exactly: status,
 * message, offset, warnings and, on success, every output value.
 * edct_exif_orientation also runs on the raw input.  edct_transcode re-codes the input
 * (the file's own tables, a quality, or tables made of input bytes) and what it writes must
 * decode strictly, with the very same coefficients for the file's own tables, and a re-code
 * that took the fused path (built-in decoder into the built-in writer) must be byte for byte
 * what libjpeg's path writes;
 * edct_prepare_region must stay inside the image, and a third of the re-codes keep only that
 * region: prepare must then read exactly what it reads from the re-code without it;
 * edct_encode compresses pixels made of input bytes.  Contract violations
 * call abort() so that libFuzzer records them as crashes.
 *
 * Build and run: see fuzz/README.md (make fuzz, make fuzz-run).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edct.h"
#include "edct_internal.h"

/* Keeps every run fast and bounded: 4 MP at most. */
#define FUZZ_MAX_PIXELS (4ULL * 1000 * 1000)
#define FUZZ_MAX_SCANS 64
/* prepare's tensors: 16x16 grid, merged layout holds 64 + 128 channels */
#define PREP_Y (16 * 16 * 192)
#define PREP_CBCR (8 * 8 * 128)

/* Reports a broken invariant and aborts (libFuzzer saves the input). */
static void violation(const char *what) {
  fprintf(stderr, "edct contract violation: %s\n", what);
  abort();
}

static void check_status(int status) {
  if (status < EDCT_OK || status > EDCT_ERR_ABORTED) violation("unknown status");
  if (edct_status_name(status) == NULL) violation("status without a name");
}

/* Checks the header of an opened decoder against libjpeg's geometry rules. */
static void check_info(const edct_info *info) {
  if (info->num_components < 1 || info->num_components > EDCT_MAX_COMPONENTS)
    violation("component count out of range");
  if (info->width < 1 || info->height < 1) violation("empty image opened");
  if ((uint64_t)info->width * (uint64_t)info->height > FUZZ_MAX_PIXELS)
    violation("max_pixels not enforced");
  if (info->orientation < 1 || info->orientation > 8) violation("orientation out of range");
  for (int c = 0; c < info->num_components; c++) {
    const edct_component *comp = &info->comp[c];
    if (comp->h_samp < 1 || comp->h_samp > 4 || comp->v_samp < 1 || comp->v_samp > 4)
      violation("sampling factor out of range");
    long w = ((long)info->width * comp->h_samp + info->max_h_samp - 1) / info->max_h_samp;
    long h = ((long)info->height * comp->v_samp + info->max_v_samp - 1) / info->max_v_samp;
    if (comp->width_in_blocks != (w + 7) / 8 || comp->height_in_blocks != (h + 7) / 8)
      violation("block grid does not match the frame size");
  }
}

/* ---- plane buffers, sized exactly so that ASan sees any overrun ---------- */

typedef struct planes {
  int16_t *ptr[EDCT_MAX_COMPONENTS];
} planes;

static int planes_alloc(planes *p, const edct_info *info) {
  memset(p, 0, sizeof *p);
  for (int c = 0; c < info->num_components; c++) {
    size_t n = (size_t)info->comp[c].width_in_blocks * (size_t)info->comp[c].height_in_blocks;
    p->ptr[c] = malloc(n * 64 * sizeof(int16_t));
    if (p->ptr[c] == NULL) return 0;
  }
  return 1;
}

static void planes_free(planes *p) {
  for (int c = 0; c < EDCT_MAX_COMPONENTS; c++) free(p->ptr[c]);
}

/* ---- a consumer that checks the streaming contract ------------------------ */

typedef struct order_check {
  const edct_info *info;
  uint8_t *seen[EDCT_MAX_COMPONENTS]; /* one flag per block */
  int next_row;                       /* iMCU row whose blocks may arrive now */
} order_check;

static int order_block(void *ctx, int comp, int by, int bx, const int16_t *coef,
                       const uint16_t *quant) {
  order_check *oc = ctx;
  (void)coef;
  (void)quant;
  if (comp < 0 || comp >= oc->info->num_components) violation("block of no component");
  const edct_component *c = &oc->info->comp[comp];
  if (by < 0 || bx < 0 || by >= c->height_in_blocks || bx >= c->width_in_blocks)
    violation("block outside the grid");
  if (by / c->v_samp != oc->next_row) violation("block outside its iMCU row");
  uint8_t *flag = &oc->seen[comp][(size_t)by * (size_t)c->width_in_blocks + (size_t)bx];
  if (*flag) violation("block delivered twice");
  *flag = 1;
  return 0;
}

static int order_end_row(void *ctx, int imcu_row) {
  order_check *oc = ctx;
  if (imcu_row != oc->next_row) violation("end_row out of order");
  oc->next_row++;
  return 0;
}

/* Decodes through edct_decode with order_block; on success every block must
 * have been delivered. */
static void decode_checked(edct_decoder *dec, const edct_info *info) {
  order_check oc = {info, {NULL}, 0};
  for (int c = 0; c < info->num_components; c++) {
    size_t n = (size_t)info->comp[c].width_in_blocks * (size_t)info->comp[c].height_in_blocks;
    oc.seen[c] = calloc(n, 1);
    if (oc.seen[c] == NULL) goto done;
  }
  edct_consumer consumer = {.ctx = &oc, .block = order_block, .end_row = order_end_row};
  edct_error err;
  int status = edct_decode(dec, &consumer, &err);
  check_status(status);
  if (status != err.status) violation("returned status differs from err.status");
  if (status == EDCT_OK) {
    for (int c = 0; c < info->num_components; c++) {
      size_t n = (size_t)info->comp[c].width_in_blocks * (size_t)info->comp[c].height_in_blocks;
      if (memchr(oc.seen[c], 0, n) != NULL) violation("decode succeeded with blocks missing");
    }
  }
done:
  for (int c = 0; c < EDCT_MAX_COMPONENTS; c++) free(oc.seen[c]);
}

/* What a decode reported, for comparing the two entropy decoders. */
static void check_same_error(const edct_error *a, const edct_error *b) {
  if (a->status != b->status || a->code != b->code || a->offset != b->offset ||
      strcmp(a->message, b->message) != 0 || a->num_warnings != b->num_warnings ||
      strcmp(a->first_warning, b->first_warning) != 0)
    violation("built-in and libjpeg decoders disagree on status or warnings");
}

/* Decodes into exact-size planes; a second decode call must be refused.
 * Then decodes again with libjpeg's decoder alone: same outcome. */
static void decode_planes(edct_decoder *dec, const edct_info *info, int dequantize,
                          edct_decoder *reference) {
  planes p, q;
  if (planes_alloc(&p, info) && planes_alloc(&q, info)) {
    uint16_t quant[EDCT_MAX_COMPONENTS][64], ref_quant[EDCT_MAX_COMPONENTS][64];
    edct_error err, ref_err;
    int status = edct_decode_planes(dec, p.ptr, dequantize, quant, &err);
    check_status(status);
    if (status != EDCT_OK && status != err.status) violation("status differs from err.status");
    edct__disable_builtin(reference);
    if (edct_decode_planes(reference, q.ptr, dequantize, ref_quant, &ref_err) != status)
      violation("built-in and libjpeg decoders disagree on the status");
    check_same_error(&err, &ref_err);
    if (edct__entropy_path(reference) != EDCT__PATH_LIBJPEG) violation("libjpeg path not taken");
    for (int c = 0; status == EDCT_OK && c < info->num_components; c++) {
      size_t n = (size_t)info->comp[c].width_in_blocks * (size_t)info->comp[c].height_in_blocks;
      if (memcmp(p.ptr[c], q.ptr[c], n * 64 * sizeof(int16_t)) != 0 ||
          memcmp(quant[c], ref_quant[c], sizeof quant[c]) != 0)
        violation("built-in and libjpeg decoders disagree on coefficients");
    }
    if (edct_decode_planes(dec, p.ptr, dequantize, quant, &err) != EDCT_ERR_ARGUMENT)
      violation("second decode not refused");
  }
  planes_free(&p);
  planes_free(&q);
}

/* One open + decode pass with the given options. */
static void run_pass(const uint8_t *data, size_t size, int strict, int dequantize,
                     int checked) {
  edct_options opts;
  edct_default_options(&opts);
  opts.max_pixels = FUZZ_MAX_PIXELS;
  opts.max_scans = FUZZ_MAX_SCANS;
  opts.strict = strict;
  edct_error err;
  edct_decoder *dec = edct_open(data, size, &opts, &err);
  if (dec == NULL) {
    check_status(err.status);
    if (err.status == EDCT_OK) violation("edct_open failed with status ok");
    return;
  }
  const edct_info *info = edct_get_info(dec);
  check_info(info);
  if (checked) {
    decode_checked(dec, info);
  } else {
    edct_decoder *reference = edct_open(data, size, &opts, &err);
    if (reference == NULL) violation("a second open of the same input failed");
    decode_planes(dec, info, dequantize, reference);
    edct_close(reference);
  }
  edct_close(dec);
}

/* One prepare() into y/cbcr (zeroed first); builtin = 0 forces libjpeg's decoder. */
/* The spec and window prepare runs with, from the selector and the input's size; returns the
 * window to pass (NULL: the spec's evaluation window). */
static const edct_window *fuzz_spec(uint8_t selector, size_t size, edct_spec *spec, edct_window *w) {
  memset(spec, 0, sizeof *spec);
  spec->grid_h = spec->grid_w = 16;
  spec->resize_mode = selector & 8 ? EDCT_RESIZE_STRETCH : EDCT_RESIZE_SHORTER_SIDE;
  spec->resize_size = 64 + (selector & 0x30) * 4;
  spec->layout = selector & 0x40 ? EDCT_LAYOUT_MERGED : EDCT_LAYOUT_SPLIT;
  for (int c = 0; c < 3; c++) {
    spec->num_channels[c] = 64;
    for (int i = 0; i < 64; i++) spec->channels[c][i] = (uint8_t)i;
  }
  *w = (edct_window){size % 17, size % 13, 1 + size % 301, 1 + size % 211, (int)(size & 1)};
  return selector & 1 ? w : NULL;
}

/* prepare of data with the spec and window of (selector, spec_size): its status, or -1 when
 * the file does not open. */
static int prepare_once(const uint8_t *data, size_t size, uint8_t selector, size_t spec_size,
                        int builtin, float *y, float *cbcr, edct_error *err) {
  static edct_workspace *ws;
  if (ws == NULL) ws = edct_workspace_new();
  edct_options opts;
  edct_default_options(&opts);
  opts.max_pixels = FUZZ_MAX_PIXELS;
  opts.max_scans = FUZZ_MAX_SCANS;
  opts.strict = selector & 4 ? 0 : 1;
  edct_decoder *dec = edct_open(data, size, &opts, err);
  if (dec == NULL) return -1;
  if (!builtin) edct__disable_builtin(dec);
  edct_spec spec;
  edct_window w;
  const edct_window *wp = fuzz_spec(selector, spec_size, &spec, &w);
  memset(y, 0, PREP_Y * sizeof *y);
  memset(cbcr, 0, PREP_CBCR * sizeof *cbcr);
  edct_output out = {selector & 0x80 ? EDCT_INT8 : EDCT_FLOAT32, {y, cbcr}, {0.5f, 0.25f}, {3, -2}};
  int status = edct_prepare(dec, &spec, wp, 1, &out, ws, err);
  check_status(status);
  edct_close(dec);
  return status;
}

/* prepare(): the whole DCT-domain geometry path, with a spec and window from input bytes;
 * built-in and libjpeg entropy decoders must give the same tensors. */
static void run_prepare(const uint8_t *data, size_t size, uint8_t selector) {
  static float y[2][PREP_Y], cbcr[2][PREP_CBCR];
  edct_error err, ref_err;
  int status = prepare_once(data, size, selector, size, 1, y[0], cbcr[0], &err);
  if (status >= 0) {
    if (prepare_once(data, size, selector, size, 0, y[1], cbcr[1], &ref_err) != status)
      violation("prepare: built-in and libjpeg decoders disagree on the status");
    check_same_error(&err, &ref_err);
    if (status == EDCT_OK && (memcmp(y[0], y[1], sizeof y[0]) != 0 ||
                              memcmp(cbcr[0], cbcr[1], sizeof cbcr[0]) != 0))
      violation("prepare: built-in and libjpeg decoders disagree on the tensors");
  }
  size_t off, len;
  check_status(edct_find_metadata(data, size, EDCT_METADATA_NAME, &off, &len, &err));
}

/* Decodes a JPEG the core wrote: it must open and decode strictly, and have the expected size. */
static void check_output(const uint8_t *jpeg, size_t n, int width, int height, edct_info *info_out) {
  edct_error err;
  edct_decoder *dec = edct_open(jpeg, n, NULL, &err);
  if (dec == NULL) violation("the core wrote a JPEG it cannot open");
  const edct_info *info = edct_get_info(dec);
  if (info->width != width || info->height != height) violation("output size differs");
  planes p;
  if (!planes_alloc(&p, info)) violation("out of memory in the harness");
  if (edct_decode_planes(dec, p.ptr, 0, NULL, &err) != EDCT_OK)
    violation("the core wrote a JPEG it cannot decode");
  if (info_out != NULL) *info_out = *info;
  planes_free(&p);
  edct_close(dec);
}

/* transcode (tables, quality or the file's own, from the selector and the input's bytes; a
 * third of them keeping only what prepare reads), prepare_region, and encode of pixels taken
 * from the input. */
static void run_transcode(const uint8_t *data, size_t size, uint8_t selector) {
  edct_options opts;
  edct_default_options(&opts);
  opts.max_pixels = FUZZ_MAX_PIXELS;
  opts.max_scans = FUZZ_MAX_SCANS;
  opts.strict = selector & 4 ? 0 : 1;
  opts.keep_markers = selector & 8 ? 1 : 0;
  edct_encode_options eo;
  edct_default_encode_options(&eo);
  eo.optimize = selector & 0x10 ? 1 : 0;
  eo.progressive = selector & 0x20 ? 1 : 0;
  eo.restart_interval = selector & 0x40 ? 1 + (int)(size % 7) : 0;
  eo.keep_markers = opts.keep_markers;
  int mode = (selector >> 6) & 3; /* 0: own tables, 1: quality, 2-3: tables from the input */
  if (mode == 1) eo.quality = 1 + (int)(size % 100);
  if (mode >= 2) {
    eo.use_tables = 1;
    for (int k = 0; k < 128; k++) eo.tables[k / 64][k % 64] = (uint16_t)(1 + data[k % size] % 255);
  }
  edct_error err;
  edct_decoder *dec = edct_open(data, size, &opts, &err);
  if (dec == NULL) return;
  const edct_info info = *edct_get_info(dec);
  edct_spec spec;
  edct_window window;
  const edct_window *wp = fuzz_spec(selector, size, &spec, &window);
  edct_region region;
  int status = edct_prepare_region(&info, &spec, wp, 1, &region, &err);
  check_status(status);
  if (status == EDCT_OK)
    for (int c = 0; c < info.num_components; c++) {
      const edct_component *k = &info.comp[c];
      int f = region.frequencies[c];
      if (f > 8 || (f == 0) != (c >= (info.num_components == 1 ? 1 : 3)))
        violation("prepare_region: frequencies out of range");
      if (f && (region.rows[c][0] < 0 || region.rows[c][0] >= region.rows[c][1] ||
                region.rows[c][1] > k->height_in_blocks || region.cols[c][0] < 0 ||
                region.cols[c][0] >= region.cols[c][1] || region.cols[c][1] > k->width_in_blocks))
        violation("prepare_region: blocks outside the image");
    }
  /* a third of the inputs keep only what prepare reads: its tensors must not change */
  int keep = status == EDCT_OK && size % 3 == 0;
  if (keep) {
    eo.use_keep = 1;
    eo.keep = region;
  }
  uint8_t *out = (uint8_t *)1;
  size_t n = 1;
  status = edct_transcode(dec, &eo, &out, &n, &err);
  check_status(status);
  int path = edct__entropy_path(dec);
  edct_close(dec);
  if (status != EDCT_OK) {
    if (out != NULL || n != 0) violation("failed transcode left output");
    return;
  }
  if (path == EDCT__PATH_BUILTIN) { /* the fused path: the very bytes libjpeg's path writes */
    edct_decoder *lib = edct_open(data, size, &opts, &err);
    if (lib == NULL) violation("reopen failed");
    edct__disable_builtin(lib);
    uint8_t *ref = NULL;
    size_t m = 0;
    if (edct_transcode(lib, &eo, &ref, &m, &err) != EDCT_OK) violation("only the fused transcode succeeded");
    if (m != n || memcmp(ref, out, n) != 0) violation("fused transcode differs from libjpeg's");
    edct_free(ref);
    edct_close(lib);
  }
  edct_info written;
  check_output(out, n, info.width, info.height, &written);
  if (written.num_components != info.num_components) violation("transcode changed the components");
  if (keep && opts.strict) { /* prepare reads the same from the file as re-coded without keep */
    static float y[2][PREP_Y], cbcr[2][PREP_CBCR];
    edct_encode_options all = eo;
    all.use_keep = 0;
    uint8_t *plain = NULL;
    size_t pn = 0;
    edct_decoder *x = edct_open(data, size, &opts, &err);
    if (x == NULL) violation("reopen failed");
    /* (without keep every scan is read: corrupt data in scans keep skips may fail it) */
    if (edct_transcode(x, &all, &plain, &pn, &err) == EDCT_OK) {
      int a = prepare_once(out, n, selector, size, 1, y[0], cbcr[0], &err);
      int b = prepare_once(plain, pn, selector, size, 1, y[1], cbcr[1], &err);
      if (a != b) violation("prepare: keep changed the status");
      if (a == EDCT_OK && (memcmp(y[0], y[1], sizeof y[0]) != 0 ||
                           memcmp(cbcr[0], cbcr[1], sizeof cbcr[0]) != 0))
        violation("transcode with keep changed what prepare reads");
    }
    edct_close(x);
    edct_free(plain);
  }
  if (mode == 0 && opts.strict && !keep) { /* own tables: the very same coefficients */
    planes a, b;
    edct_decoder *x = edct_open(data, size, &opts, &err), *y = edct_open(out, n, NULL, &err);
    if (x == NULL || y == NULL || !planes_alloc(&a, &info) || !planes_alloc(&b, &info))
      violation("reopen failed");
    int sa = edct_decode_planes(x, a.ptr, 0, NULL, &err);
    if (sa == EDCT_OK) {
      if (edct_decode_planes(y, b.ptr, 0, NULL, &err) != EDCT_OK) violation("reopen decode failed");
      for (int c = 0; c < info.num_components; c++) {
        size_t m = (size_t)info.comp[c].width_in_blocks * info.comp[c].height_in_blocks * 64;
        if (memcmp(a.ptr[c], b.ptr[c], m * sizeof(int16_t)) != 0)
          violation("transcode with the file's own tables changed coefficients");
      }
    }
    planes_free(&a);
    planes_free(&b);
    edct_close(x);
    edct_close(y);
  }
  edct_free(out);

  /* encode: a small image made of the input's bytes */
  int comps = selector & 1 ? 3 : 1, w = 1 + (int)(size % 61), h = 1 + (int)((size / 61) % 37);
  size_t stride = (size_t)w * comps + (selector & 2 ? 5 : 0), need = stride * (size_t)h;
  uint8_t *pix = malloc(need);
  if (pix == NULL) violation("out of memory in the harness");
  for (size_t i = 0; i < need; i++) pix[i] = data[i % size];
  eo.subsampling = selector % 4;
  status = edct_encode(pix, w, h, comps, stride, &eo, &out, &n, &err);
  check_status(status);
  if (status != EDCT_OK) violation("encode of valid pixels failed");
  check_output(out, n, w, h, NULL);
  edct_free(out);
  free(pix);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int orientation = edct_exif_orientation(data, size);
  if (orientation < 0 || orientation > 8) violation("EXIF orientation out of range");
  if (size == 0) {
    run_pass(data, size, 1, 1, 0);
    return 0;
  }
  uint8_t selector = data[size / 2];
  int dequantize = selector & 1;
  run_pass(data, size, 1, dequantize, 0);
  run_pass(data, size, 0, !dequantize, (selector & 2) != 0);
  run_prepare(data, size, selector);
  run_transcode(data, size, selector);
  return 0;
}
