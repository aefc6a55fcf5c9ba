// Opening the tokenizer of a GGUF in ../shared, for the tokenizer tests.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "engine/tokenizer.h"
#include "formats/gguf.h"
#include "test_util.h"

namespace qforge::test {

// The tokenizer of ../shared/`rel`; a file that does not open or load fails the test.
inline Tokenizer open_tokenizer(const std::string& rel) {
  auto f = GgufFile::open(shared_path(rel));
  EXPECT_TRUE(f.ok()) << f.error().message;
  auto t = Tokenizer::from_gguf(*f);
  EXPECT_TRUE(t.ok()) << t.error().message;
  return std::move(t).value();
}

}  // namespace qforge::test
