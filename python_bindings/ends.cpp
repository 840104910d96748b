// Sender and Receiver: encode/decode around the channel's non-blocking transfers, and
// waiting with the GIL released in between.
#include "ends.hpp"

#include <algorithm>
#include <array>
#include <memory>
#include <new>
#include <vector>

#include "arguments.hpp"
#include "codec.hpp"
#include "errors.hpp"
#include "waiting.hpp"
#include "xchan/channel/registry.hpp"

namespace xchan::py {
namespace {

// ---- argument helpers ------------------------------------------------------------------

ModuleState* state(EndObject* self) { return self->owner ? self->owner : state_of(Py_TYPE(self)); }

bool is_open(EndObject* self) {
  return !self->close_pending && !(self->is_sender ? self->tx.is_closed() : self->rx.is_closed());
}

PyObject* set_closed_error(EndObject* self) {
  PyErr_SetString(state(self)->channel_closed, self->is_sender ? "this Sender is closed" : "this Receiver is closed");
  return nullptr;
}

void close_end(EndObject* self) noexcept;

/// Use of an end's channel for the length of one call. While the GIL is held the channel
/// is reached through a plain pointer, and the end is pinned: a close() that Python code
/// run meanwhile makes (a finalizer during an allocation, a __reduce__ during pickling) is
/// deferred to the end of the call. Copying the end's shared_ptr instead would cost an
/// atomic on a cache line that every end of the channel, in every interpreter, shares.
/// Before the GIL is released, hold() trades the pin for a counted reference, so that
/// other threads may close the end while this one waits.
class EndUse {
 public:
  explicit EndUse(EndObject* self) : self_(self) {
    if (!is_open(self)) {
      set_closed_error(self);
      return;
    }
    channel_ = self->is_sender ? self->tx.channel().get() : self->rx.channel().get();
    ++self->busy;
    pinned_ = true;
  }
  EndUse(const EndUse&) = delete;
  EndUse& operator=(const EndUse&) = delete;
  ~EndUse() { unpin(); }

  /// The channel, or nullptr (ChannelClosed set) if the end was closed.
  [[nodiscard]] Channel* get() const noexcept { return channel_; }

  /// wait_for() on the channel: first a short poll with the GIL held (a busy peer usually
  /// delivers within a microsecond, sooner than the GIL is dropped and taken back), then
  /// with the GIL released, the channel kept alive by a counted reference from then on.
  Status wait(ModuleState* st, bool writable, std::size_t n, Deadline deadline) {
    if (deadline.is_now()) {
      // No waiting, but room a wrap holds back comes back now (a short critical section
      // of the receivers' side, never a wait for Python code: fine with the GIL held).
      return writable && channel_->reclaim_stranded(n) ? Status::kOk : Status::kTimeout;
    }
    // Polls back off exponentially: each poll pulls the line the peer is writing away
    // from it, and a reader that catches up with a busy writer does better to let a few
    // messages gather than to take them one cache miss at a time.
    for (int pauses = 1; pauses <= kGilHeldMaxPauses; pauses *= 2) {
      for (int i = 0; i < pauses; ++i) core::cpu_relax();
      if (writable ? channel_->writable(n) : channel_->readable()) return Status::kOk;
    }
    if (held_ == nullptr) {
      held_ = self_->is_sender ? self_->tx.channel() : self_->rx.channel();
      unpin();
    }
    return wait_for(st, *channel_, writable, n, deadline);
  }

 private:
  void unpin() noexcept {
    if (!pinned_) return;
    pinned_ = false;
    if (--self_->busy == 0 && self_->close_pending) {
      self_->close_pending = false;
      close_end(self_);
    }
  }

  static constexpr int kGilHeldMaxPauses = 64;  // ~3.4 us of PAUSE in all on this machine

