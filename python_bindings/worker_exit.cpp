// Workers at interpreter exit: an interpreter cannot finalize while one of its workers
// still runs in a subinterpreter (CPython aborts: "remaining subinterpreters"), so exit
// waits for them, as for non-daemon threads, after closing this interpreter's ends (which
// ends the loops of workers that receive from them). Daemon workers are asked to stop
// (SystemExit raised in them) instead of being waited for; Ctrl-C while waiting asks every
// worker to stop (KeyboardInterrupt). A worker that does not stop within kStopGrace (stuck
// in C code) ends the process without finalizing Python, after saying so: the only exit
// that neither hangs nor crashes.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "worker.hpp"
#include "worker_state.hpp"
#include "xchan/channel/channel.hpp"

namespace xchan::py {
namespace {

constexpr std::chrono::seconds kStopGrace{2};
constexpr std::chrono::milliseconds kStopRetry{200};  // a worker may start after a request
constexpr int kExitInterrupted = 130;  // as a shell reports a process ended by SIGINT
constexpr int kExitStuck = 1;

bool running(WorkerState& ws) {
  const std::lock_guard<std::mutex> lock(ws.mutex);
  return !ws.done;
}

/// The workers of this process still running, and not daemon unless `daemon` too.
WorkerList running_workers(ModuleState* st, bool daemon) {
  WorkerList out;
  for (const auto& ws : *workers_of(st)) {
    if (ws->fork_generation == Channel::current_fork_generation() && (daemon || !ws->daemon) && running(*ws)) {
      out.push_back(ws);
    }
  }
  return out;
}

std::string names_of(const WorkerList& list) {
  std::string names;
  for (const auto& ws : list) names += (names.empty() ? "" : ", ") + ws->description;
  return names;
}

/// Asks `list` to stop with `exc` and waits up to kStopGrace (signals are not handled:
/// this is what Ctrl-C already asked for). Returns the workers still running.
WorkerList stop(const WorkerList& list, PyObject* exc) {
  const auto give_up = std::chrono::steady_clock::now() + kStopGrace;
  WorkerList left = list;
  while (!left.empty() && std::chrono::steady_clock::now() < give_up) {
    for (const auto& ws : left) request_stop(ws, exc);
    const Deadline retry = Deadline::after(kStopRetry);
    Py_BEGIN_ALLOW_THREADS
    for (const auto& ws : left) {
      std::unique_lock<std::mutex> lock(ws->mutex);
      ws->cv.wait_until(lock, retry.time_point(), [&] { return ws->done; });
    }
    Py_END_ALLOW_THREADS
    std::erase_if(left, [](const auto& ws) { return !running(*ws); });
  }
  return left;
}

[[noreturn]] void end_process(const WorkerList& stuck, const char* what, int status) {
  std::fprintf(stderr,
               "xchan: %s: worker(s) %s still running after being asked to stop; ending the process "
               "without finalizing Python (exit status %d)\n",
               what, names_of(stuck).c_str(), status);
  // Python's own buffered streams: flushed by the interpreter that owns them (this one).
  PyObject* exc = PyErr_GetRaisedException();
  for (const char* name : {"stdout", "stderr"}) {
    PyObject* f = PySys_GetObject(name);
    PyObject* r = f != nullptr && f != Py_None ? PyObject_CallMethod(f, "flush", nullptr) : nullptr;
    Py_XDECREF(r);
    PyErr_Clear();
  }
  Py_XDECREF(exc);
  std::fflush(nullptr);
  _exit(status);
}

/// Joins the threads of finished workers and reports failures nobody joined.
void reap(ModuleState* st) {
  WorkerList* list = workers_of(st);
  WorkerList done;
  for (const auto& ws : *list) {
    if (ws->fork_generation == Channel::current_fork_generation() && !running(*ws)) done.push_back(ws);
  }
  Py_BEGIN_ALLOW_THREADS
  for (const auto& ws : done) join_thread(*ws);
  Py_END_ALLOW_THREADS
  for (const auto& ws : done) {
    bool print = false;
    {
      const std::lock_guard<std::mutex> lock(ws->mutex);
      print = ws->failed && !ws->reported;
      ws->reported = true;
    }
    if (print) print_failure(*ws, "never joined");
  }
  std::erase_if(*list, [&](const auto& ws) {
    return std::find(done.begin(), done.end(), ws) != done.end();
  });
}

}  // namespace

PyObject* shutdown_workers(PyObject* module) {
  ModuleState* st = state_of_module(module);
  if (workers_of(st) == nullptr) Py_RETURN_NONE;
  // Daemon workers first: asked to stop at once, so that exit does not wait on them.
  const WorkerList daemons = running_workers(st, true);
  WorkerList only_daemons;
  for (const auto& ws : daemons) {
    if (ws->daemon) only_daemons.push_back(ws);
  }
  for (const auto& ws : only_daemons) request_stop(ws, PyExc_SystemExit);
  // Then wait for the others, new ones included (a worker may still spawn).
  for (WorkerList wait = running_workers(st, false); !wait.empty(); wait = running_workers(st, false)) {
    for (const auto& ws : wait) {
      if (wait_done(st, *ws, Deadline::never()) >= 0) continue;
      // Interrupted (Ctrl-C): stop everything, then re-raise, or end here if a worker
      // does not stop.
      PyObject* exc = PyErr_GetRaisedException();
      const WorkerList stuck = stop(running_workers(st, true), PyExc_KeyboardInterrupt);
      if (!stuck.empty()) end_process(stuck, "interrupted while waiting for workers at exit", kExitInterrupted);
      reap(st);
      PyErr_SetRaisedException(exc);
      return nullptr;
    }
  }
  const WorkerList stuck = stop(running_workers(st, true), PyExc_SystemExit);
  if (!stuck.empty()) end_process(stuck, "daemon worker(s) did not stop at exit", kExitStuck);
  reap(st);
  Py_RETURN_NONE;
}

void finish_workers(ModuleState* st) noexcept {
  WorkerList* list = workers_of(st);
  if (list == nullptr) return;
  // The atexit step normally ran already; an interpreter destroyed without it (or with
  // workers started since) still must not outlive them.
  if (!running_workers(st, true).empty()) {
    for (const auto& ws : running_workers(st, true)) {
      if (ws->daemon) request_stop(ws, PyExc_SystemExit);
    }
    const WorkerList wait = running_workers(st, true);
    Py_BEGIN_ALLOW_THREADS
    for (const auto& ws : wait) {
      std::unique_lock<std::mutex> lock(ws->mutex);
      ws->cv.wait(lock, [&] { return ws->done; });
    }
    Py_END_ALLOW_THREADS
  }
  reap(st);
  for (auto& ws : *list) {
    // Left: workers of a parent process (see prune in worker.cpp): never join their threads.
    (void)new (std::nothrow) std::thread(std::move(ws->thread));
  }
  delete list;
  st->workers = nullptr;
}

}  // namespace xchan::py
