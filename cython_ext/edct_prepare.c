/*
 * edct_prepare.c - any JPEG onto a model's DCT grid, in the DCT domain.
 *
 * One streaming pass over the entropy decoder (edct__decode_rerunnable):
 *   1. each block is dequantized and EXIF-oriented exactly (block position
 *      transposed/reversed, coefficients transposed and odd frequencies
 *      negated), then reduced to k x k samples by the k-point IDCT of its
 *      k x k lowest frequencies (k = 1 is the block mean: DC only), where k
 *      is the smallest size that keeps at least the output's resolution;
 *      blocks outside the window are skipped;
 *   2. the reduced image (1/64 of the pixels for large photos) is resampled
 *      onto the window's output pixels (area average when shrinking, linear
 *      when enlarging), chroma straight to 4:2:0 geometry;
 *   3. the forward 8x8 DCT of the result, channel selection, normalization
 *      and optional int8 quantization write the model's tensors.
 * Full-resolution pixels are never formed (k < 8 whenever the image is
 * larger than twice the output).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "edct.h"
#include "edct_internal.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif
#ifndef M_SQRT1_2
#define M_SQRT1_2 0.70710678118654752440
#endif

#define DC_ONLY_SLACK 1.25

/* ---- scratch memory ------------------------------------------------------------ */

#define WS_MAX_EXTRA 32

/* A bump arena reused across calls: what did not fit this call is malloc'ed
 * separately and the arena grows to the call's total for the next one, so a
 * steady stream of images allocates (and page-faults) nothing. */
struct edct_workspace {
  unsigned char *base;
  size_t cap, used, total;
  void *extra[WS_MAX_EXTRA];
  int nextra;
};

edct_workspace *edct_workspace_new(void) { return calloc(1, sizeof(edct_workspace)); }

static void ws_end_call(edct_workspace *ws) {
  for (int i = 0; i < ws->nextra; i++) free(ws->extra[i]);
  ws->nextra = 0;
  if (ws->total > ws->cap) {
    free(ws->base);
    ws->base = malloc(ws->total);
    ws->cap = ws->base ? ws->total : 0;
  }
  ws->used = ws->total = 0;
}

void edct_workspace_free(edct_workspace *ws) {
  if (ws == NULL) return;
  ws_end_call(ws);
  free(ws->base);
  free(ws);
}

/* n zeroed bytes, 64-byte aligned; NULL when out of memory. */
static void *ws_alloc(edct_workspace *ws, size_t n) {
  n = (n + 63) & ~(size_t)63;
  ws->total += n;
  void *p;
  if (ws->base != NULL && ws->cap - ws->used >= n) {
    p = ws->base + ws->used;
    ws->used += n;
  } else {
    if (ws->nextra == WS_MAX_EXTRA) return NULL;
    p = malloc(n);
    if (p == NULL) return NULL;
    ws->extra[ws->nextra++] = p;
  }
  return memset(p, 0, n);
}

/* Per oriented axis of one component: how image units map to its samples. */
typedef struct axis {
  int blocks;      /* oriented block count along this axis */
  int samples;     /* valid samples (the rest of the last block is padding) */
  double unit;     /* image units (luma pixels) per sample */
  double pad;      /* sample coordinate of image coordinate 0 (> 0 on flipped axes) */
  int valid_lo;    /* first sample slot holding data (the padding moves first when flipped) */
  int first, end;  /* needed block range [first, end) */
} axis;

typedef struct plane {
  int k;           /* reduced block size 1..8 */
  axis ax, ay;     /* oriented x and y */
  int stride;      /* reduced samples per row: (ax.end - ax.first) * k */
  float *img;      /* reduced image of the needed blocks, rows * stride */
  float idct_t[64]; /* 8 x 8, [u][x]: weight of frequency u in reduced sample x (x < k) */
} plane;

typedef struct prep {
  const edct_info *info;
  edct_workspace *ws;
  int transpose, flip_h, flip_v;
  int ncomp;       /* components decoded and used (1 or 3) */
  plane pl[3];
} prep;

/* ---- orientation ----------------------------------------------------------- */

