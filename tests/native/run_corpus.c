/*
 * run_corpus.c - decodes every file named on the command line through the
 * edct C API, for sanitizer builds of the core (make sanitize).
 *
 * Each file is opened and decoded four times: strict and lenient, each with
 * and without dequantization.  One line per file:
 *
 *   <status of each mode>  <width>x<height>x<components>  <path>  [reason]
 *
 * where a status is edct_status_name() of strict/dequantized first.  The
 * exit status is 0 unless a file could not be read or the four modes
 * disagree on the header; sanitizer reports abort the process by themselves.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edct.h"
#include "edct_internal.h"

typedef struct outcome {
  int status;
  int width, height, num_components; /* 0 when the header was not read */
  char message[EDCT_MESSAGE_LEN];
} outcome;

/* Reads a whole file; returns NULL (and reports) on failure. */
static uint8_t *read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    perror(path);
    return NULL;
  }
  uint8_t *data = NULL;
  if (fseek(f, 0, SEEK_END) == 0) {
    long n = ftell(f);
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0) {
      data = malloc(n > 0 ? (size_t)n : 1);
      if (data != NULL && fread(data, 1, (size_t)n, f) != (size_t)n) {
        free(data);
        data = NULL;
      }
      *size = (size_t)n;
    }
  }
  if (data == NULL) fprintf(stderr, "%s: cannot read\n", path);
  fclose(f);
  return data;
}

/* Allocates exact-size planes for the header and decodes into them. */
static int decode_into_planes(edct_decoder *dec, int dequantize, edct_error *err) {
  const edct_info *info = edct_get_info(dec);
  int16_t *planes[EDCT_MAX_COMPONENTS] = {NULL};
  int status = EDCT_ERR_NOMEM;
  for (int c = 0; c < info->num_components; c++) {
    size_t blocks = (size_t)info->comp[c].width_in_blocks * info->comp[c].height_in_blocks;
    planes[c] = malloc(blocks * 64 * sizeof(int16_t));
    if (planes[c] == NULL) goto done;
  }
  uint16_t quant[EDCT_MAX_COMPONENTS][64];
  status = edct_decode_planes(dec, planes, dequantize, quant, err);
done:
  for (int c = 0; c < EDCT_MAX_COMPONENTS; c++) free(planes[c]);
  return status;
}

/* Opens and decodes one buffer with the given mode. */
static outcome decode(const uint8_t *data, size_t size, int strict, int dequantize) {
  outcome out = {0};
  edct_options opts;
  edct_default_options(&opts);
  opts.strict = strict;
  edct_error err;
  edct_decoder *dec = edct_open(data, size, &opts, &err);
  if (dec != NULL) {
    const edct_info *info = edct_get_info(dec);
    out.width = info->width;
    out.height = info->height;
    out.num_components = info->num_components;
    out.status = decode_into_planes(dec, dequantize, &err);
    edct_close(dec);
  } else {
    out.status = err.status;
  }
  if (out.status != EDCT_OK) snprintf(out.message, sizeof out.message, "%s", err.message);
  return out;
}

/* One transcode of data (lenient, markers kept); builtin 0: libjpeg's path only. */
static int transcode_once(const uint8_t *data, size_t size, const edct_encode_options *eo,
                          int builtin, uint8_t **out, size_t *n, int *path) {
  edct_options opts;
  edct_default_options(&opts);
  opts.strict = 0;
  opts.keep_markers = 1;
  edct_error err;
  *out = NULL;
  *n = 0;
  edct_decoder *dec = edct_open(data, size, &opts, &err);
  if (dec == NULL) return -1;
  if (!builtin) edct__disable_builtin(dec);
  int status = edct_transcode(dec, eo, out, n, &err);
  *path = edct__entropy_path(dec);
  edct_close(dec);
  return status;
}

/* What prepare reads of data for a 224-pixel grid (shorter side 256, every coefficient);
 * 0 when the file does not open or prepare refuses it. */
static int keep_region(const uint8_t *data, size_t size, edct_region *region) {
  edct_error err;
  edct_decoder *dec = edct_open(data, size, NULL, &err);
  if (dec == NULL) return 0;
  edct_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.grid_h = spec.grid_w = 28;
  spec.resize_size = 256;
  for (int c = 0; c < 3; c++) {
    spec.num_channels[c] = 64;
    for (int i = 0; i < 64; i++) spec.channels[c][i] = (uint8_t)i;
  }
  int status = edct_prepare_region(edct_get_info(dec), &spec, NULL, 1, region, &err);
  edct_close(dec);
  return status == EDCT_OK;
}

