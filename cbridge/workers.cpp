// workers.cpp: see workers.h.
//
// A chunk's state goes free -> taken (by a helper) or mine (by the caller)
// -> committing (a helper won it) -> done. The caller takes free chunks
// first; then, for each chunk a helper holds, it waits a little and, if the
// helper is still at it, takes it over (taken -> mine). Whoever moves the
// state on from taken commits; the other's result is dropped.
#include "workers.h"

#include <immintrin.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace cbridge {
namespace {

enum : uint8_t { kFree, kTaken, kMine, kCommitting, kDone };

using Clock = std::chrono::steady_clock;

// How long a helper spins for the next job before it sleeps: longer than
// the gap between two layers of a step, short enough that an idle bot
// costs nothing.
constexpr auto kSpin = std::chrono::microseconds(200);
// How long the caller waits for a chunk a helper holds before it computes
// the chunk itself: several times a chunk's work.
// DIALOGBOT_W8_STEAL_AFTER_US overrides it: 0 makes the caller race the
// helpers for every chunk they hold, which the tests use.
std::chrono::microseconds steal_after() {
  static const std::chrono::microseconds d = [] {
    const char *env = std::getenv("DIALOGBOT_W8_STEAL_AFTER_US");
    return std::chrono::microseconds(env != nullptr && *env != '\0' ? std::atoll(env) : 50);
  }();
  return d;
}

struct Job {
  std::shared_ptr<const ChunkWork> work;
  int helpers = 0;                   // helpers with an id below this take part
  mutable std::atomic<int64_t> next{0};  // the next chunk to hand out
  std::unique_ptr<std::atomic<uint8_t>[]> state;
  int64_t n = 0;
};

struct Pool {
  std::mutex mu;
  std::condition_variable wake;
  std::shared_ptr<Job> job;          // guarded by mu
  std::atomic<uint64_t> seq{0};      // bumped with every new job
  std::atomic<int> sleepers{0};
  int started = 0;                   // helpers started (only grows); guarded by mu
  bool forked = false;               // in a child after fork(): no helpers there
};

Pool &pool() {
  static Pool *p = [] {
    auto *q = new Pool;  // never destroyed: helpers may outlive static destructors
    pthread_atfork(nullptr, nullptr, [] { pool().forked = true; });
    return q;
  }();
  return *p;
}

// take computes chunk c if its state moves from `from` to `to`; the caller
// (to == kMine) commits straight away, a helper only if the caller did not
// take the chunk over meanwhile.
void take(const Job &job, int64_t c, std::vector<float> &scratch, uint8_t from, uint8_t to) {
  if (!job.state[c].compare_exchange_strong(from, to)) return;
  scratch.resize(static_cast<size_t>(job.work->scratch_floats()));
  job.work->compute(c, scratch.data());
  uint8_t mine = to;
  if (to == kTaken && !job.state[c].compare_exchange_strong(mine, kCommitting)) return;  // taken over
  job.work->commit(c, scratch.data());
  job.state[c].store(kDone, std::memory_order_release);
}

void work_on(const Job &job, std::vector<float> &scratch, uint8_t as) {
  for (int64_t c; (c = job.next.fetch_add(1)) < job.n;) take(job, c, scratch, kFree, as);
}

std::shared_ptr<Job> wait_for_job(Pool &p, uint64_t &seen) {
  const auto until = Clock::now() + kSpin;
  while (p.seq.load() == seen && Clock::now() < until) _mm_pause();
  std::unique_lock<std::mutex> lock(p.mu);
  if (p.seq.load() == seen) {
    p.sleepers.fetch_add(1);
    p.wake.wait(lock, [&] { return p.seq.load() != seen; });
    p.sleepers.fetch_sub(1);
  }
  seen = p.seq.load();
  return p.job;
}

void helper(int id) {
  Pool &p = pool();
  std::vector<float> scratch;
  uint64_t seen = p.seq.load();
  for (;;) {
    std::shared_ptr<Job> job = wait_for_job(p, seen);
    if (job != nullptr && id < job->helpers) work_on(*job, scratch, kTaken);
  }
}

void publish(Pool &p, const std::shared_ptr<Job> &job) {
  {
    std::lock_guard<std::mutex> lock(p.mu);
    try {
      while (p.started < job->helpers) {
        std::thread(helper, p.started).detach();
        p.started++;
      }
    } catch (const std::system_error &) {
      job->helpers = p.started;  // no more threads to be had: go on with those there are
    }
    p.job = job;
    p.seq.fetch_add(1);
  }
  if (p.sleepers.load() > 0) p.wake.notify_all();
}

// finish waits for every chunk, taking over those a helper holds too long.
void finish(const Job &job, std::vector<float> &scratch) {
  for (int64_t c = 0; c < job.n; c++) {
    const auto since = Clock::now();
    for (uint8_t s; (s = job.state[c].load(std::memory_order_acquire)) != kDone;) {
      if ((s == kFree || s == kTaken) && Clock::now() - since >= steal_after()) {
        take(job, c, scratch, s, kMine);
        continue;
      }
      _mm_pause();
    }
  }
}

}  // namespace

void run_chunks(const std::shared_ptr<const ChunkWork> &work, int threads) {
  Pool &p = pool();
  thread_local std::vector<float> scratch;
  auto job = std::make_shared<Job>();
  job->work = work;
  job->n = work->chunks();
  job->helpers = p.forked ? 0 : std::max(0, std::min<int>(threads - 1, static_cast<int>(job->n) - 1));
  job->state.reset(new std::atomic<uint8_t>[static_cast<size_t>(job->n)]);
  for (int64_t c = 0; c < job->n; c++) job->state[c].store(kFree, std::memory_order_relaxed);
  if (job->helpers > 0) publish(p, job);
  work_on(*job, scratch, kMine);
  finish(*job, scratch);
  if (job->helpers > 0) {
    std::lock_guard<std::mutex> lock(p.mu);
    if (p.job == job) p.job = nullptr;  // helpers that come late find nothing
  }
}

}  // namespace cbridge
