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

}  // namespace xchan::py
