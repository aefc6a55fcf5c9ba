// Streaming bound of `qforge convert`: the converter's peak RSS stays under
// 2 x (largest tensor as F32) + 64 MiB on a checkpoint larger than that bound, i.e. it never
// holds the model. The figure is the process's own VmHWM (convert --json "peak_rss_bytes"):
// wait4()'s ru_maxrss would include this test process's high-water mark, inherited across
// fork + exec.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "formats/hf_checkpoint_fixture.h"
#include "test_util.h"

namespace qforge {
namespace {

TEST(ConvertMemory, PeakRssIsBoundedByTheLargestTensor) {
  if (test::kSanitized) GTEST_SKIP() << "RSS is not meaningful under AddressSanitizer";
  test::TempDir dir;
  test::HfSpec s;
  s.dtype = "F32";
  s.hidden = 512;
  s.ffn = 1024;
  s.heads = 8;
  s.kv_heads = 8;
  s.layers = 12;
  s.vocab = 48;
  s.shards = 2;
  const std::string in = (dir.path() / "big").string();
  test::write_hf_checkpoint(in, s);
  uint64_t total = 0, largest = 0;
  for (const auto& t : test::hf_tensor_plan(s)) {
    uint64_t n = 4;
    for (auto d : t.shape) n *= d;
    total += n;
    largest = std::max(largest, n);
  }
  const uint64_t bound = 2 * largest + (64ull << 20);
  ASSERT_GT(total, bound)
      << "the model must be larger than the bound for the test to mean anything";
  for (const char* outtype : {"f16", "f32"}) {
    SCOPED_TRACE(outtype);
    const std::string out = dir.file(std::string("out-") + outtype + ".gguf");
    auto r = test::run_qforge("--log-level warn convert '" + in + "' '" + out +
                              "' --json --outtype " + outtype);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const uint64_t rss = nlohmann::json::parse(r.out)["peak_rss_bytes"].get<uint64_t>();
    ASSERT_GT(rss, 0u);
    EXPECT_LT(rss, bound) << "peak RSS " << rss << " bytes; model " << total << " bytes (F32)";
  }
}

}  // namespace
}  // namespace qforge
