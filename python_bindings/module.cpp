// xchan._xchan: multi-phase init, per-module state, exception types, module functions.
// Supports own-GIL subinterpreters (Py_MOD_PER_INTERPRETER_GIL_SUPPORTED): every Python
// object lives in this module's state; the only process-wide state is the C++ registry.
#include <memory>

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
// and collections) costs a new interpreter about 3.5 ms. So ChannelFull is made on first
// use: when raised, or looked up through the module's __getattr__.
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

bool as_positive_u64(PyObject* obj, const char* name, unsigned long long& out) {
  if (!PyLong_Check(obj)) {
    PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", name, Py_TYPE(obj)->tp_name);
    return false;
  }
  const long long v = PyLong_AsLongLong(obj);
  if (v == -1 && PyErr_Occurred()) return false;
  if (v < 1) {
    PyErr_Format(PyExc_ValueError, "%s must be >= 1", name);
    return false;
  }
  out = static_cast<unsigned long long>(v);
  return true;
}

PyObject* f_channel(PyObject* module, PyObject* args, PyObject* kwargs) {
  ModuleState* st = state_of_module(module);
  static const char* names[] = {"capacity", "max_bytes", nullptr};
  PyObject* capacity = nullptr;
  PyObject* max_bytes = nullptr;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|$OO:channel", const_cast<char**>(names), &capacity, &max_bytes)) {
    return nullptr;
  }
  ChannelConfig config;
  config.max_bytes = std::uint64_t{64} << 20;
  unsigned long long v = 0;
  if (capacity != nullptr) {
    if (!as_positive_u64(capacity, "capacity", v)) return nullptr;
    config.capacity = v;
  }
  if (max_bytes != nullptr) {
    if (!as_positive_u64(max_bytes, "max_bytes", v)) return nullptr;
    config.max_bytes = v;
  }
  return guarded(st, [&]() -> PyObject* {
    xchan::Sender tx;
    xchan::Receiver rx;
    const Status s = make_channel(config, tx, rx);
    if (s != Status::kOk) return raise_status(st, s, Op::kOther);
    PyObject* py_tx = wrap_sender(st, std::move(tx));
    PyObject* py_rx = py_tx ? wrap_receiver(st, std::move(rx)) : nullptr;
    PyObject* pair = py_rx ? PyTuple_Pack(2, py_tx, py_rx) : nullptr;
    Py_XDECREF(py_tx);
    Py_XDECREF(py_rx);
    return pair;
  });
}

// _attach(token, channel_id, is_sender): unpickles an end.
PyObject* f_attach(PyObject* module, PyObject* const* args, Py_ssize_t nargs) {
  ModuleState* st = state_of_module(module);
  if (nargs != 3) {
    PyErr_SetString(PyExc_TypeError, "_attach(token, channel_id, is_sender)");
    return nullptr;
  }
  const unsigned long long token = PyLong_AsUnsignedLongLong(args[0]);
  if (PyErr_Occurred()) return nullptr;
  const unsigned long long id = PyLong_AsUnsignedLongLong(args[1]);
  if (PyErr_Occurred()) return nullptr;
  const int is_sender = PyObject_IsTrue(args[2]);
  if (is_sender < 0) return nullptr;
  return guarded(st, [&]() -> PyObject* {
    ChannelRegistry::End end;
    if (ChannelRegistry::instance().take(token, end)) {
      if (is_sender && std::holds_alternative<xchan::Sender>(end)) {
        return wrap_sender(st, std::move(std::get<xchan::Sender>(end)));
      }
      if (!is_sender && std::holds_alternative<xchan::Receiver>(end)) {
        return wrap_receiver(st, std::move(std::get<xchan::Receiver>(end)));
      }
    }
    // Unpickled a second time (or the token was consumed): open a new end if the channel
    // is still alive.
    std::shared_ptr<Channel> ch = ChannelRegistry::instance().find(id);
    if (!ch) {
      PyErr_SetString(st->channel_closed, "the channel of this pickled end no longer exists");
      return nullptr;
    }
    return is_sender ? wrap_sender(st, xchan::Sender(ch)) : wrap_receiver(st, xchan::Receiver(ch));
  });
}

PyObject* f_max_message(PyObject*, PyObject* arg) {
  const unsigned long long v = PyLong_AsUnsignedLongLong(arg);
  if (v == static_cast<unsigned long long>(-1) && PyErr_Occurred()) return nullptr;
  return PyLong_FromUnsignedLongLong(max_message_for(v));
}

PyObject* f_parked_ends(PyObject*, PyObject*) {
  return PyLong_FromSize_t(ChannelRegistry::instance().parked());
}

// _shutdown(): at interpreter exit, drop this interpreter's ends (peers, including its own
// workers, see disconnection), then wait for its workers.
PyObject* f_shutdown(PyObject* module, PyObject*) {
  close_all_ends(state_of_module(module));
  return join_all_workers(module, nullptr);
}

PyObject* f_out_of_band(PyObject* module, PyObject*) {
  return PyBool_FromLong(state_of_module(module)->out_of_band_pickle);
}

PyObject* f_encode(PyObject* module, PyObject* obj) {
  Encoded enc;
  if (!enc.prepare(state_of_module(module), obj)) return nullptr;
  PyObject* out = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(enc.size()));
  if (out != nullptr) enc.write(reinterpret_cast<std::byte*>(PyBytes_AS_STRING(out)));
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
    {"channel", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(f_channel)), METH_VARARGS | METH_KEYWORDS,
     "channel(*, capacity=1024, max_bytes=64 MiB) -> (Sender, Receiver)"},
    {"_attach", as_cfunction(f_attach), METH_FASTCALL, "Unpickles a channel end."},
    {"_spawn", as_cfunction(spawn_interpreter), METH_FASTCALL, "Starts a worker interpreter."},
    {"_join_workers", join_all_workers, METH_NOARGS, "Joins every worker this interpreter started."},
    {"_shutdown", f_shutdown, METH_NOARGS, "Closes this interpreter's ends, then joins its workers (atexit)."},
    {"max_message_for", f_max_message, METH_O, "max_message_for(max_bytes) -> largest message size."},
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
  st->is_main_interpreter = PyInterpreterState_Get() == PyInterpreterState_Main();
  st->out_of_band_pickle = PY_VERSION_HEX >= 0x030D0000 || st->is_main_interpreter;
  if (add_exceptions(module, st) != 0 || add_end_types(module, st) != 0 || add_worker_type(module, st) != 0) {
    return -1;
  }
  // pickle is imported on first use (load_pickle): a worker whose messages are all native
  // never pays for it (about 5 ms of start-up).
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
  return 0;
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
  close_all_ends(st);
  if (has_workers(st)) {  // release the GIL in teardown only when there is someone to wait for
    Py_BEGIN_ALLOW_THREADS
    join_all_workers_nogil(st);
    Py_END_ALLOW_THREADS
  }
  free_workers(st);
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
