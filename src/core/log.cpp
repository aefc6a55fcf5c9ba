#include "core/log.h"

#include <unistd.h>

#include <cstdio>
#include <mutex>

#include "core/stopwatch.h"

namespace qforge {
namespace {
LogFormat g_format = LogFormat::Human;
LogLevel g_level = LogLevel::Info;
std::mutex g_mutex;

const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::Debug: return "debug";
    case LogLevel::Info: return "info";
    case LogLevel::Warn: return "warn";
    case LogLevel::Error: return "error";
    default: return "quiet";
  }
}

double now_seconds() {
  using namespace std::chrono;
  return duration_cast<duration<double>>(system_clock::now().time_since_epoch()).count();
}
}  // namespace

void set_log_format(LogFormat f) { g_format = f; }
LogFormat log_format() { return g_format; }
void set_log_level(LogLevel l) { g_level = l; }
LogLevel log_level() { return g_level; }

void log_event(LogLevel level, std::string_view event, std::string_view message,
               const LogFields& fields) {
  if (level < g_level) return;
  std::string line;
  if (g_format == LogFormat::Json) {
    nlohmann::json j;
    j["ts"] = now_seconds();
    j["level"] = level_name(level);
    j["event"] = std::string(event);
    j["msg"] = std::string(message);
    for (const auto& [k, v] : fields) j[k] = v;
    line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    line = std::string("[") + level_name(level) + "] " + std::string(message);
    if (!fields.empty()) {
      line += " (";
      bool first = true;
      for (const auto& [k, v] : fields) {
        if (!first) line += ", ";
        first = false;
        line += k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
      }
      line += ")";
    }
  }
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "%s\n", line.c_str());
}

Progress::Progress(std::string event, std::string label, uint64_t total_steps)
    : event_(std::move(event)), label_(std::move(label)), total_(total_steps) {
  start_ = last_ = std::chrono::steady_clock::now();
  tty_ = g_format == LogFormat::Human && g_level <= LogLevel::Info && isatty(STDERR_FILENO);
}

Progress::~Progress() { finish(); }

void Progress::update(uint64_t steps_done, uint64_t bytes_done, std::string_view item) {
  done_ = steps_done;
  bytes_ = bytes_done;
  item_ = std::string(item);
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_).count();
  if (tty_ ? since >= 0.1 : since >= 1.0) {
    last_ = now;
    draw(false);
  }
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (tty_) {
    draw(true);
    std::fprintf(stderr, "\n");
  }
}

void Progress::draw(bool final) {
  double secs = seconds_since(start_);
  double mbs = secs > 0 ? bytes_ / 1e6 / secs : 0.0;
  double frac = total_ ? static_cast<double>(done_) / total_ : 1.0;
  double eta = (frac > 0 && frac < 1) ? secs * (1 - frac) / frac : 0.0;
  if (tty_) {
    const int width = 24;
    int filled = static_cast<int>(frac * width);
    std::string bar(filled, '#');
    bar.resize(width, '.');
    std::lock_guard<std::mutex> lock(g_mutex);
    std::fprintf(stderr, "\r\033[K%s [%s] %llu/%llu %.1f MB/s ETA %.0fs %s", label_.c_str(),
                 bar.c_str(), static_cast<unsigned long long>(done_),
                 static_cast<unsigned long long>(total_), mbs, eta, item_.c_str());
    std::fflush(stderr);
  } else if (g_format == LogFormat::Json && !final) {
    log_event(LogLevel::Info, event_ + ".progress", label_,
              {{"done", done_}, {"total", total_}, {"mb_per_s", mbs}, {"eta_s", eta},
               {"item", item_}});
  }
}

}  // namespace qforge
