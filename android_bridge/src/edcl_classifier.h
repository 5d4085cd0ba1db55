/*
 * edcl_classifier.h - the native classifier behind the Java API (and the C
 * tests): an edge_dct bundle in LiteRT's CompiledModel, fed by edct_prepare.
 *
 * JPEG bytes -> edct_prepare (the C core, int8 or float32, straight into the
 * LiteRT input buffers) -> LiteRtRunCompiledModel -> dequantized logits ->
 * softmax (double) -> top-k, best first, ties to the lower index: the same
 * arithmetic as edge_dct.Classifier.  One classifier is used by one thread at
 * a time (the Java class serializes calls).
 */
#ifndef EDCL_CLASSIFIER_H
#define EDCL_CLASSIFIER_H

#include <stddef.h>
#include <stdint.h>

#include "edcl_error.h"
#include "edcl_meta.h"

enum { EDCL_ACCEL_CPU = 0, EDCL_ACCEL_GPU = 1 };

typedef struct edcl_options {
  int num_threads;       /* CPU threads; <= 0 leaves LiteRT's default */
  int accelerator;       /* EDCL_ACCEL_CPU or EDCL_ACCEL_GPU */
  int max_results;       /* categories returned, > 0, or -1 for all */
  double score_threshold; /* drop categories scoring below this */
} edcl_options;

void edcl_default_options(edcl_options *opts);

typedef struct edcl_classifier edcl_classifier;

/* Builds a classifier from .tflite bytes (copied).  On failure returns an
 * error status with err filled and *out NULL. */
int edcl_create(const uint8_t *model, size_t size, const edcl_options *opts,
                edcl_classifier **out, edcl_error *err);

/* Same, reading the file at path. */
int edcl_create_from_file(const char *path, const edcl_options *opts, edcl_classifier **out,
                          edcl_error *err);

/* The bundle's spec and labels. */
const edcl_meta *edcl_get_meta(const edcl_classifier *cl);

/* The largest number of categories edcl_classify can return. */
int edcl_max_categories(const edcl_classifier *cl);

/*
 * Classifies one JPEG.  Writes at most `capacity` categories (class index
 * and softmax score, best first) and their number to *count.
 */
int edcl_classify(edcl_classifier *cl, const uint8_t *jpeg, size_t size, int *indices,
                  double *scores, int capacity, int *count, edcl_error *err);

/* Frees everything; NULL is allowed. */
void edcl_free(edcl_classifier *cl);

#endif /* EDCL_CLASSIFIER_H */
