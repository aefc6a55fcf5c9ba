// Logging: human lines on stderr by default, JSON lines (one object per event) with
// --log-format json. Events have a dotted name ("quantize.starting") and key/value fields.
// stdout is reserved for command data (--json reports, generated text).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace qforge {

enum class LogFormat { Human, Json };
enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3, Quiet = 4 };

using LogFields = std::vector<std::pair<std::string, nlohmann::json>>;

void set_log_format(LogFormat f);
LogFormat log_format();
void set_log_level(LogLevel l);
LogLevel log_level();

// Emits one event. Human format: "[info] message (key=value ...)"; JSON format:
// {"ts": ..., "level": "info", "event": "...", "msg": "...", key: value, ...}.
void log_event(LogLevel level, std::string_view event, std::string_view message,
               const LogFields& fields = {});
inline void log_info(std::string_view event, std::string_view msg, const LogFields& f = {}) {
  log_event(LogLevel::Info, event, msg, f);
}
inline void log_warn(std::string_view event, std::string_view msg, const LogFields& f = {}) {
  log_event(LogLevel::Warn, event, msg, f);
}
inline void log_debug(std::string_view event, std::string_view msg, const LogFields& f = {}) {
  log_event(LogLevel::Debug, event, msg, f);
}

// Progress of a long operation. On a terminal in human format it redraws one status line
// (label, i/n, MB/s, ETA); in JSON format it emits "<event>.progress" events at most once a
// second; otherwise it stays silent. Thread-compatible (drive it from one thread).
class Progress {
 public:
  Progress(std::string event, std::string label, uint64_t total_steps);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // steps done so far, bytes processed so far (for MB/s; 0 if not meaningful), an item name.
  void update(uint64_t steps_done, uint64_t bytes_done = 0, std::string_view item = {});
  void finish();

 private:
  void draw(bool final);
  std::string event_, label_;
  uint64_t total_ = 0, done_ = 0, bytes_ = 0;
  std::string item_;
  std::chrono::steady_clock::time_point start_, last_;
  bool tty_ = false, finished_ = false;
};

}  // namespace qforge
