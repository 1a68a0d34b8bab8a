// cbridge.cpp: the libtorch side of cbridge.h. See the header for the rules.
#include "cbridge.h"

#include <dlfcn.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/cuda.h>
#include <torch/version.h>
#include <torch/script.h>

#ifdef CBRIDGE_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif
#include <c10/core/DeviceGuard.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using torch::indexing::Slice;

char *dup_error(const std::string &msg) {
  char *out = static_cast<char *>(std::malloc(msg.size() + 1));
  if (out != nullptr) std::memcpy(out, msg.c_str(), msg.size() + 1);
  return out;
}

// guarded runs fn with inference mode on (grad and version tracking off, per
// thread, so it is set inside every call) and turns any C++ exception into
// an error string: nothing may unwind into Go.
template <typename F>
char *guarded(const char *what, F fn) {
  try {
    c10::InferenceMode inference;
    fn();
    return nullptr;
  } catch (const c10::Error &e) {
    return dup_error(std::string(what) + ": " + e.what_without_backtrace());
  } catch (const std::exception &e) {
    return dup_error(std::string(what) + ": " + e.what());
  } catch (...) {
    return dup_error(std::string(what) + ": unknown C++ exception");
  }
}

void check(bool ok, const std::string &msg) {
  if (!ok) throw std::runtime_error(msg);
}

torch::Device parse_device(const std::string &name) {
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(name);
  } catch (const c10::Error &) {
    throw std::runtime_error("unknown device \"" + name + "\" (want cpu, cuda or cuda:N)");
  }
  check(device.is_cpu() || device.is_cuda(), "unsupported device \"" + name + "\" (want cpu, cuda or cuda:N)");
  if (device.is_cuda()) {
    int64_t n = torch::cuda::is_available() ? static_cast<int64_t>(torch::cuda::device_count()) : 0;
    check(n > 0, "device \"" + name + "\" asked for, but CUDA is not available (no GPU, or a CPU-only libtorch)");
    check(!device.has_index() || device.index() < n,
          "device \"" + name + "\" asked for, but only " + std::to_string(n) + " CUDA device(s) exist");
  }
  return device;
}

std::optional<torch::ScalarType> parse_dtype(const std::string &name) {
  if (name.empty()) return std::nullopt;
  if (name == "float32") return torch::kFloat32;
  if (name == "float16") return torch::kFloat16;
  if (name == "bfloat16") return torch::kBFloat16;
  throw std::runtime_error("unknown dtype \"" + name + "\" (want float32, float16 or bfloat16)");
}

void copy_str(char *dst, size_t cap, const std::string &src) {
  size_t n = std::min(src.size(), cap - 1);
  std::memcpy(dst, src.data(), n);
  dst[n] = '\0';
}

const char *parallel_backend() {
#if AT_PARALLEL_OPENMP
  return "OpenMP";
#elif AT_PARALLEL_NATIVE
  return "native thread pool";
#elif AT_PARALLEL_NATIVE_TBB
  return "TBB";
#else
  return "unknown";
#endif
}

}  // namespace

// From linear_w8.cpp.
bool linear_w8_avx2();

#ifdef CBRIDGE_CUDA
// DecodeGraph is one decode step (one new token in each of the first `rows`
// slots) captured as a CUDA graph. Replaying it launches every kernel of the
// step at once, without the TorchScript interpreter in between, which is
// where a small model's decode step spends its time on a GPU.
struct DecodeGraph {
  int64_t rows = 0, k = 0;
  std::unique_ptr<at::cuda::CUDAGraph> graph;
  torch::Tensor ids, pos, mask, last, slot_idx, pos_idx;  // static inputs
  torch::Tensor logits, top_vals, top_ids, lse;          // static outputs
};
#endif

