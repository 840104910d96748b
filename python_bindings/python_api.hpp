// The one include of Python.h for the bindings (PY_SSIZE_T_CLEAN first), plus the cast that
// turns a METH_FASTCALL function into the PyCFunction a PyMethodDef stores.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

namespace xchan::py {

template <class F>
PyCFunction as_cfunction(F* f) noexcept {
  return reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(f));
}

/// True if this thread has a Python thread state, so it may use the C API. False while a
/// thread that CPython is ending at interpreter exit unwinds (it is ended from inside the
/// GIL's acquisition, before its thread state is current again): destructors that run then
/// must not touch Python objects, and leak them instead (the process is exiting).
inline bool thread_has_python() noexcept {
#if PY_VERSION_HEX >= 0x030D0000
  return PyThreadState_GetUnchecked() != nullptr;
#else
  return _PyThreadState_UncheckedGet() != nullptr;
#endif
}

}  // namespace xchan::py
