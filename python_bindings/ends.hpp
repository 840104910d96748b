// The Python Sender and Receiver types: thin heap types over xchan::Sender / Receiver.
#pragma once

#include "module_state.hpp"
#include "xchan/channel/ends.hpp"

namespace xchan::py {

/// One Python-visible end. Exactly one of `tx`/`rx` is used, per `is_sender`. Ends opened
/// in an interpreter are linked into its module state so that tearing the interpreter down
/// closes them even if some objects are never deallocated.
struct EndObject {
  PyObject_HEAD
  xchan::Sender tx;
  xchan::Receiver rx;
  bool is_sender;
  // Calls in progress that use the channel through a plain pointer (see EndUse in
  // ends.cpp); close() while any is running is deferred to the last one. GIL-protected.
  bool close_pending;
  int busy;
  ModuleState* owner;  // null once the module state is gone
  EndObject* prev;
  EndObject* next;
};

/// Creates the two heap types in `module`'s state. Returns -1 with an exception set.
int add_end_types(PyObject* module, ModuleState* st);

/// Wraps a C++ end in a new Python object (new reference, or nullptr with an exception).
PyObject* wrap_sender(ModuleState* st, xchan::Sender tx);
PyObject* wrap_receiver(ModuleState* st, xchan::Receiver rx);

/// Closes every end still open in this interpreter and forgets them (module teardown).
void close_all_ends(ModuleState* st) noexcept;

/// Blocks until `ch` may be readable (or writable for `n` bytes), releasing the GIL; wakes
/// in slices in the main interpreter so that Ctrl-C is handled. Returns kOk, kTimeout, or
/// kInterrupted with the Python exception (KeyboardInterrupt, ...) set.
Status wait_for(ModuleState* st, Channel& ch, bool writable, std::size_t n, Deadline deadline);

}  // namespace xchan::py
