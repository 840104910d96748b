// What a worker's OS thread and the interpreter that started it share (worker.cpp starts and
// joins workers, worker_exit.cpp waits for and stops them at exit). Only C++ data: the
// worker's interpreter never touches the parent's Python objects, nor the parent its.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "module_state.hpp"
#include "xchan/channel/deadline.hpp"

namespace xchan::py {

struct WorkerState {
  std::string description;  // "module.qualname" or "<source>", for reports
  bool daemon = false;      // stopped, not waited for, at exit
  std::uint64_t fork_generation = 0;  // of the process that started it

  // Guarded by `mutex`; `cv` signals `done`.
  std::mutex mutex;
  std::condition_variable cv;
  bool started = false;    // the call is set up (main script re-run, arguments decoded),
                           // or setting it up failed (then `start_failed` too)
  bool start_failed = false;
  bool ran = false;        // fn returned or raised: `failed`, `error`, `exception` are final
  bool done = false;       // the interpreter is destroyed and the thread is ending
  bool failed = false;
  std::string error;       // fn's formatted traceback, or why the worker could not start
  std::string exception;   // fn's exception, pickled there ("" if it could not be)
  bool orphaned = false;   // its Worker object is gone: nobody will join it
  bool reported = false;   // its failure was raised by join() or printed

  // The worker's interpreter while a stop request may reach it (see request_stop):
  // set once it exists, cleared (with the worker's GIL released) before it is destroyed.
  std::mutex interp_mutex;
  PyInterpreterState* interp = nullptr;
  unsigned long thread_ident = 0;

  std::thread thread;
  std::mutex join_mutex;  // serializes joining `thread`
};

using WorkerList = std::vector<std::shared_ptr<WorkerState>>;

/// The workers an interpreter started and has not joined (module state; GIL held).
inline WorkerList* workers_of(ModuleState* st) noexcept { return static_cast<WorkerList*>(st->workers); }

/// Waits until `ws.*flag` is set (under ws.mutex, signalled by ws.cv) or `deadline`, with
/// the GIL released, waking for signals in the main interpreter. 1 set, 0 timed out, -1
/// with the exception a signal handler raised.
int wait_until_set(ModuleState* st, WorkerState& ws, bool WorkerState::*flag, Deadline deadline);

/// wait_until_set for `done`: the worker's interpreter is gone.
int wait_done(ModuleState* st, WorkerState& ws, Deadline deadline);

/// Joins the worker's OS thread (once its interpreter is gone: prompt). GIL released.
void join_thread(WorkerState& ws) noexcept;

/// Writes "Exception in xchan worker <description> (<why>):" and the traceback to this
/// interpreter's sys.stderr. GIL held; never raises.
void print_failure(const WorkerState& ws, const char* why) noexcept;

/// Asks a running worker to stop by raising `exc` (a built-in exception type: those are
/// shared by every interpreter) in its thread at its next bytecode boundary, as
/// PyThreadState_SetAsyncExc does. Done from a helper thread, since taking the worker's
/// GIL lasts as long as the worker keeps it. Any thread; returns at once.
void request_stop(const std::shared_ptr<WorkerState>& ws, PyObject* exc);

}  // namespace xchan::py
