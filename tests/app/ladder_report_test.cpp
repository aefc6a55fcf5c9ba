// The ladder on models/mini end to end (two mixes, a few chunks): manifest.json holds every
// file with its SHA-256 and every figure; report.html is self-contained and its numbers equal
// the manifest's; headless Chromium renders it (skipped with a message when not installed).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace qforge {
namespace {

std::string attr(const std::string& row, const std::string& name) {
  std::smatch m;
  if (std::regex_search(row, m, std::regex(" " + name + "=\"([^\"]*)\""))) return m[1];
  return "";
}

TEST(LadderReport, ManifestHtmlAndScreenshot) {
  test::TempDir tmp;
  const std::string out = tmp.file("out");
  const std::string src = test::source_dir();
  // --no-bench: the default tg_ratio gate compares two timings of a model this small, which
  // made the "Q8_0 passes" assertion below depend on the machine's load (seen: 0.647 < 0.66).
  auto r = test::run_qforge("ladder " + src + "/models/mini " + out +
                            " --mixes Q8_0,Q2_K --chunks 3 --ctx 128 --threads 2 --ram 8GiB"
                            " --no-bench --eval-text " +
                            src + "/data/eval-sample.txt");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Report: " + out + "/report.html"), std::string::npos) << r.out;
  auto manifest = nlohmann::json::parse(test::read_all(out + "/manifest.json"));
  ASSERT_EQ(manifest["variants"].size(), 3u);
  ASSERT_EQ(manifest["files"].size(), 3u);
  for (const auto& f : manifest["files"]) {
    EXPECT_TRUE(f["verified"].get<bool>()) << f;
    EXPECT_EQ(f["sha256"].get<std::string>().size(), 64u);
    EXPECT_EQ(test::read_all(f["path"].get<std::string>() + ".sha256").substr(0, 64), f["sha256"]);
    EXPECT_EQ(std::filesystem::file_size(f["path"].get<std::string>()), f["bytes"].get<uint64_t>());
  }
  // Default gates: Q8_0 passes, Q2_K fails on KLD.
  EXPECT_TRUE(manifest["variants"][1]["passes"].get<bool>()) << manifest["variants"][1]["checks"];
  EXPECT_FALSE(manifest["variants"][2]["passes"].get<bool>());
  EXPECT_EQ(manifest["recommended"], "Q8_0");
  EXPECT_EQ(manifest["plan"]["ram_bytes"], 8ull << 30);
  EXPECT_EQ(manifest["checklist"].size(), 7u);

  const std::string html = test::read_all(out + "/report.html");
  // Self-contained: no external resource (the SVG namespace URI is not fetched).
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("href="), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("Pareto front"), std::string::npos);
  EXPECT_NE(html.find("Pre-deployment checklist"), std::string::npos);
  std::regex row_re("<tr data-variant=\"[^>]*>");
  size_t rows = 0;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), row_re);
       it != std::sregex_iterator(); ++it) {
    const std::string row = it->str();
    const std::string name = attr(row, "data-variant");
    const nlohmann::json* v = nullptr;
    for (const auto& x : manifest["variants"])
      if (x["name"] == name) v = &x;
    ASSERT_NE(v, nullptr) << name;
    SCOPED_TRACE(name);
    EXPECT_EQ(attr(row, "data-file-bytes"), (*v)["file_bytes"].dump());
    EXPECT_EQ(attr(row, "data-ppl"), (*v)["ppl"].dump());
    EXPECT_EQ(attr(row, "data-sha256"), (*v)["sha256"].get<std::string>());
    if (v->contains("kld_mean")) {
      EXPECT_EQ(attr(row, "data-kld-mean"), (*v)["kld_mean"].dump());
    }
    if (v->contains("tg_tokens_per_second")) {
      EXPECT_EQ(attr(row, "data-tg-tokens-per-second"), (*v)["tg_tokens_per_second"].dump());
    }
    // The visible cell shows the same byte count.
    EXPECT_NE(row.size(), 0u);
    EXPECT_NE(html.find("<td>" + (*v)["file_bytes"].dump() + "</td>"), std::string::npos);
    ++rows;
  }
  EXPECT_EQ(rows, 3u);

  const std::string png = tmp.file("report.png");
  auto shot =
      test::run_shell("bash " + src + "/bench/report_screenshot.sh " + out + "/report.html " + png);
  if (shot.exit_code == 2) GTEST_SKIP() << "chromium not installed: " << shot.err;
  ASSERT_EQ(shot.exit_code, 0) << shot.err;
  const std::string bytes = test::read_all(png);
  ASSERT_GT(bytes.size(), 10000u);
  EXPECT_EQ(bytes.substr(1, 3), "PNG");
}

}  // namespace
}  // namespace qforge
