#include "core/interrupt.h"

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstring>

namespace qforge {
namespace {

constexpr int kSlots = 64;
enum SlotState : int { kFree = 0, kFilling = 1, kLive = 2 };

struct Slot {
  std::atomic<int> state{kFree};
  char path[PATH_MAX];
};

Slot g_slots[kSlots];
std::atomic<int> g_depth{0};    // open CommitSections
std::atomic<int> g_pending{0};  // signal held by a CommitSection
std::atomic<bool> g_json{false};
std::atomic<bool> g_installed{false};

void put(const char* s) {
  size_t n = std::strlen(s);
  while (n > 0) {
    ssize_t w = ::write(2, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<size_t>(w);
  }
}

// Decimal digits of v, zero-padded to `width`.
void put_number(unsigned long v, int width) {
  char buf[32];
  int n = 0;
  do {
    buf[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0 && n < 31);
  while (n < width && n < 31) buf[n++] = '0';
  char out[32];
  for (int i = 0; i < n; ++i) out[i] = buf[n - 1 - i];
  out[n] = '\0';
  put(out);
}

const char* signal_name(int sig) {
  switch (sig) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    case SIGHUP:
      return "SIGHUP";
    default:
      return "signal";
  }
}

[[noreturn]] void cleanup_and_exit(int sig) {
  int removed = 0;
  for (auto& s : g_slots)
    if (s.state.load() == kLive && unlink(s.path) == 0) ++removed;
  const char* what =
      removed ? "temporary output removed, existing files unchanged" : "existing files unchanged";
  if (g_json.load()) {
    // The shape of the CLI's error events (app/main.cpp), built without allocating.
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    put("{\"ts\":");
    put_number(static_cast<unsigned long>(ts.tv_sec), 0);
    put(".");
    put_number(static_cast<unsigned long>(ts.tv_nsec / 1000), 6);
    put(",\"level\":\"error\",\"event\":\"interrupted\",\"signal\":\"");
    put(signal_name(sig));
    put("\",\"msg\":\"interrupted by ");
    put(signal_name(sig));
    put(": ");
    put(what);
    put("\",\"exit_code\":");
    put_number(static_cast<unsigned long>(128 + sig), 0);
    put("}\n");
  } else {
    put("qforge: error: interrupted by ");
    put(signal_name(sig));
    put(": ");
    put(what);
    put("\n");
  }
  _exit(128 + sig);
}

void on_signal(int sig) {
  if (g_depth.load() > 0) {
    int expected = 0;
    g_pending.compare_exchange_strong(expected, sig);
    return;
  }
  cleanup_and_exit(sig);
}

}  // namespace

void install_interrupt_handlers(bool json) {
  g_json.store(json);
  if (g_installed.exchange(true)) return;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigfillset(&sa.sa_mask);  // one handler at a time
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
}

int track_temp_file(const std::string& path) {
  if (path.size() >= PATH_MAX) return -1;
  for (int i = 0; i < kSlots; ++i) {
    int expected = kFree;
    if (!g_slots[i].state.compare_exchange_strong(expected, kFilling)) continue;
    std::memcpy(g_slots[i].path, path.c_str(), path.size() + 1);
    g_slots[i].state.store(kLive);
    return i;
  }
  return -1;
}

void untrack_temp_file(int slot) {
  if (slot >= 0 && slot < kSlots) g_slots[slot].state.store(kFree);
}

CommitSection::CommitSection() {
  g_depth.fetch_add(1);
}

CommitSection::~CommitSection() {
  if (g_depth.fetch_sub(1) == 1) {
    int sig = g_pending.exchange(0);
    if (sig != 0) cleanup_and_exit(sig);
  }
}

}  // namespace qforge
