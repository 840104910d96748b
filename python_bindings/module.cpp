// xchan._xchan: multi-phase init, per-module state, exception types, module functions.
// Supports own-GIL subinterpreters (Py_MOD_PER_INTERPRETER_GIL_SUPPORTED): every Python
// object lives in this module's state; the only process-wide state is the C++ registry.
#include <memory>

#include "channel_api.hpp"
#include "codec.hpp"
#include "ends.hpp"
#include "errors.hpp"
#include "instances.hpp"
#include "worker.hpp"
#include "xchan/channel/registry.hpp"

namespace xchan::py {
namespace {

PyObject* new_exception(PyObject* module, const char* name, const char* doc, PyObject* bases) {
  PyObject* exc = PyErr_NewExceptionWithDoc(name, doc, bases, nullptr);
  if (exc == nullptr) return nullptr;
  const char* short_name = name + sizeof("xchan.") - 1;
  if (PyModule_AddObjectRef(module, short_name, exc) != 0) {
    Py_DECREF(exc);
    return nullptr;
  }
  return exc;
}

// ChannelEmpty's second base is queue.Empty, which CPython defines in the small C module
// _queue; ChannelFull's is queue.Full, defined by queue.py, whose import (with threading
// and collections) is a large part of a new interpreter's start-up (docs/performance.md,
// "Worker start-up"). So ChannelFull is made on first use: when raised, or looked up
// through the module's __getattr__.
int add_exceptions(PyObject* module, ModuleState* st) {
  PyObject* queue_c = PyImport_ImportModule("_queue");
  if (queue_c == nullptr) return -1;
  PyObject* empty = PyObject_GetAttrString(queue_c, "Empty");
  Py_DECREF(queue_c);
  int rc = -1;
  if (empty &&
      (st->channel_error = new_exception(module, "xchan.ChannelError", "Base class of xchan's errors.",
                                         PyExc_Exception))) {
    PyObject* b_empty = PyTuple_Pack(2, st->channel_error, empty);
    if (b_empty &&
        (st->channel_empty = new_exception(module, "xchan.ChannelEmpty",
                                           "No message arrived in time (also a queue.Empty).", b_empty)) &&
        (st->channel_closed = new_exception(module, "xchan.ChannelClosed",
                                            "The other side is gone: no sender (after draining) or no receiver.",
                                            st->channel_error)) &&
        (st->peer_died = new_exception(module, "xchan.PeerDied",
                                       "The process at the other side died.", st->channel_closed)) &&
        (st->worker_error = new_exception(module, "xchan.WorkerError",
                                          "A worker's function raised; .traceback_text has its traceback.",
                                          st->channel_error))) {
      rc = 0;
    }
    Py_XDECREF(b_empty);
  }
  Py_XDECREF(empty);
  return rc;
}

// __getattr__(name): the attributes made on first use (ChannelFull).
PyObject* f_getattr(PyObject* module, PyObject* name) {
  if (PyUnicode_Check(name) && PyUnicode_CompareWithASCIIString(name, "ChannelFull") == 0) {
    return Py_XNewRef(channel_full_type(state_of_module(module)));
  }
  PyErr_Format(PyExc_AttributeError, "module 'xchan._xchan' has no attribute %R", name);
  return nullptr;
}

PyObject* f_parked_ends(PyObject*, PyObject*) {
  return PyLong_FromSize_t(ChannelRegistry::instance().parked());
}

// Closes what an interpreter that is ending still holds: its ends first (peers, its own
// workers included, see disconnection), then, once its workers are gone (they may still
// unpickle ends it parked for them), the ends it pickled that nobody unpickled.
void drop_parked_ends(ModuleState* st) noexcept {
  try {
    ChannelRegistry::instance().drop_parked_by(st->interpreter_id);
  } catch (...) {  // only std::bad_alloc: the ends then stay parked until the process ends
  }
}

// _shutdown(): the atexit step (see worker.hpp, shutdown_workers).
PyObject* f_shutdown(PyObject* module, PyObject*) {
  ModuleState* st = state_of_module(module);
  st->shutting_down = true;
  close_all_ends(st);
  PyObject* r = shutdown_workers(module);
  drop_parked_ends(st);
  return r;
}

PyObject* f_out_of_band(PyObject* module, PyObject*) {
  return PyBool_FromLong(state_of_module(module)->out_of_band_pickle);
}

PyObject* f_encode(PyObject* module, PyObject* obj) {
  Encoded enc;
  if (!enc.prepare(state_of_module(module), obj)) return nullptr;
  PyObject* out = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(enc.size()));
  if (out == nullptr) return nullptr;
  enc.write(reinterpret_cast<std::byte*>(PyBytes_AS_STRING(out)));
  enc.sent();  // the caller has the message, and the ends it parked with it
  return out;
}

PyObject* f_decode(PyObject* module, PyObject* arg) {
  Py_buffer view;
  if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) != 0) return nullptr;
  PyObject* obj = decode(state_of_module(module), static_cast<const std::byte*>(view.buf),
                         static_cast<std::size_t>(view.len));
  PyBuffer_Release(&view);
  return obj;
}

PyObject* f_in_main(PyObject* module, PyObject*) {
  return PyBool_FromLong(state_of_module(module)->is_main_interpreter);
}

