// linear_w8.cpp: dialogbot::linear_w8, the Linear layer of int8 exports.
//
// y = x · (w · diag(scale))ᵀ + bias, with w int8 [out, in] and one float
// scale per output row (weight-only, symmetric, per-channel quantization;
// model/python/int8.py makes the weights and holds the reference version).
//
// Two paths:
//  - the direct kernel, with no per-shape state: each block of 8 weight rows
//    is read from memory once and every input row goes over it while it
//    sits in L1. With AVX-512 VNNI each row is quantized to int16 with its
//    own scale and the int16 x int8 products summed in int32 (vpdpwssd);
//    without, AVX2 streams the int8 rows into float FMAs. The bridge is
//    built with -fopenmp: without it at::parallel_for, a header template,
//    runs on the calling thread only. With VNNI it takes every row count:
//    it beat oneDNN's int8 GEMM from 2 to 64 chats and on 256-token prompts
//    (docs/cpu.md). Without VNNI it takes up to 4 rows.
//  - more rows without VNNI: the quantized engine's int8 GEMM on weights
//    packed once per layer, called in fixed tiles of rows so that oneDNN,
//    which prepares a layer for the shape of its first call only, never
//    sees another shape. torch's dynamic int8 on oneDNN (Debian's only x86
//    engine) quantizes the rows with one shared scale, runs a GEMM made for
//    many rows and dequantizes.
// Measurements: docs/cpu.md.
#include <ATen/Parallel.h>
#include <ATen/native/quantized/PackedParams.h>
#include <torch/library.h>
#include <torch/torch.h>

#include "workers.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

bool have_vnni();

// Up to this many rows, the direct kernel; beyond, the quantized engine.
// With VNNI, every row count (int16 products, 32 a cycle, with weights read
// once, beat the engine's tiles at every size measured); with AVX2's float
// FMAs, up to 4 rows (at 8 they tie, at 32 the engine is 1.8x faster).
// DIALOGBOT_W8_DIRECT_ROWS overrides it, for measuring (docs/cpu.md), as
// it does in int8.py.
int64_t direct_rows() {
  static const int64_t n = [] {
    const char *env = std::getenv("DIALOGBOT_W8_DIRECT_ROWS");
    if (env != nullptr && std::atoll(env) > 0) return static_cast<int64_t>(std::atoll(env));
    return have_vnni() ? INT64_MAX : int64_t{4};
  }();
  return n;
}

// dot_rows: y[m*out + o] for o in [o0, o1) and the rows m in [0, M).
void dot_rows_generic(const float *x, const int8_t *w, const float *scale, const float *bias, float *y, int64_t M,
                      int64_t in, int64_t out, int64_t o0, int64_t o1) {
  for (int64_t o = o0; o < o1; o++) {
    const int8_t *wr = w + o * in;
    for (int64_t m = 0; m < M; m++) {
      const float *xr = x + m * in;
      float acc = 0;
      for (int64_t i = 0; i < in; i++) acc += static_cast<float>(wr[i]) * xr[i];
      y[m * out + o] = acc * scale[o] + (bias ? bias[o] : 0.f);
    }
  }
}

__attribute__((target("avx2,fma"))) inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma"))) inline __m256 load_w8(const int8_t *p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(p))));
}

// Four output rows against R (1 or 2) input rows: 4*R independent
// accumulators hide the FMA latency, and each x load serves four weights.
template <int R>
__attribute__((target("avx2,fma"))) void block4(const float *x, const int8_t *w, const float *scale,
                                                 const float *bias, float *y, int64_t in, int64_t out, int64_t o) {
  __m256 acc[4][R];
#pragma GCC unroll 4
  for (int j = 0; j < 4; j++)
#pragma GCC unroll 2
    for (int r = 0; r < R; r++) acc[j][r] = _mm256_setzero_ps();
  const int8_t *w0 = w + o * in;
  int64_t i = 0;
  for (; i + 8 <= in; i += 8) {
    __m256 wv[4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) wv[j] = load_w8(w0 + j * in + i);
#pragma GCC unroll 2
    for (int r = 0; r < R; r++) {
      __m256 xv = _mm256_loadu_ps(x + r * in + i);
#pragma GCC unroll 4
      for (int j = 0; j < 4; j++) acc[j][r] = _mm256_fmadd_ps(wv[j], xv, acc[j][r]);
    }
  }
  for (int j = 0; j < 4; j++) {
    for (int r = 0; r < R; r++) {
      float s = hsum(acc[j][r]);
      for (int64_t k = i; k < in; k++) s += static_cast<float>(w0[j * in + k]) * x[r * in + k];
      y[r * out + o + j] = s * scale[o + j] + (bias ? bias[o + j] : 0.f);
    }
  }
}