void edct_oriented_size(const edct_info *info, int *width, int *height) {
  int t = info->orientation >= 5 && info->orientation <= 8;
  *width = t ? info->height : info->width;
  *height = t ? info->width : info->height;
}

static void set_orientation(prep *p, int orientation) {
  static const char T[9] = {0, 0, 0, 0, 0, 1, 1, 1, 1};
  static const char H[9] = {0, 0, 1, 1, 0, 0, 1, 1, 0};
  static const char V[9] = {0, 0, 0, 1, 1, 0, 0, 1, 1};
  int o = orientation >= 1 && orientation <= 8 ? orientation : 1;
  p->transpose = T[o];
  p->flip_h = H[o];
  p->flip_v = V[o];
}

/* Oriented, dequantized block in float: transpose, then negate the odd
 * horizontal (flip_h) / vertical (flip_v) frequencies.  Exact. */
static void orient_block(const prep *p, const int16_t *coef, const uint16_t *quant,
                         float *out) {
  for (int v = 0; v < 8; v++) {
    for (int u = 0; u < 8; u++) {
      int src = p->transpose ? 8 * u + v : 8 * v + u;
      float x = (float)((int32_t)coef[src] * (int32_t)quant[src]);
      if ((p->flip_h && (u & 1)) != (p->flip_v && (v & 1))) x = -x;
      out[8 * v + u] = x;
    }
  }
}

/* ---- geometry --------------------------------------------------------------- */

edct_window edct_eval_window(const edct_spec *spec, int width, int height) {
  edct_window w = {0.0, 0.0, (double)width, (double)height, 0};
  if (spec->resize_mode != EDCT_RESIZE_SHORTER_SIDE) return w;
  int shorter = width < height ? width : height;
  double scale = (double)spec->resize_size / (double)shorter;
  /* resized size rounded like an image resize would, then a centre crop */
  double rw = floor(width * scale + 0.5), rh = floor(height * scale + 0.5);
  double cw = 8.0 * spec->grid_w, ch = 8.0 * spec->grid_h;
  double left = floor((rw - cw) / 2.0 + 0.5), top = floor((rh - ch) / 2.0 + 0.5);
  w.x = left / scale;
  w.y = top / scale;
  w.width = cw / scale;
  w.height = ch / scale;
  return w;
}

int edct_check_spec(const edct_spec *s, edct_error *err) {
  if (s->grid_h < 2 || s->grid_w < 2 || s->grid_h > 512 || s->grid_w > 512 ||
      (s->grid_h | s->grid_w) & 1)
    return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "grid: %dx%d blocks must be even, 2..512",
                      s->grid_h, s->grid_w);
  if (s->resize_mode != EDCT_RESIZE_SHORTER_SIDE && s->resize_mode != EDCT_RESIZE_STRETCH)
    return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "resize: unknown mode %d", s->resize_mode);
  if (s->resize_mode == EDCT_RESIZE_SHORTER_SIDE && (s->resize_size < 1 || s->resize_size > 65535))
    return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "resize: size %d out of range", s->resize_size);
  if (s->layout != EDCT_LAYOUT_SPLIT && s->layout != EDCT_LAYOUT_MERGED)
    return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "layout: unknown layout %d", s->layout);
  for (int c = 0; c < 3; c++) {
    if (s->num_channels[c] < 0 || s->num_channels[c] > 64)
      return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "channels: component %d selects %d", c,
                        s->num_channels[c]);
    for (int i = 0; i < s->num_channels[c]; i++) {
      if (s->channels[c][i] > 63)
        return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "channels: index %d out of 0..63",
                          s->channels[c][i]);
      if (s->normalize && !(s->std[c][i] > 0.0f))
        return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "normalize: std must be > 0");
    }
  }
  if (s->num_channels[0] == 0)
    return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "channels: no luma channel selected");
  if (s->num_channels[1] + s->num_channels[2] == 0 && s->layout == EDCT_LAYOUT_SPLIT)
    return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "channels: split layout needs chroma channels");
  return EDCT_OK;
}

