// The single mapping from xchan::Status to Python exceptions.
#include "errors.hpp"

namespace xchan::py {
namespace {

void set_channel_full(ModuleState* st, const char* message) {
  PyObject* type = channel_full_type(st);  // or an ImportError already set
  if (type != nullptr) PyErr_SetString(type, message);
}

}  // namespace

PyObject* channel_full_type(ModuleState* st) {
  if (st->channel_full != nullptr) return st->channel_full;
  PyObject* queue = PyImport_ImportModule("queue");
  PyObject* full = queue ? PyObject_GetAttrString(queue, "Full") : nullptr;
  Py_XDECREF(queue);
  PyObject* bases = full ? PyTuple_Pack(2, st->channel_error, full) : nullptr;
  Py_XDECREF(full);
  if (bases == nullptr) return nullptr;
  // The import ran Python code, which may have made the class meanwhile.
  if (st->channel_full == nullptr) {
    st->channel_full = PyErr_NewExceptionWithDoc("xchan.ChannelFull",
                                                 "No room in the channel in time (also a queue.Full).", bases, nullptr);
  }
  Py_DECREF(bases);
  return st->channel_full;
}

PyObject* raise_status(ModuleState* st, Status s, Op op, Py_ssize_t max_message) {
  switch (s) {
    case Status::kOk:
      PyErr_SetString(PyExc_SystemError, "xchan: raise_status(kOk)");
      break;
    case Status::kFull:
      set_channel_full(st, "channel is full");
      break;
    case Status::kEmpty:
      PyErr_SetString(st->channel_empty, "channel is empty");
      break;
    case Status::kTimeout:
      if (op == Op::kSend) {
        set_channel_full(st, "timed out waiting for room in the channel");
      } else {
        PyErr_SetString(st->channel_empty, "timed out waiting for a message");
      }
      break;
    case Status::kClosed:
      PyErr_SetString(st->channel_closed, op == Op::kSend
                                              ? "channel closed: no receiver is open"
                                              : "channel closed: no sender is open and nothing is queued");
      break;
    case Status::kInterrupted:
      // Only reached if a signal arrived without a Python exception (handler returned).
      PyErr_SetString(PyExc_InterruptedError, "xchan: wait interrupted by a signal");
      break;
    case Status::kTooLarge:
      PyErr_Format(PyExc_ValueError,
                   "message is too large for this channel (its largest bytes/str message is %zd bytes; "
                   "raise max_bytes)",
                   max_message);
      break;
    case Status::kInvalidArgument:
      PyErr_SetString(PyExc_ValueError, "invalid channel argument");
      break;
    case Status::kCorrupted:
      PyErr_SetString(st->channel_error, "channel memory failed validation (corrupted record)");
      break;
    case Status::kNoMemory:
      PyErr_NoMemory();
      break;
    case Status::kPeerDied:
      PyErr_SetString(st->peer_died, op == Op::kSend
                                         ? "channel closed: a process that held its receivers died"
                                         : "channel closed: a process that held its senders died, and nothing is queued");
      break;
  }
  return nullptr;
}

}  // namespace xchan::py