__attribute__((target("avx2,fma"))) void dot_rows_avx2(const float *x, const int8_t *w, const float *scale,
                                                        const float *bias, float *y, int64_t M, int64_t in,
                                                        int64_t out, int64_t o0, int64_t o1) {
  int64_t o = o0;
  for (; o + 4 <= o1; o += 4) {
    int64_t m = 0;
    for (; m + 2 <= M; m += 2) block4<2>(x + m * in, w, scale, bias, y + m * out, in, out, o);
    if (m < M) block4<1>(x + m * in, w, scale, bias, y + m * out, in, out, o);
  }
  if (o < o1) dot_rows_generic(x, w, scale, bias, y, M, in, out, o, o1);
}

bool have_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}

// The VNNI path (AVX-512 vpdpwssd): the row is quantized once per call to
// int16, symmetric, with its own scale, and each instruction multiplies 32
// int16 x int16 pairs (the int8 weights widened) into int32 sums, against 8
// float FMAs per instruction on the AVX2 path, so the step is bound by
// reading the weights again. Why not uint8 activations (vpdpbusd, twice the
// pairs): 8 bits per activation kept nano-ru's greedy reply on 14 of 20
// sessions, against 17 today (docs/cpu.md). The row uses as many levels
// as int32 sums allow without overflow: |sum| <= in * 127 * levels.
// DIALOGBOT_W8_VNNI=0 turns it off, to measure the AVX2 path on a VNNI CPU
// (int8.py reads it too).
bool have_vnni() {
  static const bool yes = [] {
    const char *env = std::getenv("DIALOGBOT_W8_VNNI");
    if (env != nullptr && std::string(env) == "0") return false;
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  }();
  return yes;
}

// row_levels: the largest |x_q|, 32767 for rows up to 516 features, fewer
// beyond (5504 for 3072). int8.py's _row_levels is the same.
int32_t row_levels(int64_t in) {
  const int64_t most = INT32_MAX / (std::max<int64_t>(in, 1) * 127);
  return static_cast<int32_t>(std::clamp<int64_t>(most, 1, 32767));
}

// quantize_row: scale = max|x| / levels (1 for a zero row), q = round(x /
// scale), half to even, with a true division (not a reciprocal) so that
// int8.py gets the same integers. Returns the scale.
__attribute__((target("avx512f,avx512bw,avx512vl"))) float quantize_row(const float *x, int16_t *q, int64_t in) {
  float amax = 0.f;
  for (int64_t i = 0; i < in; i++) amax = std::max(amax, std::fabs(x[i]));
  const int32_t levels = row_levels(in);
  float scale = amax / static_cast<float>(levels);
  if (!(scale > 0.f) || !std::isfinite(scale)) scale = 1.f;  // a zero row (or broken input)
  const __m512 sv = _mm512_set1_ps(scale), hi = _mm512_set1_ps(static_cast<float>(levels));
  const __m512 lo = _mm512_set1_ps(-static_cast<float>(levels));
  for (int64_t i = 0; i < in; i += 16) {
    const __mmask16 k = in - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (in - i)) - 1);
    __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(k, x + i), sv);
    v = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    _mm256_mask_storeu_epi16(q + i, k, _mm512_cvtepi32_epi16(_mm512_cvtps_epi32(v)));
  }
  return scale;
}

// J output rows against R quantized rows: J x R independent accumulators;
// each weight load (widened once) serves R rows and each activation load J
// weight rows. Tails use masked loads (zeros).
template <int J, int R>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void vnni_block(const int16_t *q, const float *qscale,
                                                                                 const int8_t *w, const float *scale,
                                                                                 const float *bias, float *y,
                                                                                 int64_t in, int64_t out, int64_t o) {
  __m512i acc[J][R];
#pragma GCC unroll 8
  for (int j = 0; j < J; j++) {
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) acc[j][r] = _mm512_setzero_si512();
  }
  const int8_t *w0 = w + o * in;
  int64_t i = 0;
  for (; i + 32 <= in; i += 32) {
    __m512i xv[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) xv[r] = _mm512_loadu_si512(q + r * in + i);
#pragma GCC unroll 8
    for (int j = 0; j < J; j++) {
      const __m512i wv = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(w0 + j * in + i)));
