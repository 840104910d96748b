// xchan.spawn's native half: a thread that runs a function in a fresh subinterpreter with
// its own GIL, and the Worker type that joins it.
#pragma once

#include "module_state.hpp"

namespace xchan::py {

/// Adds the Worker type to `module`. Returns -1 with an exception set.
int add_worker_type(PyObject* module, ModuleState* st);

/// _spawn(path: list[str], header: bytes, blob: bytes) -> Worker
PyObject* spawn_interpreter(PyObject* module, PyObject* const* args, Py_ssize_t nargs);

/// _join_workers(): waits for every worker this interpreter started (atexit, teardown).
PyObject* join_all_workers(PyObject* module, PyObject*);

/// Joins without the GIL held; for module teardown. Never raises.
void join_all_workers_nogil(ModuleState* st) noexcept;

/// True if this interpreter started workers that are not joined yet.
bool has_workers(ModuleState* st) noexcept;

/// Frees the interpreter's worker list (after join_all_workers_nogil).
void free_workers(ModuleState* st) noexcept;

}  // namespace xchan::py
