// GoogleTest expectations shared by the command-line suites.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "test_util.h"

namespace qforge::test {

// A clean failure: non-zero exit, nothing on stdout, and stderr ending in exactly one
// "qforge: error:" line that names `what`.
inline void expect_clean_error(const CommandResult& r, const std::string& what) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
  const size_t at = r.err.rfind("qforge: error:");
  ASSERT_NE(at, std::string::npos) << r.err;
  const std::string last = r.err.substr(at);
  EXPECT_EQ(last.find('\n'), last.size() - 1) << r.err;
}

}  // namespace qforge::test
