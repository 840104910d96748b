// Making channels and re-attaching ends (see channel_api.hpp). Every size argument is
// checked here, with one message per mistake, for channel() and max_message_for() alike.
#include "channel_api.hpp"

#include <unistd.h>

#include <cstring>

#include "arguments.hpp"
#include "ends.hpp"
#include "errors.hpp"
#include "xchan/channel/registry.hpp"

namespace xchan::py {
namespace {

constexpr std::uint64_t kDefaultMaxBytes = std::uint64_t{64} << 20;
constexpr std::uint64_t kMaxCapacity = std::uint64_t{1} << 40;   // as Channel::create
constexpr std::uint64_t kMaxBufferBytes = std::uint64_t{1} << 40;

/// An int argument in [1, limit]: TypeError for a non-int (bool included), ValueError
/// outside the range. False with the exception set.
bool size_argument(PyObject* obj, const char* name, std::uint64_t limit, std::uint64_t& out) {
  if (!PyLong_Check(obj) || PyBool_Check(obj)) {
    PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", name, Py_TYPE(obj)->tp_name);
    return false;
  }
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
  if (v == -1 && PyErr_Occurred()) return false;
  if (overflow < 0 || (overflow == 0 && v < 1)) {
    PyErr_Format(PyExc_ValueError, "%s must be >= 1, not %R", name, obj);
    return false;
  }
  if (overflow > 0 || static_cast<unsigned long long>(v) > limit) {
    PyErr_Format(PyExc_ValueError, "%s must be <= %llu, not %R", name, static_cast<unsigned long long>(limit), obj);
    return false;
  }
  out = static_cast<std::uint64_t>(v);
  return true;
}

/// The config for (capacity, max_bytes); nullptr arguments keep the defaults.
bool channel_config(PyObject* capacity, PyObject* max_bytes, ChannelConfig& config) {
  config.max_bytes = kDefaultMaxBytes;
  return (capacity == nullptr || size_argument(capacity, "capacity", kMaxCapacity, config.capacity)) &&
         (max_bytes == nullptr || size_argument(max_bytes, "max_bytes", kMaxBufferBytes, config.max_bytes));
}

PyObject* raise_make_error(ModuleState* st, Status s, const ChannelConfig& config) {
  if (s == Status::kNoMemory) {
    PyErr_Format(PyExc_MemoryError, "cannot map %llu bytes for the channel's buffer (max_bytes=%llu)",
                 static_cast<unsigned long long>(max_message_for(config.max_bytes) * 2 + 16),
                 static_cast<unsigned long long>(config.max_bytes));
    return nullptr;
  }
  return raise_status(st, s, Op::kOther);
}

PyObject* wrap_pair(ModuleState* st, xchan::Sender tx, xchan::Receiver rx) {
  PyObject* py_tx = wrap_sender(st, std::move(tx));
  PyObject* py_rx = py_tx ? wrap_receiver(st, std::move(rx)) : nullptr;
  PyObject* pair = py_rx ? PyTuple_Pack(2, py_tx, py_rx) : nullptr;
  Py_XDECREF(py_tx);
  Py_XDECREF(py_rx);
  return pair;
}

/// A new channel and its first two ends, as a tuple.
PyObject* make_pair(ModuleState* st, const ChannelConfig& config, bool attach_by_id) {
  return guarded(st, [&]() -> PyObject* {
    xchan::Sender tx;
    xchan::Receiver rx;
    const Status s = make_channel(config, tx, rx);
    if (s != Status::kOk) return raise_make_error(st, s, config);
    if (attach_by_id) ChannelRegistry::instance().allow_attach_by_id(tx.channel()->id());
    return wrap_pair(st, std::move(tx), std::move(rx));
  });
}

}  // namespace

PyObject* f_channel(PyObject* module, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  static const char* const names[] = {"capacity", "max_bytes", "shared"};
  PyObject* a[3] = {nullptr, nullptr, Py_False};
  if (nargs > 0) {
    PyErr_SetString(PyExc_TypeError, "channel() takes keyword arguments only (capacity=, max_bytes=, shared=)");
    return nullptr;
  }
  ChannelConfig config;
  if (!parse_args("channel", args, nargs, kwnames, names, 3, 0, a) || !channel_config(a[0], a[1], config)) {
    return nullptr;
  }
  if (!PyBool_Check(a[2])) {
    PyErr_Format(PyExc_TypeError, "shared must be a bool, not %.100s", Py_TYPE(a[2])->tp_name);
    return nullptr;
  }
  config.shared = a[2] == Py_True;
  return make_pair(state_of_module(module), config, false);
}

PyObject* f_max_message(PyObject*, PyObject* arg) {
  ChannelConfig config;
  if (!channel_config(nullptr, arg, config)) return nullptr;
  return PyLong_FromUnsignedLongLong(max_message_for(config.max_bytes) - kBytesMessageOverhead);
}

PyObject* f_attach(PyObject* module, PyObject* const* args, Py_ssize_t nargs) {
  ModuleState* st = state_of_module(module);
  if (nargs != 3 && nargs != 4) {
    PyErr_SetString(PyExc_TypeError, "_attach(token, channel_id, is_sender[, pid])");
    return nullptr;
  }
  if (nargs == 4) {
    // An end of a shared channel carries the pid of the process that pickled it: its
    // token means nothing in another process.
    const long pid = PyLong_AsLong(args[3]);
    if (pid == -1 && PyErr_Occurred()) return nullptr;
    if (pid != static_cast<long>(getpid())) {
      PyErr_SetString(st->channel_error,
                      "an end of a shared channel was pickled in another process: such ends reach other "
                      "processes by fork() for now (os.fork, multiprocessing's 'fork' start method); passing "
                      "them to spawned processes is not built yet");
      return nullptr;
    }
  }
  ParkToken token;
  if (!PyBytes_Check(args[0]) || PyBytes_GET_SIZE(args[0]) != sizeof token.hi + sizeof token.lo) {
    PyErr_SetString(st->channel_error, "malformed pickled end (bad token)");
    return nullptr;
  }
  std::memcpy(&token.hi, PyBytes_AS_STRING(args[0]), sizeof token.hi);
  std::memcpy(&token.lo, PyBytes_AS_STRING(args[0]) + sizeof token.hi, sizeof token.lo);
  const unsigned long long id = PyLong_AsUnsignedLongLong(args[1]);
  if (PyErr_Occurred()) return nullptr;
  const int is_sender = PyObject_IsTrue(args[2]);
  if (is_sender < 0) return nullptr;
  return guarded(st, [&]() -> PyObject* {
    ChannelRegistry::End end;
    switch (ChannelRegistry::instance().take(token, is_sender != 0, id, end)) {
      case ChannelRegistry::TakeResult::kTaken:
        return is_sender ? wrap_sender(st, std::move(std::get<xchan::Sender>(end)))
                         : wrap_receiver(st, std::move(std::get<xchan::Receiver>(end)));
      case ChannelRegistry::TakeResult::kUnknown:
        PyErr_SetString(st->channel_closed,
                        "this pickled end is gone: it was unpickled already (an end is unpickled at most once), "
                        "or the interpreter that pickled it has ended");
        return nullptr;
      case ChannelRegistry::TakeResult::kMismatch:
        break;
    }
    PyErr_SetString(st->channel_error, "malformed pickled end (its token names another end)");
    return nullptr;
  });
}

PyObject* f_queue_channel(PyObject* module, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 2) {
    PyErr_SetString(PyExc_TypeError, "_queue_channel(capacity, max_bytes)");
    return nullptr;
  }
  ChannelConfig config;
  if (!channel_config(args[0], args[1], config)) return nullptr;
  return make_pair(state_of_module(module), config, true);
}

PyObject* f_attach_queue(PyObject* module, PyObject* arg) {
  ModuleState* st = state_of_module(module);
  const unsigned long long id = PyLong_AsUnsignedLongLong(arg);
  if (PyErr_Occurred()) return nullptr;
  return guarded(st, [&]() -> PyObject* {
    std::shared_ptr<Channel> ch = ChannelRegistry::instance().find_attachable(id);
    if (!ch || !ch->usable_in_this_process()) {
      PyErr_SetString(st->channel_closed, "this queue no longer exists (every copy of it was gone)");
      return nullptr;
    }
    return wrap_pair(st, xchan::Sender(ch), xchan::Receiver(ch));
  });
}

}  // namespace xchan::py
