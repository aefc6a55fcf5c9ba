#include "core/thread_pool.h"

#include <immintrin.h>
#include <sched.h>

#include <algorithm>
#include <chrono>

namespace qforge {

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

int max_threads() {
  return kMaxThreadsPerCore * available_cores();
}

namespace {

// Spins (pause) until done() or kSpinMicros have passed; returns done().
template <class Done>
bool spin_briefly(Done done) {
  const auto until =
      std::chrono::steady_clock::now() + std::chrono::microseconds(ThreadPool::kSpinMicros);
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      _mm_pause();
    }
    if (std::chrono::steady_clock::now() >= until) return done();
  }
}

}  // namespace

struct ThreadPool::Job {
  const std::function<void(int64_t, int64_t, int)>* fn = nullptr;
  int64_t n = 0, grain = 1, n_chunks = 0;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> completed{0};
  std::atomic<int> done{0};  // set (and notified) by whoever completes the last chunk
};

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = available_cores();
  n_threads_ = std::min(n_threads, max_threads());
  may_spin_ = n_threads_ <= available_cores();
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
    if (job.completed.fetch_add(1, std::memory_order_acq_rel) + 1 == job.n_chunks) {
      job.done.store(1, std::memory_order_release);
      job.done.notify_all();
    }
  }
}

void ThreadPool::worker_main(int index) {
  uint64_t seen = 0;
  for (;;) {
    if (may_spin_)
      spin_briefly([&] { return generation_.load(std::memory_order_acquire) != seen; });
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
  // Chunks claimed by workers may still run: wait for the last one, asleep after a short spin.
  auto finished = [&] { return job->done.load(std::memory_order_acquire) != 0; };
  if (!(may_spin_ && spin_briefly(finished)))
    while (!finished()) job->done.wait(0, std::memory_order_acquire);
  std::lock_guard<std::mutex> lock(mutex_);
  if (job_ == job) job_.reset();
}

}  // namespace qforge
