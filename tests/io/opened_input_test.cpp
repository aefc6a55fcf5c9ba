// OpenedInput (issue 11): one descriptor for the policy checks, the hash and the map.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "io/atomic_file.h"
#include "io/mapped_file.h"
#include "io/opened_input.h"
#include "io/sha256.h"
#include "test_util.h"

namespace qforge {
namespace {
namespace fs = std::filesystem;

std::string write_with_sidecar(const test::TempDir& d, const std::string& name,
                               const std::string& text) {
  const std::string p = d.file(name);
  auto f = AtomicFile::create(p);
  EXPECT_TRUE(f.ok());
  EXPECT_TRUE(f->write(text.data(), text.size()).ok());
  EXPECT_TRUE(f->commit().ok());
  return p;
}

TEST(OpenedInput, RefusesNonRegularFilesWithoutBlocking) {
  test::TempDir d;
  const std::string fifo = d.file("f.gguf");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  auto r = OpenedInput::open(fifo, LoadPolicy{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("is a FIFO"), std::string::npos) << r.error().message;
  auto dir = OpenedInput::open(d.path().string(), LoadPolicy{});
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.error().message.find("is a directory"), std::string::npos);
  auto dev = read_file_text("/dev/zero");
  ASSERT_FALSE(dev.ok());
  EXPECT_NE(dev.error().message.find("device"), std::string::npos);
}

TEST(OpenedInput, PresentSidecarIsAlwaysCheckedUnlessNoVerify) {
  test::TempDir d;
  const std::string p = write_with_sidecar(d, "m.bin", "weights");
  EXPECT_TRUE(OpenedInput::open(p, LoadPolicy{}).ok());
  { std::ofstream(p, std::ios::app) << "!"; }
  auto bad = OpenedInput::open(p, LoadPolicy{});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("SHA-256 mismatch"), std::string::npos);
  EXPECT_FALSE(MappedFile::open(p).ok());  // the process-wide policy: the same check
  LoadPolicy skip;
  skip.verify_sidecar = false;
  auto in = OpenedInput::open(p, skip);
  ASSERT_TRUE(in.ok());
  EXPECT_TRUE(in->has_sidecar());
  EXPECT_FALSE(in->verify_sidecar().ok());
  EXPECT_EQ(in->read_text().value(), "weights!");
  auto map = MappedFile::map(*in);
  ASSERT_TRUE(map.ok());
  EXPECT_EQ(map->size(), 8u);
}

TEST(OpenedInput, SidecarMustNameTheFile) {
  test::TempDir d;
  const std::string p = write_with_sidecar(d, "m.bin", "x");
  const std::string hex = *sha256_file(p);
  std::ofstream(p + ".sha256") << hex << "  other.bin\n";
  auto r = OpenedInput::open(p, LoadPolicy{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("names 'other.bin'"), std::string::npos) << r.error().message;
  std::ofstream(p + ".sha256") << hex << " *dir/m.bin\n";
  EXPECT_TRUE(OpenedInput::open(p, LoadPolicy{}).ok());
  std::ofstream(p + ".sha256") << hex << "\n";  // a bare digest names nothing
  EXPECT_TRUE(OpenedInput::open(p, LoadPolicy{}).ok());
  std::ofstream(p + ".sha256") << hex << "xm.bin\n";
  EXPECT_FALSE(OpenedInput::open(p, LoadPolicy{}).ok());
}

TEST(OpenedInput, RealPathIsTheDescriptorsAndRequireChecksum) {
  test::TempDir inside, outside;
  const std::string secret = write_with_sidecar(outside, "s.bin", "s");
  const std::string good = write_with_sidecar(inside, "g.bin", "g");
  LoadPolicy p;
  p.allowed_dir = inside.path().string();
  auto in = OpenedInput::open(good, p);
  ASSERT_TRUE(in.ok());
  EXPECT_EQ(in->real_path(), fs::canonical(good).string());
  // Swapping the path after the open changes nothing about what the descriptor reads.
  fs::remove(good);
  fs::create_symlink(secret, good);
  EXPECT_EQ(in->read_text().value(), "g");
  EXPECT_FALSE(OpenedInput::open(good, p).ok());
  LoadPolicy req;
  req.require_checksum = true;
  fs::remove(secret + ".sha256");
  auto none = OpenedInput::open(secret, req);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("no checksum sidecar"), std::string::npos);
}

TEST(AtomicFile, ReserveRefusesMoreThanTheFreeSpace) {
  test::TempDir d;
  auto f = AtomicFile::create(d.file("huge.bin"));
  ASSERT_TRUE(f.ok());
  auto st = f->reserve(uint64_t{1} << 62);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("not enough free space"), std::string::npos);
  for (const auto& e : fs::directory_iterator(d.path())) ADD_FAILURE() << e.path();
  auto g = AtomicFile::create(d.file("ok.bin"));
  ASSERT_TRUE(g->reserve(1 << 20).ok());
  ASSERT_TRUE(g->write("abc", 3).ok());
  ASSERT_TRUE(g->commit().ok());
  EXPECT_EQ(fs::file_size(d.file("ok.bin")), 3u);  // the reservation does not change the size
  EXPECT_TRUE(verify_sidecar(d.file("ok.bin")).ok());
}

}  // namespace
}  // namespace qforge