/* Re-codes one buffer (standard tables at quality 50, optimized and not, and keeping only what
 * prepare reads) and decodes the result strictly; the fused path (not optimized) must write
 * what libjpeg's path writes.  Returns 0
 * when consistent (a failure must leave no output). */
static int transcode_check(const char *path, const uint8_t *data, size_t size) {
  edct_encode_options eo;
  edct_default_encode_options(&eo);
  eo.quality = 50;
  eo.optimize = 0;
  uint8_t *out = NULL, *ref = NULL;
  size_t n = 0, m = 0;
  int used = 0, ref_used = 0;
  int status = transcode_once(data, size, &eo, 1, &out, &n, &used);
  int ref_status = transcode_once(data, size, &eo, 0, &ref, &m, &ref_used);
  int bad = status != ref_status || n != m || (n > 0 && memcmp(out, ref, n) != 0);
  if (bad) fprintf(stderr, "%s: fused transcode (status %d, %zu bytes) != libjpeg's (status %d, %zu bytes)\n",
                   path, status, n, ref_status, m);
  edct_free(out);
  edct_free(ref);
  if (bad) return 1;
  if (keep_region(data, size, &eo.keep)) { /* only what prepare reads: both paths agree too */
    eo.use_keep = 1;
    status = transcode_once(data, size, &eo, 1, &out, &n, &used);
    ref_status = transcode_once(data, size, &eo, 0, &ref, &m, &ref_used);
    bad = status != ref_status || n != m || (n > 0 && memcmp(out, ref, n) != 0);
    if (bad) fprintf(stderr, "%s: fused transcode with keep != libjpeg's\n", path);
    edct_free(out);
    edct_free(ref);
    if (bad) return 1;
    eo.use_keep = 0;
  }
  eo.optimize = 1;
  status = transcode_once(data, size, &eo, 1, &out, &n, &used);
  if (status < 0) return 0;
  if (status != EDCT_OK) return out != NULL ? (fprintf(stderr, "%s: output left\n", path), 1) : 0;
  outcome back = decode(out, n, 1, 1);
  edct_free(out);
  if (back.status != EDCT_OK) {
    fprintf(stderr, "%s: transcoded file does not decode: %s\n", path, back.message);
    return 1;
  }
  return 0;
}

/* Decodes one file in every mode and prints its line; returns 0 when
 * consistent.  The strict and lenient statuses (dequantized) go to *strict_status
 * and *lenient_status. */
static int run_file(const char *path, int *strict_status, int *lenient_status) {
  size_t size = 0;
  uint8_t *data = read_file(path, &size);
  if (data == NULL) return 1;
  outcome modes[4];
  for (int m = 0; m < 4; m++) modes[m] = decode(data, size, !(m & 2), !(m & 1));
  int bad = transcode_check(path, data, size);
  free(data);
  *strict_status = modes[0].status;
  *lenient_status = modes[2].status;

  const char *reason = "";
  for (int m = 0; m < 4 && reason[0] == '\0'; m++) reason = modes[m].message;
  printf("%s/%s/%s/%s  %dx%dx%d  %s%s%s\n", edct_status_name(modes[0].status),
         edct_status_name(modes[1].status), edct_status_name(modes[2].status),
         edct_status_name(modes[3].status), modes[0].width, modes[0].height,
         modes[0].num_components, path, reason[0] ? "  " : "", reason);
  for (int m = 1; m < 4; m++) {
    if (modes[m].width != modes[0].width || modes[m].height != modes[0].height ||
        modes[m].num_components != modes[0].num_components) {
      fprintf(stderr, "%s: modes disagree on the header\n", path);
      return 1;
    }
  }
  return bad;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE.jpg...\n", argv[0]);
    return 2;
  }
  int failures = 0;
  int strict_counts[EDCT_ERR_ABORTED + 1] = {0}, lenient_counts[EDCT_ERR_ABORTED + 1] = {0};
  for (int i = 1; i < argc; i++) {
    int strict_status = EDCT_OK, lenient_status = EDCT_OK;
    failures += run_file(argv[i], &strict_status, &lenient_status);
    if (strict_status >= 0 && strict_status <= EDCT_ERR_ABORTED) strict_counts[strict_status]++;
    if (lenient_status >= 0 && lenient_status <= EDCT_ERR_ABORTED) lenient_counts[lenient_status]++;
  }
  printf("summary: %d files, %d inconsistent or unreadable\n", argc - 1, failures);
  for (int s = 0; s <= EDCT_ERR_ABORTED; s++) {
    if (strict_counts[s] || lenient_counts[s])
      printf("  %-18s strict %3d  lenient %3d\n", edct_status_name(s), strict_counts[s],
             lenient_counts[s]);
  }
  return failures ? 1 : 0;
}
