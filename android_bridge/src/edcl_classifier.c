/*
 * edcl_classifier.c - edge_dct bundle on LiteRT's CompiledModel (see edcl_classifier.h).
 */
#define _POSIX_C_SOURCE 200112L /* posix_memalign */
#include "edcl_classifier.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "litert_c_api.h"

#define MAX_MODEL_BYTES ((size_t)1 << 30)

struct edcl_classifier {
  edcl_options opts;
  uint8_t *model_data; /* LiteRT reads the model from here for its whole life */
  size_t model_size;
  edcl_meta meta;
  LiteRtEnvironment env;
  LiteRtModel model;
  LiteRtCompiledModel compiled;
  size_t num_inputs;
  LiteRtTensorBuffer inputs[2]; /* in signature order */
  void *input_mem[2];
  int spec_input[2];            /* spec tensor i -> signature input index */
  int dtype;                    /* EDCT_INT8 or EDCT_FLOAT32 */
  float in_scale[2];            /* per spec tensor */
  int in_zero_point[2];
  LiteRtTensorBuffer output;
  void *output_mem;
  int output_type;
  float out_scale;
  int out_zero_point;
  int num_classes;
  double *scores;
  edct_workspace *ws;
};

void edcl_default_options(edcl_options *opts) {
  opts->num_threads = 0;
  opts->accelerator = EDCL_ACCEL_CPU;
  opts->max_results = 5;
  opts->score_threshold = 0.0;
}

/* Funnels a failed LiteRT call into err. */
static int litert_fail(edcl_error *err, int status, LiteRtStatus st, const char *what) {
  return edcl_fail(err, status, "LiteRT: %s failed (status %d)", what, (int)st);
}

#define LITERT_CHECK(call, what)                                      \
  do {                                                                \
    LiteRtStatus st_ = (call);                                        \
    if (st_ != EDCL_LITERT_OK) return litert_fail(err, EDCL_ERR_MODEL, st_, what); \
  } while (0)

static size_t element_size(int type) { return type == EDCL_LITERT_INT8 ? 1 : 4; }

static int describe_shape(char *buf, size_t n, const LiteRtLayout *l) {
  size_t used = (size_t)snprintf(buf, n, "[");
  for (unsigned i = 0; i < l->rank && used < n; i++)
    used += (size_t)snprintf(buf + used, n - used, i ? ", %d" : "%d", (int)l->dimensions[i]);
  if (used < n) snprintf(buf + used, n - used, "]");
  return 0;
}

/* Type, shape and quantization of one model tensor; allocates its host
 * buffer.  spec_index < 0 for the output. */
