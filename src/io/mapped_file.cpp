#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "io/opened_input.h"

namespace qforge {

Result<MappedFile> MappedFile::open(const std::string& path) {
  QF_TRY(OpenedInput in, OpenedInput::open(path));
  return map(in);
}

Result<MappedFile> MappedFile::map(const OpenedInput& in) {
  MappedFile mf;
  mf.path_ = in.path();
  mf.size_ = in.size();
  if (mf.size_ > 0) {
    void* p = mmap(nullptr, mf.size_, PROT_READ, MAP_PRIVATE, in.fd(), 0);
    if (p == MAP_FAILED) return make_error(in.path(), ": cannot map: ", std::strerror(errno));
    mf.data_ = static_cast<const uint8_t*>(p);
  }
  return mf;
}

MappedFile::~MappedFile() {
  if (data_) munmap(const_cast<uint8_t*>(data_), size_);
}

MappedFile::MappedFile(MappedFile&& o) noexcept
    : path_(std::move(o.path_)), data_(o.data_), size_(o.size_) {
  o.data_ = nullptr;
  o.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    if (data_) munmap(const_cast<uint8_t*>(data_), size_);
    path_ = std::move(o.path_);
    data_ = o.data_;
    size_ = o.size_;
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

void MappedFile::release(uint64_t offset, uint64_t len) const {
  if (!data_ || offset >= size_) return;
  if (len > size_ - offset) len = size_ - offset;
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  uint64_t b = (offset + page - 1) / page * page;
  uint64_t e = (offset + len) / page * page;
  if (offset + len == size_) e = (size_ + page - 1) / page * page;  // the tail page is ours
  if (e > b) madvise(const_cast<uint8_t*>(data_) + b, e - b, MADV_DONTNEED);
}

Result<std::string> read_file_text(const std::string& path) {
  QF_TRY(OpenedInput in, OpenedInput::open(path));
  return in.read_text();
}

}  // namespace qforge
