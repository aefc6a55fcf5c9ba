// qforge plan: acceptance 1 (every mix's exact byte count equals what quantize writes; KV bytes
// as llama.cpp allocates them), MemAvailable without --ram, and a budget nothing fits.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace qforge {

TEST(PlanCli, RefmodelBytesEqualQuantizeOutput) {
  QF_REQUIRE_SHARED("reference/refmodel-f16.gguf");
  const std::string ref = test::shared_path("reference/refmodel-f16.gguf");
  auto r = test::run_qforge("plan " + ref + " --ram 8GiB --ctx 2048 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["ram_bytes"], 8ull << 30);
  EXPECT_EQ(j["ram_source"], "--ram");
  // llama.cpp for refmodel at -c 2048: "llama_kv_cache: size = 12.00 MiB (2048 cells, 6 layers,
  // 1/1 seqs), K (f16): 6.00 MiB, V (f16): 6.00 MiB".
  EXPECT_EQ(j["kv_cache"]["bytes"], 12ull << 20);
  EXPECT_EQ(j["kv_cache"]["cells"], 2048);
  EXPECT_GE(j["mixes"].size(), 19u);
  test::TempDir tmp;
  int checked = 0;
  for (const auto& m : j["mixes"]) {
    ASSERT_TRUE(m["file_bytes"].is_number_unsigned());
    const std::string mix = m["mix"];
    if (mix != "Q8_0" && mix != "Q2_K") continue;
    const std::string out = tmp.file(mix + ".gguf");
    // The bytes do not depend on the encoder; ggml's is the fast one under the sanitizers.
    auto q = test::run_qforge("quantize " + ref + " " + out + " " + mix +
                              (test::kSanitized ? " --ggml-compatible" : ""));
    ASSERT_EQ(q.exit_code, 0) << q.err;
    EXPECT_EQ(std::filesystem::file_size(out), m["file_bytes"].get<uint64_t>()) << mix;
    ++checked;
  }
  EXPECT_EQ(checked, 2);
}

TEST(PlanCli, MemAvailableWithoutRamAndNothingFits) {
  QF_REQUIRE_SHARED("reference/mini-f16.gguf");
  const std::string mini = test::shared_path("reference/mini-f16.gguf");
  auto r = test::run_qforge("plan " + mini + " --ctx 256 --mixes Q8_0,Q4_K_M");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("(MemAvailable)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Recommendation: Q4_K_M"), std::string::npos) << r.out;
  auto n = test::run_qforge("plan " + mini + " --ram 2MB --mixes Q8_0,Q4_K_M,Q2_K");
  EXPECT_EQ(n.exit_code, 1);
  EXPECT_EQ(std::count(n.err.begin(), n.err.end(), '\n'), 1) << n.err;
  EXPECT_NE(n.err.find("nothing fits in 1.91 MiB: the smallest option, Q2_K, needs"),
            std::string::npos)
      << n.err;
  EXPECT_NE(n.err.find("MiB missing"), std::string::npos) << n.err;
  auto bad = test::run_qforge("plan " + mini + " --ram 8XB");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("invalid size '8XB'"), std::string::npos) << bad.err;
}

}  // namespace qforge
