/*
 * cbridge: a plain C ABI over libtorch for dialogbot.
 *
 * It loads a TorchScript GPT-2 step module (written by model/python/export.py)
 * on a device and runs batched generation steps. The KV cache of every
 * sequence stays on the device inside the bridge, in a pool of "slots";
 * callers only pass token ids in and get logits (or their top k) out.
 *
 * Rules, for every function that returns char*:
 *   - NULL means success; otherwise the result is an error message owned by
 *     the caller, to be released with cb_free_error.
 *   - the bridge never keeps a caller's pointer after the call returns
 *     (everything is copied), so Go memory may be passed in.
 *   - calls on one model are not thread-safe; one thread should make them all.
 */
#ifndef DIALOGBOT_CBRIDGE_H
#define DIALOGBOT_CBRIDGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this interface, and of the ops (dialogbot::linear_w8,
 * dialogbot::attend_one) that exported models may call: 4 added attend_one. */
#define CB_ABI_VERSION 4

typedef struct cb_model cb_model;

typedef struct {
  /* shape of the exported model (from its dialogbot.json) */
  int32_t n_layer;
  int32_t n_head;
  int32_t head_dim;
  int32_t vocab_size;
  int32_t n_positions;
  /* the KV cache pool: slots sequences of at most capacity tokens each */
  int32_t slots;
  int32_t capacity;
  /* intra-op CPU threads (0: leave libtorch's setting). OpenMP keeps the
   * count per calling thread, so it is set here, on the thread that will
   * also run the steps: set from another thread it did not reach them. */
  int32_t threads;
  const char *device; /* "cpu", "cuda" or "cuda:N" */
  const char *dtype;  /* "" (as exported), "float32", "float16", "bfloat16" */
} cb_model_options;

/* cb_abi_version lets the Go side check it loaded a matching library. */
int32_t cb_abi_version(void);

void cb_free_error(char *err);

/* cb_cuda_device_count: how many CUDA devices libtorch can use (0 on a CPU build). */
char *cb_cuda_device_count(int32_t *count);

/* cb_runtime is what libtorch runs with, field by field (strings are
 * NUL-terminated, cut to fit). Thread counts are the calling thread's:
 * OpenMP keeps them per thread. */
typedef struct {
  int32_t torch_major, torch_minor, torch_patch;
  int32_t intra_op_threads;
  int32_t inter_op_threads;
  int32_t cuda_devices;
  int32_t mkldnn;          /* 1: built with oneDNN (MKL-DNN) */
  int32_t int8_avx2;       /* 1: the int8 kernel (dialogbot::linear_w8) has its AVX2 path here */
  char parallel_backend[32]; /* "OpenMP", "native thread pool", "TBB" */
  char quantized_engine[32]; /* the engine in use: "ONEDNN", "X86", "FBGEMM", "QNNPACK", "NoQEngine" */
  char quantized_engines[128]; /* all this libtorch supports, comma-separated */
} cb_runtime;

char *cb_runtime_info(cb_runtime *out);

/* cb_gpu_memory: bytes in use and in total on a CUDA device (cudaMemGetInfo);
 * both 0 when no CUDA runtime is loaded. */
char *cb_gpu_memory(int32_t device, uint64_t *used, uint64_t *total);

char *cb_model_load(const char *path, const cb_model_options *opts, cb_model **out);
void cb_model_free(cb_model *m);

/*
 * cb_model_step runs one forward pass for n_rows sequences at once.
 * Row i continues the sequence in slots[i] with n_tokens[i] new tokens
 * (1 for a decode step, more to prefill a prompt or a chunk of it); the
 * tokens of all rows are concatenated in `tokens`. The new keys and values
 * are appended to each slot's cache.
 *
 * Out, for each row, about the next token after its last new token:
 *   k > 0: the k largest logits in descending order (top_logits, top_ids:
 *          n_rows*k each);
 *   k <= 0: the whole vocabulary (top_logits: n_rows*vocab_size; top_ids unused);
 *   lse (n_rows, may be NULL): log-sum-exp of the row's logits over the vocabulary.
 * The full logits of this step stay on the device for cb_model_logits.
 */
char *cb_model_step(cb_model *m, int32_t n_rows, const int32_t *slots, const int32_t *n_tokens,
                    const int64_t *tokens, int32_t k, float *top_logits, int32_t *top_ids, float *lse);

/* cb_model_logits copies the full logits of some rows of the last step
 * (rows index that step's rows) into out (n*vocab_size floats). */
char *cb_model_logits(cb_model *m, int32_t n, const int32_t *rows, float *out);

/* cb_model_set_length keeps the first length tokens of a slot's cache
 * (0 frees the slot; a shorter length lets a chat reuse a cached prefix). */
char *cb_model_set_length(cb_model *m, int32_t slot, int32_t length);

/* cb_model_copy_slot makes dst a copy of src (cache and length), e.g. to
 * sample several candidate replies after one prefill. */
char *cb_model_copy_slot(cb_model *m, int32_t src, int32_t dst);

#ifdef __cplusplus
}
#endif

#endif
