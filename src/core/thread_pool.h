// A small thread pool for data-parallel loops. Work is split into chunks that threads claim
// through an atomic counter, and the calling thread works too: if a worker is not scheduled
// (an oversubscribed machine), the caller simply does its share, so a parallel_for never waits
// on a thread that has nothing left to do.
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

class ThreadPool {
 public:
  // n_threads: total threads including the caller (>= 1); 0 means hardware concurrency.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(begin, end, thread_index) over [0, n) in chunks of at most `grain` items
  // (grain 0: n / (4 * size()) rounded up). thread_index is in [0, size()) and is unique among
  // concurrently running calls, so it can index per-thread scratch. Returns when all chunks are
  // done. Not reentrant: fn must not call parallel_for on the same pool.
  void parallel_for(int64_t n, int64_t grain,
                    const std::function<void(int64_t, int64_t, int)>& fn);

 private:
  struct Job;
  void worker_main(int index);
  static void run_chunks(Job& job, int thread_index);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::shared_ptr<Job> job_;
  std::atomic<uint64_t> generation_{0};
  bool stop_ = false;
};

}  // namespace qforge