static int bind_tensor(edcl_classifier *cl, LiteRtTensor tensor, const char *name,
                       const int *want_shape, int want_elems, LiteRtTensorBuffer *buffer,
                       void **mem, int *type_out, float *scale, int *zero_point, edcl_error *err) {
  LiteRtRankedTensorType type;
  char shape[128];
  size_t count = 1;
  memset(&type, 0, sizeof(type));
  LITERT_CHECK(LiteRtGetRankedTensorType(tensor, &type), "LiteRtGetRankedTensorType");
  if (type.layout.rank < 1 || type.layout.rank > EDCL_LITERT_MAX_RANK)
    return edcl_fail(err, EDCL_ERR_MODEL, "tensor '%s' has rank %u", name, type.layout.rank);
  describe_shape(shape, sizeof(shape), &type.layout);
  for (unsigned i = 0; i < type.layout.rank; i++) {
    int d = type.layout.dimensions[i];
    if (d < 1)
      return edcl_fail(err, EDCL_ERR_MODEL,
                       "tensor '%s' has a dynamic shape %s; export the bundle with batch 1", name,
                       shape);
    if (count > ((size_t)1 << 31) / (size_t)d)
      return edcl_fail(err, EDCL_ERR_MODEL, "tensor '%s' is too large %s", name, shape);
    count *= (size_t)d;
  }
  if (want_shape != NULL) {
    if (type.layout.rank != 4 || memcmp(want_shape, type.layout.dimensions, 4 * sizeof(int)) != 0)
      return edcl_fail(err, EDCL_ERR_MODEL,
                       "input '%s' has shape %s but the InputSpec says [%d, %d, %d, %d]", name,
                       shape, want_shape[0], want_shape[1], want_shape[2], want_shape[3]);
  } else if ((int)count != want_elems ||
             type.layout.dimensions[type.layout.rank - 1] != want_elems) {
    return edcl_fail(err, EDCL_ERR_MODEL, "output '%s' has shape %s but there are %d labels",
                     name, shape, want_elems);
  }
  if (type.element_type != EDCL_LITERT_INT8 && type.element_type != EDCL_LITERT_FLOAT32)
    return edcl_fail(err, EDCL_ERR_MODEL, "tensor '%s': unsupported type %d (int8 or float32)",
                     name, type.element_type);
  *type_out = type.element_type;
  *scale = 0.0f;
  *zero_point = 0;
  if (type.element_type == EDCL_LITERT_INT8) {
    int qtype = EDCL_LITERT_QUANT_NONE;
    LiteRtQuantizationPerTensor q = {0.0f, 0};
    LITERT_CHECK(LiteRtGetQuantizationTypeId(tensor, &qtype), "LiteRtGetQuantizationTypeId");
    if (qtype != EDCL_LITERT_QUANT_PER_TENSOR)
      return edcl_fail(err, EDCL_ERR_MODEL,
                       "int8 tensor '%s' needs per-tensor quantization (type %d)", name, qtype);
    LITERT_CHECK(LiteRtGetPerTensorQuantization(tensor, &q), "LiteRtGetPerTensorQuantization");
    if (!(q.scale > 0.0f) || !isfinite(q.scale) || q.zero_point < -128 || q.zero_point > 127)
      return edcl_fail(err, EDCL_ERR_MODEL, "tensor '%s': bad quantization (scale %g, zero %lld)",
                       name, (double)q.scale, (long long)q.zero_point);
    *scale = q.scale;
    *zero_point = (int)q.zero_point;
  }
  size_t bytes = count * element_size(type.element_type);
  size_t padded = (bytes + EDCL_LITERT_HOST_ALIGNMENT - 1) / EDCL_LITERT_HOST_ALIGNMENT *
                  EDCL_LITERT_HOST_ALIGNMENT;
  if (posix_memalign(mem, EDCL_LITERT_HOST_ALIGNMENT, padded) != 0) {
    *mem = NULL;
    return edcl_fail(err, EDCT_ERR_NOMEM, "out of memory for tensor '%s'", name);
  }
  memset(*mem, 0, padded);
  type.layout.has_strides = 0;
  LITERT_CHECK(LiteRtCreateTensorBufferFromHostMemory(&type, *mem, bytes, NULL, buffer),
               "LiteRtCreateTensorBufferFromHostMemory");
  (void)cl;
  return EDCL_OK;
}

static int compile(edcl_classifier *cl, edcl_error *err) {
  LiteRtOptions options = NULL;
  LiteRtStatus st;
  int accel = cl->opts.accelerator == EDCL_ACCEL_GPU ? EDCL_LITERT_HW_GPU : EDCL_LITERT_HW_CPU;
  if ((st = LiteRtCreateOptions(&options)) != EDCL_LITERT_OK)
    return litert_fail(err, EDCL_ERR_RUNTIME, st, "LiteRtCreateOptions");
  st = LiteRtSetOptionsHardwareAccelerators(options, accel);
  if (st == EDCL_LITERT_OK && cl->opts.num_threads > 0) {
    /* CPU settings: the XNNPACK accelerator's TOML payload. */
    char text[48];
    LiteRtOpaqueOptions cpu = NULL;
    snprintf(text, sizeof(text), "num_threads = %d\n", cl->opts.num_threads);
    char *payload = malloc(strlen(text) + 1);
    if (payload == NULL) {
      LiteRtDestroyOptions(options);
      return edcl_fail(err, EDCT_ERR_NOMEM, "out of memory for LiteRT options");
    }
    strcpy(payload, text);
    st = LiteRtCreateOpaqueOptions("xnnpack", payload, free, &cpu);
    if (st != EDCL_LITERT_OK) free(payload);
    else if ((st = LiteRtAddOpaqueOptions(options, cpu)) != EDCL_LITERT_OK)
      LiteRtDestroyOpaqueOptions(cpu);
  }
  if (st != EDCL_LITERT_OK) {
    LiteRtDestroyOptions(options);
    return litert_fail(err, EDCL_ERR_RUNTIME, st, "setting compilation options");
  }
  st = LiteRtCreateCompiledModel(cl->env, cl->model, options, &cl->compiled);
  LiteRtDestroyOptions(options);
  if (st != EDCL_LITERT_OK) {
    cl->compiled = NULL;
    if (accel == EDCL_LITERT_HW_GPU)
      return edcl_fail(err, EDCL_ERR_RUNTIME,
                       "gpu: LiteRT found no usable GPU accelerator (status %d)", (int)st);
    return litert_fail(err, EDCL_ERR_MODEL, st, "LiteRtCreateCompiledModel");
  }
  return EDCL_OK;
}

