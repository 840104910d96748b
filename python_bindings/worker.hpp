// xchan.spawn's native half: a thread that runs a function in a fresh subinterpreter with
// its own GIL, the Worker type that joins it, and what happens to workers at exit.
#pragma once

#include "module_state.hpp"

namespace xchan::py {

/// Adds the Worker type to `module`. Returns -1 with an exception set.
int add_worker_type(PyObject* module, ModuleState* st);

/// _spawn(path: list[str], header: bytes, blob: bytes, description: str, daemon: bool) -> Worker
PyObject* spawn_interpreter(PyObject* module, PyObject* const* args, Py_ssize_t nargs);

/// _workers() -> int: workers this interpreter tracks (started, not yet joined; for tests).
PyObject* count_workers(PyObject* module, PyObject*);

/// At interpreter exit (atexit, after this interpreter's ends are closed): waits for its
/// workers, asks daemon workers to stop, reports failures nobody joined. Ctrl-C while
/// waiting stops the workers (KeyboardInterrupt in each) and re-raises; a worker that
/// will not stop ends the process (see docs/python.md, "Workers at exit"). Returns None,
/// or nullptr with the exception set. GIL held.
PyObject* shutdown_workers(PyObject* module);

/// Module teardown: the same without signals, then frees the list. GIL held (released
/// while waiting). Never raises.
void finish_workers(ModuleState* st) noexcept;

}  // namespace xchan::py
