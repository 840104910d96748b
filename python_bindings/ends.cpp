// The end objects: creation, the per-interpreter list, close, and the methods every end
// has (clone, close, stats, pickling). Transfers are in receive.cpp and send.cpp.
#include "ends.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <new>

#include "arguments.hpp"
#include "channel_api.hpp"
#include "codec.hpp"
#include "end_use.hpp"
#include "xchan/channel/registry.hpp"

namespace xchan::py {

PyObject* set_closed_error(EndObject* self) {
  ModuleState* st = state(self);
  const std::shared_ptr<Channel>& ch = channel_of(self);
  if (ch && !ch->usable_in_this_process() && core::atomic_load(self->closing, std::memory_order_relaxed) == 0U) {
    PyErr_SetString(st->channel_error,
                    "this channel was created before os.fork(): its ends cannot be used in the child process "
                    "(create channels after forking, or pass them to xchan workers)");
    return nullptr;
  }
  PyErr_SetString(st->channel_closed, self->is_sender ? "this Sender is closed" : "this Receiver is closed");
  return nullptr;
}

void close_end(EndObject* self) noexcept {
  // SYNC POINT end-close: the flag is this end's blocked calls' cancel flag; storing it
  // before the wake-up below is what the eventcount's protocol needs (see
  // Channel::wait_readable). Relaxed: it guards no memory.
  core::atomic_store(self->closing, 1U, std::memory_order_relaxed);
  const std::shared_ptr<Channel> ch = channel_of(self);  // the wake-up needs it after the close
  if (!ch) return;
  if (self->busy > 0) {
    self->close_pending = true;  // the last EndUse closes it
  } else if (self->is_sender) {
    self->tx.close();
  } else {
    self->rx.close();
  }
  if (self->is_sender) ch->wake_senders();
  else ch->wake_receivers();
}

namespace {

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

PyObject* new_end(ModuleState* st, PyTypeObject* type) {
  auto* self = reinterpret_cast<EndObject*>(type->tp_alloc(type, 0));
  if (self == nullptr) return nullptr;
  new (&self->tx) xchan::Sender();
  new (&self->rx) xchan::Receiver();
  new (&self->held) std::vector<TakenMessage>();
  self->is_sender = type == st->sender_type;
  self->close_pending = false;
  self->busy = 0;
  self->closing = 0;
  self->weakrefs = nullptr;
  link(st, self);
  return reinterpret_cast<PyObject*>(self);
}

void end_dealloc(PyObject* obj) {
  auto* self = reinterpret_cast<EndObject*>(obj);
  PyTypeObject* type = Py_TYPE(obj);
  if (self->weakrefs != nullptr) PyObject_ClearWeakRefs(obj);
  close_end(self);
  unlink(self);
  self->tx.~Sender();
  self->rx.~Receiver();
  std::vector<TakenMessage> held = std::move(self->held);
  self->held.~vector();
  for (const TakenMessage& m : held) Py_XDECREF(m.value);  // may run finalizers: last
  type->tp_free(obj);
  Py_DECREF(type);
}

// ---- methods every end has -------------------------------------------------------------

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

// Pickling parks a clone of the end in the registry under a fresh random token, owned by
// this interpreter: the end stays open while in transit, is unpickled at most once
// (_attach), and is closed if this interpreter ends first (see docs/python.md, "Ends
// across interpreters").
PyObject* m_reduce(PyObject* obj, PyObject*) {
  auto* self = reinterpret_cast<EndObject*>(obj);
  ModuleState* st = state(self);
  EndUse use(self);
  const Channel* ch = use.get();
  if (ch == nullptr) return nullptr;
  return guarded(st, [&]() -> PyObject* {
    ChannelRegistry::End end = self->is_sender ? ChannelRegistry::End(xchan::Sender(self->tx))
                                               : ChannelRegistry::End(xchan::Receiver(self->rx));
    const ParkToken token = ChannelRegistry::instance().park(std::move(end), st->interpreter_id);
    try {
      log_parked(token);  // dropped again if the message being pickled is not sent
    } catch (...) {
      ChannelRegistry::instance().drop(token);
      throw;
    }
    std::byte raw[sizeof token.hi + sizeof token.lo];
    std::memcpy(raw, &token.hi, sizeof token.hi);
    std::memcpy(raw + sizeof token.hi, &token.lo, sizeof token.lo);
    if (ch->shared_fd() >= 0) {  // see _attach: the token is valid in this process only
      return Py_BuildValue("O(y#KOl)", st->attach_func, reinterpret_cast<const char*>(raw),
                           static_cast<Py_ssize_t>(sizeof raw), static_cast<unsigned long long>(ch->id()),
                           self->is_sender ? Py_True : Py_False, static_cast<long>(getpid()));
    }
    return Py_BuildValue("O(y#KO)", st->attach_func, reinterpret_cast<const char*>(raw),
                         static_cast<Py_ssize_t>(sizeof raw), static_cast<unsigned long long>(ch->id()),
                         self->is_sender ? Py_True : Py_False);
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
      "max_message", static_cast<unsigned long long>(s.max_message - kBytesMessageOverhead), "wraps_undone",
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

PyObject* end_repr(PyObject* obj) {
  auto* self = reinterpret_cast<EndObject*>(obj);
  const char* kind = self->is_sender ? "Sender" : "Receiver";
  const std::shared_ptr<Channel>& ch = channel_of(self);
  if (!is_open(self) || !ch) {
    return ch ? PyUnicode_FromFormat("<xchan.%s channel=%llu closed>", kind, static_cast<unsigned long long>(ch->id()))
              : PyUnicode_FromFormat("<xchan.%s closed>", kind);
  }
  return PyUnicode_FromFormat("<xchan.%s channel=%llu open queued=%llu>", kind,
                              static_cast<unsigned long long>(ch->id()),
                              static_cast<unsigned long long>(ch->stats().queued));
}

PyObject* r_iter(PyObject* obj) { return Py_NewRef(obj); }

#define XCHAN_FASTCALL_KW(f) as_cfunction(f), METH_FASTCALL | METH_KEYWORDS

/// Methods every end has.
const std::array<PyMethodDef, 7> kCommonMethods = {{
    {"clone", m_clone, METH_NOARGS, "clone($self, /)\n--\n\nAnother end of the same kind on the same channel."},
    {"close", m_close, METH_NOARGS,
     "close($self, /)\n--\n\nDrop this end (idempotent); calls blocked on it in other threads raise ChannelClosed."},
    {"stats", m_stats, METH_NOARGS, "stats($self, /)\n--\n\nA dict of the channel's counters."},
    {"qsize", m_qsize, METH_NOARGS, "qsize($self, /)\n--\n\nMessages queued now."},
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
    {"send", XCHAN_FASTCALL_KW(m_send), "send($self, /, obj, timeout=None)\n--\n\nSend obj, waiting for room (ChannelFull on timeout)."},
    {"send_nowait", m_send_nowait, METH_O, "send_nowait($self, obj, /)\n--\n\nSend obj now or raise ChannelFull."},
    {"send_many", XCHAN_FASTCALL_KW(m_send_many),
     "send_many($self, /, items, timeout=None)\n--\n\nSend the items in order, with one wake-up per chunk; returns how many. On an "
     "error, the items before the one that failed were sent and the exception's `sent` says how many."},
}});

auto kReceiverMethods = with_common_methods<3>({{
    {"recv", XCHAN_FASTCALL_KW(m_recv), "recv($self, /, timeout=None)\n--\n\nThe next message, waiting for one (ChannelEmpty on timeout)."},
    {"recv_nowait", m_recv_nowait, METH_NOARGS, "recv_nowait($self, /)\n--\n\nThe next message, or ChannelEmpty."},
    {"recv_many", XCHAN_FASTCALL_KW(m_recv_many),
     "recv_many($self, /, max_items=1024, timeout=None)\n--\n\nWaits for one message, returns all ready (up to max_items). If one cannot be "
     "decoded, its error is raised with the batch's other messages as its `received` attribute."},
}});

PyObject* g_channel_id(PyObject* obj, void*) {
  const std::shared_ptr<Channel>& ch = channel_of(reinterpret_cast<EndObject*>(obj));
  if (!ch) Py_RETURN_NONE;
  return PyLong_FromUnsignedLongLong(ch->id());
}

PyGetSetDef kEndGetSet[] = {
    {"closed", g_closed, nullptr, "True once this end is closed.", nullptr},
    {"_channel_id", g_channel_id, nullptr, "The channel's id in this process (None once closed).", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyMemberDef kEndMembers[] = {
    {"__weaklistoffset__", Py_T_PYSSIZET, offsetof(EndObject, weakrefs), Py_READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};

PyType_Slot kSenderSlots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(end_dealloc)},
    {Py_tp_repr, reinterpret_cast<void*>(end_repr)},
    {Py_tp_methods, kSenderMethods.data()},
    {Py_tp_getset, kEndGetSet},
    {Py_tp_members, kEndMembers},
    {Py_tp_doc, const_cast<char*>("The sending end of an xchan channel.")},
    {0, nullptr},
};

PyType_Slot kReceiverSlots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(end_dealloc)},
    {Py_tp_repr, reinterpret_cast<void*>(end_repr)},
    {Py_tp_methods, kReceiverMethods.data()},
    {Py_tp_getset, kEndGetSet},
    {Py_tp_members, kEndMembers},
    {Py_tp_iter, reinterpret_cast<void*>(r_iter)},
    {Py_tp_iternext, reinterpret_cast<void*>(r_next)},
    {Py_tp_doc, const_cast<char*>("The receiving end of an xchan channel; iterating ends at ChannelClosed.")},
    {0, nullptr},
};

constexpr unsigned kEndFlags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION;

PyType_Spec kSenderSpec = {"xchan.Sender", sizeof(EndObject), 0, kEndFlags, kSenderSlots};
PyType_Spec kReceiverSpec = {"xchan.Receiver", sizeof(EndObject), 0, kEndFlags, kReceiverSlots};

}  // namespace

Status wait_for(ModuleState* st, Channel& ch, bool writable, std::size_t n, Deadline deadline,
                const std::uint32_t* cancel) {
  return wait_without_gil(st, deadline, [&](Deadline slice) {
    return writable ? ch.wait_writable(n, slice, ch.spin_iterations(), cancel)
                    : ch.wait_readable(slice, ch.spin_iterations(), cancel);
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
