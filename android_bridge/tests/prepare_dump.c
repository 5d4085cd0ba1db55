/*
 * prepare_dump.c - the C core and the bundle-metadata reader without LiteRT,
 * for the cross-architecture check (make arm64-test).
 *
 *   prepare_dump MODEL OUT JPEG...
 *
 * Reads the InputSpec from MODEL's metadata (the bridge's JSON reader), then
 * for every JPEG writes to OUT: its status, its dequantized coefficient planes
 * (edct_decode_planes) and its model tensors from edct_prepare in float32 and
 * in int8 (the default bundle's input quantization).  The host and the
 * aarch64 builds must write identical files.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edcl_meta.h"
#include "edct.h"

#include "read_file.h"

static void put_status(FILE *out, int status, const char *what) {
  fprintf(out, "%s %d\n", what, status);
}

static void dump_planes(FILE *out, const uint8_t *data, size_t size) {
  edct_options o;
  edct_error e;
  edct_default_options(&o);
  edct_decoder *dec = edct_open(data, size, &o, &e);
  if (dec == NULL) return put_status(out, e.status, "planes");
  const edct_info *info = edct_get_info(dec);
  int16_t *planes[EDCT_MAX_COMPONENTS] = {NULL, NULL, NULL, NULL};
  size_t counts[EDCT_MAX_COMPONENTS] = {0, 0, 0, 0};
  int ok = 1;
  for (int c = 0; c < info->num_components && c < EDCT_MAX_COMPONENTS; c++) {
    counts[c] = (size_t)info->comp[c].height_in_blocks * (size_t)info->comp[c].width_in_blocks * 64;
    planes[c] = malloc(counts[c] * sizeof(int16_t) + 1);
    ok = ok && planes[c] != NULL;
  }
  int st = ok ? edct_decode_planes(dec, planes, 1, NULL, &e) : EDCT_ERR_NOMEM;
  put_status(out, st, "planes");
  if (st == EDCT_OK)
    for (int c = 0; c < info->num_components && c < EDCT_MAX_COMPONENTS; c++)
      fwrite(planes[c], sizeof(int16_t), counts[c], out);
  for (int c = 0; c < EDCT_MAX_COMPONENTS; c++) free(planes[c]);
  edct_close(dec);
}

static void dump_prepare(FILE *out, const uint8_t *data, size_t size, const edcl_meta *m,
                         int dtype, edct_workspace *ws) {
  edct_options o;
  edct_error e;
  edct_output t;
  size_t elems[2] = {0, 0}, esize = dtype == EDCT_INT8 ? 1 : 4;
  memset(&t, 0, sizeof(t));
  t.dtype = dtype;
  for (int i = 0; i < m->num_tensors; i++) {
    elems[i] = (size_t)m->shapes[i][1] * (size_t)m->shapes[i][2] * (size_t)m->shapes[i][3];
    t.tensor[i] = calloc(elems[i], esize);
    t.scale[i] = 0.0078432178f; /* the default bundle's int8 input quantization */
    t.zero_point[i] = -1;
  }
  edct_default_options(&o);
  edct_decoder *dec = edct_open(data, size, &o, &e);
  int st = dec ? edct_prepare(dec, &m->spec, NULL, 1, &t, ws, &e) : e.status;
  edct_close(dec);
  put_status(out, st, dtype == EDCT_INT8 ? "prepare-int8" : "prepare-float32");
  for (int i = 0; i < m->num_tensors; i++) {
    if (st == EDCT_OK) fwrite(t.tensor[i], esize, elems[i], out);
    free(t.tensor[i]);
  }
}

int main(int argc, char **argv) {
  size_t msize = 0;
  edcl_meta meta;
  edcl_error err;
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL OUT JPEG...\n", argv[0]);
    return 2;
  }
  uint8_t *model = read_file(argv[1], &msize);
  if (model == NULL || edcl_meta_read(model, msize, &meta, &err) != EDCL_OK) {
    fprintf(stderr, "cannot read the bundle's InputSpec: %s\n", model ? err.message : argv[1]);
    return 1;
  }
  FILE *out = fopen(argv[2], "wb");
  edct_workspace *ws = edct_workspace_new();
  if (out == NULL || ws == NULL) return 1;
  fprintf(out, "grid %d %d labels %d first '%s'\n", meta.spec.grid_h, meta.spec.grid_w,
          meta.num_labels, meta.labels);
  int ok = 0;
  for (int i = 3; i < argc; i++) {
    size_t n = 0;
    uint8_t *d = read_file(argv[i], &n);
    const char *name = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];
    fprintf(out, "file %s %zu\n", name, n);
    if (d == NULL) continue;
    dump_planes(out, d, n);
    dump_prepare(out, d, n, &meta, EDCT_FLOAT32, ws);
    dump_prepare(out, d, n, &meta, EDCT_INT8, ws);
    free(d);
    ok++;
  }
  edct_workspace_free(ws);
  edcl_meta_free(&meta);
  free(model);
  fclose(out);
  printf("%d JPEGs dumped to %s\n", ok, argv[2]);
  return 0;
}
