// Waiting with the GIL released, in one place: ends (room or a message) and workers (done)
// wait the same way.
#pragma once

#include <chrono>

#include "module_state.hpp"
#include "xchan/channel/deadline.hpp"
#include "xchan/core/status.hpp"

namespace xchan::py {

/// How long the main interpreter waits at a time: signal handlers run there, and a signal
/// delivered to another thread does not interrupt this thread's wait, so it wakes up this
/// often to run them (Ctrl-C reaches a blocked recv() within this much).
inline constexpr std::chrono::milliseconds kSignalSlice{100};

/// Calls wait(Deadline slice) -> Status with the GIL released until it returns something
/// other than kTimeout/kInterrupted, `deadline` passes (kTimeout), or a signal handler
/// raises (kInterrupted, the Python exception set). `wait` must not touch Python objects.
template <class Wait>
Status wait_without_gil(ModuleState* st, Deadline deadline, Wait&& wait) {
  for (;;) {
    const Deadline slice = st->is_main_interpreter ? deadline.min(Deadline::after(kSignalSlice)) : deadline;
    Status w;
    Py_BEGIN_ALLOW_THREADS
    w = wait(slice);
    Py_END_ALLOW_THREADS
    if (w != Status::kTimeout && w != Status::kInterrupted) return w;
    if (PyErr_CheckSignals() < 0) return Status::kInterrupted;
    if (w == Status::kTimeout && deadline.expired()) return Status::kTimeout;
  }
}

}  // namespace xchan::py