#pragma GCC unroll 4
      for (int r = 0; r < R; r++) acc[j][r] = _mm512_dpwssd_epi32(acc[j][r], xv[r], wv);
    }
  }
  if (i < in) {
    const __mmask32 k = (__mmask32(1) << (in - i)) - 1;
    __m512i xv[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) xv[r] = _mm512_maskz_loadu_epi16(k, q + r * in + i);
#pragma GCC unroll 8
    for (int j = 0; j < J; j++) {
      const __m512i wv = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(k, w0 + j * in + i));
#pragma GCC unroll 4
      for (int r = 0; r < R; r++) acc[j][r] = _mm512_dpwssd_epi32(acc[j][r], xv[r], wv);
    }
  }
#pragma GCC unroll 8
  for (int j = 0; j < J; j++) {
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
      const float f = qscale[r] * scale[o + j];
      y[r * out + o + j] = static_cast<float>(_mm512_reduce_add_epi32(acc[j][r])) * f + (bias ? bias[o + j] : 0.f);
    }
  }
}

// dot_rows_vnni: output rows [o0, o1) for all M quantized rows, a block of
// 8 weight rows at a time: the block is read from memory once and stays in
// L1 while the rows, two at a time, go over it.
void dot_rows_vnni(const int16_t *q, const float *qscale, const int8_t *w, const float *scale, const float *bias,
                   float *y, int64_t M, int64_t in, int64_t out, int64_t o0, int64_t o1) {
  int64_t o = o0;
  for (; o + 8 <= o1; o += 8) {
    int64_t m = 0;
    for (; m + 2 <= M; m += 2) vnni_block<8, 2>(q + m * in, qscale + m, w, scale, bias, y + m * out, in, out, o);
    if (m < M) vnni_block<8, 1>(q + m * in, qscale + m, w, scale, bias, y + m * out, in, out, o);
  }
  for (; o < o1; o++) {
    for (int64_t m = 0; m < M; m++) vnni_block<1, 1>(q + m * in, qscale + m, w, scale, bias, y + m * out, in, out, o);
  }
}

// Multiply-adds below which a layer runs on the calling thread alone: a
// chunk's bookkeeping and a helper's cache misses cost more than they
// save. DIALOGBOT_W8_SERIAL_WORK overrides it, for measuring.
int64_t serial_work() {
  static const int64_t n = [] {
    const char *env = std::getenv("DIALOGBOT_W8_SERIAL_WORK");
    int64_t v = env != nullptr ? std::atoll(env) : 0;
    return v > 0 ? v : int64_t{1} << 19;
  }();
  return n;
}

// Rows up to which a layer goes to the kernel's own workers (workers.h),
// which save the wake-ups of short layers; beyond, at::parallel_for, whose
// static split read the weights faster at 32 rows (docs/cpu.md).
constexpr int64_t kWorkerRows = 8;

// LayerChunks is a layer's rows against its weights cut into chunks of
// output rows (multiples of 8) of about 256K multiply-adds, for the
// kernel's own workers (workers.h). It keeps its inputs and the weights
// alive, since a helper may still be computing a chunk the caller took over
// after the call returned. The paths say how a chunk is computed.
struct LayerChunks : cbridge::ChunkWork {
  torch::Tensor w, scale, bias;  // bias undefined: none
  float *y = nullptr;
  int64_t M = 0, in = 0, out = 0, rows_per_chunk = 8;

  LayerChunks(const torch::Tensor &w_, const torch::Tensor &scale_, const c10::optional<torch::Tensor> &bias_,
              torch::Tensor &y_, int64_t rows)
      : w(w_), scale(scale_), y(y_.data_ptr<float>()), M(rows), in(w_.size(1)), out(w_.size(0)) {
    if (bias_ && bias_->defined()) bias = *bias_;
    rows_per_chunk = std::max<int64_t>(8, ((int64_t{1} << 18) / std::max<int64_t>(in * M, 1) + 7) / 8 * 8);
  }

