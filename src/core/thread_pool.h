// A small thread pool for data-parallel loops. Work is split into chunks that threads claim
// through an atomic counter, and the calling thread works too: if a worker is not scheduled
// (an oversubscribed machine), the caller simply does its share, so a parallel_for never waits
// on a thread that has nothing left to do.
//
// Waiting never burns a core for long: a worker (and the caller waiting for the last chunks)
// spins for at most kSpinMicros — the gap between the many small loops of a forward pass — and
// only while the pool is no larger than the cores it may run on; then it sleeps (condition
// variable for new work, futex via std::atomic::wait for completion). An oversubscribed pool
// never spins, so idle threads cannot starve the ones doing the work.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace qforge {

// CPUs this process may run on (its affinity mask; at least 1).
int available_cores();
// The largest pool the CLI accepts: kMaxThreadsPerCore x available_cores(). More threads than
// that only add scheduling overhead (each one gets a sliver of a core).
inline constexpr int kMaxThreadsPerCore = 4;
int max_threads();

class ThreadPool {
 public:
  // n_threads: total threads including the caller; 0 (or less) means available_cores().
  // Contract: n_threads <= max_threads() (larger values are clamped to it).
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(begin, end, thread_index) over [0, n) in chunks of at most `grain` items
  // (grain 0: n / (4 * size()) rounded up). thread_index is in [0, size()) and is unique among
  // concurrently running calls, so it can index per-thread scratch. Returns when all chunks are
  // done. Not reentrant: fn must not call parallel_for on the same pool.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t, int)>& fn);

  static constexpr int kSpinMicros = 50;

 private:
  struct Job;
  void worker_main(int index);
  static void run_chunks(Job& job, int thread_index);

  int n_threads_;
  bool may_spin_ = false;  // the pool fits on the cores
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::shared_ptr<Job> job_;
  std::atomic<uint64_t> generation_{0};
  bool stop_ = false;
};

}  // namespace qforge
