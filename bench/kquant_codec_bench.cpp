// K-quant encoder/decoder throughput (one thread): ggml-compatible vs refined encoding, with and
// without an imatrix, on synthetic Gaussian rows (4096 columns). Figures are input MB/s of thread
// CPU time (F32 bytes in) and the refined/ggml time ratio, plus the relative RMS error of both
// modes (imatrix-weighted on the imatrix rows).
//   usage: kquant_codec_bench [rows=256] [type, e.g. Q4_K: only that one]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "core/types.h"
#include "kernels/codec.h"

namespace {

using qforge::Type;

// Thread CPU time: the build machine is shared, wall time would measure the neighbours too.
double cpu_now() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// sqrt(sum w (y-x)^2 / sum w x^2), w = per-column importance (nullptr: 1).
double rel_rmse(const std::vector<float>& x, const std::vector<float>& y, const float* w,
                size_t cols) {
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double wi = w ? w[i % cols] : 1.0;
    const double d = static_cast<double>(y[i]) - x[i];
    num += wi * d * d;
    den += wi * static_cast<double>(x[i]) * x[i];
  }
  return std::sqrt(num / den);
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t rows = argc > 1 ? std::atoll(argv[1]) : 256;
  const int64_t cols = 4096;
  std::vector<float> x(static_cast<size_t>(rows * cols)), imx(cols);
  std::mt19937 rng(42);
  std::normal_distribution<float> g(0.0f, 0.02f);
  for (auto& f : x) f = g(rng);
  std::uniform_real_distribution<float> u(0.1f, 4.0f);
  for (auto& f : imx) f = u(rng);
  const double mb = static_cast<double>(x.size()) * sizeof(float) / 1e6;

  std::printf("rows=%lld cols=%lld (%.1f MB of F32), 1 thread\n", static_cast<long long>(rows),
              static_cast<long long>(cols), mb);
  std::printf("%-5s %-8s %12s %12s %7s %12s %11s %11s\n", "type", "imatrix", "ggml MB/s",
              "refined MB/s", "ratio", "decode MB/s", "ggml rmse", "ours rmse");
  const Type types[] = {Type::Q2_K, Type::Q3_K, Type::Q4_K, Type::Q5_K, Type::Q6_K};
  for (Type t : types) {
    if (argc > 2 && qforge::type_name(t) != argv[2]) continue;
    const qforge::Codec& c = qforge::reference_codecs()[static_cast<size_t>(t)];
    const uint64_t rs = *qforge::row_size(t, cols);
    std::vector<uint8_t> q(rs * rows);
    std::vector<float> y(x.size());
    for (int with_imx = 0; with_imx < 2; ++with_imx) {
      double secs[2], err[2];
      for (int mode = 0; mode < 2; ++mode) {
        qforge::QuantizeOptions opt;
        opt.ggml_compatible = mode == 0;
        opt.imatrix = with_imx ? imx.data() : nullptr;
        secs[mode] = 1e30;  // best of 3: the machine is shared
        for (int rep = 0; rep < 3; ++rep) {
          const double t0 = cpu_now();
          c.quantize(x.data(), q.data(), rows, cols, opt);
          secs[mode] = std::min(secs[mode], cpu_now() - t0);
        }
        c.dequantize(q.data(), y.data(), static_cast<int64_t>(y.size()));
        err[mode] = rel_rmse(x, y, opt.imatrix, static_cast<size_t>(cols));
      }
      const double t0 = cpu_now();
      c.dequantize(q.data(), y.data(), static_cast<int64_t>(y.size()));
      const double dsec = cpu_now() - t0;
      std::printf("%-5s %-8s %12.1f %12.1f %7.2f %12.1f %11.6f %11.6f\n",
                  std::string(qforge::type_name(t)).c_str(), with_imx ? "yes" : "no", mb / secs[0],
                  mb / secs[1], secs[1] / secs[0], mb / dsec, err[0], err[1]);
    }
  }
  return 0;
}