PyMethodDef kFunctions[] = {
    {"channel", as_cfunction(f_channel), METH_FASTCALL | METH_KEYWORDS,
     "channel($module, /, *, capacity=1024, max_bytes=67108864, shared=False)\n--\n\n"
     "A new bounded channel: (Sender, Receiver); shared=True places it in shared memory."},
    {"max_message_for", f_max_message, METH_O,
     "max_message_for($module, max_bytes, /)\n--\n\nThe largest bytes/str a channel of that max_bytes takes."},
    {"_attach", as_cfunction(f_attach), METH_FASTCALL, "Unpickles a channel end."},
    {"_queue_channel", as_cfunction(f_queue_channel), METH_FASTCALL, "A channel for xchan.Queue."},
    {"_attach_queue", f_attach_queue, METH_O, "New ends of a queue's channel, by its id."},
    {"_spawn", as_cfunction(spawn_interpreter), METH_FASTCALL, "Starts a worker interpreter."},
    {"_workers", count_workers, METH_NOARGS, "Workers started here and not joined yet (for tests)."},
    {"_shutdown", f_shutdown, METH_NOARGS, "Closes this interpreter's ends, then waits for its workers (atexit)."},
    {"_parked_ends", f_parked_ends, METH_NOARGS, "Ends pickled and not yet unpickled (for tests)."},
    {"_in_main_interpreter", f_in_main, METH_NOARGS, "True in the main interpreter."},
    {"_out_of_band_pickle", f_out_of_band, METH_NOARGS, "True if pickled buffers travel out of band here."},
    {"__getattr__", f_getattr, METH_O, "Attributes made on first use (ChannelFull)."},
    {"_encode", f_encode, METH_O, "The message bytes an object is sent as."},
    {"_decode", f_decode, METH_O, "The object a message's bytes stand for (inverse of _encode)."},
    {nullptr, nullptr, 0, nullptr},
};

int exec_module(PyObject* module) {
  ModuleState* st = state_of_module(module);
  PyInterpreterState* interp = PyInterpreterState_Get();
  st->is_main_interpreter = interp == PyInterpreterState_Main();
  const std::int64_t id = PyInterpreterState_GetID(interp);
  if (id < 0) return -1;
  st->interpreter_id = static_cast<std::uint64_t>(id);
  // CPython gh-119213, fixed in 3.12.4 (see module_state.hpp): the running version, not
  // the headers', decides.
  st->out_of_band_pickle = !(Py_Version >= 0x030C0000 && Py_Version < 0x030C04F0);
  if (add_exceptions(module, st) != 0 || add_end_types(module, st) != 0 || add_worker_type(module, st) != 0) {
    return -1;
  }
  // pickle is imported on first use (load_pickle): a worker whose messages are all native
  // never pays for that import at start-up.
  st->attach_func = PyObject_GetAttrString(module, "_attach");
  if (st->attach_func == nullptr) return -1;
  return init_class_caches(st) ? 0 : -1;
}

int traverse(PyObject* module, visitproc visit, void* arg) {
  ModuleState* st = state_of_module(module);
  Py_VISIT(st->channel_error);
  Py_VISIT(st->channel_empty);
  Py_VISIT(st->channel_full);
  Py_VISIT(st->channel_closed);
  Py_VISIT(st->peer_died);
  Py_VISIT(st->worker_error);
  Py_VISIT(st->sender_type);
  Py_VISIT(st->receiver_type);
  Py_VISIT(st->worker_type);
  Py_VISIT(st->pickle_dumps);
  Py_VISIT(st->pickle_loads);
  Py_VISIT(st->attach_func);
  return traverse_class_caches(st, visit, arg);
}

int clear(PyObject* module) {
  ModuleState* st = state_of_module(module);
  Py_CLEAR(st->channel_error);
  Py_CLEAR(st->channel_empty);
  Py_CLEAR(st->channel_full);
  Py_CLEAR(st->channel_closed);
  Py_CLEAR(st->peer_died);
  Py_CLEAR(st->worker_error);
  Py_CLEAR(st->sender_type);
  Py_CLEAR(st->receiver_type);
  Py_CLEAR(st->worker_type);
  Py_CLEAR(st->pickle_dumps);
  Py_CLEAR(st->pickle_loads);
  Py_CLEAR(st->attach_func);
  clear_class_caches(st);
  return 0;
}

void free_module(void* module) {
  ModuleState* st = state_of_module(static_cast<PyObject*>(module));
  // The interpreter is going away: its ends close (peers see disconnection), then its
  // workers, which may be waiting on those ends, are joined.
  st->shutting_down = true;
  close_all_ends(st);
  finish_workers(st);
  drop_parked_ends(st);
  clear(static_cast<PyObject*>(module));
}

PyModuleDef_Slot kSlots[] = {
    {Py_mod_exec, reinterpret_cast<void*>(exec_module)},
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
    {0, nullptr},
};

PyModuleDef kModule = {
    PyModuleDef_HEAD_INIT, "_xchan", "Native core of xchan (use the xchan package).", sizeof(ModuleState),
    kFunctions, kSlots, traverse, clear, free_module,
};

}  // namespace
}  // namespace xchan::py

extern "C" __attribute__((visibility("default"))) PyObject* PyInit__xchan() {
  return PyModuleDef_Init(&xchan::py::kModule);
}
