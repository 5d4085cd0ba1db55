/*
 * edcl_meta.c - InputSpec v1 + labels from a bundle's metadata (see edcl_meta.h).
 */
#include "edcl_meta.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edcl_json.h"

static const char *const COMPONENTS[3] = {"y", "cb", "cr"};
static const char *const REQUIRED[] = {"version", "grid", "layout", "channels"};

int edcl_fail(edcl_error *err, int status, const char *fmt, ...) {
  va_list ap;
  err->status = status;
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof(err->message), fmt, ap);
  va_end(ap);
  return status;
}

/* A bad InputSpec field: fmt (a literal) names it, printf-style. */
#define bad(err, ...) edcl_fail(err, EDCL_ERR_MODEL, "bad InputSpec in metadata: " __VA_ARGS__)

/* An integer-valued number in [lo, hi]. */
static int get_int(const edcl_json *v, int lo, int hi, int *out) {
  if (v == NULL || v->type != EDCL_JSON_NUMBER || !(v->number >= lo && v->number <= hi) ||
      v->number != (double)(int)v->number)
    return 0;
  *out = (int)v->number;
  return 1;
}

static int is_string(const edcl_json *v, const char *s) {
  return v != NULL && v->type == EDCL_JSON_STRING && strcmp(v->string, s) == 0;
}

static int read_channels(const edcl_json *ch, edct_spec *spec, edcl_error *err) {
  if (ch == NULL || ch->type != EDCL_JSON_OBJECT)
    return bad(err, "%s: must map 'y', 'cb', 'cr' to index lists", "channels");
  for (size_t i = 0; i < ch->length; i++) {
    const char *k = ch->keys[i];
    if (strcmp(k, "y") && strcmp(k, "cb") && strcmp(k, "cr"))
      return bad(err, "%s: must map 'y', 'cb', 'cr' to index lists", "channels");
  }
  for (int c = 0; c < 3; c++) {
    const edcl_json *list = edcl_json_get(ch, COMPONENTS[c]);
    uint64_t seen = 0;
    spec->num_channels[c] = 0;
    if (list == NULL) continue;
    if (list->type != EDCL_JSON_ARRAY || list->length > 64)
      return bad(err, "channels.%s: indices must be distinct, 0..63", COMPONENTS[c]);
    for (size_t i = 0; i < list->length; i++) {
      int k;
      if (!get_int(&list->items[i], 0, 63, &k) || (seen >> k & 1))
        return bad(err, "channels.%s: indices must be distinct, 0..63", COMPONENTS[c]);
      seen |= (uint64_t)1 << k;
      spec->channels[c][i] = (uint8_t)k;
    }
    spec->num_channels[c] = (int)list->length;
  }
  if (spec->num_channels[0] == 0)
    return bad(err, "%s: at least one luma channel is needed", "channels.y");
  if (spec->layout == EDCT_LAYOUT_SPLIT && spec->num_channels[1] + spec->num_channels[2] == 0)
    return bad(err, "%s: the split layout needs chroma channels", "channels");
  return 0;
}

static int read_normalize(const edcl_json *norm, edct_spec *spec, edcl_error *err) {
  int n = spec->num_channels[0] + spec->num_channels[1] + spec->num_channels[2];
  static const char *const keys[2] = {"mean", "std"};
  spec->normalize = 0;
  if (norm == NULL || norm->type == EDCL_JSON_NULL) return 0;
  if (norm->type != EDCL_JSON_OBJECT) return bad(err, "%s: must be an object or null", "normalize");
  for (int which = 0; which < 2; which++) {
    const edcl_json *list = edcl_json_get(norm, keys[which]);
    const char *field = keys[which];
    if (list == NULL || list->type != EDCL_JSON_ARRAY || list->length != (size_t)n)
      return bad(err, "normalize.%s: needs one value per selected channel", field);
    size_t i = 0;
    for (int c = 0; c < 3; c++) {
      for (int j = 0; j < spec->num_channels[c]; j++, i++) {
        const edcl_json *v = &list->items[i];
        if (v->type != EDCL_JSON_NUMBER)
          return bad(err, "normalize.%s: values must be numbers", field);
        float f = (float)v->number; /* as Python: float64 -> float32 */
        if (which == 1 && !(f > 0)) return bad(err, "normalize.%s: every value must be > 0", field);
        if (which == 0) spec->mean[c][j] = f;
        else spec->std[c][j] = f;
      }
    }
  }
  spec->normalize = 1;
  return 0;
}

static int read_labels(const edcl_json *labels, edcl_meta *meta, edcl_error *err) {
  size_t total = 0;
  if (labels == NULL || labels->type == EDCL_JSON_NULL || labels->length == 0 ||
      labels->type != EDCL_JSON_ARRAY)
    return edcl_fail(err, EDCL_ERR_MODEL, "metadata has no labels");
  if (labels->length > 1000000) return edcl_fail(err, EDCL_ERR_MODEL, "metadata: too many labels");
  for (size_t i = 0; i < labels->length; i++) {
    if (labels->items[i].type != EDCL_JSON_STRING)
      return edcl_fail(err, EDCL_ERR_MODEL, "metadata: labels[%zu] is not a string", i);
    total += labels->items[i].length + 1;
  }
  meta->labels = malloc(total);
  if (meta->labels == NULL) return edcl_fail(err, EDCT_ERR_NOMEM, "out of memory for labels");
  char *o = meta->labels;
  for (size_t i = 0; i < labels->length; i++) {
    memcpy(o, labels->items[i].string, labels->items[i].length + 1);
    o += labels->items[i].length + 1;
  }
  meta->labels_size = total;
  meta->num_labels = (int)labels->length;
  return 0;
}

