#include "io/write_behind.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace qforge {

WriteBehind::WriteBehind(int fd, size_t buffer_bytes) : fd_(fd) {
  bufs_[0].resize(buffer_bytes);
}

WriteBehind::~WriteBehind() {
  if (!thread_.joinable()) return;
  {
    std::unique_lock lock(m_);
    cv_.wait(lock, [&] { return job_ == nullptr; });
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void WriteBehind::write_out(const uint8_t* p, size_t n) {
  hash_.update(p, n);
  const uint64_t start = offset_;
  size_t off = 0;
  while (off < n) {
    const ssize_t w = ::write(fd_, p + off, n - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      std::lock_guard lock(m_);
      error_ = e;
      return;
    }
    off += static_cast<size_t>(w);
  }
  offset_ += n;
  // Start the writeback of this range now (advisory: file systems without it ignore it), so
  // the disk works while the next buffers are encoded and the final fsync has little left.
  sync_file_range(fd_, static_cast<off_t>(start), static_cast<off_t>(n), SYNC_FILE_RANGE_WRITE);
}

void WriteBehind::run() {
  std::unique_lock lock(m_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || job_ != nullptr; });
    if (job_ == nullptr) return;  // stop_ with nothing left
    const uint8_t* p = job_;
    const size_t n = job_bytes_;
    const bool failed = error_ != 0;
    lock.unlock();
    if (!failed) write_out(p, n);
    lock.lock();
    job_ = nullptr;
    cv_.notify_all();
  }
}

void WriteBehind::hand_off() {
  if (!thread_.joinable()) {
    bufs_[1].resize(bufs_[0].size());
    thread_ = std::thread([this] { run(); });
  }
  {
    std::unique_lock lock(m_);
    cv_.wait(lock, [&] { return job_ == nullptr; });
    job_ = bufs_[fill_].data();
    job_bytes_ = used_;
  }
  cv_.notify_all();
  fill_ ^= 1;
  used_ = 0;
}

int WriteBehind::append(const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    std::vector<uint8_t>& buf = bufs_[fill_];
    const size_t take = std::min(n, buf.size() - used_);
    std::memcpy(buf.data() + used_, p, take);
    used_ += take;
    p += take;
    n -= take;
    if (used_ == buf.size()) {
      hand_off();
      std::lock_guard lock(m_);
      if (error_ != 0) return error_;
    }
  }
  return 0;
}

int WriteBehind::finish() {
  if (!thread_.joinable()) {
    // Small file: one buffer, written here.
    if (used_ > 0 && error_ == 0) write_out(bufs_[fill_].data(), used_);
    used_ = 0;
    return error_;
  }
  if (used_ > 0) hand_off();
  std::unique_lock lock(m_);
  cv_.wait(lock, [&] { return job_ == nullptr; });
  return error_;
}

}  // namespace qforge
