// Running one pipeline step in a fresh child process, where isolation is the point: the child's
// peak RSS (VmHWM, reset right after fork through /proc/self/clear_refs) is that step's alone,
// not the ladder's. The child runs the library call and writes its typed result as one JSON
// document to a pipe; the parent reads it back with from_json. Nothing is parsed from a
// command's human output, and no second binary is executed.
//
// Signals: while a child runs, SIGINT/SIGTERM/SIGHUP in the parent are forwarded to it (the
// child's own handlers remove its temp files, io/atomic_file); the parent reaps it, restores
// the previous handlers and re-raises the signal, so the whole run stops with no child process
// left. A child also gets SIGTERM if the parent dies (PR_SET_PDEATHSIG).
//
// Contract: call from a single-threaded parent (fork copies only the calling thread).
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace qforge {

// Runs fn in a child; returns its JSON (or its Error). `what` names the step for messages.
Result<nlohmann::json> run_isolated_json(const std::string& what,
                                         const std::function<Result<nlohmann::json>()>& fn);

// Typed wrapper: T needs to_json/from_json.
template <class T, class Fn>
Result<T> run_isolated(const std::string& what, Fn&& fn) {
  QF_TRY(nlohmann::json j, run_isolated_json(what, [&]() -> Result<nlohmann::json> {
           Result<T> r = fn();
           if (!r.ok()) return r.error();
           return nlohmann::json(*r);
         }));
  try {
    return j.get<T>();
  } catch (const std::exception& e) {
    return make_error(what, ": malformed result from the child process: ", e.what());
  }
}

// The signal that stopped the last run_isolated call's child, 0 if none (for tests).
int last_forwarded_signal();

}  // namespace qforge