static int read_spec(const edcl_json *root, edcl_meta *meta, edcl_error *err) {
  edct_spec *spec = &meta->spec;
  const edcl_json *v;
  int version;
  if (root->type != EDCL_JSON_OBJECT)
    return edcl_fail(err, EDCL_ERR_MODEL, "'edge_dct' metadata must be a JSON object");
  v = edcl_json_get(root, "layout");
  if (is_string(v, "rgb") || is_string(v, "ycbcr"))
    return edcl_fail(err, EDCL_ERR_MODEL,
                     "a pixel-input bundle (layout '%s'); edge_dct runs DCT-input models "
                     "(layout 'split' or 'merged')", v->string);
  for (size_t i = 0; i < sizeof(REQUIRED) / sizeof(REQUIRED[0]); i++)
    if (edcl_json_get(root, REQUIRED[i]) == NULL) return bad(err, "%s: missing", REQUIRED[i]);
  if (!get_int(edcl_json_get(root, "version"), 1, 1, &version))
    return bad(err, "%s: not supported (only 1)", "version");
  v = edcl_json_get(root, "grid");
  if (v->type != EDCL_JSON_ARRAY || v->length != 2 ||
      !get_int(&v->items[0], 2, 512, &spec->grid_h) || !get_int(&v->items[1], 2, 512, &spec->grid_w) ||
      spec->grid_h % 2 || spec->grid_w % 2)
    return bad(err, "%s: must be two even block counts 2..512", "grid");
  v = edcl_json_get(root, "resize");
  if (v == NULL) {
    spec->resize_mode = EDCT_RESIZE_SHORTER_SIDE;
    spec->resize_size = 256;
  } else if (v->type != EDCL_JSON_OBJECT) {
    return bad(err, "%s: must be an object", "resize");
  } else if (is_string(edcl_json_get(v, "mode"), "shorter_side")) {
    spec->resize_mode = EDCT_RESIZE_SHORTER_SIDE;
    if (!get_int(edcl_json_get(v, "size"), 1, 65535, &spec->resize_size))
      return bad(err, "%s: must be an int 1..65535", "resize.size");
  } else if (is_string(edcl_json_get(v, "mode"), "stretch")) {
    spec->resize_mode = EDCT_RESIZE_STRETCH;
  } else {
    return bad(err, "%s: must be 'shorter_side' or 'stretch'", "resize.mode");
  }
  v = edcl_json_get(root, "chroma");
  if (v != NULL && !is_string(v, "420")) return bad(err, "%s: not supported (only '420')", "chroma");
  v = edcl_json_get(root, "layout");
  if (is_string(v, "split")) spec->layout = EDCT_LAYOUT_SPLIT;
  else if (is_string(v, "merged")) spec->layout = EDCT_LAYOUT_MERGED;
  else return bad(err, "%s: must be 'split' or 'merged'", "layout");
  if (read_channels(edcl_json_get(root, "channels"), spec, err)) return err->status;
  if (read_normalize(edcl_json_get(root, "normalize"), spec, err)) return err->status;
  return read_labels(edcl_json_get(root, "labels"), meta, err);
}

static void derive_tensors(edcl_meta *meta) {
  const edct_spec *s = &meta->spec;
  int ny = s->num_channels[0], nc = s->num_channels[1] + s->num_channels[2];
  if (s->layout == EDCT_LAYOUT_SPLIT) {
    int y[4] = {1, s->grid_h, s->grid_w, ny}, c[4] = {1, s->grid_h / 2, s->grid_w / 2, nc};
    meta->num_tensors = 2;
    meta->tensor_names[0] = "y";
    meta->tensor_names[1] = "cbcr";
    memcpy(meta->shapes[0], y, sizeof(y));
    memcpy(meta->shapes[1], c, sizeof(c));
  } else {
    int d[4] = {1, s->grid_h, s->grid_w, ny + nc};
    meta->num_tensors = 1;
    meta->tensor_names[0] = "dct";
    memcpy(meta->shapes[0], d, sizeof(d));
  }
}

int edcl_meta_parse(const char *json, size_t size, edcl_meta *meta, edcl_error *err) {
  memset(meta, 0, sizeof(*meta));
  edcl_json_doc *doc = edcl_json_parse(json, size, err);
  if (doc == NULL) return err->status;
  int rc = read_spec(edcl_json_root(doc), meta, err);
  edcl_json_free(doc);
  if (rc) return rc;
  edct_error e;
  if (edct_check_spec(&meta->spec, &e) != EDCT_OK)
    return edcl_fail(err, EDCL_ERR_MODEL, "bad InputSpec in metadata: %s", e.message);
  derive_tensors(meta);
  return EDCL_OK;
}

int edcl_meta_read(const uint8_t *model, size_t size, edcl_meta *meta, edcl_error *err) {
  size_t offset = 0, length = 0;
  edct_error e;
  memset(meta, 0, sizeof(*meta));
  /* Corrupt, not TFLite or not a bundle: the core's message says which. */
  if (edct_find_metadata(model, size, EDCT_METADATA_NAME, &offset, &length, &e) != EDCT_OK)
    return edcl_fail(err, EDCL_ERR_MODEL, "%s", e.message);
  return edcl_meta_parse((const char *)model + offset, length, meta, err);
}

void edcl_meta_free(edcl_meta *meta) {
  if (meta == NULL) return;
  free(meta->labels);
  meta->labels = NULL;
}
