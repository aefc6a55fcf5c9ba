// Shared helpers for the GoogleTest suites.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace qforge::test {

// True in the ASan+UBSan build: tests that measure memory skip, and the slowest end-to-end
// tests use fewer evaluation chunks (the figures are checked by the release run).
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
#else
inline constexpr bool kSanitized = false;
#endif

// Root of the repository, tests/data, and ../shared (may not exist: tests that need it skip).
std::string source_dir();
std::string data_dir();
std::string shared_dir();
bool have_shared();
// Path of a file in ../shared; the calling test should GTEST_SKIP when it is missing.
std::string shared_path(const std::string& rel);
std::string qforge_binary();

// A fresh temporary directory removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs the qforge binary with the given argument string (shell-quoted by the caller).
CommandResult run_qforge(const std::string& args);
// Runs an arbitrary shell command.
CommandResult run_shell(const std::string& cmd);

std::string read_all(const std::string& path);
void write_text(const std::string& path, const std::string& text);

// `s` in single quotes, for the argument strings of run_qforge/run_shell (test paths hold no
// single quote).
std::string shell_quote(const std::string& s);
// Number of newline characters in `text` (a one-line error has exactly one).
int count_newlines(const std::string& text);
// Lines of `text`, without their newlines.
std::vector<std::string> split_lines(const std::string& text);

}  // namespace qforge::test

#define QF_REQUIRE_SHARED(rel)                                         \
  do {                                                                 \
    if (!std::filesystem::exists(::qforge::test::shared_path(rel)))    \
      GTEST_SKIP() << "needs ../shared/" << (rel) << " (not present)"; \
  } while (0)
