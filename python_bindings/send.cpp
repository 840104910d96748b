// Sending: encode (may run Python code: pickling, imports), then write into the ring's
// reservation (runs none), waiting for room with the GIL released in between.
#include <memory>
#include <new>

#include "arguments.hpp"
#include "channel_api.hpp"
#include "codec.hpp"
#include "end_use.hpp"

namespace xchan::py {
namespace {

/// How many items of a send_many() are taken from the iterable, encoded and sent at a time.
constexpr std::size_t kChunkItems = 256;
/// Passes over a batch's encodings after Python code ran before the batch is refused.
constexpr int kMaxRefreshPasses = 8;

PyObject* send_one(EndObject* self, PyObject* obj, Deadline deadline) {
  ModuleState* st = state(self);
  if (!is_open(self)) return set_closed_error(self);
  Encoded enc;
  if (!enc.prepare(st, obj)) return nullptr;  // may run Python code, even close this end
  EndUse use(self);
  Channel* ch = use.get();
  if (ch == nullptr) return nullptr;
  const auto max = static_cast<Py_ssize_t>(ch->max_message() - kBytesMessageOverhead);
  for (;;) {
    const std::size_t n = enc.size();
    const Status s = ch->try_send_with(n, [&enc, n](std::span<std::byte> out) noexcept {
      enc.write(out.data());
      return n;
    });
    if (s == Status::kOk) {
      enc.sent();
      Py_RETURN_NONE;
    }
    if (s != Status::kFull) return raise_status(st, s, Op::kSend, max);
    const Status w = use.wait(st, true, n, deadline);
    if (w == Status::kInterrupted) return nullptr;
    if (w != Status::kOk) return raise_status(st, w, Op::kSend, max);
    // While the GIL was released another thread may have changed the object: what is
    // written must be what is sized now (a pickle is a snapshot and stays).
    if (use.released_gil() && !enc.refresh()) return nullptr;
    ch = use.recheck();
    if (ch == nullptr) return nullptr;
  }
}

/// Brings encoded[from..count) up to date after Python code may have run, again while
/// doing so runs Python code. Returns the first index that failed (its error set), or
/// `count`.
std::size_t refresh_all(Encoded* encoded, std::size_t from, std::size_t count) {
  for (int pass = 0; pass < kMaxRefreshPasses; ++pass) {
    bool ran_python = false;
    for (std::size_t i = from; i < count; ++i) {
      if (!encoded[i].refresh()) return i;
      ran_python = ran_python || encoded[i].ran_python();
    }
    if (!ran_python) return count;
  }
  PyErr_SetString(PyExc_RuntimeError, "send_many: items kept changing while the batch was encoded");
  return from;
}

/// Encodes items[0..count). Returns how many are ready to send (a prefix); if fewer than
/// `count`, `*failure` holds the error of the first that is not (owned).
std::size_t prepare_items(ModuleState* st, PyObject* const* items, Encoded* encoded, std::size_t count,
                          PyObject** failure) {
  std::size_t ready = 0;
  bool ran_python = false;
  while (ready < count && encoded[ready].prepare(st, items[ready])) {
    ran_python = ran_python || encoded[ready].ran_python();
    ++ready;
  }
  *failure = ready < count ? PyErr_GetRaisedException() : nullptr;
  if (ran_python) {
    // Python code run while encoding (pickling, an import) may have changed items
    // encoded before it.
    const std::size_t good = refresh_all(encoded, 0, ready);
    if (good < ready) {
      Py_XSETREF(*failure, PyErr_GetRaisedException());
      ready = good;
    }
  }
  return ready;
}

/// Sends encoded[0..count) in order, waiting for room as needed, and adds how many went to
/// `sent`. Returns false, with the error of the first item that did not go set, unless all
/// went.
bool send_encoded(EndObject* self, Encoded* encoded, std::size_t count, Deadline deadline, std::size_t& sent) {
  ModuleState* st = state(self);
  EndUse use(self);
  Channel* ch = use.get();
  if (ch == nullptr) return false;
  const auto max = static_cast<Py_ssize_t>(ch->max_message() - kBytesMessageOverhead);
  PyObject* stopped = nullptr;  // owned: why the batch now ends before encoded[count]
  std::size_t done = 0;
  bool ok = true;
  while (done < count) {
    std::size_t went = 0;
    Encoded* rest = encoded + done;
    const Status s = ch->try_send_many_with(
        count - done, [rest](std::size_t i) { return rest[i].size(); },
        [rest](std::size_t i, std::span<std::byte> out) {
          rest[i].write(out.data());
          return rest[i].size();
        },
        went);
    for (std::size_t i = 0; i < went; ++i) rest[i].sent();
    done += went;
    if (s == Status::kOk) continue;
    ok = false;
    if (s != Status::kFull) {
      raise_status(st, s, Op::kSend, max);
      break;
    }
    const Status w = use.wait(st, true, encoded[done].size(), deadline);
    if (w == Status::kInterrupted) break;
    if (w != Status::kOk) {
      raise_status(st, w, Op::kSend, max);
      break;
    }
    if (use.released_gil()) {
      // Other threads may have changed the items not sent yet (see send_one). An item that
      // can no longer be encoded ends the batch before it.
      const std::size_t good = refresh_all(encoded, done, count);
      if (good < count) {
        Py_XSETREF(stopped, PyErr_GetRaisedException());
        count = good;
      }
    }
    ch = use.recheck();
    if (ch == nullptr) break;
    ok = true;
  }
  sent += done;
  if (!ok) {
    Py_XDECREF(stopped);  // an earlier item's error comes first
    return false;
  }
  if (stopped != nullptr) {
    PyErr_SetRaisedException(stopped);
    return false;
  }
  return true;
}

/// Sets `sent` on the pending exception (every send_many error carries it).
void note_sent(std::size_t sent) {
  PyObject* exc = PyErr_GetRaisedException();
  PyObject* n = PyLong_FromSize_t(sent);
  if (n == nullptr || PyObject_SetAttrString(exc, "sent", n) != 0) PyErr_Clear();
  Py_XDECREF(n);
  PyErr_SetRaisedException(exc);
}

/// One chunk of a batch: references to its items and their encodings.
class Chunk {
 public:
  explicit Chunk(std::size_t capacity) : capacity_(capacity) {}
  Chunk(const Chunk&) = delete;
  Chunk& operator=(const Chunk&) = delete;
  ~Chunk() { clear(); }