/* Sets up one oriented axis of a component and the smallest reduced size k
 * (returned) that keeps out_pixels across the window extent [w0, w0 + wlen). */
static int setup_axis(axis *a, int blocks, int samples, double unit, int extent, int flipped,
                      double w0, double wlen, int out_pixels) {
  a->blocks = blocks;
  a->samples = samples;
  a->unit = unit;
  /* A flip mirrors about the image edge (extent image units), which need not
   * fall on a sample boundary when the component is subsampled. */
  a->pad = flipped ? blocks * 8 - extent / unit : 0.0;
  a->valid_lo = flipped ? blocks * 8 - samples : 0;
  /* needed samples, one sample of margin for the resampling filters */
  double s0 = w0 / unit + a->pad - 1.0, s1 = (w0 + wlen) / unit + a->pad + 1.0;
  int first = (int)floor(s0 / 8.0), end = (int)ceil(s1 / 8.0);
  /* at least one block, inside the image, even for a window beyond its edges */
  a->first = first < 0 ? 0 : first > blocks - 1 ? blocks - 1 : first;
  a->end = end > blocks ? blocks : end < a->first + 1 ? a->first + 1 : end;
  double need = 8.0 * unit * out_pixels / wlen; /* k so that k/(8 unit) >= out/wlen */
  /* DC alone (k = 1) lets libjpeg skip every AC store, so accept enlarging the
   * block-mean image by up to DC_ONLY_SLACK rather than reading AC terms. */
  if (need <= DC_ONLY_SLACK) return 1;
  int k = (int)ceil(need - 1e-6);
  return k > 8 ? 8 : k;
}

/* The k-point IDCT of the k lowest of 8 frequencies, transposed:
 * mt[u][x] = c(u)/2 cos((2x+1) u pi / 2k) for u, x < k (0 elsewhere); k = 8 is
 * the JPEG IDCT and k = 1 the block mean. */
static void reduced_idct_matrix(int k, float *mt) {
  for (int u = 0; u < 8; u++)
    for (int x = 0; x < 8; x++)
      mt[8 * u + x] = u >= k || x >= k ? 0.0f
                                       : (float)((u == 0 ? M_SQRT1_2 : 1.0) / 2.0 *
                                                 cos((2 * x + 1) * u * M_PI / (2.0 * k)));
}

/* Sets component ci's axes and its k (the reduced IDCT size: the k x k lowest
 * frequencies are all the window needs at out_w x out_h). */
static void plan_plane(prep *p, int ci, const edct_window *w, int out_w, int out_h) {
  const edct_info *info = p->info;
  const edct_component *c = &info->comp[ci];
  plane *pl = &p->pl[ci];
  int sx = (int)ceil((double)info->width * c->h_samp / info->max_h_samp);
  int sy = (int)ceil((double)info->height * c->v_samp / info->max_v_samp);
  double ux = (double)info->max_h_samp / c->h_samp, uy = (double)info->max_v_samp / c->v_samp;
  int kx, ky;
  if (p->transpose) {
    kx = setup_axis(&pl->ax, c->height_in_blocks, sy, uy, info->height, p->flip_h, w->x,
                    w->width, out_w);
    ky = setup_axis(&pl->ay, c->width_in_blocks, sx, ux, info->width, p->flip_v, w->y,
                    w->height, out_h);
  } else {
    kx = setup_axis(&pl->ax, c->width_in_blocks, sx, ux, info->width, p->flip_h, w->x,
                    w->width, out_w);
    ky = setup_axis(&pl->ay, c->height_in_blocks, sy, uy, info->height, p->flip_v, w->y,
                    w->height, out_h);
  }
  pl->k = kx > ky ? kx : ky;
}

/* The reduced IDCT matrix and image buffer of a planned component. */
static int alloc_plane(prep *p, int ci) {
  plane *pl = &p->pl[ci];
  reduced_idct_matrix(pl->k, pl->idct_t);
  pl->stride = (pl->ax.end - pl->ax.first) * pl->k;
  size_t rows = (size_t)(pl->ay.end - pl->ay.first) * pl->k;
  pl->img = ws_alloc(p->ws, rows * (size_t)pl->stride * sizeof(float));
  return pl->img != NULL;
}

