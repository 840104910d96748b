// The Python Sender and Receiver types: thin heap types over xchan::Sender / Receiver.
// ends.cpp has the object (lifecycle, close, the methods every end has), receive.cpp and
// send.cpp the transfers.
#pragma once

#include <cstdint>
#include <vector>

#include "module_state.hpp"
#include "xchan/channel/ends.hpp"

namespace xchan::py {

/// A message a Receiver took from its channel: decoded, or (raw) its encoded bytes still
/// to decode. `value` is a new reference; nullptr for a malformed message whose error is
/// pending.
struct TakenMessage {
  PyObject* value = nullptr;
  bool raw = false;
};

/// One Python-visible end. Exactly one of `tx`/`rx` is used, per `is_sender`. Ends opened
/// in an interpreter are linked into its module state so that tearing the interpreter down
/// closes them even if some objects are never deallocated. Fields other than `closing` are
/// used with the GIL held only.
struct EndObject {
  PyObject_HEAD
  xchan::Sender tx;
  xchan::Receiver rx;
  bool is_sender;
  // Calls in progress that use the channel through a plain pointer with the GIL held (see
  // EndUse in end_use.hpp); a close() that Python code run by such a call makes is
  // deferred to the last one.
  bool close_pending;
  int busy;
  // Nonzero once close() was called. Read without the GIL by this end's blocked calls
  // (their wait's cancel flag), so accessed atomically.
  std::uint32_t closing;
  // Messages this Receiver took but did not hand over, because an interruption (Ctrl-C:
  // a BaseException that is not an Exception) came while they were decoded. Its next
  // receive returns them first, in order. Owned; released with the object.
  std::vector<TakenMessage> held;
  ModuleState* owner;  // null once the module state is gone
  EndObject* prev;
  EndObject* next;
  PyObject* weakrefs;
};

/// Creates the two heap types in `module`'s state. Returns -1 with an exception set.
int add_end_types(PyObject* module, ModuleState* st);

/// Wraps a C++ end in a new Python object (new reference, or nullptr with an exception).
PyObject* wrap_sender(ModuleState* st, xchan::Sender tx);
PyObject* wrap_receiver(ModuleState* st, xchan::Receiver rx);

/// Closes every end still open in this interpreter and forgets them (module teardown).
void close_all_ends(ModuleState* st) noexcept;

/// Blocks until `ch` may be readable (or writable for `n` bytes), `*cancel` is set (kOk;
/// the caller checks its flag), `deadline` (kTimeout) or a signal handler raises
/// (kInterrupted, the exception set); releases the GIL, waking in slices in the main
/// interpreter so that Ctrl-C is handled.
Status wait_for(ModuleState* st, Channel& ch, bool writable, std::size_t n, Deadline deadline,
                const std::uint32_t* cancel);

// The methods receive.cpp and send.cpp add to the types (METH_FASTCALL | METH_KEYWORDS
// unless noted).
PyObject* m_send(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames);
PyObject* m_send_nowait(PyObject* self, PyObject* obj);  // METH_O
PyObject* m_send_many(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames);
PyObject* m_recv(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames);
PyObject* m_recv_nowait(PyObject* self, PyObject*);  // METH_NOARGS
PyObject* m_recv_many(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames);
PyObject* r_next(PyObject* self);  // tp_iternext

}  // namespace xchan::py
