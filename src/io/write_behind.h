// Write-behind for one output file: bytes are gathered into a buffer, and each full buffer is
// hashed (SHA-256) and written to the descriptor on a background thread while the caller fills
// the other buffer. Writing a 1 GB quantized model spends about as long in SHA-256 and in the
// kernel's page-cache copy as in encoding; doing both behind the encoder keeps both cores busy.
// Each written range is handed to the kernel's writeback at once (sync_file_range), so the final
// fsync waits for little. Small files never start the thread: the first buffer is written in
// the caller when finish() comes before it fills.
//
// Contract: one caller thread; the bytes reach the file (and the hash) in the order appended.
// The first failed write is kept: append() and finish() return its errno from then on (0: no
// error), and nothing is written after it. The destructor waits for the buffer in flight, then
// stops the thread; it does not write what is still buffered (an aborted file is removed
// anyway).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "io/sha256.h"

namespace qforge {

class WriteBehind {
 public:
  // fd: open for writing at offset 0, owned by the caller (kept open while this object lives).
  explicit WriteBehind(int fd, size_t buffer_bytes = kDefaultBufferBytes);
  ~WriteBehind();
  WriteBehind(const WriteBehind&) = delete;
  WriteBehind& operator=(const WriteBehind&) = delete;

  // Copies n bytes in; returns 0 or the errno of the first failed write.
  int append(const void* data, size_t n);
  // Writes what is buffered and waits until every byte is written; returns 0 or the first errno.
  int finish();
  // Hex SHA-256 of all appended bytes; call after a successful finish(), once.
  std::string hex_digest() { return hash_.hex_digest(); }

  static constexpr size_t kDefaultBufferBytes = size_t{1} << 20;

 private:
  void hand_off();  // queues the filled buffer for the thread and switches to the other one
  void run();       // the thread
  void write_out(const uint8_t* p, size_t n);  // hash + write + start writeback; sets error_

  int fd_;
  Sha256 hash_;  // touched by one thread at a time: the caller before the thread starts, then it
  std::vector<uint8_t> bufs_[2];
  int fill_ = 0;     // the buffer being filled
  size_t used_ = 0;  // bytes in it
  uint64_t offset_ = 0;

  std::mutex m_;
  std::condition_variable cv_;
  const uint8_t* job_ = nullptr;  // the buffer the thread writes (nullptr: idle)
  size_t job_bytes_ = 0;
  bool stop_ = false;
  int error_ = 0;
  std::thread thread_;  // started at the first full buffer
};

}  // namespace qforge
