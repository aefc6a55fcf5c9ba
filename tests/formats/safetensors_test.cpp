// safetensors reader: parsing, zero-copy data, shards + index, and rejection of malformed
// headers (each a one-line error naming the file and, where there is one, the tensor).
#include "formats/safetensors.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "formats/hf_checkpoint_fixture.h"
#include "test_util.h"

namespace qforge {
namespace {

using test::StEntry;

std::vector<uint8_t> file_bytes(const std::string& path) {
  auto s = test::read_all(path);
  return {s.begin(), s.end()};
}

// Raw file image: u64 header length + header text + data.
std::vector<uint8_t> image(const std::string& header, size_t data_bytes,
                           uint64_t hlen_override = 0) {
  const uint64_t n = hlen_override ? hlen_override : header.size();
  std::string s(reinterpret_cast<const char*>(&n), 8);
  s += header;
  s.append(data_bytes, '\0');
  return {s.begin(), s.end()};
}

std::string parse_error(const std::vector<uint8_t>& img) {
  auto r = SafetensorsFile::parse(img, "x.safetensors");
  return r.ok() ? std::string("(parsed)") : r.error().message;
}

TEST(Safetensors, ParsesTensorsInDataOrderWithZeroCopyData) {
  test::TempDir dir;
  const std::string p = dir.file("m.safetensors");
  test::write_safetensors(
      p, {StEntry{"b", "F32", {2, 2}, test::encode_values({1, 2, 3, 4}, "F32")},
          StEntry{"a", "BF16", {3}, test::encode_values({0.5f, -1.0f, 2.0f}, "BF16")},
          StEntry{"ids", "I64", {1}, std::vector<uint8_t>(8, 7)}});
  auto f = SafetensorsFile::open(p);
  ASSERT_TRUE(f.ok()) << f.error().message;
  ASSERT_EQ(f->tensors().size(), 3u);
  EXPECT_EQ(f->metadata().at("format"), "pt");
  const auto& b = f->tensors()[0];
  EXPECT_EQ(b.name, "b");
  EXPECT_EQ(b.type, Type::F32);
  EXPECT_EQ(b.shape, (std::vector<uint64_t>{2, 2}));
  EXPECT_EQ(b.begin, 0u);
  EXPECT_EQ(b.end, 16u);
  float v[4];
  std::memcpy(v, f->data(b).data(), 16);
  EXPECT_EQ(v[3], 4.0f);
  const auto& a = f->tensors()[1];
  EXPECT_EQ(a.type, Type::BF16);
  EXPECT_EQ(f->data(a)[2], 0x80);  // bf16(-1.0) = 0xBF80, little-endian
  EXPECT_EQ(f->data(a)[3], 0xBF);
  EXPECT_FALSE(f->tensors()[2].type.has_value());  // I64 parses, but is not convertible
  EXPECT_EQ(f->tensors()[2].dtype, "I64");
  // Data is used in place: the span points into the file image at 8 + header length.
  const auto bytes = file_bytes(p);
  uint64_t hlen;
  std::memcpy(&hlen, bytes.data(), 8);
  EXPECT_EQ(f->data_offset(), 8 + hlen);
  EXPECT_EQ(f->data_offset() % 8, 0u);
}

TEST(Safetensors, EmbeddedMiniModel) {
  auto c = SafetensorsCheckpoint::open_dir(test::source_dir() + "/models/mini");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->files().size(), 1u);
  EXPECT_EQ(c->tensors().size(), 39u);
  const auto* e = c->find("model.embed_tokens.weight");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->shape, (std::vector<uint64_t>{4096, 256}));
  EXPECT_EQ(e->type, Type::BF16);
  EXPECT_EQ(e->n_bytes(), 4096u * 256 * 2);
  uint64_t total = 0;
  for (const auto& t : c->tensors()) total += t.n_elements();
  EXPECT_EQ(total, 5245184u);  // 5.25 M params
}

TEST(Safetensors, RejectsHeaderLongerThanFile) {
  auto img = image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4, 1000);
  EXPECT_EQ(parse_error(img), "x.safetensors: header length 1000 exceeds the file size " +
                                  std::to_string(img.size()));
  EXPECT_NE(parse_error({1, 2, 3}).find("header length missing"), std::string::npos);
  auto huge = image("{}", 0, ~0ull);
  EXPECT_NE(parse_error(huge).find("exceeds the file size"), std::string::npos);
}

