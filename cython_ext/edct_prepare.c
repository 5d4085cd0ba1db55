/*
 * edct_prepare.c - any JPEG onto a model's DCT grid, in the DCT domain.
 *
 * One streaming pass over the entropy decoder (edct_decode):
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
  float idct[64];  /* k x 8 row-major: reduced sample x from frequency u */
} plane;

typedef struct prep {
  const edct_info *info;
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
    return edct__fail(err, EDCT_ERR_ARGUMENT, "grid: %dx%d blocks must be even, 2..512",
                      s->grid_h, s->grid_w);
  if (s->resize_mode != EDCT_RESIZE_SHORTER_SIDE && s->resize_mode != EDCT_RESIZE_STRETCH)
    return edct__fail(err, EDCT_ERR_ARGUMENT, "resize: unknown mode %d", s->resize_mode);
  if (s->resize_mode == EDCT_RESIZE_SHORTER_SIDE && (s->resize_size < 1 || s->resize_size > 65535))
    return edct__fail(err, EDCT_ERR_ARGUMENT, "resize: size %d out of range", s->resize_size);
  if (s->layout != EDCT_LAYOUT_SPLIT && s->layout != EDCT_LAYOUT_MERGED)
    return edct__fail(err, EDCT_ERR_ARGUMENT, "layout: unknown layout %d", s->layout);
  for (int c = 0; c < 3; c++) {
    if (s->num_channels[c] < 0 || s->num_channels[c] > 64)
      return edct__fail(err, EDCT_ERR_ARGUMENT, "channels: component %d selects %d", c,
                        s->num_channels[c]);
    for (int i = 0; i < s->num_channels[c]; i++) {
      if (s->channels[c][i] > 63)
        return edct__fail(err, EDCT_ERR_ARGUMENT, "channels: index %d out of 0..63",
                          s->channels[c][i]);
      if (s->normalize && !(s->std[c][i] > 0.0f))
        return edct__fail(err, EDCT_ERR_ARGUMENT, "normalize: std must be > 0");
    }
  }
  if (s->num_channels[0] == 0)
    return edct__fail(err, EDCT_ERR_ARGUMENT, "channels: no luma channel selected");
  if (s->num_channels[1] + s->num_channels[2] == 0 && s->layout == EDCT_LAYOUT_SPLIT)
    return edct__fail(err, EDCT_ERR_ARGUMENT, "channels: split layout needs chroma channels");
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
  a->first = first < 0 ? 0 : first > blocks ? blocks : first;
  a->end = end > blocks ? blocks : end < a->first + 1 ? a->first + 1 : end;
  if (a->end > blocks) { a->end = blocks; a->first = blocks - 1; }
  double need = 8.0 * unit * out_pixels / wlen; /* k so that k/(8 unit) >= out/wlen */
  /* DC alone (k = 1) lets libjpeg skip every AC store, so accept enlarging the
   * block-mean image by up to DC_ONLY_SLACK rather than reading AC terms. */
  if (need <= DC_ONLY_SLACK) return 1;
  int k = (int)ceil(need - 1e-6);
  return k > 8 ? 8 : k;
}

/* k x 8 matrix of the k-point IDCT of the k lowest of 8 frequencies:
 * m[x][u] = c(u)/2 cos((2x+1) u pi / 2k) for u < k, 0 beyond; k = 8 is the
 * JPEG IDCT and k = 1 the block mean. */
static void reduced_idct_matrix(int k, float *m) {
  for (int x = 0; x < k; x++)
    for (int u = 0; u < 8; u++)
      m[8 * x + u] = u >= k ? 0.0f
                            : (float)((u == 0 ? M_SQRT1_2 : 1.0) / 2.0 *
                                      cos((2 * x + 1) * u * M_PI / (2.0 * k)));
}

static int init_plane(prep *p, int ci, const edct_window *w, int out_w, int out_h) {
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
  reduced_idct_matrix(pl->k, pl->idct);
  pl->stride = (pl->ax.end - pl->ax.first) * pl->k;
  size_t rows = (size_t)(pl->ay.end - pl->ay.first) * pl->k;
  pl->img = calloc(rows * (size_t)pl->stride, sizeof(float));
  return pl->img != NULL;
}

