#include "test_util.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

namespace qforge::test {

std::string source_dir() {
  return QFORGE_SOURCE_DIR;
}
std::string data_dir() {
  return QFORGE_TEST_DATA_DIR;
}
std::string shared_dir() {
  if (const char* e = std::getenv("QFORGE_SHARED_DIR")) return e;
  return QFORGE_SHARED_DIR;
}
bool have_shared() {
  return std::filesystem::exists(shared_dir() + "/README.md");
}
std::string shared_path(const std::string& rel) {
  return shared_dir() + "/" + rel;
}
std::string qforge_binary() {
  return QFORGE_BINARY;
}

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  std::random_device rd;
  auto base = std::filesystem::temp_directory_path();
  for (;;) {
    path_ = base / ("qforge-test-" + std::to_string(getpid()) + "-" +
                    std::to_string(counter.fetch_add(1)) + "-" + std::to_string(rd() % 100000));
    if (std::filesystem::create_directory(path_)) break;
  }
}
TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

CommandResult run_shell(const std::string& cmd) {
  TempDir tmp;
  std::string out = tmp.file("out"), err = tmp.file("err");
  std::string full = "(" + cmd + ") >" + out + " 2>" + err + " </dev/null";
  int rc = std::system(full.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
  r.out = read_all(out);
  r.err = read_all(err);
  return r;
}

CommandResult run_qforge(const std::string& args) {
  return run_shell(qforge_binary() + " " + args);
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string shell_quote(const std::string& s) {
  return "'" + s + "'";
}

int count_newlines(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

}  // namespace qforge::test