TEST(Safetensors, RejectsMalformedEntries) {
  struct Case {
    std::string header;
    size_t data;
    std::string expect;
  };
  const Case cases[] = {
      {"{not json", 0, "header is not valid JSON"},
      {"[1,2]", 0, "header is not a JSON object"},
      {R"({"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}})", 1,
       "tensor 'a': unknown dtype 'Q4'"},
      {R"({"a":{"shape":[1],"data_offsets":[0,4]}})", 4, "tensor 'a': missing dtype"},
      {R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4,
       "not a non-negative integer"},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}})", 4,
       "tensor 'a': data ends at 8, past the 4 bytes of tensor data"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,0]}})", 8, "are reversed"},
      {R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8,
       "tensor 'a': 8 bytes of data, but dtype F32 x shape [3] needs 12"},
      {R"({"a":{"dtype":"BF16","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8,
       "overflows"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       12, "tensors 'a' and 'b' overlap"},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
       8, "tensor 'a' is defined twice"},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4, "data_offsets must be"},
      {R"({"__metadata__":{"k":1}})", 0, "__metadata__ key 'k' is not a string"},
  };
  for (const auto& c : cases) {
    const std::string err = parse_error(image(c.header, c.data));
    EXPECT_NE(err.find(c.expect), std::string::npos) << c.header << "\n  -> " << err;
    EXPECT_EQ(err.rfind("x.safetensors: ", 0), 0u) << err;
    EXPECT_EQ(err.find('\n'), std::string::npos);
  }
  // Empty tensors take no bytes and overlap nothing.
  auto ok = image(
      R"({"e":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
      4);
  EXPECT_EQ(parse_error(ok), "(parsed)");
}

TEST(Safetensors, FileSuppliedNamesAreEscapedInErrors) {
  const std::string err = parse_error(
      image("{\"a\\nb\":{\"dtype\":\"Q\\u0007\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1));
  EXPECT_EQ(err, "x.safetensors: tensor 'a\\x0Ab': unknown dtype 'Q\\x07'");
}

TEST(Safetensors, ShardsWithIndex) {
  test::TempDir dir;
  test::HfSpec spec;
  spec.shards = 3;
  test::write_hf_checkpoint(dir.path().string(), spec);
  auto c = SafetensorsCheckpoint::open_dir(dir.path().string());
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->files().size(), 3u);
  EXPECT_EQ(c->tensors().size(), test::hf_tensor_plan(spec).size());
  const auto* t = c->find("model.norm.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(c->data(*t).size(), 32u * 2);

  // A shard listed in the index but absent.
  std::filesystem::remove(dir.file("model-00002-of-00003.safetensors"));
  auto r = SafetensorsCheckpoint::open_dir(dir.path().string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, dir.file("model-00002-of-00003.safetensors") + ": shard listed in " +
                                   dir.file("model.safetensors.index.json") + " is missing");
}

TEST(Safetensors, IndexErrors) {
  test::TempDir dir;
  test::write_safetensors(dir.file("a.safetensors"),
                          {StEntry{"x", "F32", {1}, test::encode_values({1}, "F32")}});
  test::write_safetensors(dir.file("b.safetensors"),
                          {StEntry{"x", "F32", {1}, test::encode_values({1}, "F32")}});
  auto write_index = [&](const std::string& wm) {
    std::ofstream(dir.file("model.safetensors.index.json")) << R"({"weight_map":)" << wm << "}";
  };
  auto err = [&] {
    auto r = SafetensorsCheckpoint::open_dir(dir.path().string());
    return r.ok() ? std::string("(ok)") : r.error().message;
  };
  write_index(R"({"x":"../a.safetensors"})");
  EXPECT_NE(err().find("not a file in the folder"), std::string::npos) << err();
  write_index(R"({"x":"a.safetensors","y":"b.safetensors"})");
  EXPECT_NE(err().find("tensor 'x' is also in"), std::string::npos) << err();
  write_index(R"({"x":"a.safetensors","z":"a.safetensors"})");
  EXPECT_EQ(err(),
            dir.file("a.safetensors") + ": tensor 'z' listed in the index is not in the shard");
  write_index(R"({})");
  EXPECT_NE(err().find("missing or empty weight_map"), std::string::npos);
  std::ofstream(dir.file("model.safetensors.index.json")) << "{";
  EXPECT_NE(err().find("not a valid JSON object"), std::string::npos);
  std::filesystem::remove(dir.file("model.safetensors.index.json"));
  EXPECT_EQ(err(), dir.path().string() + ": no model.safetensors or model.safetensors.index.json");
}

TEST(Safetensors, TruncatedFileIsRejectedAtEveryLength) {
  test::TempDir dir;
  const std::string p = dir.file("m.safetensors");
  test::write_safetensors(
      p, {StEntry{"a", "F16", {8}, test::encode_values(std::vector<float>(8, 1.f), "F16")}});
  const auto full = file_bytes(p);
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<long>(n));
    auto r = SafetensorsFile::parse(cut, "cut");
    EXPECT_FALSE(r.ok()) << "length " << n;
  }
  EXPECT_TRUE(SafetensorsFile::parse(full, "full").ok());
}

}  // namespace
}  // namespace qforge