/* Binds the signature's inputs (by name, to the spec's tensors) and output. */
static int bind(edcl_classifier *cl, edcl_error *err) {
  LiteRtParamIndex nsig = 0, nin = 0, nout = 0;
  LiteRtSignature sig = NULL;
  const edcl_meta *m = &cl->meta;
  LITERT_CHECK(LiteRtGetNumModelSignatures(cl->model, &nsig), "LiteRtGetNumModelSignatures");
  if (nsig < 1) return edcl_fail(err, EDCL_ERR_MODEL, "the model has no signature");
  LITERT_CHECK(LiteRtGetModelSignature(cl->model, 0, &sig), "LiteRtGetModelSignature");
  LITERT_CHECK(LiteRtGetNumSignatureInputs(sig, &nin), "LiteRtGetNumSignatureInputs");
  LITERT_CHECK(LiteRtGetNumSignatureOutputs(sig, &nout), "LiteRtGetNumSignatureOutputs");
  if (nout != 1)
    return edcl_fail(err, EDCL_ERR_MODEL, "expected one output (logits), found %d", (int)nout);
  if (nin != (LiteRtParamIndex)m->num_tensors)
    return edcl_fail(err, EDCL_ERR_MODEL, "the model has %d inputs but the InputSpec names %d",
                     (int)nin, m->num_tensors);
  cl->num_inputs = nin;
  for (int t = 0; t < m->num_tensors; t++) cl->spec_input[t] = -1;
  for (LiteRtParamIndex i = 0; i < nin; i++) {
    const char *name = NULL;
    LiteRtTensor tensor = NULL;
    int type, t, found = -1;
    LITERT_CHECK(LiteRtGetSignatureInputName(sig, i, &name), "LiteRtGetSignatureInputName");
    for (t = 0; t < m->num_tensors; t++)
      if (name != NULL && strcmp(name, m->tensor_names[t]) == 0 && cl->spec_input[t] < 0) found = t;
    if (found < 0)
      return edcl_fail(err, EDCL_ERR_MODEL, "model input '%.64s' is not in the InputSpec (%s%s%s)",
                       name ? name : "?", m->tensor_names[0], m->num_tensors > 1 ? ", " : "",
                       m->num_tensors > 1 ? m->tensor_names[1] : "");
    cl->spec_input[found] = (int)i;
    LITERT_CHECK(LiteRtGetSignatureInputTensorByIndex(sig, i, &tensor),
                 "LiteRtGetSignatureInputTensorByIndex");
    if (bind_tensor(cl, tensor, name, m->shapes[found], 0, &cl->inputs[i], &cl->input_mem[i],
                    &type, &cl->in_scale[found], &cl->in_zero_point[found], err))
      return err->status;
    int dtype = type == EDCL_LITERT_INT8 ? EDCT_INT8 : EDCT_FLOAT32;
    if (i > 0 && dtype != cl->dtype)
      return edcl_fail(err, EDCL_ERR_MODEL, "the model's inputs mix int8 and float32");
    cl->dtype = dtype;
  }
  LiteRtTensor out = NULL;
  LITERT_CHECK(LiteRtGetSignatureOutputTensorByIndex(sig, 0, &out),
               "LiteRtGetSignatureOutputTensorByIndex");
  return bind_tensor(cl, out, "output", NULL, m->num_labels, &cl->output, &cl->output_mem,
                     &cl->output_type, &cl->out_scale, &cl->out_zero_point, err);
}

