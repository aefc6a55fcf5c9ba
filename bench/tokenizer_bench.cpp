// Tokenizer throughput (issue #5: >= 5 MB/s): MB/s of encode() on a text file with a GGUF
// vocabulary, for the whole file in one call and line by line (one call per line, so the
// per-call word cache helps less). Figures use thread CPU time (the build machine is shared)
// and wall time; best of --reps runs.
//   tokenizer_bench [--model GGUF] [--file TEXT] [--reps N]
//   (defaults: ../shared/reference/mini-f16.gguf, ../shared/data/wikitext-2-test.raw, 5)
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "engine/tokenizer.h"
#include "formats/gguf.h"

namespace {

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}
double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Timing {
  double cpu = 1e30, wall = 1e30;
  size_t tokens = 0;
};

template <class F>
Timing measure(int reps, F&& f) {
  Timing t;
  for (int r = 0; r < reps; ++r) {
    const double c0 = cpu_seconds(), w0 = wall_seconds();
    t.tokens = f();
    t.cpu = std::min(t.cpu, cpu_seconds() - c0);
    t.wall = std::min(t.wall, wall_seconds() - w0);
  }
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model = "../shared/reference/mini-f16.gguf";
  std::string file = "../shared/data/wikitext-2-test.raw";
  int reps = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--model")) model = argv[i + 1];
    if (!std::strcmp(argv[i], "--file")) file = argv[i + 1];
    if (!std::strcmp(argv[i], "--reps")) reps = std::max(1, std::atoi(argv[i + 1]));
  }
  auto f = qforge::GgufFile::open(model);
  if (!f.ok()) {
    std::fprintf(stderr, "%s\n", f.error().message.c_str());
    return 1;
  }
  auto tok = qforge::Tokenizer::from_gguf(*f);
  if (!tok.ok()) {
    std::fprintf(stderr, "%s\n", tok.error().message.c_str());
    return 1;
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "%s: cannot open\n", file.c_str());
    return 1;
  }
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const double mb = static_cast<double>(text.size()) / 1e6;

  const Timing whole = measure(reps, [&] { return tok->encode(text, true).size(); });
  std::vector<std::string_view> lines;
  for (size_t pos = 0; pos < text.size();) {
    size_t e = text.find('\n', pos);
    e = e == std::string::npos ? text.size() : e + 1;
    lines.emplace_back(text.data() + pos, e - pos);
    pos = e;
  }
  const Timing by_line = measure(reps, [&] {
    size_t n = 0;
    for (auto l : lines) n += tok->encode(l, false).size();
    return n;
  });
  const Timing decode = measure(reps, [&] {
    static std::vector<int32_t> ids = tok->encode(text, false);
    return tok->decode(ids).size();
  });

  std::printf("model %s (%s, pre %s, %d tokens), file %s (%.2f MB)\n", model.c_str(),
              tok->is_spm() ? "SPM" : "BPE", tok->pre().c_str(), tok->n_vocab(), file.c_str(), mb);
  std::printf(
      "encode whole file : %8.2f MB/s cpu, %8.2f MB/s wall, %zu tokens (%.2f bytes/token)\n",
      mb / whole.cpu, mb / whole.wall, whole.tokens,
      static_cast<double>(text.size()) / static_cast<double>(whole.tokens));
  std::printf("encode per line   : %8.2f MB/s cpu, %8.2f MB/s wall, %zu lines\n", mb / by_line.cpu,
              mb / by_line.wall, lines.size());
  std::printf("decode            : %8.2f MB/s cpu, %8.2f MB/s wall (output bytes)\n",
              mb / decode.cpu, mb / decode.wall);
  return 0;
}