/* Everything prepare decides before decoding: which components are used, the
 * orientation, the window (*w) and each component's axes and k.  Sets *rgb for
 * RGB files (converted after decoding). */
static int plan(prep *p, const edct_info *info, const edct_spec *spec, const edct_window *window,
                int apply_orientation, edct_window *w, int *rgb, edct_error *err) {
  memset(p, 0, sizeof *p);
  p->info = info;
  *rgb = 0;
  if (info->color_space == EDCT_CS_GRAY) {
    p->ncomp = 1;
  } else if (info->color_space == EDCT_CS_YCBCR && info->num_components == 3) {
    p->ncomp = 3;
  } else if (info->color_space == EDCT_CS_RGB && info->num_components == 3 &&
             info->comp[1].h_samp == info->comp[0].h_samp &&
             info->comp[2].h_samp == info->comp[0].h_samp &&
             info->comp[1].v_samp == info->comp[0].v_samp &&
             info->comp[2].v_samp == info->comp[0].v_samp) {
    p->ncomp = 3;
    *rgb = 1;
  } else {
    static const char *names[] = {"unknown", "gray", "YCbCr", "RGB", "CMYK", "YCCK"};
    return edct__failf(err, EDCT_ERR_UNSUPPORTED, -1,
                      "%s colour (%d components) cannot be mapped to a YCbCr model input",
                      names[info->color_space], info->num_components);
  }
  set_orientation(p, apply_orientation ? info->orientation : 1);
  int width, height;
  if (apply_orientation)
    edct_oriented_size(info, &width, &height);
  else
    width = info->width, height = info->height;
  *w = window ? *window : edct_eval_window(spec, width, height);
  if (!(w->width > 0.0 && w->height > 0.0))
    return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "window: empty (%gx%g)", w->width, w->height);
  for (int ci = 0; ci < p->ncomp; ci++) {
    int ow = ci == 0 ? spec->grid_w * 8 : spec->grid_w * 4;
    int oh = ci == 0 ? spec->grid_h * 8 : spec->grid_h * 4;
    plan_plane(p, ci, w, ow, oh);
  }
  if (*rgb) { /* the colour transform needs the same k everywhere */
    int k = p->pl[0].k;
    for (int ci = 1; ci < 3; ci++) k = p->pl[ci].k > k ? p->pl[ci].k : k;
    for (int ci = 0; ci < 3; ci++) p->pl[ci].k = k;
  }
  return EDCT_OK;
}

/* The file's block range [*lo, *hi) behind an oriented axis' needed range. */
static void file_range(const axis *a, int flipped, int *lo, int *hi) {
  *lo = flipped ? a->blocks - a->end : a->first;
  *hi = flipped ? a->blocks - a->first : a->end;
}

int edct_prepare_region(const edct_info *info, const edct_spec *spec, const edct_window *window,
                        int apply_orientation, edct_region *region, edct_error *err) {
  edct__clear_error(err);
  if (info == NULL || spec == NULL || region == NULL)
    return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "no info, spec or output");
  memset(region, 0, sizeof *region);
  int status = edct_check_spec(spec, err);
  if (status != EDCT_OK) return status;
  prep p;
  edct_window w;
  int rgb;
  status = plan(&p, info, spec, window, apply_orientation, &w, &rgb, err);
  if (status != EDCT_OK) return status;
  for (int ci = 0; ci < p.ncomp; ci++) { /* reduce_block's mapping, undone */
    const plane *pl = &p.pl[ci];
    int *file_x = p.transpose ? region->rows[ci] : region->cols[ci];
    int *file_y = p.transpose ? region->cols[ci] : region->rows[ci];
    file_range(&pl->ax, p.flip_h, &file_x[0], &file_x[1]);
    file_range(&pl->ay, p.flip_v, &file_y[0], &file_y[1]);
    region->frequencies[ci] = (uint8_t)pl->k;
  }
  return EDCT_OK;
}

/* ---- step 1: the block consumer -------------------------------------------- */