int edcl_create(const uint8_t *model, size_t size, const edcl_options *opts,
                edcl_classifier **out, edcl_error *err) {
  edcl_classifier *cl;
  LiteRtStatus st;
  int rc;
  *out = NULL;
  if (opts == NULL || (opts->max_results == 0 || opts->max_results < -1) ||
      (opts->accelerator != EDCL_ACCEL_CPU && opts->accelerator != EDCL_ACCEL_GPU) ||
      opts->num_threads > 256 || !(opts->score_threshold == opts->score_threshold))
    return edcl_fail(err, EDCT_ERR_ARGUMENT,
                     "bad options (max_results > 0 or -1, accelerator cpu/gpu, threads <= 256)");
  if (model == NULL || size == 0) return edcl_fail(err, EDCL_ERR_MODEL, "empty model");
  if (size > MAX_MODEL_BYTES) return edcl_fail(err, EDCL_ERR_MODEL, "model larger than 1 GiB");
  cl = calloc(1, sizeof(*cl));
  if (cl == NULL) return edcl_fail(err, EDCT_ERR_NOMEM, "out of memory");
  cl->opts = *opts;
  /* Metadata first: a file that is not a bundle never reaches LiteRT. */
  rc = edcl_meta_read(model, size, &cl->meta, err);
  if (rc == EDCL_OK) {
    cl->model_data = malloc(size);
    cl->scores = malloc((size_t)cl->meta.num_labels * sizeof(double));
    cl->ws = edct_workspace_new();
    if (cl->model_data == NULL || cl->scores == NULL || cl->ws == NULL)
      rc = edcl_fail(err, EDCT_ERR_NOMEM, "out of memory");
  }
  if (rc == EDCL_OK) {
    memcpy(cl->model_data, model, size);
    cl->model_size = size;
    cl->num_classes = cl->meta.num_labels;
    if ((st = LiteRtCreateEnvironment(0, NULL, &cl->env)) != EDCL_LITERT_OK) {
      cl->env = NULL;
      rc = litert_fail(err, EDCL_ERR_RUNTIME, st, "LiteRtCreateEnvironment");
    }
  }
  if (rc == EDCL_OK &&
      (st = LiteRtCreateModelFromBuffer(cl->env, cl->model_data, size, &cl->model)) !=
          EDCL_LITERT_OK) {
    cl->model = NULL;
    rc = edcl_fail(err, EDCL_ERR_MODEL, "LiteRT cannot load the model (status %d)", (int)st);
  }
  if (rc == EDCL_OK) rc = compile(cl, err);
  if (rc == EDCL_OK) rc = bind(cl, err);
  if (rc != EDCL_OK) {
    edcl_free(cl);
    return rc;
  }
  *out = cl;
  return EDCL_OK;
}

int edcl_create_from_file(const char *path, const edcl_options *opts, edcl_classifier **out,
                          edcl_error *err) {
  FILE *f;
  long size;
  uint8_t *data = NULL;
  int rc;
  *out = NULL;
  if (path == NULL) return edcl_fail(err, EDCT_ERR_ARGUMENT, "no model path");
  f = fopen(path, "rb");
  if (f == NULL) return edcl_fail(err, EDCL_ERR_IO, "cannot open model file");
  if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
    fclose(f);
    return edcl_fail(err, EDCL_ERR_IO, "cannot read model file");
  }
  if ((size_t)size > MAX_MODEL_BYTES) {
    fclose(f);
    return edcl_fail(err, EDCL_ERR_MODEL, "model larger than 1 GiB");
  }
  if (size > 0 && (data = malloc((size_t)size)) == NULL) {
    fclose(f);
    return edcl_fail(err, EDCT_ERR_NOMEM, "out of memory reading the model");
  }
  if (size > 0 && fread(data, 1, (size_t)size, f) != (size_t)size) {
    fclose(f);
    free(data);
    return edcl_fail(err, EDCL_ERR_IO, "cannot read model file");
  }
  fclose(f);
  rc = edcl_create(data, (size_t)size, opts, out, err);
  free(data);
  return rc;
}

const edcl_meta *edcl_get_meta(const edcl_classifier *cl) { return &cl->meta; }

int edcl_max_categories(const edcl_classifier *cl) {
  return cl->opts.max_results > 0 && cl->opts.max_results < cl->num_classes
             ? cl->opts.max_results
             : cl->num_classes;
}

/* Softmax over the dequantized logits, as edge_dct.Classifier: logits in
 * float32 ((q - zero_point) * scale), softmax in double. */