struct cb_model {
  torch::jit::Module module;
  torch::Device device{torch::kCPU};
  torch::ScalarType dtype = torch::kFloat32;
  cb_model_options opts{};
  // [n_layer, 2, slots, n_head, capacity + 1, head_dim]: the extra position
  // is scratch, where captured decode steps write the rows they do not use.
  torch::Tensor pool;
  std::vector<int32_t> len;          // tokens cached per slot
  torch::Tensor last_logits;         // [rows, vocab] float32, on the device
  std::vector<int64_t> last_rows;    // if set: step row i is row last_rows[i] of last_logits
#ifdef CBRIDGE_CUDA
  std::map<std::pair<int64_t, int64_t>, std::unique_ptr<DecodeGraph>> graphs;
  bool graphs_off = false;
#endif
};

namespace {

// model_dtype is the dtype of the module's floating-point parameters, which
// the cache must share. Quantized modules hide theirs: they run in float32.
torch::ScalarType model_dtype(const torch::jit::Module &m) {
  for (const auto &p : m.parameters()) {
    if (p.is_floating_point()) return p.scalar_type();
  }
  return torch::kFloat32;
}

void check_options(const cb_model_options &o) {
  check(o.n_layer > 0 && o.n_head > 0 && o.head_dim > 0 && o.vocab_size > 0 && o.n_positions > 0,
        "model shape must be positive (n_layer, n_head, head_dim, vocab_size, n_positions)");
  check(o.slots > 0, "slots must be positive");
  check(o.capacity > 0 && o.capacity <= o.n_positions,
        "capacity must be in 1.." + std::to_string(o.n_positions) + " (the model's context)");
}

void check_slot(const cb_model *m, int32_t slot) {
  check(slot >= 0 && slot < m->opts.slots,
        "slot " + std::to_string(slot) + " out of range 0.." + std::to_string(m->opts.slots - 1));
}

// StepInputs are the host-side tensors of one step, built on the CPU (they
// are small) and moved to the device in one go each.
struct StepInputs {
  torch::Tensor ids, positions, mask, last;
  int64_t rows = 0, width = 0, past = 0;
  std::vector<int64_t> row_of, t_of, slot_of, pos_of;  // one entry per real new token
  bool contiguous = true;                              // slots are first..first+rows-1 in order
  int64_t first = 0;
};

// check_step validates a step's rows and tokens before anything runs.
void check_step(const cb_model *m, int32_t n_rows, const int32_t *slots, const int32_t *n_tokens,
                const int64_t *tokens) {
  std::vector<bool> seen(m->opts.slots, false);
  int64_t total = 0;
  for (int32_t i = 0; i < n_rows; i++) {
    check_slot(m, slots[i]);
    check(!seen[slots[i]], "slot " + std::to_string(slots[i]) + " appears twice in one step");
    seen[slots[i]] = true;
    check(n_tokens[i] > 0, "every row needs at least one token");
    int64_t after = static_cast<int64_t>(m->len[slots[i]]) + n_tokens[i];
    check(after <= m->opts.capacity, "slot " + std::to_string(slots[i]) + " would hold " + std::to_string(after) +
                                         " tokens, over its capacity of " + std::to_string(m->opts.capacity));
    total += n_tokens[i];
  }
  for (int64_t i = 0; i < total; i++) {
    check(tokens[i] >= 0 && tokens[i] < m->opts.vocab_size,
          "token id " + std::to_string(tokens[i]) + " out of range 0.." + std::to_string(m->opts.vocab_size - 1));
  }
}

StepInputs build_inputs(const cb_model *m, int32_t n_rows, const int32_t *slots, const int32_t *n_tokens,
                        const int64_t *tokens) {
  check_step(m, n_rows, slots, n_tokens, tokens);
  StepInputs in;
  in.rows = n_rows;
  in.first = n_rows > 0 ? slots[0] : 0;
  for (int32_t i = 0; i < n_rows; i++) {
    in.width = std::max<int64_t>(in.width, n_tokens[i]);
    in.past = std::max<int64_t>(in.past, m->len[slots[i]]);
    in.contiguous = in.contiguous && slots[i] == in.first + i;
  }
  auto ids = torch::zeros({in.rows, in.width}, torch::kInt64);
  auto pos = torch::zeros({in.rows, in.width}, torch::kInt64);
  auto mask = torch::zeros({in.rows, 1, in.width, in.past + in.width}, torch::kBool);
  auto last = torch::zeros({in.rows}, torch::kInt64);
  auto ids_a = ids.accessor<int64_t, 2>();
  auto pos_a = pos.accessor<int64_t, 2>();
  auto mask_a = mask.accessor<bool, 4>();
  auto last_a = last.accessor<int64_t, 1>();
  const int64_t *tok = tokens;
  for (int64_t i = 0; i < in.rows; i++) {
    int64_t cached = m->len[slots[i]], n = n_tokens[i];
    last_a[i] = n - 1;
    for (int64_t t = 0; t < in.width; t++) {
      bool real = t < n;
      if (real) {
        ids_a[i][t] = *tok++;
        in.row_of.push_back(i), in.t_of.push_back(t), in.slot_of.push_back(slots[i]), in.pos_of.push_back(cached + t);
      }
      // Padding rows attend like real ones (their output is never used);
      // their position stays inside the embedding table.
      pos_a[i][t] = real ? cached + t : cached;
      for (int64_t j = 0; j < cached; j++) mask_a[i][0][t][j] = true;
      for (int64_t j = 0; j <= t; j++) mask_a[i][0][t][in.past + j] = true;
    }
  }
  in.ids = ids.to(m->device), in.positions = pos.to(m->device), in.mask = mask.to(m->device);
  in.last = last.to(m->device);
  return in;
}

torch::Tensor long_tensor(const std::vector<int64_t> &v, torch::Device device) {
  return torch::tensor(v, torch::kInt64).to(device);
}

// past_view is the cache the rows attend to: a view when the rows are
// consecutive slots in order (no copy), else a gather of their slots. Parked
// caches (a conversation's last prompt) often sit below the active rows.
torch::Tensor past_view(const cb_model *m, const StepInputs &in, const int32_t *slots) {
  auto past = m->pool.narrow(4, 0, in.past);
  if (in.contiguous) return past.narrow(2, in.first, in.rows);
  std::vector<int64_t> idx(slots, slots + in.rows);
  return past.index_select(2, long_tensor(idx, m->device));
}

// store_present appends the new keys and values ([L,2,rows,H,width,D]) of the
// real (non-padding) tokens to their slots, in one indexed copy.
void store_present(cb_model *m, const StepInputs &in, const torch::Tensor &present) {
  auto rows = long_tensor(in.row_of, m->device), ts = long_tensor(in.t_of, m->device);
  auto slots = long_tensor(in.slot_of, m->device), pos = long_tensor(in.pos_of, m->device);
  auto values = present.index({Slice(), Slice(), rows, Slice(), ts}).to(m->dtype);
  m->pool.index_put_({Slice(), Slice(), slots, Slice(), pos}, values);
}

// OnCallingThread keeps libtorch's ops on the calling thread while it
// lives (where the bridge is built with OpenMP, as libtorch is: the thread
// count is a per-thread OpenMP setting that at::parallel_for reads). The
// bridge's own ops after a CPU step (storing the new keys and values, top-k
// and log-sum-exp of the logits) are each big enough for libtorch to split
// across threads, and under OMP_WAIT_POLICY=PASSIVE each split first wakes a
// sleeping thread, which costs more than the op (docs/cpu.md).
class OnCallingThread {
 public:
  explicit OnCallingThread(bool cpu) {
#ifdef _OPENMP
    if (cpu) {
      saved_ = omp_get_max_threads();
      omp_set_num_threads(1);
    }
#endif
  }
  ~OnCallingThread() {
#ifdef _OPENMP
    if (saved_ > 0) omp_set_num_threads(saved_);
#endif
  }
  OnCallingThread(const OnCallingThread &) = delete;
  OnCallingThread &operator=(const OnCallingThread &) = delete;

