// Per-module (so per-interpreter) state of xchan._xchan: exception types, heap types, the
// cached pickle functions and the list of ends opened in this interpreter, which are closed
// when the interpreter tears the module down. No static PyObject* anywhere.
#pragma once

#include <cstdint>

#include "python_api.hpp"
#include "xchan/channel/deadline.hpp"

namespace xchan::py {

struct EndObject;

struct ModuleState {
  PyObject* channel_error;   // xchan.ChannelError(Exception)
  PyObject* channel_empty;   // ChannelEmpty(ChannelError, queue.Empty)
  PyObject* channel_full;    // ChannelFull(ChannelError, queue.Full); made on first use
  PyObject* channel_closed;  // ChannelClosed(ChannelError)
  PyObject* peer_died;       // PeerDied(ChannelClosed)
  PyObject* worker_error;    // WorkerError(ChannelError)
  PyTypeObject* sender_type;
  PyTypeObject* receiver_type;
  PyTypeObject* worker_type;
  PyObject* pickle_dumps;
  PyObject* pickle_loads;
  PyObject* attach_func;     // _attach, for __reduce__
  EndObject* open_ends;      // intrusive list of ends still open in this interpreter
  void* workers;             // worker.cpp's list of the workers this interpreter started
  void* classes;             // instances.cpp's class caches
  bool is_main_interpreter;  // Ctrl-C is only delivered here
  std::uint64_t interpreter_id;  // owner of the ends this interpreter parks (pickles)
  // Pickle with out-of-band buffers (buffer_callback / buffers=). Off in every interpreter
  // of a CPython 3.12.0-3.12.3 process: there an isolated interpreter that is the first to
  // pass a keyword to a _pickle function corrupts the process's heap (CPython gh-119213;
  // docs/python.md, "Known issues"), and both arguments are keyword-only.
  bool out_of_band_pickle;
  // Set when this interpreter's exit began (the atexit step, or the module's teardown):
  // spawn() is refused from then on, as threading refuses new threads at shutdown, so that
  // the wait for workers at exit has an end.
  bool shutting_down;
};

/// The state of the module that defined `type` (a heap type of this module).
inline ModuleState* state_of(PyTypeObject* type) noexcept {
  return static_cast<ModuleState*>(PyType_GetModuleState(type));
}

inline ModuleState* state_of_module(PyObject* module) noexcept {
  return static_cast<ModuleState*>(PyModule_GetState(module));
}

}  // namespace xchan::py
