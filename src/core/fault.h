// Deterministic fault injection, for tests only. Named points in the I/O paths call
// fault_point("name"); nothing happens unless the environment variable QFORGE_FAULT (read once)
// names that point:
//   QFORGE_FAULT="POINT[@K]:ACTION[,POINT[@K]:ACTION...]"
// K (default 1) is the hit of the point that fires (the K-th time the process reaches it).
// ACTION: kill (SIGKILL), int / term / hup (raise SIGINT / SIGTERM / SIGHUP), stop (SIGSTOP: a
// test can act, then SIGCONT), sleep=MS, fail (the caller fails as if the disk were full).
// Points: input.opened, input.verified (io/opened_input), atomic.create, atomic.write,
// atomic.sidecar_write, atomic.before_rename, atomic.between_renames, atomic.committed
// (io/atomic_file). Users never set it; it exists so tests can stop a write at a chosen point.
#pragma once

namespace qforge {

// Returns true when the configured action at this hit is `fail` (the caller then reports an
// ENOSPC-like error); other actions happen inside (and may not return).
bool fault_point(const char* name);

}  // namespace qforge
