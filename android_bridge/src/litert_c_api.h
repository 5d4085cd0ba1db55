/*
 * litert_c_api.h - the part of the LiteRT C API (libLiteRt.so) that edge_dct uses.
 *
 * Written for this project from the public LiteRT C headers (the litert/c headers of
 * google-ai-edge/LiteRT, checked against the symbols `nm -D libLiteRt.so` exports
 * in ai-edge-litert 2.3.0).  Only what the bridge calls is declared; handles are
 * opaque pointers, and the few concrete structs (tensor type, layout,
 * quantization) follow the ABI the headers document as stable.
 */
#ifndef EDCT_LITERT_C_API_H
#define EDCT_LITERT_C_API_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes: 0 is success; the bridge reports any other value by number
 * (see edcl_litert_status_name for the common ones). */
typedef int LiteRtStatus;
#define EDCL_LITERT_OK 0

/* Opaque handles. */
typedef struct LiteRtEnvironmentT *LiteRtEnvironment;
typedef struct LiteRtModelT *LiteRtModel;
typedef struct LiteRtSignatureT *LiteRtSignature;
typedef struct LiteRtTensorT *LiteRtTensor;
typedef struct LiteRtOptionsT *LiteRtOptions;
typedef struct LiteRtOpaqueOptionsT *LiteRtOpaqueOptions;
typedef struct LiteRtCompiledModelT *LiteRtCompiledModel;
typedef struct LiteRtTensorBufferT *LiteRtTensorBuffer;
typedef size_t LiteRtParamIndex;

/* Hardware accelerator bit set. */
#define EDCL_LITERT_HW_CPU 1
#define EDCL_LITERT_HW_GPU 2

/* Element types (TfLiteType numbering). */
#define EDCL_LITERT_FLOAT32 1
#define EDCL_LITERT_INT8 9

/* Quantization kinds. */
#define EDCL_LITERT_QUANT_NONE 0
#define EDCL_LITERT_QUANT_PER_TENSOR 1

/* Environment options are passed as a (tag, tagged value) array; the bridge
 * passes none, but the pointer type must still be right. */
typedef struct LiteRtEnvOption LiteRtEnvOption;

#define EDCL_LITERT_MAX_RANK 8

/* Shape of a ranked tensor: 7-bit rank and a has-strides bit share one
 * 32-bit unit, followed by 8 dimensions and 8 strides (68 bytes). */
typedef struct {
  unsigned int rank : 7;
  unsigned int has_strides : 1;
  int32_t dimensions[EDCL_LITERT_MAX_RANK];
  uint32_t strides[EDCL_LITERT_MAX_RANK];
} LiteRtLayout;

typedef struct {
  int element_type; /* EDCL_LITERT_FLOAT32, EDCL_LITERT_INT8, ... */
  LiteRtLayout layout;
} LiteRtRankedTensorType;

typedef struct {
  float scale;
  int64_t zero_point;
} LiteRtQuantizationPerTensor;

/* Environment. */
LiteRtStatus LiteRtCreateEnvironment(int num_options, const LiteRtEnvOption *options,
                                     LiteRtEnvironment *environment);
void LiteRtDestroyEnvironment(LiteRtEnvironment environment);

/* Model: the buffer must outlive the model. */
LiteRtStatus LiteRtCreateModelFromBuffer(LiteRtEnvironment environment, const void *buffer_addr,
                                         size_t buffer_size, LiteRtModel *model);
void LiteRtDestroyModel(LiteRtModel model);
LiteRtStatus LiteRtGetNumModelSignatures(LiteRtModel model, LiteRtParamIndex *num_signatures);
LiteRtStatus LiteRtGetModelSignature(LiteRtModel model, LiteRtParamIndex signature_index,
                                     LiteRtSignature *signature);

/* Signatures and tensors (owned by the model). */
LiteRtStatus LiteRtGetNumSignatureInputs(LiteRtSignature signature, LiteRtParamIndex *num_inputs);
LiteRtStatus LiteRtGetNumSignatureOutputs(LiteRtSignature signature,
                                          LiteRtParamIndex *num_outputs);
LiteRtStatus LiteRtGetSignatureInputName(LiteRtSignature signature, LiteRtParamIndex input_idx,
                                         const char **input_name);
LiteRtStatus LiteRtGetSignatureInputTensorByIndex(LiteRtSignature signature,
                                                  LiteRtParamIndex input_idx,
                                                  LiteRtTensor *tensor);
LiteRtStatus LiteRtGetSignatureOutputTensorByIndex(LiteRtSignature signature,
                                                   LiteRtParamIndex output_idx,
                                                   LiteRtTensor *tensor);
LiteRtStatus LiteRtGetRankedTensorType(LiteRtTensor tensor, LiteRtRankedTensorType *type);
LiteRtStatus LiteRtGetQuantizationTypeId(LiteRtTensor tensor, int *quantization_type);
LiteRtStatus LiteRtGetPerTensorQuantization(LiteRtTensor tensor,
                                            LiteRtQuantizationPerTensor *quantization);

/* Compilation options.  Accelerator-specific settings travel as "opaque
 * options": an identifier and a payload the runtime parses; the CPU
 * (XNNPACK) accelerator reads identifier "xnnpack" with a TOML text payload
 * such as "num_threads = 2\n". */
LiteRtStatus LiteRtCreateOptions(LiteRtOptions *options);
void LiteRtDestroyOptions(LiteRtOptions options);
LiteRtStatus LiteRtSetOptionsHardwareAccelerators(LiteRtOptions options, int accelerators);
LiteRtStatus LiteRtCreateOpaqueOptions(const char *payload_identifier, void *payload_data,
                                       void (*payload_destructor)(void *payload_data),
                                       LiteRtOpaqueOptions *options);
void LiteRtDestroyOpaqueOptions(LiteRtOpaqueOptions options);
/* Takes ownership of opaque_options on success. */
LiteRtStatus LiteRtAddOpaqueOptions(LiteRtOptions options, LiteRtOpaqueOptions opaque_options);

/* Compiled model (options stay owned by the caller). */
LiteRtStatus LiteRtCreateCompiledModel(LiteRtEnvironment environment, LiteRtModel model,
                                       LiteRtOptions compilation_options,
                                       LiteRtCompiledModel *compiled_model);
void LiteRtDestroyCompiledModel(LiteRtCompiledModel compiled_model);
LiteRtStatus LiteRtRunCompiledModel(LiteRtCompiledModel compiled_model,
                                    LiteRtParamIndex signature_index, size_t num_input_buffers,
                                    LiteRtTensorBuffer *input_buffers, size_t num_output_buffers,
                                    LiteRtTensorBuffer *output_buffers);

/* Tensor buffers over caller memory (64-byte aligned); a NULL deallocator
 * leaves the memory to the caller. */
#define EDCL_LITERT_HOST_ALIGNMENT 64
LiteRtStatus LiteRtCreateTensorBufferFromHostMemory(const LiteRtRankedTensorType *tensor_type,
                                                    void *host_buffer_addr,
                                                    size_t host_buffer_size,
                                                    void (*deallocator)(void *addr),
                                                    LiteRtTensorBuffer *buffer);
void LiteRtDestroyTensorBuffer(LiteRtTensorBuffer buffer);

#ifdef __cplusplus
}
#endif
#endif /* EDCT_LITERT_C_API_H */