/* Sets block (by, bx)'s reduced samples, never adds to them: a decode may
 * deliver a block again (edct__decode_rerunnable). */
static int reduce_block(void *ctx, int ci, int by, int bx, const int16_t *coef,
                        const uint16_t *quant) {
  prep *p = ctx;
  if (ci >= p->ncomp) return 0;
  plane *pl = &p->pl[ci];
  int ox = p->transpose ? by : bx, oy = p->transpose ? bx : by;
  if (p->flip_h) ox = pl->ax.blocks - 1 - ox;
  if (p->flip_v) oy = pl->ay.blocks - 1 - oy;
  if (ox < pl->ax.first || ox >= pl->ax.end || oy < pl->ay.first || oy >= pl->ay.end) return 0;
  int k = pl->k;
  float *dst = pl->img + (size_t)(oy - pl->ay.first) * k * pl->stride + (size_t)(ox - pl->ax.first) * k;
  if (k == 1) { /* the block mean: DC / 8 */
    dst[0] = (float)((int32_t)coef[0] * (int32_t)quant[0]) * 0.125f;
    return 0;
  }
  float f[64], tmp[64];
  if (p->transpose || p->flip_h || p->flip_v) {
    orient_block(p, coef, quant, f);
  } else {
    for (int v = 0; v < k; v++)
      for (int u = 0; u < k; u++)
        f[8 * v + u] = (float)((int32_t)coef[8 * v + u] * (int32_t)quant[8 * v + u]);
  }
  /* Separable k-point IDCT skipping zero coefficients (most AC terms), on
   * 8-wide rows (mt is zero beyond k) so that compilers vectorize:
   * tmp[v][x] = sum_u f[v][u] mt[u][x]; out[y][x] = sum_v mt[v][y] tmp[v][x]. */
  const float *mt = pl->idct_t;
  int live[8];
  for (int v = 0; v < k; v++) {
    float *row = tmp + 8 * v;
    int any = 0;
    for (int u = 0; u < k; u++) any |= f[8 * v + u] != 0.0f;
    live[v] = any;
    if (!any) continue;
    for (int x = 0; x < 8; x++) row[x] = 0.0f;
    for (int u = 0; u < k; u++) { /* branch-free: a row with one term has a few */
      float c = f[8 * v + u];
      for (int x = 0; x < 8; x++) row[x] += c * mt[8 * u + x];
    }
  }
  for (int y = 0; y < k; y++) {
    float acc[8] = {0};
    for (int v = 0; v < k; v++) {
      if (!live[v]) continue;
      float w = mt[8 * v + y];
      for (int x = 0; x < 8; x++) acc[x] += w * tmp[8 * v + x];
    }
    float *out = dst + (size_t)y * pl->stride;
    for (int x = 0; x < k; x++) out[x] = acc[x];
  }
  return 0;
}

/* ---- step 2: resampling the reduced image ------------------------------------ */

/* Filter taps of one axis: output pixel i reads n[i] reduced samples from
 * first[i] (relative to the plane's allocation) with weights w[i * taps ...]. */
typedef struct taps {
  int taps;
  int *first, *n;
  float *w;
} taps;

