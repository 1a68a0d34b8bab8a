// attend.cpp: dialogbot::attend_one, the attention of a decode step (one new
// token per row) over the row's cache and the token itself.
//
// The same arithmetic in ATen ops (model/python/bridge_ops.py holds it as the
// reference) is a product and a sum over the whole cache for the scores, and
// again for the values: four element-wise ops a layer whose size grows with
// the cache. Past about 40 cached tokens each is big enough for libtorch to
// run it on all its threads, and under OMP_WAIT_POLICY=PASSIVE (the bridge's
// default) every such parallel region first wakes sleeping threads: measured
// on the 2-core dev VM, GPT-2-small int8 at one chat made about 33 of them a
// token, 1.5 ms of an 8 ms token (docs/cpu.md). Here the scores and the
// weighted values are plain AVX2 loops on the calling thread, and go to
// threads only when a step holds enough work to pay for waking them (many
// rows, long caches). Other devices and dtypes take the ATen ops.
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/torch.h>

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

namespace {

// The fill of masked scores, as model/python/gpt2.py's _MASK_VALUE.
constexpr double kMaskValue = -3.4028234663852886e38;

// Multiply-adds below which a step's attention stays on the calling thread:
// about the work two threads would do in the time it takes to wake one.
constexpr int64_t kSerialWork = int64_t{1} << 19;

torch::Tensor attend_aten(const torch::Tensor &q, const torch::Tensor &k, const torch::Tensor &v,
                          const torch::Tensor &past_k, const torch::Tensor &past_v, const torch::Tensor &mask,
                          double scale) {
  const int64_t s = past_k.size(-2);
  auto past_scores = (q * past_k).sum(-1).unsqueeze(2);
  auto scores = torch::cat({past_scores, (q * k).sum(-1, true)}, -1).to(torch::kFloat32) * scale;
  scores = scores.masked_fill(mask.logical_not(), kMaskValue);
  auto probs = torch::softmax(scores, -1).to(v.scalar_type());
  auto y_past = (probs.narrow(-1, 0, s).transpose(-1, -2) * past_v).sum(-2, true);
  return y_past + probs.narrow(-1, s, 1) * v;
}

bool cpu_has_avx2_fma() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}

__attribute__((target("avx2,fma"))) float dot_avx2(const float *a, const float *b, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  acc0 = _mm256_add_ps(acc0, acc1);
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc0), _mm256_extractf128_ps(acc0, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  float sum = _mm_cvtss_f32(h);
  for (; i < n; i++) sum += a[i] * b[i];
  return sum;
}

// y += a * x
__attribute__((target("avx2,fma"))) void axpy_avx2(float a, const float *x, float *y, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; i++) y[i] += a * x[i];
}

float dot_generic(const float *a, const float *b, int64_t n) {
  float sum = 0;
  for (int64_t i = 0; i < n; i++) sum += a[i] * b[i];
  return sum;
}