/* ---- step 1: the block consumer -------------------------------------------- */

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
  orient_block(p, coef, quant, f);
  const float *m = pl->idct;
  /* tmp[v][x] = sum_u f[v][u] m[x][u]; out[y][x] = sum_v m[y][v] tmp[v][x] */
  for (int v = 0; v < k; v++)
    for (int x = 0; x < k; x++) {
      float s = 0.0f;
      for (int u = 0; u < k; u++) s += f[8 * v + u] * m[8 * x + u];
      tmp[8 * v + x] = s;
    }
  for (int y = 0; y < k; y++)
    for (int x = 0; x < k; x++) {
      float s = 0.0f;
      for (int v = 0; v < k; v++) s += m[8 * y + v] * tmp[8 * v + x];
      dst[(size_t)y * pl->stride + x] = s;
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

static void free_taps(taps *t) {
  free(t->first);
  free(t->n);
  free(t->w);
}

static int make_taps(taps *t, const axis *a, int k, double w0, double wlen, int out, int mirror) {
  double scale = k / 8.0 / a->unit;            /* reduced samples per image unit */
  double step = wlen * scale / out;            /* reduced samples per output pixel */
  double lo = a->valid_lo * k / 8.0, hi = (a->valid_lo + a->samples) * k / 8.0; /* data */
  double origin = (double)a->first * k;        /* allocation origin */
  double alloc_hi = (double)a->end * k;
  if (hi > alloc_hi) hi = alloc_hi;
  if (lo < origin) lo = origin;
  t->taps = (int)ceil(step) + 2;
  t->first = malloc(sizeof(int) * out);
  t->n = malloc(sizeof(int) * out);
  t->w = calloc((size_t)out * t->taps, sizeof(float));
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

/* out[oh][ow] = vertical(horizontal(img)); returns 0 on allocation failure. */
static int resample(const plane *pl, const edct_window *w, int ow, int oh, float *out) {
  taps tx = {0}, ty = {0};
  int ok = make_taps(&tx, &pl->ax, pl->k, w->x, w->width, ow, w->hflip) &&
           make_taps(&ty, &pl->ay, pl->k, w->y, w->height, oh, 0);
  int rows = (pl->ay.end - pl->ay.first) * pl->k;
  float *tmp = ok ? malloc(sizeof(float) * (size_t)rows * ow) : NULL;
  if (tmp != NULL) {
    for (int r = 0; r < rows; r++) {
      const float *src = pl->img + (size_t)r * pl->stride;
      for (int i = 0; i < ow; i++) {
        const float *wt = tx.w + (size_t)i * tx.taps;
        const float *s = src + tx.first[i];
        float acc = 0.0f;
        for (int j = 0; j < tx.n[i]; j++) acc += wt[j] * s[j];
        tmp[(size_t)r * ow + i] = acc;
      }
    }
    for (int y = 0; y < oh; y++) {
      const float *wt = ty.w + (size_t)y * ty.taps;
      float *dst = out + (size_t)y * ow;
      for (int i = 0; i < ow; i++) dst[i] = 0.0f;
      for (int j = 0; j < ty.n[y]; j++) {
        const float *s = tmp + (size_t)(ty.first[y] + j) * ow;
        for (int i = 0; i < ow; i++) dst[i] += wt[j] * s[i];
      }
    }
  }
  free(tmp);
  free_taps(&tx);
  free_taps(&ty);
  return tmp != NULL;
}

/* ---- step 3: forward DCT, selection, normalization, output -------------------- */

static void dct_matrix(float *d) { /* d[u][x] = c(u)/2 cos((2x+1) u pi / 16) */
  for (int u = 0; u < 8; u++)
    for (int x = 0; x < 8; x++)
      d[8 * u + x] = (float)((u == 0 ? M_SQRT1_2 : 1.0) / 2.0 * cos((2 * x + 1) * u * M_PI / 16.0));
}

typedef struct writer {
  const edct_output *out;
  int t;           /* tensor index */
  int width;       /* blocks per row of that tensor */
  int depth;       /* channels per position */
  int rep;         /* each block written rep x rep times (merged chroma) */
} writer;

static void put(const writer *wr, int by, int bx, int ch, float x) {
  for (int dy = 0; dy < wr->rep; dy++)
    for (int dx = 0; dx < wr->rep; dx++) {
      size_t at = ((size_t)(by * wr->rep + dy) * wr->width + (bx * wr->rep + dx)) * wr->depth + ch;
      if (wr->out->dtype == EDCT_INT8) {
        float q = nearbyintf(x / wr->out->scale[wr->t]) + (float)wr->out->zero_point[wr->t];
        ((int8_t *)wr->out->tensor[wr->t])[at] = (int8_t)(q < -128.f ? -128 : q > 127.f ? 127 : q);
      } else {
        ((float *)wr->out->tensor[wr->t])[at] = x;
      }
    }
}

/* Forward-DCTs pixels (gh*8 x gw*8, or NULL for zeros) and writes component
 * ci's selected channels starting at channel ch0. */
static void emit(const edct_spec *s, int ci, const float *px, int gh, int gw, const writer *wr,
                 int ch0) {
  float d[64], blk[64], tmp[64], coef[64];
  dct_matrix(d);
  int n = s->num_channels[ci];
  for (int by = 0; by < gh; by++)
    for (int bx = 0; bx < gw; bx++) {
      if (px != NULL) {
        for (int y = 0; y < 8; y++)
          memcpy(blk + 8 * y, px + (size_t)(by * 8 + y) * gw * 8 + bx * 8, 8 * sizeof(float));
        for (int v = 0; v < 8; v++) /* tmp = D blk */
          for (int x = 0; x < 8; x++) {
            float a = 0.0f;
            for (int y = 0; y < 8; y++) a += d[8 * v + y] * blk[8 * y + x];
            tmp[8 * v + x] = a;
          }
        for (int v = 0; v < 8; v++) /* coef = tmp D^T */
          for (int u = 0; u < 8; u++) {
            float a = 0.0f;
            for (int x = 0; x < 8; x++) a += tmp[8 * v + x] * d[8 * u + x];
            coef[8 * v + u] = a;
          }
      } else {
        memset(coef, 0, sizeof coef);
      }
      for (int i = 0; i < n; i++) {
        float x = coef[s->channels[ci][i]];
        if (s->normalize) x = (x - s->mean[ci][i]) / s->std[ci][i];
        put(wr, by, bx, ch0 + i, x);
      }
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
                 int apply_orientation, const edct_output *out, edct_error *err) {
  edct__clear_error(err);
  if (dec == NULL || spec == NULL || out == NULL || out->tensor[0] == NULL ||
      (spec->layout == EDCT_LAYOUT_SPLIT && out->tensor[1] == NULL))
    return edct__fail(err, EDCT_ERR_ARGUMENT, "missing decoder, spec or output tensor");
  int status = edct_check_spec(spec, err);
  if (status != EDCT_OK) return status;
  if (out->dtype == EDCT_INT8 && !(out->scale[0] > 0.0f &&
                                   (spec->layout == EDCT_LAYOUT_MERGED || out->scale[1] > 0.0f)))
    return edct__fail(err, EDCT_ERR_ARGUMENT, "int8 output needs a positive scale");

  const edct_info *info = edct_get_info(dec);
  prep p;
  memset(&p, 0, sizeof p);
  p.info = info;
  int rgb = 0;
  if (info->color_space == EDCT_CS_GRAY) {
    p.ncomp = 1;
  } else if (info->color_space == EDCT_CS_YCBCR && info->num_components == 3) {
    p.ncomp = 3;
  } else if (info->color_space == EDCT_CS_RGB && info->num_components == 3 &&
             info->comp[1].h_samp == info->comp[0].h_samp &&
             info->comp[2].h_samp == info->comp[0].h_samp &&
             info->comp[1].v_samp == info->comp[0].v_samp &&
             info->comp[2].v_samp == info->comp[0].v_samp) {
    p.ncomp = 3;
    rgb = 1;
  } else {
    static const char *names[] = {"unknown", "gray", "YCbCr", "RGB", "CMYK", "YCCK"};
    return edct__fail(err, EDCT_ERR_UNSUPPORTED,
                      "%s colour (%d components) cannot be mapped to a YCbCr model input",
                      names[info->color_space], info->num_components);
  }
  set_orientation(&p, apply_orientation ? info->orientation : 1);
  int width, height;
  if (apply_orientation)
    edct_oriented_size(info, &width, &height);
  else
    width = info->width, height = info->height;
  edct_window w = window ? *window : edct_eval_window(spec, width, height);
  if (!(w.width > 0.0 && w.height > 0.0))
    return edct__fail(err, EDCT_ERR_ARGUMENT, "window: empty (%gx%g)", w.width, w.height);

  int gw = spec->grid_w, gh = spec->grid_h;
  float *pixels = NULL;
  status = EDCT_ERR_NOMEM;
  for (int ci = 0; ci < p.ncomp; ci++) {
    int ow = ci == 0 ? gw * 8 : gw * 4, oh = ci == 0 ? gh * 8 : gh * 4;
    if (!init_plane(&p, ci, &w, ow, oh)) goto done;
  }
  if (rgb) { /* the colour transform needs the same k everywhere */
    int k = p.pl[0].k;
    for (int ci = 1; ci < 3; ci++) k = p.pl[ci].k > k ? p.pl[ci].k : k;
    for (int ci = 0; ci < 3; ci++) {
      if (p.pl[ci].k == k) continue;
      free(p.pl[ci].img);
      p.pl[ci].k = k;
      reduced_idct_matrix(k, p.pl[ci].idct);
      p.pl[ci].stride = (p.pl[ci].ax.end - p.pl[ci].ax.first) * k;
      p.pl[ci].img = calloc((size_t)(p.pl[ci].ay.end - p.pl[ci].ay.first) * k * p.pl[ci].stride,
                            sizeof(float));
      if (p.pl[ci].img == NULL) goto done;
    }
  }
  edct_consumer consumer = {&p, reduce_block, NULL, {0}};
  for (int ci = 0; ci < info->num_components && ci < EDCT_MAX_COMPONENTS; ci++)
    consumer.frequencies[ci] = (uint8_t)(ci < p.ncomp ? p.pl[ci].k : 1);
  status = edct_decode(dec, &consumer, err);
  if (status != EDCT_OK) goto done;
  if (rgb) rgb_to_ycbcr(&p);

  status = EDCT_ERR_NOMEM;
  pixels = malloc(sizeof(float) * (size_t)gw * 8 * gh * 8);
  if (pixels == NULL) goto done;
  int ny = spec->num_channels[0], ncb = spec->num_channels[1], ncr = spec->num_channels[2];
  int merged = spec->layout == EDCT_LAYOUT_MERGED;
  writer wy = {out, 0, gw, merged ? ny + ncb + ncr : ny, 1};
  writer wc = merged ? (writer){out, 0, gw, ny + ncb + ncr, 2} : (writer){out, 1, gw / 2, ncb + ncr, 1};
  for (int ci = 0; ci < 3; ci++) {
    int ow = ci == 0 ? gw * 8 : gw * 4, oh = ci == 0 ? gh * 8 : gh * 4;
    int has = ci < p.ncomp;
    if (has && !resample(&p.pl[ci], &w, ow, oh, pixels)) goto done;
    if (ci == 0)
      emit(spec, 0, pixels, gh, gw, &wy, 0);
    else
      emit(spec, ci, has ? pixels : NULL, gh / 2, gw / 2, &wc,
           (merged ? ny : 0) + (ci == 2 ? ncb : 0));
  }
  status = EDCT_OK;
done:
  if (status == EDCT_ERR_NOMEM && err != NULL && err->status == 0)
    edct__fail(err, EDCT_ERR_NOMEM, "out of memory");
  free(pixels);
  for (int ci = 0; ci < 3; ci++) free(p.pl[ci].img);
  return status;
}