static int make_taps(edct_workspace *ws, taps *t, const axis *a, int k, double w0, double wlen,
                     int out, int mirror) {
  double scale = k / 8.0 / a->unit;            /* reduced samples per image unit */
  double step = wlen * scale / out;            /* reduced samples per output pixel */
  double lo = a->valid_lo * k / 8.0, hi = (a->valid_lo + a->samples) * k / 8.0; /* data */
  double origin = (double)a->first * k;        /* allocation origin */
  double alloc_hi = (double)a->end * k;
  if (hi > alloc_hi) hi = alloc_hi;
  if (lo < origin) lo = origin;
  t->taps = (int)ceil(step) + 2;
  t->first = ws_alloc(ws, sizeof(int) * out);
  t->n = ws_alloc(ws, sizeof(int) * out);
  t->w = ws_alloc(ws, sizeof(float) * (size_t)out * t->taps);
  if (!t->first || !t->n || !t->w) return 0;
  int last = (int)ceil(hi) - 1, firstv = (int)floor(lo);
  for (int i = 0; i < out; i++) {
    int o = mirror ? out - 1 - i : i;
    double a0 = (w0 * scale + a->pad * k / 8.0) + o * step, a1 = a0 + step;
    float *w = t->w + (size_t)i * t->taps;
    int j0, n;
    if (step >= 1.0) { /* area: overlap of [a0, a1) with each sample [j, j+1) */
      if (a0 < lo) { a1 += lo - a0; a0 = lo; }
      if (a1 > hi) { a0 -= a1 - hi; a1 = hi; }
      if (a0 < lo) a0 = lo;
      j0 = (int)floor(a0);
      n = (int)ceil(a1) - j0;
      if (n > t->taps) n = t->taps;
      if (n < 1) n = 1;
      double total = 0.0;
      for (int j = 0; j < n; j++) {
        double s0 = j0 + j > a0 ? j0 + j : a0, s1 = j0 + j + 1 < a1 ? j0 + j + 1 : a1;
        double ov = s1 > s0 ? s1 - s0 : 0.0;
        w[j] = (float)ov;
        total += ov;
      }
      for (int j = 0; j < n; j++) w[j] = total > 0 ? (float)(w[j] / total) : (j == 0 ? 1.f : 0.f);
    } else { /* linear interpolation at the output pixel's centre */
      double c = (a0 + a1) / 2.0 - 0.5;
      if (c < firstv) c = firstv;
      if (c > last) c = last;
      j0 = (int)floor(c);
      double f = c - j0;
      n = (j0 + 1 <= last && f > 0.0) ? 2 : 1;
      w[0] = (float)(1.0 - (n == 2 ? f : 0.0));
      if (n == 2) w[1] = (float)f;
    }
    if (j0 < firstv) j0 = firstv;
    if (j0 + n - 1 > last) j0 = last - n + 1 < firstv ? firstv : last - n + 1;
    t->first[i] = j0 - (int)origin;
    t->n[i] = n;
  }
  return 1;
}

/* out[oh][ow] = horizontal(vertical(img)): the vertical pass runs first, over
 * whole (vectorizable) rows, so the gathering horizontal pass sees only oh
 * rows.  Returns 0 on allocation failure. */
static int resample(edct_workspace *ws, const plane *pl, const edct_window *w, int ow, int oh,
                    float *out) {
  taps tx = {0}, ty = {0};
  int ok = make_taps(ws, &tx, &pl->ax, pl->k, w->x, w->width, ow, w->hflip) &&
           make_taps(ws, &ty, &pl->ay, pl->k, w->y, w->height, oh, 0);
  int c0 = 0, c1 = 0; /* columns the horizontal taps read */
  if (ok) {
    c0 = tx.first[0];
    for (int i = 0; i < ow; i++) {
      c0 = tx.first[i] < c0 ? tx.first[i] : c0;
      c1 = tx.first[i] + tx.n[i] > c1 ? tx.first[i] + tx.n[i] : c1;
    }
  }
  int cols = c1 - c0;
  float *tmp = ok ? ws_alloc(ws, sizeof(float) * (size_t)oh * (cols > 0 ? cols : 1)) : NULL;
  if (tmp != NULL) {
    for (int y = 0; y < oh; y++) {
      const float *wt = ty.w + (size_t)y * ty.taps;
      float *row = tmp + (size_t)y * cols;
      for (int i = 0; i < cols; i++) row[i] = 0.0f;
      for (int j = 0; j < ty.n[y]; j++) {
        const float *src = pl->img + (size_t)(ty.first[y] + j) * pl->stride + c0;
        float wj = wt[j];
        for (int i = 0; i < cols; i++) row[i] += wj * src[i];
      }
    }
    for (int y = 0; y < oh; y++) {
      const float *row = tmp + (size_t)y * cols - c0;
      float *dst = out + (size_t)y * ow;
      for (int i = 0; i < ow; i++) {
        const float *wt = tx.w + (size_t)i * tx.taps;
        const float *s = row + tx.first[i];
        float acc = 0.0f;
        for (int j = 0; j < tx.n[i]; j++) acc += wt[j] * s[j];
        dst[i] = acc;
      }
    }
  }
  return tmp != NULL;
}