  int64_t chunks() const override { return (out + rows_per_chunk - 1) / rows_per_chunk; }
  int64_t scratch_floats() const override { return M * rows_per_chunk; }

  // first and size of chunk c's output rows.
  std::pair<int64_t, int64_t> rows_of(int64_t c) const {
    const int64_t o0 = c * rows_per_chunk;
    return {o0, std::min(out, o0 + rows_per_chunk) - o0};
  }
  const float *bias_at(int64_t o0) const { return bias.defined() ? bias.data_ptr<float>() + o0 : nullptr; }

  // A chunk's outputs are computed as [M, its rows] into scratch.
  void commit(int64_t c, const float *scratch) const override {
    const auto [o0, n] = rows_of(c);
    for (int64_t m = 0; m < M; m++) std::memcpy(y + m * out + o0, scratch + m * n, n * sizeof(float));
  }
};

// VnniChunks: the VNNI path; it owns the rows quantized to int16.
struct VnniChunks final : LayerChunks {
  using LayerChunks::LayerChunks;
  std::vector<int16_t> q;
  std::vector<float> qscale;

  void compute(int64_t c, float *scratch) const override {
    const auto [o0, n] = rows_of(c);
    dot_rows_vnni(q.data(), qscale.data(), w.data_ptr<int8_t>() + o0 * in, scale.data_ptr<float>() + o0,
                  bias_at(o0), scratch, M, in, n, 0, n);
  }
};

// FloatChunks: the AVX2 path (or plain C++); it keeps the float rows.
struct FloatChunks final : LayerChunks {
  FloatChunks(const torch::Tensor &x_, const torch::Tensor &w_, const torch::Tensor &scale_,
              const c10::optional<torch::Tensor> &bias_, torch::Tensor &y_)
      : LayerChunks(w_, scale_, bias_, y_, x_.size(0)), x(x_) {}
  torch::Tensor x;

  // compute_rows writes output rows [o0, o1) of every row straight to y.
  void compute_rows(int64_t o0, int64_t o1) const {
    const int8_t *wp = w.data_ptr<int8_t>();
    const float *sp = scale.data_ptr<float>();
    if (have_avx2()) {
      dot_rows_avx2(x.data_ptr<float>(), wp, sp, bias_at(0), y, M, in, out, o0, o1);
    } else {
      dot_rows_generic(x.data_ptr<float>(), wp, sp, bias_at(0), y, M, in, out, o0, o1);
    }
  }

  void compute(int64_t c, float *scratch) const override {
    const auto [o0, n] = rows_of(c);
    const int8_t *wp = w.data_ptr<int8_t>() + o0 * in;
    const float *sp = scale.data_ptr<float>() + o0;
    if (have_avx2()) {
      dot_rows_avx2(x.data_ptr<float>(), wp, sp, bias_at(o0), scratch, M, in, n, 0, n);
    } else {
      dot_rows_generic(x.data_ptr<float>(), wp, sp, bias_at(o0), scratch, M, in, n, 0, n);
    }
  }
};

// on_workers says whether a layer goes to the kernel's own workers: big
// enough to share, and few enough rows that a parallel region's wake-up
// would be a large part of it.
bool on_workers(int threads, int64_t M, int64_t in, int64_t out) {
  return threads > 1 && M <= kWorkerRows && out * in * M >= serial_work();
}

// direct_vnni: the direct path on VNNI. Each row is quantized with its own
// scale; then the rows go over the weights together, a block of 8 output
// rows at a time, on the calling thread and the kernel's own workers (or,
// for many rows, libtorch's threads).
void direct_vnni(const torch::Tensor &x, const torch::Tensor &w, const torch::Tensor &scale,
                 const c10::optional<torch::Tensor> &bias, torch::Tensor &y) {
  const int64_t M = x.size(0), in = x.size(1), out = w.size(0);
  auto work = std::make_shared<VnniChunks>(w, scale, bias, y, M);
  work->q.resize(static_cast<size_t>(M * in));
  work->qscale.resize(static_cast<size_t>(M));
  for (int64_t m = 0; m < M; m++) {
    work->qscale[m] = quantize_row(x.data_ptr<float>() + m * in, work->q.data() + m * in, in);
  }
  const int threads = at::get_num_threads();
  if (on_workers(threads, M, in, out)) {
    cbridge::run_chunks(work, threads);
    return;
  }
  const int8_t *wp = w.data_ptr<int8_t>();
  const float *sp = scale.data_ptr<float>(), *b = work->bias_at(0);
  float *yp = y.data_ptr<float>();
  // Small layers stay on this thread; for many rows a wake-up is noise, and
  // a static split keeps each thread's weights one contiguous stream.
  const int64_t grain = std::max<int64_t>(8, (int64_t{1} << 20) / std::max<int64_t>(in * M, 1)) / 8;
  at::parallel_for(0, (out + 7) / 8, grain, [&](int64_t b0, int64_t b1) {
    dot_rows_vnni(work->q.data(), work->qscale.data(), wp, sp, b, yp, M, in, out, b0 * 8, std::min(out, b1 * 8));
  });
}

