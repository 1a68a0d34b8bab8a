// cbridge.cpp: the libtorch side of cbridge.h. See the header for the rules.
#include "cbridge.h"

#include <dlfcn.h>
#include <ATen/Parallel.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/cuda.h>
#include <torch/version.h>
#include <torch/script.h>

#include <algorithm>
#include <optional>
#include <cstdlib>
#include <cstring>
#include <sstream>
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

}  // namespace

struct cb_model {
  torch::jit::Module module;
  torch::Device device{torch::kCPU};
  torch::ScalarType dtype = torch::kFloat32;
  cb_model_options opts{};
  torch::Tensor pool;       // [n_layer, 2, slots, n_head, capacity, head_dim]
  std::vector<int32_t> len; // tokens cached per slot
  torch::Tensor last_logits; // [rows, vocab] float32, on the device
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
  bool contiguous = true;                              // slots are 0..rows-1 in order
};

StepInputs build_inputs(const cb_model *m, int32_t n_rows, const int32_t *slots, const int32_t *n_tokens,
                        const int64_t *tokens) {
  StepInputs in;
  in.rows = n_rows;
  std::vector<bool> seen(m->opts.slots, false);
  for (int32_t i = 0; i < n_rows; i++) {
    check_slot(m, slots[i]);
    check(!seen[slots[i]], "slot " + std::to_string(slots[i]) + " appears twice in one step");
    seen[slots[i]] = true;
    check(n_tokens[i] > 0, "every row needs at least one token");
    int64_t after = static_cast<int64_t>(m->len[slots[i]]) + n_tokens[i];
    check(after <= m->opts.capacity, "slot " + std::to_string(slots[i]) + " would hold " + std::to_string(after) +
                                         " tokens, over its capacity of " + std::to_string(m->opts.capacity));
    in.width = std::max<int64_t>(in.width, n_tokens[i]);
    in.past = std::max<int64_t>(in.past, m->len[slots[i]]);
    in.contiguous = in.contiguous && slots[i] == i;
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
        check(*tok >= 0 && *tok < m->opts.vocab_size,
              "token id " + std::to_string(*tok) + " out of range 0.." + std::to_string(m->opts.vocab_size - 1));
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

// past_view is the cache the rows attend to: a view when the rows are the
// first slots in order (no copy), else a gather of their slots.
torch::Tensor past_view(const cb_model *m, const StepInputs &in, const int32_t *slots) {
  auto past = m->pool.narrow(4, 0, in.past);
  if (in.contiguous) return past.narrow(2, 0, in.rows);
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

}  // namespace

extern "C" {

int32_t cb_abi_version(void) { return CB_ABI_VERSION; }

void cb_free_error(char *err) { std::free(err); }

char *cb_cuda_device_count(int32_t *count) {
  return guarded("cuda device count", [&] {
    *count = torch::cuda::is_available() ? static_cast<int32_t>(torch::cuda::device_count()) : 0;
  });
}

char *cb_set_num_threads(int32_t n) {
  return guarded("set threads", [&] {
    check(n > 0, "threads must be positive");
    at::set_num_threads(n);
  });
}

char *cb_runtime_info(char *buf, size_t cap) {
  return guarded("runtime info", [&] {
    std::ostringstream s;
    s << "torch " << TORCH_VERSION_MAJOR << "." << TORCH_VERSION_MINOR << "." << TORCH_VERSION_PATCH << "; intra-op threads " << at::get_num_threads() << "; "
      << at::get_parallel_info();
    std::string text = s.str();
    if (cap == 0) return;
    size_t n = std::min(text.size(), cap - 1);
    std::memcpy(buf, text.data(), n);
    buf[n] = '\0';
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
    m->pool = torch::zeros({o.n_layer, 2, o.slots, o.n_head, o.capacity, o.head_dim},
                           torch::TensorOptions().dtype(m->dtype).device(m->device));
    m->len.assign(o.slots, 0);
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
    StepInputs in = build_inputs(m, n_rows, slots, n_tokens, tokens);
    auto past = past_view(m, in, slots);
    auto result = m->module.forward({in.ids, in.positions, in.mask, past, in.last}).toTuple();
    auto logits = result->elements()[0].toTensor().to(torch::kFloat32);
    store_present(m, in, result->elements()[1].toTensor());
    for (int32_t i = 0; i < n_rows; i++) m->len[slots[i]] += n_tokens[i];
    m->last_logits = logits;
    copy_out(m, logits, k, top_logits, top_ids, lse);
  });
}

char *cb_model_logits(cb_model *m, int32_t n, const int32_t *rows, float *out) {
  return guarded("logits", [&] {
    check(m != nullptr, "model is closed");
    check(m->last_logits.defined(), "no step has run yet");
    int64_t have = m->last_logits.size(0);
    std::vector<int64_t> idx(rows, rows + n);
    for (auto r : idx) check(r >= 0 && r < have, "row " + std::to_string(r) + " not in the last step");
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
