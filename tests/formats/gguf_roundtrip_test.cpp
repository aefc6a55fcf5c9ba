#include <gtest/gtest.h>

#include "formats/gguf.h"
#include "io/mapped_file.h"
#include "test_util.h"

namespace qforge {

// Reading and re-writing each reference GGUF (KVs, tensor infos, data) gives the same bytes.
TEST(GgufWriter, RoundTripIsByteIdentical) {
  QF_REQUIRE_SHARED("reference/mini-Q4_K_M.gguf");
  const char* files[] = {"reference/mini-f16.gguf",        "reference/mini-Q4_0.gguf",
                         "reference/mini-Q4_K_M.gguf",     "reference/mini-Q6_K.gguf",
                         "reference/mini-Q8_0.gguf",       "reference/tiny-qwen2-f16.gguf",
                         "reference/tiny-spm-f16.gguf",    "reference/quant-vectors.gguf",
                         "reference/refmodel-f16.gguf",    "vocab/ggml-vocab-gpt-2.gguf",
                         "vocab/ggml-vocab-llama-spm.gguf"};
  test::TempDir tmp;
  for (const char* rel : files) {
    SCOPED_TRACE(rel);
    auto in = GgufFile::open(test::shared_path(rel));
    ASSERT_TRUE(in.ok()) << in.error().message;
    std::string out_path = tmp.file("out.gguf");
    GgufWriterOptions opt;
    opt.version = in->version();
    opt.overwrite = true;
    auto w = GgufWriter::create(out_path, opt);
    ASSERT_TRUE(w.ok()) << w.error().message;
    w->copy_kvs(*in);
    for (const auto& t : in->tensors()) ASSERT_TRUE(w->add_tensor(t.name, t.dims, t.type).ok());
    ASSERT_EQ(w->planned_size(), in->file_size());
    ASSERT_TRUE(w->write_header().ok());
    for (const auto& t : in->tensors()) ASSERT_TRUE(w->write_tensor_data(in->tensor_data(t)).ok());
    auto digest = w->commit();
    ASSERT_TRUE(digest.ok()) << digest.error().message;
    auto a = MappedFile::open(test::shared_path(rel));
    auto b = MappedFile::open(out_path);
    ASSERT_EQ(a->size(), b->size());
    EXPECT_TRUE(std::equal(a->bytes().begin(), a->bytes().end(), b->bytes().begin()));
  }
}

}  // namespace qforge