static void softmax(edcl_classifier *cl) {
  int n = cl->num_classes;
  double *z = cl->scores, max = -HUGE_VAL, sum = 0.0;
  for (int i = 0; i < n; i++) {
    float logit;
    if (cl->output_type == EDCL_LITERT_INT8) {
      float q = (float)((const int8_t *)cl->output_mem)[i];
      logit = (q - (float)cl->out_zero_point) * cl->out_scale;
    } else {
      logit = ((const float *)cl->output_mem)[i];
    }
    z[i] = (double)logit;
    if (z[i] > max) max = z[i];
  }
  for (int i = 0; i < n; i++) sum += z[i] = exp(z[i] - max);
  for (int i = 0; i < n; i++) z[i] /= sum;
}

/* Better: higher score, then lower index (a stable sort on -score). */
static int better(const double *s, int a, int b) { return s[a] > s[b] || (s[a] == s[b] && a < b); }

static int top_k(const edcl_classifier *cl, int *idx, double *scores, int k) {
  const double *s = cl->scores;
  int count = 0;
  for (int i = 0; i < cl->num_classes; i++) {
    if (!(s[i] >= cl->opts.score_threshold)) continue;
    if (count == k && !better(s, i, idx[k - 1])) continue;
    int j = count < k ? count++ : k - 1;
    while (j > 0 && better(s, i, idx[j - 1])) {
      idx[j] = idx[j - 1];
      j--;
    }
    idx[j] = i;
  }
  for (int j = 0; j < count; j++) scores[j] = s[idx[j]];
  return count;
}

int edcl_classify(edcl_classifier *cl, const uint8_t *jpeg, size_t size, int *indices,
                  double *scores, int capacity, int *count, edcl_error *err) {
  edct_options o;
  edct_error e;
  edct_decoder *dec;
  edct_output out;
  LiteRtStatus st;
  *count = 0;
  if (cl == NULL || cl->compiled == NULL)
    return edcl_fail(err, EDCT_ERR_ARGUMENT, "the classifier is closed");
  if (jpeg == NULL || size == 0) return edcl_fail(err, EDCT_ERR_INVALID, "empty input");
  if (capacity < edcl_max_categories(cl))
    return edcl_fail(err, EDCT_ERR_ARGUMENT, "result arrays too small");
  edct_default_options(&o);
  memset(&e, 0, sizeof(e));
  dec = edct_open(jpeg, size, &o, &e);
  if (dec == NULL) return edcl_fail(err, e.status, "%s", e.message);
  memset(&out, 0, sizeof(out));
  out.dtype = cl->dtype;
  for (int t = 0; t < cl->meta.num_tensors; t++) {
    out.tensor[t] = cl->input_mem[cl->spec_input[t]];
    out.scale[t] = cl->in_scale[t];
    out.zero_point[t] = cl->in_zero_point[t];
  }
  int rc = edct_prepare(dec, &cl->meta.spec, NULL, 1, &out, cl->ws, &e);
  edct_close(dec);
  if (rc != EDCT_OK) return edcl_fail(err, rc, "%s", e.message);
  st = LiteRtRunCompiledModel(cl->compiled, 0, cl->num_inputs, cl->inputs, 1, &cl->output);
  if (st != EDCL_LITERT_OK) return litert_fail(err, EDCL_ERR_RUNTIME, st, "LiteRtRunCompiledModel");
  softmax(cl);
  *count = top_k(cl, indices, scores, edcl_max_categories(cl));
  return EDCL_OK;
}

void edcl_free(edcl_classifier *cl) {
  if (cl == NULL) return;
  for (size_t i = 0; i < 2; i++) {
    if (cl->inputs[i]) LiteRtDestroyTensorBuffer(cl->inputs[i]);
    free(cl->input_mem[i]);
  }
  if (cl->output) LiteRtDestroyTensorBuffer(cl->output);
  free(cl->output_mem);
  if (cl->compiled) LiteRtDestroyCompiledModel(cl->compiled);
  if (cl->model) LiteRtDestroyModel(cl->model);
  if (cl->env) LiteRtDestroyEnvironment(cl->env);
  edct_workspace_free(cl->ws);
  edcl_meta_free(&cl->meta);
  free(cl->scores);
  free(cl->model_data);
  free(cl);
}
