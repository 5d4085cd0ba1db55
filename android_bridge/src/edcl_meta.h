/*
 * edcl_meta.h - a bundle's `edge_dct` metadata (InputSpec v1 + labels) in C.
 *
 * Mirrors edge_dct/bundle.py and edge_dct/spec.py: the same fields, defaults
 * and checks, with messages naming the bad field.
 */
#ifndef EDCL_META_H
#define EDCL_META_H

#include <stddef.h>
#include <stdint.h>

#include "edcl_error.h"
#include "edct.h"

typedef struct edcl_meta {
  edct_spec spec;
  int num_tensors;          /* split: 2 (y, cbcr); merged: 1 (dct) */
  const char *tensor_names[2];
  int shapes[2][4];         /* NHWC, batch 1 */
  int num_labels;
  char *labels;             /* num_labels UTF-8 strings, each NUL-terminated, back to back */
  size_t labels_size;
} edcl_meta;

/* Parses the metadata JSON text into meta (which the caller frees with
 * edcl_meta_free, also after a failure). */
int edcl_meta_parse(const char *json, size_t size, edcl_meta *meta, edcl_error *err);

/* Locates the `edge_dct` metadata in a .tflite and parses it. */
int edcl_meta_read(const uint8_t *model, size_t size, edcl_meta *meta, edcl_error *err);

void edcl_meta_free(edcl_meta *meta);

#endif /* EDCL_META_H */
