#include "io/write_behind.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "io/sha256.h"

namespace qforge {
namespace fs = std::filesystem;

namespace {

std::vector<uint8_t> read_all(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::vector<uint8_t> pattern(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 131 + (i >> 11));
  return v;
}

struct TempPath {
  fs::path path = fs::temp_directory_path() / ("qforge-write-behind-" + std::to_string(getpid()));
  ~TempPath() { fs::remove(path); }
};

}  // namespace

// Pieces of odd sizes across many buffer boundaries (the background thread runs): the file and
// the digest are exactly the appended bytes, in order.
TEST(WriteBehind, ManyBuffersArriveInOrderWithTheirDigest) {
  TempPath tmp;
  const int fd = ::open(tmp.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  const std::vector<uint8_t> data = pattern(5'000'003);
  std::string digest;
  {
    WriteBehind w(fd, 64 << 10);
    size_t off = 0, piece = 1;
    while (off < data.size()) {
      const size_t n = std::min(piece, data.size() - off);
      ASSERT_EQ(w.append(data.data() + off, n), 0);
      off += n;
      piece = piece * 7 % 200'003 + 1;
    }
    ASSERT_EQ(w.finish(), 0);
    digest = w.hex_digest();
  }
  ::close(fd);
  EXPECT_EQ(digest, sha256_hex(data));
  EXPECT_EQ(read_all(tmp.path), data);
}

// Less than one buffer: written at finish(), no thread; an empty file hashes as empty.
TEST(WriteBehind, SmallAndEmptyFiles) {
  TempPath tmp;
  for (size_t n : {size_t{0}, size_t{1}, size_t{1000}}) {
    const int fd = ::open(tmp.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    const std::vector<uint8_t> data = pattern(n);
    WriteBehind w(fd);
    ASSERT_EQ(w.append(data.data(), data.size()), 0);
    ASSERT_EQ(w.finish(), 0);
    EXPECT_EQ(w.hex_digest(), sha256_hex(data)) << n;
    ::close(fd);
    EXPECT_EQ(read_all(tmp.path), data) << n;
  }
}

// A descriptor that cannot be written (opened read-only): the first failed write's errno is
// returned by the following append and by finish, and nothing is written after it.
TEST(WriteBehind, FirstWriteErrorIsKept) {
  TempPath tmp;
  { std::ofstream(tmp.path) << ""; }
  const int fd = ::open(tmp.path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const std::vector<uint8_t> data = pattern(1 << 20);
  WriteBehind w(fd, 4096);
  int first = 0;
  for (size_t off = 0; off < data.size() && first == 0; off += 4096)
    first = w.append(data.data() + off, 4096);
  const int at_finish = w.finish();
  ::close(fd);
  EXPECT_EQ(at_finish, EBADF);
  EXPECT_TRUE(first == 0 || first == EBADF) << first;
  EXPECT_EQ(fs::file_size(tmp.path), 0u);
}

// Destroyed without finish() (an aborted output): the buffer in flight completes, the one being
// filled is dropped.
TEST(WriteBehind, DestroyedWithoutFinish) {
  TempPath tmp;
  const int fd = ::open(tmp.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  const std::vector<uint8_t> data = pattern(100'000);
  {
    WriteBehind w(fd, 8192);
    ASSERT_EQ(w.append(data.data(), data.size()), 0);
  }
  ::close(fd);
  // The whole buffers handed off before the destructor are written; the partial last one is not.
  EXPECT_EQ(fs::file_size(tmp.path), data.size() / 8192 * 8192);
}

}  // namespace qforge
