#include "core/fault.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace qforge {
namespace {

enum class Action { Kill, Int, Term, Hup, Stop, Sleep, Fail };

struct Spec {
  std::string point;
  long hit = 1;
  Action action = Action::Fail;
  long sleep_ms = 0;
  std::atomic<long> seen{0};
};

bool parse_action(const std::string& s, Spec& sp) {
  static const std::pair<const char*, Action> kNames[] = {
      {"kill", Action::Kill}, {"int", Action::Int},   {"term", Action::Term},
      {"hup", Action::Hup},   {"stop", Action::Stop}, {"fail", Action::Fail}};
  for (const auto& [n, a] : kNames)
    if (s == n) {
      sp.action = a;
      return true;
    }
  if (s.rfind("sleep=", 0) == 0) {
    sp.action = Action::Sleep;
    sp.sleep_ms = std::atol(s.c_str() + 6);
    return true;
  }
  return false;
}

// Parsed once; malformed entries are ignored (this is a test hook, not a user interface).
const std::vector<std::unique_ptr<Spec>>& specs() {
  static const std::vector<std::unique_ptr<Spec>> all = [] {
    std::vector<std::unique_ptr<Spec>> v;
    const char* env = std::getenv("QFORGE_FAULT");
    if (!env) return v;
    std::string text = env;
    size_t pos = 0;
    while (pos <= text.size()) {
      size_t end = text.find(',', pos);
      if (end == std::string::npos) end = text.size();
      std::string item = text.substr(pos, end - pos);
      pos = end + 1;
      size_t colon = item.find(':');
      if (colon == std::string::npos) continue;
      auto sp = std::make_unique<Spec>();
      std::string where = item.substr(0, colon);
      size_t at = where.find('@');
      sp->point = where.substr(0, at);
      if (at != std::string::npos) sp->hit = std::atol(where.c_str() + at + 1);
      if (sp->hit < 1 || !parse_action(item.substr(colon + 1), *sp)) continue;
      v.push_back(std::move(sp));
    }
    return v;
  }();
  return all;
}

}  // namespace

bool fault_point(const char* name) {
  const auto& all = specs();
  if (all.empty()) return false;
  bool fail = false;
  for (const auto& sp : all) {
    if (sp->point != name) continue;
    if (sp->seen.fetch_add(1) + 1 != sp->hit) continue;
    switch (sp->action) {
      case Action::Kill:
        raise(SIGKILL);
        break;
      case Action::Int:
        raise(SIGINT);
        break;
      case Action::Term:
        raise(SIGTERM);
        break;
      case Action::Hup:
        raise(SIGHUP);
        break;
      case Action::Stop:
        raise(SIGSTOP);
        break;
      case Action::Sleep:
        usleep(static_cast<useconds_t>(sp->sleep_ms) * 1000);
        break;
      case Action::Fail:
        fail = true;
        break;
    }
  }
  return fail;
}

}  // namespace qforge
