// Receiving: messages are taken under the consumer lock without running Python code, then
// decoded after it is released.
#include <algorithm>
#include <utility>
#include <vector>

#include "arguments.hpp"
#include "codec.hpp"
#include "end_use.hpp"

namespace xchan::py {
namespace {

using Taken = TakenMessage;

/// Taken messages: the first inline (recv() takes one and allocates nothing here).
class TakenList {
 public:
  void push_back(const Taken& t) {
    if (size_++ == 0) first_ = t;
    else rest_.push_back(t);
  }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  Taken& operator[](std::size_t i) noexcept { return i == 0 ? first_ : rest_[i - 1]; }

 private:
  Taken first_;
  std::vector<Taken> rest_;
  std::size_t size_ = 0;
};

/// A drain that takes messages into `out` without running Python code under the lock.
struct TakeInto {
  ModuleState* st;
  TakenList* out;
  bool operator()(std::span<const std::byte> in) const {
    // An earlier message of this batch failed to decode: stop here (the rest stays
    // queued) rather than call the C API with an exception pending.
    if (PyErr_Occurred()) return false;
    Taken t;
    t.value = decode_flat(st, in.data(), in.size());
    if (t.value == nullptr) {
      if (PyErr_Occurred()) {
        // A malformed flat value: consumed, reported by finish() as ChannelError.
        out->push_back(t);
        return true;
      }
      t.value = PyBytes_FromStringAndSize(reinterpret_cast<const char*>(in.data()),
                                          static_cast<Py_ssize_t>(in.size()));
      if (t.value == nullptr) return false;  // MemoryError: leave the message queued
      t.raw = true;
    }
    out->push_back(t);
    return true;
  }
};

/// True if the pending error interrupts the call (KeyboardInterrupt from Ctrl-C, or
/// another BaseException that is not an Exception) rather than being the message's own
/// failure to decode.
bool interrupted() noexcept {
  return PyErr_Occurred() != nullptr && PyErr_ExceptionMatches(PyExc_Exception) == 0;
}

/// Turns a taken message into its object (decoding a raw one now, outside the lock).
/// Returns a new reference, or nullptr with the error set. Consumes the entry, unless
/// decoding was interrupted(): then it stays as it was, to be held.
PyObject* finish(ModuleState* st, Taken& t) {
  if (t.value == nullptr) return nullptr;  // error already set by decode_flat
  if (!t.raw) return std::exchange(t.value, nullptr);
  PyObject* v = decode(st, reinterpret_cast<const std::byte*>(PyBytes_AS_STRING(t.value)),
                       static_cast<std::size_t>(PyBytes_GET_SIZE(t.value)));
  if (v == nullptr && interrupted()) return nullptr;
  Py_CLEAR(t.value);
  return v;
}

/// Keeps messages on the end for its next receive, ahead of what it already held: first
/// the values of `decoded` (a list, may be null), then taken[from..). Takes their
/// references; malformed entries (no value) are dropped.
void hold(EndObject* self, PyObject* decoded, TakenList& taken, std::size_t from) noexcept {
  std::vector<Taken> kept;
  try {
    if (decoded != nullptr) {
      for (Py_ssize_t i = 0; i < PyList_GET_SIZE(decoded); ++i) {
        kept.push_back(Taken{Py_NewRef(PyList_GET_ITEM(decoded, i)), false});
      }
    }
    for (std::size_t i = from; i < taken.size(); ++i) {
      if (taken[i].value != nullptr) kept.push_back(std::exchange(taken[i], Taken{}));
    }
    self->held.insert(self->held.begin(), kept.begin(), kept.end());
  } catch (const std::bad_alloc&) {
    // No memory to keep them: they are lost, and the interruption still propagates.
    for (const Taken& t : kept) Py_DECREF(t.value);
    for (std::size_t i = from; i < taken.size(); ++i) Py_CLEAR(taken[i].value);
  }
}

/// The next `max` messages the end held (see EndObject::held), moved into `out`.
void take_held(EndObject* self, std::size_t max, TakenList& out) {
  const std::size_t n = std::min(max, self->held.size());
  for (std::size_t i = 0; i < n; ++i) out.push_back(self->held[i]);
  self->held.erase(self->held.begin(), self->held.begin() + static_cast<std::ptrdiff_t>(n));
}

/// The batch as a list. Every taken message is consumed, so a message that fails to
/// decode must not take the good ones of its batch with it: they go with the first error,
/// as its `received`. A malformed flat value left its error pending when it was taken, and
/// it is the batch's last message: that error is held while the others decode. An
/// interruption stops decoding: everything not yet handed over is held by the end, and the
/// interruption is raised.
PyObject* finish_all(EndObject* self, ModuleState* st, TakenList& taken) {
  PyObject* pending = PyErr_GetRaisedException();
  PyObject* list = PyList_New(0);
  PyObject* error = list == nullptr ? PyErr_GetRaisedException() : nullptr;
  for (std::size_t i = 0; i < taken.size(); ++i) {
    if (taken[i].value == nullptr && pending != nullptr) {
      PyErr_SetRaisedException(pending);
      pending = nullptr;
    }
    PyObject* v = finish(st, taken[i]);
    if (v == nullptr && interrupted()) {
      hold(self, list, taken, i);
      Py_XDECREF(list);
      Py_XDECREF(error);
      Py_XDECREF(pending);
      return nullptr;
    }
    const bool kept = v != nullptr && list != nullptr && PyList_Append(list, v) == 0;
    Py_XDECREF(v);
    if (!kept && PyErr_Occurred()) {  // first failure wins; decoding goes on (all consumed)
      if (error == nullptr) error = PyErr_GetRaisedException();
      else PyErr_Clear();
    }
  }
  Py_XDECREF(pending);
  if (list == nullptr) {
    PyErr_SetRaisedException(error);
    return nullptr;
  }
  if (error != nullptr) {
    if (PyObject_SetAttrString(error, "received", list) != 0) PyErr_Clear();
    Py_DECREF(list);
    PyErr_SetRaisedException(error);
    return nullptr;
  }
  return list;
}

/// The one message of a recv(), held by the end if its decoding is interrupted.
PyObject* finish_one(EndObject* self, ModuleState* st, TakenList& taken) {
  PyObject* v = finish(st, taken[0]);
  if (v == nullptr && interrupted()) hold(self, nullptr, taken, 0);
  return v;
}

/// Receives up to `max` messages (at least one unless it fails): a list when `as_list`,
/// else the single object. Messages the end holds come first. `*ended` (if given) tells
/// whether a failure came from the end or its channel (closed, say) rather than from
/// decoding a message.
PyObject* receive(EndObject* self, std::size_t max, Deadline deadline, bool as_list, bool* ended = nullptr) {
  ModuleState* st = state(self);
  EndUse use(self);
  if (ended != nullptr) *ended = true;
  Channel* ch = use.get();
  if (ch == nullptr) return nullptr;
  TakenList taken;
  if (!self->held.empty()) {
    take_held(self, max, taken);
  } else {
    for (;;) {
      std::size_t got = 0;
      const Status s = ch->try_recv_many_with(max, TakeInto{st, &taken}, got);
      if (s == Status::kOk) break;
      if (s == Status::kNoMemory) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        return nullptr;
      }
      if (s != Status::kEmpty) return raise_status(st, s, Op::kRecv);
      const Status w = use.wait(st, false, 0, deadline);
      if (w == Status::kInterrupted) return nullptr;
      if (w != Status::kOk) return raise_status(st, w, Op::kRecv);
      ch = use.recheck();  // closed by another thread while waiting: take nothing
      if (ch == nullptr) return nullptr;
    }
  }
  if (ended != nullptr) *ended = false;
  return as_list ? finish_all(self, st, taken) : finish_one(self, st, taken);
}

}  // namespace

