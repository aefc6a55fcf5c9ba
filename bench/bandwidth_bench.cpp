// Memory read bandwidth of this machine (issue #12): the ceiling of token generation, which
// streams every weight once per token. Each thread sums its own slice of a buffer far larger
// than the last-level cache; the figure is bytes read / wall time, best of several passes.
//
//   bandwidth_bench [--mib 1024] [--threads 2] [--passes 5] [--json]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

// Eight independent accumulators so the loop is bound by loads, not by one add chain.
uint64_t sum_slice(const uint64_t* p, size_t n) {
  uint64_t a[8] = {};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) a[k] += p[i + k];
  for (; i < n; ++i) a[0] += p[i];
  uint64_t s = 0;
  for (uint64_t v : a) s += v;
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  size_t mib = 1024;
  int threads = 2, passes = 5;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> long {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bandwidth_bench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return std::atol(argv[++i]);
    };
    if (a == "--mib")
      mib = static_cast<size_t>(next());
    else if (a == "--threads")
      threads = static_cast<int>(next());
    else if (a == "--passes")
      passes = static_cast<int>(next());
    else if (a == "--json")
      json = true;
    else {
      std::fprintf(stderr,
                   "usage: bandwidth_bench [--mib N] [--threads N] [--passes N] [--json]\n");
      return 2;
    }
  }
  if (mib == 0 || threads < 1 || passes < 1) return 2;
  const size_t n = mib * (1u << 20) / sizeof(uint64_t);
  std::vector<uint64_t> buf(n);
  for (size_t i = 0; i < n; ++i) buf[i] = i * 0x9e3779b97f4a7c15ull;  // touch every page
  double best = 0;
  uint64_t check = 0;
  for (int p = 0; p < passes; ++p) {
    std::vector<uint64_t> part(static_cast<size_t>(threads));
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      const size_t from = n * static_cast<size_t>(t) / static_cast<size_t>(threads);
      const size_t to = n * static_cast<size_t>(t + 1) / static_cast<size_t>(threads);
      pool.emplace_back([&, t, from, to] {
        part[static_cast<size_t>(t)] = sum_slice(buf.data() + from, to - from);
      });
    }
    for (auto& th : pool) th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (uint64_t v : part) check += v;
    best = std::max(best, static_cast<double>(n * sizeof(uint64_t)) / s);
  }
  if (json)
    std::printf(
        "{\"read_bytes_per_second\": %.0f, \"threads\": %d, \"buffer_mib\": %zu, \"check\": "
        "%llu}\n",
        best, threads, mib, static_cast<unsigned long long>(check & 0xff));
  else
    std::printf("read bandwidth: %.2f GB/s (%d threads, %zu MiB buffer, best of %d)\n", best / 1e9,
                threads, mib, passes);
  return 0;
}