/* ---- step 3: forward DCT, selection, normalization, output -------------------- */

static void dct_matrix(float *d) { /* d[u][x] = c(u)/2 cos((2x+1) u pi / 16) */
  for (int u = 0; u < 8; u++)
    for (int x = 0; x < 8; x++)
      d[8 * u + x] = (float)((u == 0 ? M_SQRT1_2 : 1.0) / 2.0 * cos((2 * x + 1) * u * M_PI / 16.0));
}

/* Where one component's selected channels go: tensor t, block grid `width`
 * wide, `depth` channels per position starting at channel ch0, each block
 * written rep x rep times (merged layout's chroma). */
typedef struct writer {
  const edct_output *out;
  int t, width, depth, ch0, rep;
} writer;

static void write_block(const writer *wr, int by, int bx, const float *vals, int n) {
  const edct_output *o = wr->out;
  for (int dy = 0; dy < wr->rep; dy++)
    for (int dx = 0; dx < wr->rep; dx++) {
      size_t at = ((size_t)(by * wr->rep + dy) * wr->width + (size_t)(bx * wr->rep + dx)) *
                      wr->depth + wr->ch0;
      if (o->dtype == EDCT_INT8) {
        int8_t *dst = (int8_t *)o->tensor[wr->t] + at;
        float inv = 1.0f / o->scale[wr->t], zp = (float)o->zero_point[wr->t];
        for (int i = 0; i < n; i++) {
          float q = nearbyintf(vals[i] * inv) + zp;
          dst[i] = (int8_t)(q < -128.f ? -128 : q > 127.f ? 127 : q);
        }
      } else {
        memcpy((float *)o->tensor[wr->t] + at, vals, sizeof(float) * (size_t)n);
      }
    }
}

/* Forward-DCTs pixels (gh*8 x gw*8; NULL means zeros) block by block and
 * writes component ci's selected, normalized channels. */
static void emit(const edct_spec *s, int ci, const float *px, int gh, int gw, const writer *wr) {
  float d[64], dt[64], tmp[64], coef[64], vals[64];
  dct_matrix(d);
  for (int u = 0; u < 8; u++)
    for (int x = 0; x < 8; x++) dt[8 * x + u] = d[8 * u + x];
  int n = s->num_channels[ci];
  memset(coef, 0, sizeof coef);
  for (int by = 0; by < gh; by++)
    for (int bx = 0; bx < gw; bx++) {
      if (px != NULL) {
        const float *blk = px + (size_t)by * 8 * gw * 8 + (size_t)bx * 8;
        size_t stride = (size_t)gw * 8;
        /* tmp = D blk (rows: v), then coef = tmp D^T; 8-wide inner loops */
        for (int v = 0; v < 8; v++) {
          float *t = tmp + 8 * v;
          for (int x = 0; x < 8; x++) t[x] = 0.0f;
          for (int y = 0; y < 8; y++) {
            float w = d[8 * v + y];
            const float *r = blk + y * stride;
            for (int x = 0; x < 8; x++) t[x] += w * r[x];
          }
        }
        for (int v = 0; v < 8; v++) {
          float *c = coef + 8 * v;
          for (int u = 0; u < 8; u++) c[u] = 0.0f;
          for (int x = 0; x < 8; x++) {
            float w = tmp[8 * v + x];
            for (int u = 0; u < 8; u++) c[u] += w * dt[8 * x + u];
          }
        }
      }
      for (int i = 0; i < n; i++) {
        float x = coef[s->channels[ci][i]];
        vals[i] = s->normalize ? (x - s->mean[ci][i]) / s->std[ci][i] : x;
      }
      write_block(wr, by, bx, vals, n);
    }
}

/* RGB -> level-shifted YCbCr on the reduced images (the weights of Y sum to
 * 1 and those of Cb, Cr to 0, so level shifts carry over). */