PyObject* m_recv(PyObject* obj, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  static const char* const names[] = {"timeout"};
  PyObject* a[1] = {Py_None};
  Deadline d = Deadline::never();
  if (!parse_args("recv", args, nargs, kwnames, names, 1, 0, a) || !parse_timeout(a[0], d)) return nullptr;
  auto* self = reinterpret_cast<EndObject*>(obj);
  return guarded(state(self), [&] { return receive(self, 1, d, false); });
}

PyObject* m_recv_nowait(PyObject* obj, PyObject*) {
  auto* self = reinterpret_cast<EndObject*>(obj);
  return guarded(state(self), [&] { return receive(self, 1, Deadline::now(), false); });
}

PyObject* m_recv_many(PyObject* obj, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  static const char* const names[] = {"max_items", "timeout"};
  PyObject* a[2] = {nullptr, Py_None};
  Deadline d = Deadline::never();
  if (!parse_args("recv_many", args, nargs, kwnames, names, 2, 0, a) || !parse_timeout(a[1], d)) return nullptr;
  Py_ssize_t max = 1024;
  if (a[0] != nullptr) {
    max = PyNumber_AsSsize_t(a[0], PyExc_OverflowError);
    if (max == -1 && PyErr_Occurred()) return nullptr;
    if (max < 1) {
      PyErr_SetString(PyExc_ValueError, "max_items must be >= 1");
      return nullptr;
    }
  }
  auto* self = reinterpret_cast<EndObject*>(obj);
  return guarded(state(self), [&] { return receive(self, static_cast<std::size_t>(max), d, true); });
}

PyObject* r_next(PyObject* obj) {
  auto* self = reinterpret_cast<EndObject*>(obj);
  ModuleState* st = state(self);
  bool ended = false;
  PyObject* v = guarded(st, [&] { return receive(self, 1, Deadline::never(), false, &ended); });
  // The channel is closed (every sender gone and drained), or this end was: the loop ends.
  // A ChannelClosed that decoding a message raised (a stale end inside it) is that
  // message's error instead, and propagates; so does PeerDied (a sender's process died):
  // a loop must not end as if the work were complete.
  if (v == nullptr && ended && PyErr_ExceptionMatches(st->channel_closed) &&
      !PyErr_ExceptionMatches(st->peer_died)) {
    PyErr_Clear();
  }
  return v;
}

}  // namespace xchan::py