// direct: the direct path without VNNI (up to 4 rows: direct_rows), on the
// calling thread and the kernel's own workers.
void direct(const torch::Tensor &x, const torch::Tensor &w, const torch::Tensor &scale,
            const c10::optional<torch::Tensor> &bias, torch::Tensor &y) {
  const int64_t M = x.size(0), in = x.size(1), out = w.size(0);
  auto work = std::make_shared<FloatChunks>(x, w, scale, bias, y);
  const int threads = at::get_num_threads();
  if (threads <= 1 || out * in * M < serial_work()) {
    work->compute_rows(0, out);
    return;
  }
  if (on_workers(threads, M, in, out)) {
    cbridge::run_chunks(work, threads);
    return;
  }
  // More rows than the workers take (DIALOGBOT_W8_DIRECT_ROWS): libtorch's
  // threads, about 64K weights a task.
  const int64_t grain = std::max<int64_t>(4, (1 << 16) / std::max<int64_t>(in, 1)) / 4;
  at::parallel_for(0, (out + 3) / 4, grain, [&](int64_t b0, int64_t b1) {
    work->compute_rows(b0 * 4, std::min(out, b1 * 4));
  });
}

// Packed is a weight in the quantized engine's own layout (oneDNN here,
// fbgemm where libtorch has it), made on first use and then kept. The
// weak reference frees the entry with the model: a new model's weights at
// the same address are never mistaken for the old ones.
struct Packed {
  c10::weak_intrusive_ptr<c10::StorageImpl> storage;
  c10::intrusive_ptr<LinearPackedParamsBase> params;
};

std::mutex packed_mu;
std::unordered_map<const void *, Packed> packed_cache;

c10::intrusive_ptr<LinearPackedParamsBase> packed_for(const torch::Tensor &w, const torch::Tensor &scale,
                                                     const c10::optional<torch::Tensor> &bias) {
  std::lock_guard<std::mutex> lock(packed_mu);
  const void *key = w.data_ptr();
  auto it = packed_cache.find(key);
  if (it != packed_cache.end() && !it->second.storage.expired()) return it->second.params;
  for (auto e = packed_cache.begin(); e != packed_cache.end();) {
    e = e->second.storage.expired() ? packed_cache.erase(e) : std::next(e);
  }
  auto zero = torch::zeros({w.size(0)}, torch::kInt64);
  auto qw = at::_make_per_channel_quantized_tensor(w, scale.to(torch::kFloat64), zero, 0);
  static auto prepack = c10::Dispatcher::singleton()
                            .findSchemaOrThrow("quantized::linear_prepack", "")
                            .typed<c10::intrusive_ptr<LinearPackedParamsBase>(at::Tensor, c10::optional<at::Tensor>)>();
  auto params = prepack.call(qw, bias);
  packed_cache.insert_or_assign(key, Packed{c10::weak_intrusive_ptr<c10::StorageImpl>(w.storage().getWeakStorageImpl()), params});
  return params;
}

// full_range_ok: with VNNI, int8 products accumulate in 32 bits; without
// it (plain AVX2), pairs of uint8 x int8 products are summed in saturating
// 16-bit lanes, so activations must use 7 bits ("reduce range"), which
// costs exactness: nano-ru kept its first reply token on 17 of 20 sessions
// with 7 bits, 19 with 8 (docs/cpu.md). int8.py mirrors this rule.
bool full_range_ok() {
  static const bool yes = __builtin_cpu_supports("avx512vnni") || __builtin_cpu_supports("avxvnni");
  return yes;
}

