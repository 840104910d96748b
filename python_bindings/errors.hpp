// Status -> Python exception, in one place, and the C++-exception guard every C-API entry
// point uses (no C++ exception leaves the extension).
#pragma once

#include <cxxabi.h>

#include <new>

#include "module_state.hpp"
#include "xchan/core/status.hpp"

namespace xchan::py {

/// Which operation failed, so that kTimeout/kFull/kEmpty map to the right exception.
enum class Op { kSend, kRecv, kOther };

/// xchan.ChannelFull (borrowed), made on first use because its base queue.Full costs an
/// import of queue; nullptr with an exception set if that import fails. Runs Python code.
PyObject* channel_full_type(ModuleState* st);

/// Sets the Python exception for `s` (never kOk) and returns nullptr.
PyObject* raise_status(ModuleState* st, Status s, Op op, Py_ssize_t max_message = 0);

/// Runs `f` (returning PyObject*), turning std::bad_alloc into MemoryError and any other
/// C++ exception into xchan.ChannelError. Not noexcept, and never swallowing
/// abi::__forced_unwind: CPython ends a daemon thread at interpreter exit with
/// pthread_exit() from inside the GIL's acquisition, and that unwind must pass through
/// (a noexcept frame or a swallowed unwind would abort the process).
template <class F>
PyObject* guarded(ModuleState* st, F&& f) {
  try {
    return f();
  } catch (abi::__forced_unwind&) {
    throw;
  } catch (const std::bad_alloc&) {
    return PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_SetString(st ? st->channel_error : PyExc_RuntimeError, e.what());
  } catch (...) {
    PyErr_SetString(st ? st->channel_error : PyExc_RuntimeError, "unexpected C++ exception");
  }
  return nullptr;
}

}  // namespace xchan::py