  EndObject* self_;
  Channel* channel_ = nullptr;
  std::shared_ptr<Channel> held_;
  bool pinned_ = false;
};

// ---- list of ends per interpreter ------------------------------------------------------

void link(ModuleState* st, EndObject* e) {
  e->owner = st;
  e->prev = nullptr;
  e->next = st->open_ends;
  if (st->open_ends) st->open_ends->prev = e;
  st->open_ends = e;
}

void unlink(EndObject* e) {
  if (e->owner == nullptr) return;
  if (e->prev) e->prev->next = e->next;
  else e->owner->open_ends = e->next;
  if (e->next) e->next->prev = e->prev;
  e->prev = e->next = nullptr;
}

void close_end(EndObject* self) noexcept {
  if (self->busy > 0) {
    self->close_pending = true;  // the last EndUse closes it
    return;
  }
  if (self->is_sender) self->tx.close();
  else self->rx.close();
}

PyObject* new_end(ModuleState* st, PyTypeObject* type) {
  auto* self = reinterpret_cast<EndObject*>(type->tp_alloc(type, 0));
  if (self == nullptr) return nullptr;
  new (&self->tx) xchan::Sender();
  new (&self->rx) xchan::Receiver();
  self->is_sender = type == st->sender_type;
  self->close_pending = false;
  self->busy = 0;
  link(st, self);
  return reinterpret_cast<PyObject*>(self);
}

void end_dealloc(PyObject* obj) {
  auto* self = reinterpret_cast<EndObject*>(obj);
  PyTypeObject* type = Py_TYPE(obj);
  close_end(self);
  unlink(self);
  self->tx.~Sender();
  self->rx.~Receiver();
  type->tp_free(obj);
  Py_DECREF(type);
}

// ---- receiving -------------------------------------------------------------------------

/// One message taken under the consumer lock: decoded at once if flat, else copied raw.
struct Taken {
  PyObject* value = nullptr;  // new reference: a flat value, or the raw bytes to decode
  bool raw = false;
};

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

/// Turns taken messages into objects (decoding raw ones now, outside the lock). Returns a
/// new reference to the first error-free object, or nullptr with the first error set;
/// consumes every entry either way.
PyObject* finish(ModuleState* st, Taken& t) {
  if (t.value == nullptr) return nullptr;  // error already set by decode_flat
  if (!t.raw) return t.value;
  PyObject* v = decode(st, reinterpret_cast<const std::byte*>(PyBytes_AS_STRING(t.value)),
                       static_cast<std::size_t>(PyBytes_GET_SIZE(t.value)));
  Py_DECREF(t.value);
  return v;
}

/// Receives up to `max` messages (at least one unless it fails): a list when `as_list`,
/// else the single object.
PyObject* receive(EndObject* self, std::size_t max, Deadline deadline, bool as_list) {
  ModuleState* st = state(self);
  EndUse use(self);
  Channel* ch = use.get();
  if (ch == nullptr) return nullptr;
  TakenList taken;
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
  }
  if (!as_list) return finish(st, taken[0]);
  // Every taken message is consumed, so a message that fails to decode must not take the
  // good ones of its batch with it: they go with the first error, as its `received`.
  // A malformed flat value left its error pending when it was taken, and it is the batch's
  // last message: hold that error while the others decode.
  PyObject* pending = PyErr_GetRaisedException();
  PyObject* list = PyList_New(0);
  PyObject* error = list == nullptr ? PyErr_GetRaisedException() : nullptr;
  for (std::size_t i = 0; i < taken.size(); ++i) {
    if (taken[i].value == nullptr && pending != nullptr) {
      PyErr_SetRaisedException(pending);
      pending = nullptr;
    }
    PyObject* v = finish(st, taken[i]);
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

// ---- sending ---------------------------------------------------------------------------

PyObject* send_one(EndObject* self, PyObject* obj, Deadline deadline) {
  ModuleState* st = state(self);
  if (!is_open(self)) return set_closed_error(self);
  Encoded enc;
  if (!enc.prepare(st, obj)) return nullptr;  // may run Python code (pickle)
  EndUse use(self);
  Channel* ch = use.get();
  if (ch == nullptr) return nullptr;
  const std::size_t n = enc.size();
  const auto max = static_cast<Py_ssize_t>(ch->max_message());
  for (;;) {
    const Status s = ch->try_send_with(n, [&enc, n](std::span<std::byte> out) noexcept {
      enc.write(out.data());
      return n;
    });
    if (s == Status::kOk) Py_RETURN_NONE;
    if (s != Status::kFull) return raise_status(st, s, Op::kSend, max);
    const Status w = use.wait(st, true, n, deadline);
    if (w == Status::kInterrupted) return nullptr;
    if (w != Status::kOk) return raise_status(st, w, Op::kSend, max);
  }
}

/// Sends encoded[0..count) in order, waiting for room as needed. Returns how many went;
/// fewer than `count` only with an exception set.
std::size_t send_encoded(EndObject* self, const Encoded* encoded, std::size_t count, Deadline deadline) {
  ModuleState* st = state(self);
  EndUse use(self);
  Channel* ch = use.get();
  if (ch == nullptr) return 0;
  const auto max = static_cast<Py_ssize_t>(ch->max_message());
  std::size_t sent = 0;
  while (sent < count) {
    std::size_t went = 0;
    const Encoded* rest = encoded + sent;
    const Status s = ch->try_send_many_with(
        count - sent, [rest](std::size_t i) { return rest[i].size(); },
        [rest](std::size_t i, std::span<std::byte> out) {
          rest[i].write(out.data());
          return rest[i].size();
        },
        went);
    sent += went;
    if (s == Status::kOk) continue;
    if (s != Status::kFull) {
      raise_status(st, s, Op::kSend, max);
      break;
    }
    const Status w = use.wait(st, true, encoded[sent].size(), deadline);
    if (w == Status::kInterrupted) break;
    if (w != Status::kOk) {
      raise_status(st, w, Op::kSend, max);
      break;
    }
  }
  return sent;
}

PyObject* send_batch(EndObject* self, PyObject* iterable, Deadline deadline) {
  ModuleState* st = state(self);
  if (!is_open(self)) return set_closed_error(self);
  PyObject* items = PySequence_Fast(iterable, "send_many() needs an iterable");
  if (items == nullptr) return nullptr;
  const auto count = static_cast<std::size_t>(PySequence_Fast_GET_SIZE(items));
  PyObject* result = nullptr;
  {
    // One allocation for the batch; the Encoded objects borrow from `items`, so they go
    // first (end of this block).
    const std::unique_ptr<Encoded[]> encoded(new (std::nothrow) Encoded[count]);
    std::size_t prepared = 0;
    bool ran_python = false;
    if (encoded == nullptr) PyErr_NoMemory();
    else {
      while (prepared < count && encoded[prepared].prepare(st, PySequence_Fast_GET_ITEM(items, static_cast<Py_ssize_t>(prepared)))) {
        ran_python = ran_python || encoded[prepared].ran_python();
        ++prepared;
      }
    }
    // Python code run while preparing (pickling, say) may have changed items sized
    // before it: size every native one again, so that the writes fit their reservations.
    for (std::size_t i = 0; ran_python && prepared == count && i < count; ++i) {
      if (!encoded[i].refresh()) prepared = i;
    }
    if (prepared == count) {
      const std::size_t sent = send_encoded(self, encoded.get(), count, deadline);
      if (sent == count) {
        result = PyLong_FromSize_t(sent);
      } else {
        // Tell the caller how many went: the exception carries `sent`.
        PyObject* exc = PyErr_GetRaisedException();
        PyObject* n = PyLong_FromSize_t(sent);
        if (n != nullptr && PyObject_SetAttrString(exc, "sent", n) != 0) PyErr_Clear();
        Py_XDECREF(n);
        PyErr_SetRaisedException(exc);
      }
    }
  }
  Py_DECREF(items);
  return result;
}

// ---- methods ---------------------------------------------------------------------------

PyObject* m_send(PyObject* obj, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  static const char* const names[] = {"obj", "timeout"};
  PyObject* a[2] = {nullptr, Py_None};
  Deadline d = Deadline::never();
  if (!parse_args("send", args, nargs, kwnames, names, 2, 1, a) || !parse_timeout(a[1], d)) return nullptr;
  auto* self = reinterpret_cast<EndObject*>(obj);
  return guarded(state(self), [&] { return send_one(self, a[0], d); });
}

PyObject* m_send_nowait(PyObject* obj, PyObject* arg) {
  auto* self = reinterpret_cast<EndObject*>(obj);
  return guarded(state(self), [&] { return send_one(self, arg, Deadline::now()); });
}

PyObject* m_send_many(PyObject* obj, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  static const char* const names[] = {"items", "timeout"};
  PyObject* a[2] = {nullptr, Py_None};
  Deadline d = Deadline::never();
  if (!parse_args("send_many", args, nargs, kwnames, names, 2, 1, a) || !parse_timeout(a[1], d)) return nullptr;
  auto* self = reinterpret_cast<EndObject*>(obj);
  return guarded(state(self), [&] { return send_batch(self, a[0], d); });
}

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

PyObject* m_clone(PyObject* obj, PyObject*) {
  auto* self = reinterpret_cast<EndObject*>(obj);
  ModuleState* st = state(self);
  if (!is_open(self)) return set_closed_error(self);
  return guarded(st, [&] {
    return self->is_sender ? wrap_sender(st, xchan::Sender(self->tx)) : wrap_receiver(st, xchan::Receiver(self->rx));
  });
}

PyObject* m_close(PyObject* obj, PyObject*) {
  close_end(reinterpret_cast<EndObject*>(obj));
  Py_RETURN_NONE;
}

PyObject* m_enter(PyObject* obj, PyObject*) { return Py_NewRef(obj); }

PyObject* m_exit(PyObject* obj, PyObject* const*, Py_ssize_t) {
  close_end(reinterpret_cast<EndObject*>(obj));
  Py_RETURN_FALSE;
}

PyObject* m_reduce(PyObject* obj, PyObject*) {
  auto* self = reinterpret_cast<EndObject*>(obj);
  ModuleState* st = state(self);
  EndUse use(self);
  const Channel* ch = use.get();
  if (ch == nullptr) return nullptr;
  return guarded(st, [&]() -> PyObject* {
    // The pickled form carries a parked clone, so the end stays open while in transit.
    ChannelRegistry::End end = self->is_sender ? ChannelRegistry::End(xchan::Sender(self->tx))
                                               : ChannelRegistry::End(xchan::Receiver(self->rx));
    const std::uint64_t token = ChannelRegistry::instance().park(std::move(end));
    return Py_BuildValue("O(KKO)", st->attach_func, static_cast<unsigned long long>(token),
                         static_cast<unsigned long long>(ch->id()), self->is_sender ? Py_True : Py_False);
  });
}

PyObject* m_stats(PyObject* obj, PyObject*) {
  auto* self = reinterpret_cast<EndObject*>(obj);
  EndUse use(self);
  const Channel* ch = use.get();
  if (ch == nullptr) return nullptr;
  const ChannelStats s = ch->stats();
  return Py_BuildValue(
      "{sKsKsKsKsKsKsKsKsKsKsIsIsIsI}", "sent", static_cast<unsigned long long>(s.sent), "received",
      static_cast<unsigned long long>(s.received), "queued", static_cast<unsigned long long>(s.queued),
      "queued_bytes", static_cast<unsigned long long>(s.queued_bytes), "capacity",
      static_cast<unsigned long long>(s.capacity), "max_bytes", static_cast<unsigned long long>(s.max_bytes),
      "max_message", static_cast<unsigned long long>(s.max_message), "wraps_undone",
      static_cast<unsigned long long>(s.wraps_undone), "high_water", static_cast<unsigned long long>(s.high_water),
      "high_water_bytes", static_cast<unsigned long long>(s.high_water_bytes), "senders", s.senders, "receivers",
      s.receivers, "parked_senders", s.parked_senders, "parked_receivers", s.parked_receivers);
}

PyObject* m_qsize(PyObject* obj, PyObject*) {
  auto* self = reinterpret_cast<EndObject*>(obj);
  EndUse use(self);
  const Channel* ch = use.get();
  return ch != nullptr ? PyLong_FromUnsignedLongLong(ch->stats().queued) : nullptr;
}

PyObject* g_closed(PyObject* obj, void*) {
  auto* self = reinterpret_cast<EndObject*>(obj);
  return PyBool_FromLong(!is_open(self));
}

PyObject* r_iter(PyObject* obj) { return Py_NewRef(obj); }

PyObject* r_next(PyObject* obj) {
  auto* self = reinterpret_cast<EndObject*>(obj);
  ModuleState* st = state(self);
  PyObject* v = guarded(st, [&] { return receive(self, 1, Deadline::never(), false); });
  if (v == nullptr && PyErr_ExceptionMatches(st->channel_closed)) PyErr_Clear();  // StopIteration
  return v;
}

#define XCHAN_FASTCALL_KW(f) as_cfunction(f), METH_FASTCALL | METH_KEYWORDS

/// Methods every end has.
const std::array<PyMethodDef, 7> kCommonMethods = {{
    {"clone", m_clone, METH_NOARGS, "clone(): another end of the same kind on the same channel."},
    {"close", m_close, METH_NOARGS, "close(): drop this end (idempotent)."},
    {"stats", m_stats, METH_NOARGS, "stats() -> dict of channel counters."},
    {"qsize", m_qsize, METH_NOARGS, "qsize() -> int: messages queued now."},
    {"__enter__", m_enter, METH_NOARGS, nullptr},
    {"__exit__", as_cfunction(m_exit), METH_FASTCALL, nullptr},
    {"__reduce__", m_reduce, METH_NOARGS, nullptr},
}};

/// `own` methods, then the common ones, then the sentinel.
template <std::size_t N>
std::array<PyMethodDef, N + 7 + 1> with_common_methods(const std::array<PyMethodDef, N>& own) {
  std::array<PyMethodDef, N + 7 + 1> table{};
  std::copy(own.begin(), own.end(), table.begin());
  std::copy(kCommonMethods.begin(), kCommonMethods.end(), table.begin() + N);
  table.back() = {nullptr, nullptr, 0, nullptr};
  return table;
}

auto kSenderMethods = with_common_methods<3>({{
    {"send", XCHAN_FASTCALL_KW(m_send), "send(obj, timeout=None): send, waiting for room."},
    {"send_nowait", m_send_nowait, METH_O, "send_nowait(obj): send or raise ChannelFull."},
    {"send_many", XCHAN_FASTCALL_KW(m_send_many),
     "send_many(items, timeout=None) -> int: send in order, with one wake-up per batch."},
}});

auto kReceiverMethods = with_common_methods<3>({{
    {"recv", XCHAN_FASTCALL_KW(m_recv), "recv(timeout=None): the next message, waiting for one."},
    {"recv_nowait", m_recv_nowait, METH_NOARGS, "recv_nowait(): the next message or ChannelEmpty."},
    {"recv_many", XCHAN_FASTCALL_KW(m_recv_many),
     "recv_many(max_items=1024, timeout=None) -> list: waits for one, returns all ready. If one cannot be "
     "decoded, its error is raised with the batch's other messages as its `received` attribute."},
}});

PyGetSetDef kEndGetSet[] = {
    {"closed", g_closed, nullptr, "True once this end is closed.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot kSenderSlots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(end_dealloc)},
    {Py_tp_methods, kSenderMethods.data()},
    {Py_tp_getset, kEndGetSet},
    {Py_tp_doc, const_cast<char*>("The sending end of an xchan channel.")},
    {0, nullptr},
};

PyType_Slot kReceiverSlots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(end_dealloc)},
    {Py_tp_methods, kReceiverMethods.data()},
    {Py_tp_getset, kEndGetSet},
    {Py_tp_iter, reinterpret_cast<void*>(r_iter)},
    {Py_tp_iternext, reinterpret_cast<void*>(r_next)},
    {Py_tp_doc, const_cast<char*>("The receiving end of an xchan channel; iterating ends at ChannelClosed.")},
    {0, nullptr},
};

constexpr unsigned kEndFlags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION;

PyType_Spec kSenderSpec = {"xchan.Sender", sizeof(EndObject), 0, kEndFlags, kSenderSlots};
PyType_Spec kReceiverSpec = {"xchan.Receiver", sizeof(EndObject), 0, kEndFlags, kReceiverSlots};

}  // namespace

Status wait_for(ModuleState* st, Channel& ch, bool writable, std::size_t n, Deadline deadline) {
  return wait_without_gil(st, deadline, [&](Deadline slice) {
    return writable ? ch.wait_writable(n, slice, ch.spin_iterations()) : ch.wait_readable(slice, ch.spin_iterations());
  });
}

int add_end_types(PyObject* module, ModuleState* st) {
  st->sender_type = reinterpret_cast<PyTypeObject*>(PyType_FromModuleAndSpec(module, &kSenderSpec, nullptr));
  if (st->sender_type == nullptr || PyModule_AddType(module, st->sender_type) != 0) return -1;
  st->receiver_type = reinterpret_cast<PyTypeObject*>(PyType_FromModuleAndSpec(module, &kReceiverSpec, nullptr));
  if (st->receiver_type == nullptr || PyModule_AddType(module, st->receiver_type) != 0) return -1;
  return 0;
}

PyObject* wrap_sender(ModuleState* st, xchan::Sender tx) {
  PyObject* obj = new_end(st, st->sender_type);
  if (obj != nullptr) reinterpret_cast<EndObject*>(obj)->tx = std::move(tx);
  return obj;
}

PyObject* wrap_receiver(ModuleState* st, xchan::Receiver rx) {
  PyObject* obj = new_end(st, st->receiver_type);
  if (obj != nullptr) reinterpret_cast<EndObject*>(obj)->rx = std::move(rx);
  return obj;
}

void close_all_ends(ModuleState* st) noexcept {
  for (EndObject* e = st->open_ends; e != nullptr;) {
    EndObject* next = e->next;
    close_end(e);
    e->owner = nullptr;
    e->prev = e->next = nullptr;
    e = next;
  }
  st->open_ends = nullptr;
}

}  // namespace xchan::py
