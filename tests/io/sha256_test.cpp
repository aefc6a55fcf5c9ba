// SHA-256 against FIPS 180-2 test vectors and coreutils' sha256sum, and the sidecar format.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "io/sha256.h"
#include "test_util.h"

namespace qforge {
namespace {

std::string hash_of(const std::string& s) {
  return sha256_hex({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
}

}  // namespace

TEST(Sha256Vectors, Fips180TwoBlockAndMillionA) {
  EXPECT_EQ(hash_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // One million 'a', fed in uneven pieces through the streaming interface.
  std::string chunk(9973, 'a');
  Sha256 h;
  size_t left = 1'000'000;
  while (left) {
    size_t n = std::min(left, chunk.size());
    h.update(chunk.data(), n);
    left -= n;
  }
  EXPECT_EQ(h.hex_digest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // The object is reset after a digest.
  h.update("abc", 3);
  EXPECT_EQ(h.hex_digest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Vectors, FileDigestMatchesCoreutils) {
  test::TempDir tmp;
  std::string path = tmp.file("data.bin");
  {
    // 9 MiB + 7 bytes: crosses the 4 MiB read blocks unevenly.
    std::ofstream out(path, std::ios::binary);
    std::string block(1 << 20, '\0');
    for (size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>((i * 131) >> 3);
    for (int i = 0; i < 9; ++i) out << block;
    out << "tail!\n\x01";
  }
  auto ours = sha256_file(path);
  ASSERT_TRUE(ours.ok()) << ours.error().message;
  auto theirs = test::run_shell("sha256sum " + path + " | cut -c1-64");
  ASSERT_EQ(theirs.exit_code, 0);
  EXPECT_EQ(*ours + "\n", theirs.out);
  auto missing = sha256_file(tmp.file("nope.bin"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("nope.bin"), std::string::npos);
}

TEST(Sidecar, FormatIsSha256sumsAndErrorsNameTheFile) {
  test::TempDir tmp;
  std::string path = tmp.file("model.gguf");
  std::ofstream(path) << "weights";
  std::string hex = hash_of("weights");
  ASSERT_TRUE(write_sidecar(path, hex).ok());
  EXPECT_EQ(test::read_all(path + ".sha256"), hex + "  model.gguf\n");
  EXPECT_EQ(sidecar_path(path), path + ".sha256");
  EXPECT_EQ(read_sidecar(path).value(), hex);
  EXPECT_TRUE(verify_sidecar(path).ok());
  // Upper-case hex (as some tools write) is accepted.
  std::string upper = hex;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::ofstream(path + ".sha256") << upper << "  model.gguf\n";
  EXPECT_TRUE(verify_sidecar(path).ok());
  // Malformed and missing sidecars.
  std::ofstream(path + ".sha256") << "xyz  model.gguf\n";
  auto bad = verify_sidecar(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("malformed"), std::string::npos);
  EXPECT_NE(bad.error().message.find("model.gguf.sha256"), std::string::npos);
  std::filesystem::remove(path + ".sha256");
  auto none = verify_sidecar(path);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("no checksum sidecar"), std::string::npos);
  // A rewritten sidecar replaces the old one atomically.
  ASSERT_TRUE(write_sidecar(path, hex).ok());
  std::ofstream(path, std::ios::app) << "!";
  auto changed = verify_sidecar(path);
  ASSERT_FALSE(changed.ok());
  EXPECT_NE(changed.error().message.find("SHA-256 mismatch"), std::string::npos);
  ASSERT_TRUE(write_sidecar(path, hash_of("weights!")).ok());
  EXPECT_TRUE(verify_sidecar(path).ok());
}

}  // namespace qforge
