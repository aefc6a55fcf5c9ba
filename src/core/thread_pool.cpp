#include "core/thread_pool.h"

#include <immintrin.h>

#include <algorithm>

namespace qforge {

struct ThreadPool::Job {
  const std::function<void(int64_t, int64_t, int)>* fn = nullptr;
  int64_t n = 0, grain = 1, n_chunks = 0;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> completed{0};
};

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  n_threads_ = n_threads;
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_main(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
    generation_.fetch_add(1);
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_chunks(Job& job, int thread_index) {
  for (;;) {
    int64_t c = job.next.fetch_add(1, std::memory_order_relaxed);
    if (c >= job.n_chunks) return;
    int64_t b = c * job.grain, e = std::min(job.n, b + job.grain);
    (*job.fn)(b, e, thread_index);
    job.completed.fetch_add(1, std::memory_order_release);
  }
}

void ThreadPool::worker_main(int index) {
  uint64_t seen = 0;
  for (;;) {
    // Spin briefly (cheap wake-up between the many small loops of a forward pass), then sleep.
    for (int spin = 0; spin < 20000 && generation_.load(std::memory_order_acquire) == seen; ++spin)
      _mm_pause();
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return stop_ || generation_.load() != seen; });
      if (stop_) return;
      seen = generation_.load();
      job = job_;
    }
    if (job) run_chunks(*job, index);
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int64_t, int64_t, int)>& fn) {
  if (n <= 0) return;
  if (grain <= 0) grain = std::max<int64_t>(1, (n + 4 * n_threads_ - 1) / (4 * n_threads_));
  if (n_threads_ == 1 || n <= grain) {
    fn(0, n, 0);
    return;
  }
  auto job = std::make_shared<Job>();
  job->fn = &fn;
  job->n = n;
  job->grain = grain;
  job->n_chunks = (n + grain - 1) / grain;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = job;
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();
  run_chunks(*job, 0);
  while (job->completed.load(std::memory_order_acquire) < job->n_chunks) _mm_pause();
  std::lock_guard<std::mutex> lock(mutex_);
  if (job_ == job) job_.reset();
}

}  // namespace qforge