 private:
  int saved_ = 0;
};

void copy_out(const cb_model *m, const torch::Tensor &logits, int32_t k, float *top_logits, int32_t *top_ids,
              float *lse) {
  if (k > 0 && k < m->opts.vocab_size) {
    auto top = logits.topk(k, 1);
    auto values = std::get<0>(top).to(torch::kCPU).contiguous();
    auto ids = std::get<1>(top).to(torch::kInt32).to(torch::kCPU).contiguous();
    std::memcpy(top_logits, values.data_ptr<float>(), values.numel() * sizeof(float));
    std::memcpy(top_ids, ids.data_ptr<int32_t>(), ids.numel() * sizeof(int32_t));
  } else {
    auto all = logits.to(torch::kCPU).contiguous();
    std::memcpy(top_logits, all.data_ptr<float>(), all.numel() * sizeof(float));
  }
  if (lse != nullptr) {
    auto l = logits.logsumexp(1).to(torch::kCPU).contiguous();
    std::memcpy(lse, l.data_ptr<float>(), l.numel() * sizeof(float));
  }
}

#ifdef CBRIDGE_CUDA
bool graphs_wanted(const cb_model *m) {
  const char *env = std::getenv("DIALOGBOT_CUDA_GRAPHS");
  return m->device.is_cuda() && !m->graphs_off && !(env != nullptr && std::string(env) == "0");
}

// forward_static runs a decode step on a graph's static tensors: what is
// captured, and what warms the capture up.
void forward_static(cb_model *m, DecodeGraph &g) {
  auto past = m->pool.narrow(2, 0, g.rows).narrow(4, 0, m->opts.capacity);
  auto res = m->module.forward({g.ids, g.pos, g.mask, past, g.last}).toTuple();
  g.logits = res->elements()[0].toTensor().to(torch::kFloat32);
  // present [L,2,rows,H,1,D] -> [rows,L,2,H,D], the layout index_put_ wants.
  auto present = res->elements()[1].toTensor().select(4, 0).permute({2, 0, 1, 3, 4}).to(m->dtype);
  m->pool.index_put_({Slice(), Slice(), g.slot_idx, Slice(), g.pos_idx}, present);
  if (g.k > 0) {
    auto top = g.logits.topk(g.k, 1);
    g.top_vals = std::get<0>(top);
    g.top_ids = std::get<1>(top).to(torch::kInt32);
  }
  g.lse = g.logits.logsumexp(1);
}

std::unique_ptr<DecodeGraph> capture(cb_model *m, int64_t rows, int64_t k) {
  auto g = std::make_unique<DecodeGraph>();
  g->rows = rows, g->k = k;
  const int64_t cap = m->opts.capacity;
  auto longs = torch::TensorOptions().dtype(torch::kInt64).device(m->device);
  g->ids = torch::zeros({rows, 1}, longs), g->pos = torch::zeros({rows, 1}, longs);
  g->last = torch::zeros({rows}, longs);
  g->mask = torch::zeros({rows, 1, 1, cap + 1}, torch::TensorOptions().dtype(torch::kBool).device(m->device));
  g->mask.select(3, cap).fill_(true);  // every row attends to itself: no empty softmax
  g->slot_idx = torch::arange(rows, longs);
  g->pos_idx = torch::full({rows}, cap, longs);  // the scratch position: warm-up touches no cache
  auto stream = c10::cuda::getStreamFromPool(false, m->device.index());
  c10::cuda::CUDAStreamGuard on_side_stream(stream);
  forward_static(m, *g);  // warm-up: allocations and library handles happen outside the capture
  forward_static(m, *g);
  stream.synchronize();
  g->graph = std::make_unique<at::cuda::CUDAGraph>();
  g->graph->capture_begin();
  try {
    forward_static(m, *g);
  } catch (...) {
    try {
      g->graph->capture_end();
    } catch (...) {
    }
    throw;
  }
  g->graph->capture_end();
  stream.synchronize();
  return g;
}

// fill_static writes one decode step's inputs into a graph's tensors: rows
// in the step attend to their cache and write the next position; the
// others attend to themselves only and write the scratch position.
void fill_static(const cb_model *m, DecodeGraph &g, int32_t n_rows, const int32_t *slots, const int64_t *tokens) {
  const int64_t cap = m->opts.capacity;
  auto ids = torch::zeros({g.rows, 1}, torch::kInt64), pos = torch::zeros({g.rows, 1}, torch::kInt64);
  auto pidx = torch::full({g.rows}, cap, torch::kInt64);
  auto mask = torch::zeros({g.rows, 1, 1, cap + 1}, torch::kBool);
  auto ids_a = ids.accessor<int64_t, 2>(), pos_a = pos.accessor<int64_t, 2>();
  auto pidx_a = pidx.accessor<int64_t, 1>();
  auto mask_a = mask.accessor<bool, 4>();
  for (int64_t r = 0; r < g.rows; r++) mask_a[r][0][0][cap] = true;
  for (int32_t i = 0; i < n_rows; i++) {
    int64_t s = slots[i], n = m->len[s];
    ids_a[s][0] = tokens[i], pos_a[s][0] = n, pidx_a[s] = n;
    for (int64_t j = 0; j < n; j++) mask_a[s][0][0][j] = true;
  }
  g.ids.copy_(ids), g.pos.copy_(pos), g.pos_idx.copy_(pidx), g.mask.copy_(mask);
}

// copy_rows copies rows (by slot) of a [rows, width] device tensor to out.
template <typename T>
void copy_rows(const torch::Tensor &t, const std::vector<int64_t> &rows, T *out) {
  auto host = t.to(torch::kCPU).contiguous();
  const int64_t width = host.size(1);
  const T *src = host.data_ptr<T>();
  for (size_t i = 0; i < rows.size(); i++) std::memcpy(out + i * width, src + rows[i] * width, width * sizeof(T));
}

// graph_step runs a decode step (one token per row) by replaying a captured
// graph for the smallest power-of-two block of slots that holds the rows. It
// returns false, to use the interpreter instead, for prefill steps, on a CPU,
// or after a capture failed.
bool graph_step(cb_model *m, int32_t n_rows, const int32_t *slots, const int32_t *n_tokens, const int64_t *tokens,
                int32_t k, float *top_logits, int32_t *top_ids, float *lse) {
  if (!graphs_wanted(m)) return false;
  int64_t need = 0;
  for (int32_t i = 0; i < n_rows; i++) {
    if (n_tokens[i] != 1) return false;
    need = std::max<int64_t>(need, slots[i] + 1);
  }
  check_step(m, n_rows, slots, n_tokens, tokens);
  int64_t rows = 1;
  while (rows < need) rows <<= 1;
  rows = std::min<int64_t>(rows, m->opts.slots);
  int64_t kk = (k > 0 && k < m->opts.vocab_size) ? k : 0;
  c10::DeviceGuard on_device(m->device);
  auto &g = m->graphs[{rows, kk}];
  if (!g) {
    try {
      g = capture(m, rows, kk);
    } catch (const std::exception &e) {
      m->graphs.erase({rows, kk});
      m->graphs_off = true;
      std::fprintf(stderr, "cbridge: CUDA graph capture failed, decoding without graphs: %s\n", e.what());
      return false;
    }
  }
  fill_static(m, *g, n_rows, slots, tokens);
  g->graph->replay();
  std::vector<int64_t> rows_of(slots, slots + n_rows);
  if (kk > 0) {
    copy_rows<float>(g->top_vals, rows_of, top_logits);
    copy_rows<int32_t>(g->top_ids, rows_of, top_ids);
  } else {
    copy_rows<float>(g->logits, rows_of, top_logits);
  }
  if (lse != nullptr) copy_rows<float>(g->lse.unsqueeze(1), rows_of, lse);
  for (int32_t i = 0; i < n_rows; i++) m->len[slots[i]] += 1;
  m->last_logits = g->logits;
  m->last_rows = rows_of;
  return true;
}
#endif

}  // namespace

