// workers.h: the int8 kernel's own helper threads (workers.cpp).
//
// Why not at::parallel_for: under OMP_WAIT_POLICY=PASSIVE, the bridge's
// default because spinning OpenMP threads collapse beside another busy
// process, every parallel region first wakes a sleeping thread and then
// waits for it at the end, tens of microseconds on a small VM, 36 times a
// GPT-2-small token. Here the caller never waits for a helper to wake up:
// the work is cut into chunks that whoever is there takes, helpers spin a
// short while after a job (the next layer of the step comes within tens of
// microseconds) before they sleep, and a chunk that a helper took but does
// not finish soon (it was preempted) is computed by the caller instead,
// whose result then wins. So a helper can make a step faster, never slower
// by more than a short spin.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

namespace cbridge {

// ChunkWork is one call's work, cut into chunks that are computed into a
// scratch buffer and then committed to the destination. compute may run on
// a helper after the caller has returned (a stolen chunk's loser): it must
// only read what the work owns or keeps alive. commit runs only while the
// caller waits, at most once per chunk.
struct ChunkWork {
  virtual ~ChunkWork() = default;
  virtual int64_t chunks() const = 0;
  virtual int64_t scratch_floats() const = 0;  // a chunk's result, at most
  virtual void compute(int64_t chunk, float *scratch) const = 0;
  virtual void commit(int64_t chunk, const float *scratch) const = 0;
};

// run_chunks computes and commits every chunk of work, with up to
// threads - 1 helpers, and returns once all are committed.
void run_chunks(const std::shared_ptr<const ChunkWork> &work, int threads);

}  // namespace cbridge