  [[nodiscard]] bool allocate() {
    items_.reset(new (std::nothrow) PyObject*[capacity_]);
    encoded_.reset(new (std::nothrow) Encoded[capacity_]);
    return items_ != nullptr && encoded_ != nullptr;
  }
  /// Takes the next items from `it` (new references). Returns false if the iterator
  /// raised (the error set); the items taken before stay.
  bool fill(PyObject* it) {
    while (size_ < capacity_) {
      PyObject* item = PyIter_Next(it);
      if (item == nullptr) return !PyErr_Occurred();
      items_[size_++] = item;
    }
    return true;
  }
  void clear() noexcept {
    if (!thread_has_python()) return;  // a thread ended at exit: leak (see EndUse)
    for (std::size_t i = 0; i < size_; ++i) {
      encoded_[i].reset();
      Py_DECREF(items_[i]);
    }
    size_ = 0;
  }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool full() const noexcept { return size_ == capacity_; }
  [[nodiscard]] PyObject* const* items() const noexcept { return items_.get(); }
  [[nodiscard]] Encoded* encoded() noexcept { return encoded_.get(); }

 private:
  std::size_t capacity_;
  std::size_t size_ = 0;
  std::unique_ptr<PyObject*[]> items_;
  std::unique_ptr<Encoded[]> encoded_;
};

/// send_many(): chunk by chunk, each encoded (items before a failure are sent, the
/// failure is raised), then sent under as few locks and wake-ups as room allows. Every
/// error carries `sent`: the items before the one that failed went, in order; none after.
PyObject* send_batch(EndObject* self, PyObject* iterable, Deadline deadline) {
  ModuleState* st = state(self);
  if (!is_open(self)) {
    set_closed_error(self);
    note_sent(0);
    return nullptr;
  }
  PyObject* it = PyObject_GetIter(iterable);
  if (it == nullptr) {
    if (PyErr_ExceptionMatches(PyExc_TypeError)) {
      PyErr_Format(PyExc_TypeError, "send_many() needs an iterable, not %.100s", Py_TYPE(iterable)->tp_name);
    }
    note_sent(0);
    return nullptr;
  }
  const Py_ssize_t hint = PyObject_LengthHint(iterable, static_cast<Py_ssize_t>(kChunkItems));
  if (hint < 0) PyErr_Clear();
  const std::size_t wanted = hint <= 0 ? 1 : static_cast<std::size_t>(hint);
  Chunk chunk(wanted < kChunkItems ? wanted : kChunkItems);
  std::size_t sent = 0;
  bool failed = !chunk.allocate();
  if (failed) PyErr_NoMemory();
  while (!failed) {
    const bool iterated = chunk.fill(it);
    PyObject* failure = iterated ? nullptr : PyErr_GetRaisedException();  // the iterator's
    PyObject* encode_failure = nullptr;
    const std::size_t ready = prepare_items(st, chunk.items(), chunk.encoded(), chunk.size(), &encode_failure);
    if (encode_failure != nullptr) Py_XSETREF(failure, encode_failure);  // comes first in order
    if (ready > 0 && !send_encoded(self, chunk.encoded(), ready, deadline, sent)) {
      failed = true;  // the send's own error is the first in order
      Py_XDECREF(failure);
    } else if (failure != nullptr) {
      failed = true;
      PyErr_SetRaisedException(failure);
    } else if (!chunk.full()) {
      break;  // the iterable is exhausted
    }
    chunk.clear();
  }
  Py_DECREF(it);
  if (failed) {
    note_sent(sent);
    return nullptr;
  }
  return PyLong_FromSize_t(sent);
}

}  // namespace

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

}  // namespace xchan::py
