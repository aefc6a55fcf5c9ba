// SIGINT / SIGTERM / SIGHUP: remove the temporary files of unfinished outputs, print one line on
// stderr and exit with 128 + the signal (130 / 143 / 129); an existing target is untouched since
// only temp files are removed. Temp paths live in a fixed-size registry so that the handler only
// makes async-signal-safe calls (unlink, write, _exit). A signal that arrives inside a
// CommitSection (the renames that publish a file and its sidecar together) is held until the
// section ends, so the pair is never half-published by an interrupt.
#pragma once

#include <string>

namespace qforge {

// Installs the handlers (idempotent). `json`: print the line as a JSON event.
void install_interrupt_handlers(bool json = false);

// Registers a temp path to remove on interrupt; returns its slot (-1 when the registry is full:
// the file is then only removed by the next writer's stale-temp sweep).
int track_temp_file(const std::string& path);
void untrack_temp_file(int slot);

// While alive, interrupt signals are deferred; the last section to end handles a pending one.
class CommitSection {
 public:
  CommitSection();
  ~CommitSection();
  CommitSection(const CommitSection&) = delete;
  CommitSection& operator=(const CommitSection&) = delete;
};

}  // namespace qforge