void axpy_generic(float a, const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

// The fast path takes float32 CPU tensors of one new token per row whose
// last dimension is contiguous, and a bool mask [B or 1, 1, 1, S+1].
bool fast_path_fits(const torch::Tensor &q, const torch::Tensor &k, const torch::Tensor &v,
                    const torch::Tensor &past_k, const torch::Tensor &past_v, const torch::Tensor &mask) {
  for (const auto *t : {&q, &k, &v, &past_k, &past_v}) {
    if (!t->device().is_cpu() || t->scalar_type() != torch::kFloat32 || t->dim() != 4 || t->stride(3) != 1) {
      return false;
    }
  }
  const int64_t B = q.size(0), H = q.size(1), D = q.size(3), S = past_k.size(2);
  return q.size(2) == 1 && k.sizes() == q.sizes() && v.sizes() == q.sizes() && past_k.size(0) == B &&
         past_k.size(1) == H && past_k.size(3) == D && past_v.sizes() == past_k.sizes() && mask.device().is_cpu() &&
         mask.scalar_type() == torch::kBool && mask.dim() == 4 && (mask.size(0) == B || mask.size(0) == 1) &&
         mask.size(1) == 1 && mask.size(2) == 1 && mask.size(3) == S + 1;
}

// A [B,H,...] tensor's row (b, h).
const float *row(const torch::Tensor &t, int64_t b, int64_t h) {
  return t.data_ptr<float>() + b * t.stride(0) + h * t.stride(1);
}

torch::Tensor attend_cpu(const torch::Tensor &q, const torch::Tensor &k, const torch::Tensor &v,
                         const torch::Tensor &past_k, const torch::Tensor &past_v, const torch::Tensor &mask,
                         double scale) {
  const int64_t B = q.size(0), H = q.size(1), D = q.size(3), S = past_k.size(2);
  const bool avx2 = cpu_has_avx2_fma();
  auto dot = avx2 ? dot_avx2 : dot_generic;
  auto axpy = avx2 ? axpy_avx2 : axpy_generic;
  const float fscale = static_cast<float>(scale), masked = static_cast<float>(kMaskValue);
  const bool *mp = mask.data_ptr<bool>();
  const int64_t mask_b = mask.size(0) == 1 ? 0 : mask.stride(0), mask_j = mask.stride(3);
  auto scores = torch::empty({B * H, S + 1}, q.options());
  float *sp = scores.data_ptr<float>();
  // Rows (b, h) per task: the whole step on the calling thread unless it
  // holds more than kSerialWork multiply-adds.
  const int64_t grain = std::max<int64_t>(1, kSerialWork / std::max<int64_t>(1, (S + 1) * D));
  at::parallel_for(0, B * H, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const int64_t b = r / H, h = r % H;
      const float *qr = row(q, b, h), *kr = row(past_k, b, h);
      float *sc = sp + r * (S + 1);
      for (int64_t j = 0; j < S; j++) sc[j] = dot(qr, kr + j * past_k.stride(2), D) * fscale;
      sc[S] = dot(qr, row(k, b, h), D) * fscale;
      for (int64_t j = 0; j <= S; j++) {
        if (!mp[b * mask_b + j * mask_j]) sc[j] = masked;
      }
    }
  });
  // libtorch's own softmax: vectorized, and on one thread at these sizes.
  auto probs = torch::softmax(scores, -1);
  const float *pp = probs.data_ptr<float>();
  auto y = torch::zeros({B, H, 1, D}, q.options());
  float *yp = y.data_ptr<float>();
  at::parallel_for(0, B * H, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const int64_t b = r / H, h = r % H;
      const float *vr = row(past_v, b, h), *p = pp + r * (S + 1);
      float *yr = yp + r * D;
      for (int64_t j = 0; j < S; j++) axpy(p[j], vr + j * past_v.stride(2), yr, D);
      axpy(p[S], row(v, b, h), yr, D);
    }
  });
  return y;
}

// attend_one: q, k, v [B,H,1,D] of the new token, past_k/past_v [B,H,S,D]
// the cache, mask [B,1,1,S+1] (true: may attend; the last column is the
// token itself). Returns [B,H,1,D] in v's dtype.
torch::Tensor attend_one(const torch::Tensor &q, const torch::Tensor &k, const torch::Tensor &v,
                         const torch::Tensor &past_k, const torch::Tensor &past_v, const torch::Tensor &mask,
                         double scale) {
  if (fast_path_fits(q, k, v, past_k, past_v, mask)) return attend_cpu(q, k, v, past_k, past_v, mask, scale);
  return attend_aten(q, k, v, past_k, past_v, mask, scale);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(dialogbot, m) {
  m.def(
      "attend_one(Tensor q, Tensor k, Tensor v, Tensor past_k, Tensor past_v, Tensor mask, float scale) -> "
      "Tensor");
}

// Every device: CUDA (and CPU dtypes other than float32) take the ATen ops.
TORCH_LIBRARY_IMPL(dialogbot, CompositeExplicitAutograd, m) { m.impl("attend_one", &attend_one); }