// Rows per call of the quantized engine. oneDNN prepares a layer for the
// input shape of its first call only and rebuilds its kernel on every call
// of another shape; batched decode changes its row count at almost every
// step (a chat joins, one ends), so nano-ru at 32 chats ran at half of
// float32's speed. Calls of exactly this many rows (the last tile padded
// with zero rows, which change no quantization range) keep the one shape it
// prepared. DIALOGBOT_W8_TILE_ROWS overrides it, for measuring.
int64_t tile_rows() {
  static const int64_t n = [] {
    const char *env = std::getenv("DIALOGBOT_W8_TILE_ROWS");
    int64_t v = env != nullptr ? std::atoll(env) : 0;
    return v > 0 ? v : int64_t{32};
  }();
  return n;
}

// engine: many rows (prefill, batched decode), where the work is
// arithmetic, not reading weights: the quantized engine's int8 GEMM
// (activations quantized per call, as torch's dynamic int8 does) beats
// float FMAs there (docs/cpu.md).
torch::Tensor engine(const torch::Tensor &x, const torch::Tensor &w, const torch::Tensor &scale,
                     const c10::optional<torch::Tensor> &bias) {
  auto packed = packed_for(w, scale, bias);
  const int64_t M = x.size(0), T = tile_rows();
  const bool reduce = !full_range_ok();
  auto y = torch::empty({M, w.size(0)}, x.options());
  torch::Tensor pad;
  for (int64_t r0 = 0; r0 < M; r0 += T) {
    const int64_t n = std::min(T, M - r0);
    auto xt = x.narrow(0, r0, n);
    if (n < T) {
      pad = torch::zeros({T, x.size(1)}, x.options());
      pad.narrow(0, 0, n).copy_(xt);
      xt = pad;
    }
    y.narrow(0, r0, n).copy_(packed->apply_dynamic(xt, reduce).narrow(0, 0, n));
  }
  return y;
}

void check_args(const torch::Tensor &x, const torch::Tensor &w, const torch::Tensor &scale,
                const c10::optional<torch::Tensor> &bias) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == torch::kFloat32, "linear_w8: x must be float32 on the CPU");
  TORCH_CHECK(w.dim() == 2 && w.scalar_type() == torch::kInt8 && w.is_contiguous(),
              "linear_w8: w must be a contiguous int8 [out, in] matrix");
  TORCH_CHECK(x.size(-1) == w.size(1), "linear_w8: x has ", x.size(-1), " features, w expects ", w.size(1));
  TORCH_CHECK(scale.dim() == 1 && scale.size(0) == w.size(0) && scale.scalar_type() == torch::kFloat32 &&
                  scale.is_contiguous(),
              "linear_w8: scale must be float32 [out]");
  if (bias && bias->defined()) {
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == w.size(0) && bias->scalar_type() == torch::kFloat32 &&
                    bias->is_contiguous(),
                "linear_w8: bias must be float32 [out]");
  }
}

torch::Tensor linear_w8(const torch::Tensor &x, const torch::Tensor &w, const torch::Tensor &scale,
                        const c10::optional<torch::Tensor> &bias) {
  check_args(x, w, scale, bias);
  const int64_t in = w.size(1), out = w.size(0);
  auto x2 = x.reshape({-1, in}).contiguous();
  auto shape = x.sizes().vec();
  shape.back() = out;
  if (x2.size(0) > direct_rows()) return engine(x2, w, scale, bias).view(shape);
  auto y = torch::empty({x2.size(0), out}, x.options());
  if (x2.size(0) > 0 && have_vnni()) {
    direct_vnni(x2, w, scale, bias, y);
  } else if (x2.size(0) > 0) {
    direct(x2, w, scale, bias, y);
  }
  return y.view(shape);
}

}  // namespace

// linear_w8_avx2 tells cb_runtime_info whether the fast path runs here.
bool linear_w8_avx2() { return have_avx2(); }

TORCH_LIBRARY(dialogbot, m) {
  m.def("linear_w8(Tensor x, Tensor w, Tensor scale, Tensor? bias) -> Tensor");
}

TORCH_LIBRARY_IMPL(dialogbot, CPU, m) { m.impl("linear_w8", &linear_w8); }