extern "C" {

int32_t cb_abi_version(void) { return CB_ABI_VERSION; }

void cb_free_error(char *err) { std::free(err); }

char *cb_cuda_device_count(int32_t *count) {
  return guarded("cuda device count", [&] {
    *count = torch::cuda::is_available() ? static_cast<int32_t>(torch::cuda::device_count()) : 0;
  });
}

char *cb_runtime_info(cb_runtime *out) {
  return guarded("runtime info", [&] {
    *out = cb_runtime{};
    out->torch_major = TORCH_VERSION_MAJOR, out->torch_minor = TORCH_VERSION_MINOR;
    out->torch_patch = TORCH_VERSION_PATCH;
    out->intra_op_threads = at::get_num_threads();
    out->inter_op_threads = at::get_num_interop_threads();
    out->cuda_devices = torch::cuda::is_available() ? static_cast<int32_t>(torch::cuda::device_count()) : 0;
    out->mkldnn = at::hasMKLDNN() ? 1 : 0;
    out->int8_avx2 = linear_w8_avx2() ? 1 : 0;
    copy_str(out->parallel_backend, sizeof out->parallel_backend, parallel_backend());
    copy_str(out->quantized_engine, sizeof out->quantized_engine, c10::toString(at::globalContext().qEngine()));
    std::string engines;
    for (auto e : at::globalContext().supportedQEngines()) {
      if (e == at::QEngine::NoQEngine) continue;
      engines += (engines.empty() ? "" : ",") + std::string(c10::toString(e));
    }
    copy_str(out->quantized_engines, sizeof out->quantized_engines, engines);
  });
}

char *cb_gpu_memory(int32_t device, uint64_t *used, uint64_t *total) {
  return guarded("gpu memory", [&] {
    *used = 0, *total = 0;
    // Looked up at run time so the bridge builds and links without CUDA;
    // libtorch_cuda has loaded the runtime when a GPU is in use.
    using get_device_fn = int (*)(int *);
    using set_device_fn = int (*)(int);
    using mem_info_fn = int (*)(size_t *, size_t *);
    auto get_dev = reinterpret_cast<get_device_fn>(dlsym(RTLD_DEFAULT, "cudaGetDevice"));
    auto set_dev = reinterpret_cast<set_device_fn>(dlsym(RTLD_DEFAULT, "cudaSetDevice"));
    auto mem_info = reinterpret_cast<mem_info_fn>(dlsym(RTLD_DEFAULT, "cudaMemGetInfo"));
    if (get_dev == nullptr || set_dev == nullptr || mem_info == nullptr) return;
    int previous = 0;
    get_dev(&previous);
    set_dev(device);
    size_t free_bytes = 0, total_bytes = 0;
    int rc = mem_info(&free_bytes, &total_bytes);
    set_dev(previous);
    check(rc == 0, "cudaMemGetInfo failed with code " + std::to_string(rc));
    *used = total_bytes - free_bytes, *total = total_bytes;
  });
}

char *cb_model_load(const char *path, const cb_model_options *opts, cb_model **out) {
  *out = nullptr;
  cb_model *m = new cb_model();
  char *err = guarded("load model", [&] {
    check(opts != nullptr && path != nullptr, "missing path or options");
    m->opts = *opts;
    check_options(m->opts);
    check(opts->threads >= 0, "threads must not be negative");
    if (opts->threads > 0) at::set_num_threads(opts->threads);
    m->device = parse_device(opts->device ? opts->device : "cpu");
    // The profiling executor re-specialises the graph for new input shapes,
    // and continuous batching changes the batch size and cache length at
    // every step; plain execution of the traced graph is steadier.
    // DIALOGBOT_JIT_OPTIMIZE=1 turns the optimiser back on for comparison.
    const char *opt = std::getenv("DIALOGBOT_JIT_OPTIMIZE");
    torch::jit::setGraphExecutorOptimize(opt != nullptr && std::string(opt) == "1");
    auto dtype = parse_dtype(opts->dtype ? opts->dtype : "");
    try {
      m->module = torch::jit::load(path, m->device);
    } catch (const c10::Error &e) {
      throw std::runtime_error(std::string("cannot read TorchScript file ") + path + ": " +
                               e.what_without_backtrace());
    }
    m->module.eval();
    if (dtype && model_dtype(m->module) != *dtype) m->module.to(*dtype);
    m->dtype = model_dtype(m->module);
    const auto &o = m->opts;
    m->pool = torch::zeros({o.n_layer, 2, o.slots, o.n_head, o.capacity + 1, o.head_dim},
                           torch::TensorOptions().dtype(m->dtype).device(m->device));
    m->len.assign(o.slots, 0);
    // A one-row, one-token step first, here on the thread and with the
    // thread count the steps use, so thread pools and kernels are ready
    // when the first person writes. It matters most for int8 exports made
    // with torch's quantize_dynamic (before linear_w8): oneDNN prepares each
    // layer for the input shape of its first call, and a decode step after
    // a several-token first call rebuilt all of them (~50 against ~28 ms a
    // token for GPT-2-small on the dev VM). The cache is untouched.
    if (m->device.is_cpu()) {
      auto ones = torch::ones({1, 1}, torch::kInt64);
      m->module.forward({ones, ones, torch::ones({1, 1, 1, 1}, torch::kBool),
                         m->pool.narrow(2, 0, 1).narrow(4, 0, 0), torch::zeros({1}, torch::kInt64)});
    }
  });
  if (err != nullptr) {
    delete m;
    return err;
  }
  *out = m;
  return nullptr;
}

void cb_model_free(cb_model *m) {
  if (m == nullptr) return;
  try {
    c10::InferenceMode inference;
    delete m;
  } catch (...) {
  }
}

char *cb_model_step(cb_model *m, int32_t n_rows, const int32_t *slots, const int32_t *n_tokens,
                    const int64_t *tokens, int32_t k, float *top_logits, int32_t *top_ids, float *lse) {
  return guarded("step", [&] {
    check(m != nullptr, "model is closed");
    check(n_rows > 0, "a step needs at least one row");
#ifdef CBRIDGE_CUDA
    if (graph_step(m, n_rows, slots, n_tokens, tokens, k, top_logits, top_ids, lse)) return;
#endif
    StepInputs in = build_inputs(m, n_rows, slots, n_tokens, tokens);
    auto past = past_view(m, in, slots);
    auto result = m->module.forward({in.ids, in.positions, in.mask, past, in.last}).toTuple();
    auto logits = result->elements()[0].toTensor().to(torch::kFloat32);
    // A few new tokens' worth: more (batched decode, prompts) is worth the threads.
    OnCallingThread serial(m->device.is_cpu() && in.row_of.size() <= 4);
    store_present(m, in, result->elements()[1].toTensor());
    for (int32_t i = 0; i < n_rows; i++) m->len[slots[i]] += n_tokens[i];
    m->last_logits = logits;
    m->last_rows.clear();
    copy_out(m, logits, k, top_logits, top_ids, lse);
  });
}

char *cb_model_logits(cb_model *m, int32_t n, const int32_t *rows, float *out) {
  return guarded("logits", [&] {
    check(m != nullptr, "model is closed");
    check(m->last_logits.defined(), "no step has run yet");
    int64_t have = m->last_rows.empty() ? m->last_logits.size(0) : static_cast<int64_t>(m->last_rows.size());
    std::vector<int64_t> idx(rows, rows + n);
    for (auto &r : idx) {
      check(r >= 0 && r < have, "row " + std::to_string(r) + " not in the last step");
      if (!m->last_rows.empty()) r = m->last_rows[r];
    }
    auto sel = m->last_logits.index_select(0, long_tensor(idx, m->device)).to(torch::kCPU).contiguous();
    std::memcpy(out, sel.data_ptr<float>(), sel.numel() * sizeof(float));
  });
}

char *cb_model_set_length(cb_model *m, int32_t slot, int32_t length) {
  return guarded("set length", [&] {
    check(m != nullptr, "model is closed");
    check_slot(m, slot);
    check(length >= 0 && length <= m->len[slot], "length " + std::to_string(length) + " not in 0.." +
                                                       std::to_string(m->len[slot]) + " (the slot's tokens)");
    m->len[slot] = length;
  });
}

char *cb_model_copy_slot(cb_model *m, int32_t src, int32_t dst) {
  return guarded("copy slot", [&] {
    check(m != nullptr, "model is closed");
    check_slot(m, src);
    check_slot(m, dst);
    if (src == dst) return;
    int32_t n = m->len[src];
    if (n > 0) {
      m->pool.index({Slice(), Slice(), dst, Slice(), Slice(0, n)})
          .copy_(m->pool.index({Slice(), Slice(), src, Slice(), Slice(0, n)}));
    }
    m->len[dst] = n;
  });
}

}  // extern "C"