static void rgb_to_ycbcr(prep *p) {
  size_t n = (size_t)(p->pl[0].ay.end - p->pl[0].ay.first) * p->pl[0].k * p->pl[0].stride;
  float *r = p->pl[0].img, *g = p->pl[1].img, *b = p->pl[2].img;
  for (size_t i = 0; i < n; i++) {
    float R = r[i], G = g[i], B = b[i];
    r[i] = 0.299f * R + 0.587f * G + 0.114f * B;
    g[i] = -0.168735892f * R - 0.331264108f * G + 0.5f * B;
    b[i] = 0.5f * R - 0.418687589f * G - 0.081312411f * B;
  }
}

int edct_prepare(edct_decoder *dec, const edct_spec *spec, const edct_window *window,
                 int apply_orientation, const edct_output *out, edct_workspace *workspace,
                 edct_error *err) {
  edct__clear_error(err);
  if (dec == NULL || spec == NULL || out == NULL || out->tensor[0] == NULL ||
      (spec->layout == EDCT_LAYOUT_SPLIT && out->tensor[1] == NULL))
    return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "missing decoder, spec or output tensor");
  int status = edct_check_spec(spec, err);
  if (status != EDCT_OK) return status;
  if (out->dtype == EDCT_INT8 && !(out->scale[0] > 0.0f &&
                                   (spec->layout == EDCT_LAYOUT_MERGED || out->scale[1] > 0.0f)))
    return edct__failf(err, EDCT_ERR_ARGUMENT, -1, "int8 output needs a positive scale");

  const edct_info *info = edct_get_info(dec);
  prep p;
  edct_window w;
  int rgb;
  status = plan(&p, info, spec, window, apply_orientation, &w, &rgb, err);
  if (status != EDCT_OK) return status;

  int gw = spec->grid_w, gh = spec->grid_h;
  float *pixels = NULL;
  edct_workspace own = {0};
  p.ws = workspace != NULL ? workspace : &own;
  status = EDCT_ERR_NOMEM;
  for (int ci = 0; ci < p.ncomp; ci++)
    if (!alloc_plane(&p, ci)) goto done;
  edct_consumer consumer = {&p, reduce_block, NULL, {0}};
  for (int ci = 0; ci < info->num_components && ci < EDCT_MAX_COMPONENTS; ci++)
    consumer.frequencies[ci] = (uint8_t)(ci < p.ncomp ? p.pl[ci].k : 1);
  status = edct__decode_rerunnable(dec, &consumer, err);
  if (status != EDCT_OK) goto done;
  if (rgb) rgb_to_ycbcr(&p);

  status = EDCT_ERR_NOMEM;
  pixels = ws_alloc(p.ws, sizeof(float) * (size_t)gw * 8 * gh * 8);
  if (pixels == NULL) goto done;
  int ny = spec->num_channels[0], ncb = spec->num_channels[1], ncr = spec->num_channels[2];
  int merged = spec->layout == EDCT_LAYOUT_MERGED;
  writer writers[3] = {
      {out, 0, gw, merged ? ny + ncb + ncr : ny, 0, 1},
      merged ? (writer){out, 0, gw, ny + ncb + ncr, ny, 2} : (writer){out, 1, gw / 2, ncb + ncr, 0, 1},
      merged ? (writer){out, 0, gw, ny + ncb + ncr, ny + ncb, 2}
             : (writer){out, 1, gw / 2, ncb + ncr, ncb, 1},
  };
  for (int ci = 0; ci < 3; ci++) {
    int ow = ci == 0 ? gw * 8 : gw * 4, oh = ci == 0 ? gh * 8 : gh * 4;
    int has = ci < p.ncomp;
    if (has && !resample(p.ws, &p.pl[ci], &w, ow, oh, pixels)) goto done;
    emit(spec, ci, has ? pixels : NULL, ci == 0 ? gh : gh / 2, ci == 0 ? gw : gw / 2,
         &writers[ci]);
  }
  status = EDCT_OK;
done:
  if (status == EDCT_ERR_NOMEM && err != NULL && err->status == 0)
    edct__failf(err, EDCT_ERR_NOMEM, -1, "out of memory");
  ws_end_call(p.ws);
  if (p.ws == &own) free(own.base);
  return status;
}
