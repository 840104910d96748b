// Encoding (size pass, then a write pass that runs no Python code) and decoding.
#include "codec.hpp"

#include <cstdint>
#include <cstring>
#include <string_view>

#include "instances.hpp"

namespace xchan::py {
namespace {

constexpr int kMaxDepth = 64;
constexpr Py_ssize_t kNotNative = -1;
constexpr Py_ssize_t kError = -2;
constexpr std::size_t kMaxLength = 0x7fffffff;  // u32 lengths; messages are < 2 GiB anyway

template <class T>
std::byte* put(std::byte* out, T value) noexcept {
  std::memcpy(out, &value, sizeof value);
  return out + sizeof value;
}

std::byte* put_tagged_bytes(std::byte* out, char tag, const void* data, std::size_t n) noexcept {
  *out++ = static_cast<std::byte>(tag);
  out = put(out, static_cast<std::uint32_t>(n));
  if (n != 0) std::memcpy(out, data, n);
  return out + n;
}

// Where the ends parked on this thread are logged: the message being pickled here, if any.
// Per thread because pickling may release the GIL and let another thread pickle meanwhile;
// a stack because pickling may send another message (from a __reduce__).
thread_local std::vector<ParkToken>* t_parking_log = nullptr;

class ParkingLog {
 public:
  explicit ParkingLog(std::vector<ParkToken>* log) noexcept : outer_(t_parking_log) { t_parking_log = log; }
  ParkingLog(const ParkingLog&) = delete;
  ParkingLog& operator=(const ParkingLog&) = delete;
  ~ParkingLog() { t_parking_log = outer_; }

 private:
  std::vector<ParkToken>* outer_;
};

}  // namespace

void log_parked(const ParkToken& token) {
  if (t_parking_log != nullptr) t_parking_log->push_back(token);
}

Encoded::~Encoded() {
  drop_parked();  // no Python involved
  // A thread that CPython ends at interpreter exit unwinds through here without a thread
  // state: leak rather than touch Python (the process is exiting).
  if (aux_.empty() && views_.empty() && pickle_ == nullptr && pickle_buffers_ == nullptr) return;
  if (thread_has_python()) reset();
}

void Encoded::reset() noexcept {
  drop_parked();
  drop_native_state();
  Py_CLEAR(pickle_);
  Py_CLEAR(pickle_buffers_);
  pickled_ = false;
  ran_python_ = false;
  size_ = 0;
}

bool Encoded::prepare(ModuleState* st, PyObject* obj) {
  st_ = st;
  root_ = obj;
  ran_python_ = false;
  Py_ssize_t n = native_size(obj, 0);
  // Importing a class's module ran Python code, which may have changed what was sized
  // before it: size again, with every class decided now.
  if (n >= 0 && ran_python_) n = size_again();
  if (n == kError) return false;
  if (n >= 0) {
    size_ = static_cast<std::size_t>(n);
    return true;
  }
  drop_native_state();
  return prepare_pickle(st, obj);
}

bool Encoded::refresh() {
  ran_python_ = false;
  if (pickled_) return true;
  const Py_ssize_t n = size_again();
  if (n == kError) return false;
  if (n >= 0) {
    size_ = static_cast<std::size_t>(n);
    return true;
  }
  // No longer native (an item that needs pickle now, a class modified since): start over.
  ModuleState* st = st_;
  PyObject* obj = root_;
  reset();
  const bool ok = prepare(st, obj);
  ran_python_ = true;
  return ok;
}

Py_ssize_t Encoded::size_again() {
  drop_native_state();
  cached_only_ = true;
  const Py_ssize_t n = native_size(root_, 0);
  cached_only_ = false;
  return n;
}

void Encoded::drop_parked() noexcept {
  for (const ParkToken& token : parked_) ChannelRegistry::instance().drop(token);
  parked_.clear();
}

void Encoded::drop_native_state() noexcept {
  for (PyObject* o : aux_) Py_DECREF(o);
  aux_.clear();
  for (auto& v : views_) PyBuffer_Release(v.get());
  views_.clear();
}

const Py_buffer* Encoded::hold_contiguous(PyObject* obj) {
  auto view = std::make_unique<Py_buffer>();
  if (PyObject_GetBuffer(obj, view.get(), PyBUF_FULL_RO) != 0) return nullptr;
  if (!PyBuffer_IsContiguous(view.get(), 'C')) {
    // Copied now, while errors can still be raised: the write pass only copies bytes.
    PyObject* copy = PyBytes_FromStringAndSize(nullptr, view->len);
    const bool ok = copy != nullptr && PyBuffer_ToContiguous(PyBytes_AS_STRING(copy), view.get(), view->len, 'C') == 0;
    PyBuffer_Release(view.get());
    if (!ok) {
      Py_XDECREF(copy);
      return nullptr;
    }
    aux_.push_back(copy);
    if (PyObject_GetBuffer(copy, view.get(), PyBUF_SIMPLE) != 0) return nullptr;
  }
  return views_.emplace_back(std::move(view)).get();
}

Py_ssize_t Encoded::native_size(PyObject* obj, int depth) {
  if (depth > kMaxDepth) return kNotNative;
  if (obj == Py_None || obj == Py_True || obj == Py_False) return 1;
  if (PyLong_CheckExact(obj)) {
    int overflow = 0;
    (void)PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (overflow == 0) return 1 + 8;
    PyObject* hex = PyNumber_ToBase(obj, 16);
    if (hex == nullptr) return kError;
    aux_.push_back(hex);
    return 1 + 4 + PyUnicode_GET_LENGTH(hex);  // ASCII
  }
  if (PyFloat_CheckExact(obj)) return 1 + 8;
  if (PyBytes_CheckExact(obj)) {
    const auto n = static_cast<std::size_t>(PyBytes_GET_SIZE(obj));
    return n > kMaxLength ? kNotNative : static_cast<Py_ssize_t>(1 + 4 + n);
  }
  if (PyUnicode_CheckExact(obj)) {
    Py_ssize_t n = 0;
    if (PyUnicode_AsUTF8AndSize(obj, &n) == nullptr) {
      if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) return kError;
      PyErr_Clear();  // lone surrogates: pickle keeps them
      return kNotNative;
    }
    return static_cast<std::size_t>(n) > kMaxLength ? kNotNative : 1 + 4 + n;
  }
  if (PyByteArray_CheckExact(obj)) {
    // Read when written rather than exported until then: an export held while a send
    // waits would make other threads' resizes fail (BufferError). Every wait is followed
    // by sizing again (refresh), with no Python code between that and the write.
    const auto n = static_cast<std::size_t>(PyByteArray_GET_SIZE(obj));
    return n > kMaxLength ? kNotNative : static_cast<Py_ssize_t>(1 + 4 + n);
  }
  if (PyMemoryView_Check(obj)) {
    const Py_buffer* view = hold_contiguous(obj);
    if (view == nullptr) return kError;
    const auto n = static_cast<std::size_t>(view->len);
    return n > kMaxLength ? kNotNative : static_cast<Py_ssize_t>(1 + 4 + n);
  }
  // Sizing an item may run Python code (resolving a class by name), which may change any
  // container, this one included: every item is held by a reference of our own while it
  // is sized, and the list's length is read afresh each time. The total is then only an
  // estimate, but prepare() sizes everything again, running no Python code, whenever
  // Python code ran (ran_python_).
  const bool tuple = PyTuple_CheckExact(obj);
  if (tuple || PyList_CheckExact(obj)) {
    Py_ssize_t total = 1 + 4;
    for (Py_ssize_t i = 0; i < (tuple ? PyTuple_GET_SIZE(obj) : PyList_GET_SIZE(obj)); ++i) {
      PyObject* item = Py_NewRef(tuple ? PyTuple_GET_ITEM(obj, i) : PyList_GET_ITEM(obj, i));
      const Py_ssize_t n = native_size(item, depth + 1);
      Py_DECREF(item);
      if (n < 0) return n;
      total += n;
    }
    return total;
  }
  if (PyDict_CheckExact(obj)) {
    Py_ssize_t pos = 0;
    PyObject* key = nullptr;
    PyObject* value = nullptr;
    Py_ssize_t total = 1 + 4;
    while (PyDict_Next(obj, &pos, &key, &value)) {  // bounds-checked against the dict as it is now
      Py_INCREF(key);
      Py_INCREF(value);
      const Py_ssize_t k = native_size(key, depth + 1);
      const Py_ssize_t v = k < 0 ? 0 : native_size(value, depth + 1);
      Py_DECREF(key);
      Py_DECREF(value);
      if (k < 0) return k;
      if (v < 0) return v;
      total += k + v;
    }
    return total;
  }
  return instance_size(obj, depth);
}

Py_ssize_t Encoded::instance_size(PyObject* obj, int depth) {
  PyTypeObject* type = Py_TYPE(obj);
  if (!PyType_HasFeature(type, Py_TPFLAGS_HEAPTYPE)) return kNotNative;  // built-in types: pickle
  PyObject* names = nullptr;
  switch (check_plain_class(st_, type, cached_only_, ran_python_, &names)) {
    case ClassCheck::kError: return kError;
    case ClassCheck::kNotPlain: return kNotNative;
    case ClassCheck::kPlain: break;
  }
  aux_.push_back(names);
  PyObject* dict = PyObject_GenericGetDict(obj, nullptr);
  if (dict == nullptr) return kError;
  aux_.push_back(dict);
  Py_ssize_t total = 1 + PyBytes_GET_SIZE(names);
  if (PyDict_GET_SIZE(dict) == 0) return total + 1;  // no state, as pickle sends none
  const Py_ssize_t n = native_size(dict, depth + 1);
  return n < 0 ? n : total + n;
}

bool load_pickle(ModuleState* st) {
  if (st->pickle_dumps != nullptr) return true;
  PyObject* pickle = PyImport_ImportModule("pickle");
  if (pickle == nullptr) return false;
  PyObject* dumps = PyObject_GetAttrString(pickle, "dumps");
  PyObject* loads = dumps ? PyObject_GetAttrString(pickle, "loads") : nullptr;
  Py_DECREF(pickle);
  if (loads == nullptr) {
    Py_XDECREF(dumps);
    return false;
  }
  if (st->pickle_dumps == nullptr) {  // the import ran Python code: another call may have won
    st->pickle_dumps = dumps;
    st->pickle_loads = loads;
  } else {
    Py_DECREF(dumps);
    Py_DECREF(loads);
  }
  return true;
}

bool Encoded::prepare_pickle(ModuleState* st, PyObject* obj) {
  pickled_ = true;
  ran_python_ = true;
  if (!load_pickle(st)) return false;
  pickle_buffers_ = PyList_New(0);
  if (pickle_buffers_ == nullptr) return false;
  PyObject* protocol = PyLong_FromLong(5);
  if (protocol == nullptr) return false;
  const ParkingLog log(&parked_);
  if (st->out_of_band_pickle) {
    PyObject* append = PyObject_GetAttrString(pickle_buffers_, "append");
    PyObject* kwnames = append ? Py_BuildValue("(s)", "buffer_callback") : nullptr;
    if (kwnames != nullptr) {
      PyObject* argv[] = {obj, protocol, append};
      pickle_ = PyObject_Vectorcall(st->pickle_dumps, argv, 2, kwnames);
    }
    Py_XDECREF(kwnames);
    Py_XDECREF(append);
  } else {
    PyObject* argv[] = {obj, protocol};
    pickle_ = PyObject_Vectorcall(st->pickle_dumps, argv, 2, nullptr);
  }
  Py_DECREF(protocol);
  if (pickle_ == nullptr) return false;
  std::size_t total = 1 + 4 + 8 + static_cast<std::size_t>(PyBytes_GET_SIZE(pickle_));
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(pickle_buffers_); ++i) {
    const Py_buffer* view = hold_contiguous(PyList_GET_ITEM(pickle_buffers_, i));
    if (view == nullptr) return false;
    total += 8 + static_cast<std::size_t>(view->len);
  }
  size_ = total;
  return true;
}

void Encoded::write(std::byte* out) const noexcept {
  if (!pickled_) {
    Cursor at;
    write_value(root_, out, at);
    return;
  }
  *out++ = static_cast<std::byte>('p');
  out = put(out, static_cast<std::uint32_t>(views_.size()));
  for (const auto& v : views_) {
    out = put(out, static_cast<std::uint64_t>(v->len));
    std::memcpy(out, v->buf, static_cast<std::size_t>(v->len));  // contiguous (hold_contiguous)
    out += v->len;
  }
  const auto n = static_cast<std::size_t>(PyBytes_GET_SIZE(pickle_));
  out = put(out, static_cast<std::uint64_t>(n));
  std::memcpy(out, PyBytes_AS_STRING(pickle_), n);
}

std::byte* Encoded::write_value(PyObject* obj, std::byte* out, Cursor& at) const noexcept {
  if (obj == Py_None) {
    *out = static_cast<std::byte>('N');
    return out + 1;
  }
  if (obj == Py_True || obj == Py_False) {
    *out = static_cast<std::byte>(obj == Py_True ? 'T' : 'F');
    return out + 1;
  }
  if (PyLong_CheckExact(obj)) {
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (overflow == 0) {
      *out++ = static_cast<std::byte>('i');
      return put(out, static_cast<std::int64_t>(v));
    }
    PyObject* hex = aux_[at.aux++];
    Py_ssize_t n = 0;
    const char* s = PyUnicode_AsUTF8AndSize(hex, &n);
    return put_tagged_bytes(out, 'I', s, static_cast<std::size_t>(n));
  }
  if (PyFloat_CheckExact(obj)) {
    *out++ = static_cast<std::byte>('f');
    return put(out, PyFloat_AS_DOUBLE(obj));
  }
  if (PyBytes_CheckExact(obj)) {
    return put_tagged_bytes(out, 'b', PyBytes_AS_STRING(obj), static_cast<std::size_t>(PyBytes_GET_SIZE(obj)));
  }
  if (PyUnicode_CheckExact(obj)) {
    Py_ssize_t n = 0;
    const char* s = PyUnicode_AsUTF8AndSize(obj, &n);  // cached by the size pass
    return put_tagged_bytes(out, 's', s, static_cast<std::size_t>(n));
  }
  if (PyByteArray_CheckExact(obj)) {
    return put_tagged_bytes(out, 'B', PyByteArray_AS_STRING(obj), static_cast<std::size_t>(PyByteArray_GET_SIZE(obj)));
  }
  if (PyMemoryView_Check(obj)) {
    const Py_buffer* v = views_[at.view++].get();
    *out++ = static_cast<std::byte>('b');
    out = put(out, static_cast<std::uint32_t>(v->len));
    std::memcpy(out, v->buf, static_cast<std::size_t>(v->len));  // contiguous (hold_contiguous)
    return out + v->len;
  }
  const bool tuple = PyTuple_CheckExact(obj);
  if (tuple || PyList_CheckExact(obj)) {
    const Py_ssize_t count = tuple ? PyTuple_GET_SIZE(obj) : PyList_GET_SIZE(obj);
    *out++ = static_cast<std::byte>(tuple ? 't' : 'l');
    out = put(out, static_cast<std::uint32_t>(count));
    for (Py_ssize_t i = 0; i < count; ++i) {
      out = write_value(tuple ? PyTuple_GET_ITEM(obj, i) : PyList_GET_ITEM(obj, i), out, at);
    }
    return out;
  }
  if (!PyDict_CheckExact(obj)) {
    // An instance of a plain class (the size pass admitted nothing else).
    PyObject* names = aux_[at.aux++];
    PyObject* dict = aux_[at.aux++];
    *out++ = static_cast<std::byte>('o');
    const auto n = static_cast<std::size_t>(PyBytes_GET_SIZE(names));
    std::memcpy(out, PyBytes_AS_STRING(names), n);
    out += n;
    if (PyDict_GET_SIZE(dict) == 0) {
      *out = static_cast<std::byte>('N');
      return out + 1;
    }
    return write_value(dict, out, at);
  }
  *out++ = static_cast<std::byte>('d');
  out = put(out, static_cast<std::uint32_t>(PyDict_GET_SIZE(obj)));
  Py_ssize_t pos = 0;
  PyObject* key = nullptr;
  PyObject* value = nullptr;
  while (PyDict_Next(obj, &pos, &key, &value)) {
    out = write_value(key, out, at);
    out = write_value(value, out, at);
  }
  return out;
}

// ---- decoding ------------------------------------------------------------------------

namespace {

class Reader {
 public:
  Reader(ModuleState* st, const std::byte* data, std::size_t n) : st_(st), p_(data), end_(data + n) {}

  PyObject* value(int depth) {
    if (depth > kMaxDepth) return malformed("nesting too deep");
    char tag = 0;
    if (!take(&tag, 1)) return nullptr;
    switch (tag) {
      case 'N': Py_RETURN_NONE;
      case 'T': Py_RETURN_TRUE;
      case 'F': Py_RETURN_FALSE;
      case 'i': {
        std::int64_t v = 0;
        return take(&v, 8) ? PyLong_FromLongLong(v) : nullptr;
      }
      case 'f': {
        double v = 0;
        return take(&v, 8) ? PyFloat_FromDouble(v) : nullptr;
      }
      case 'b': case 'B': case 's': case 'I': {
        std::uint32_t n = 0;
        if (!take(&n, 4) || !has(n)) return malformed("truncated value");
        const auto* s = reinterpret_cast<const char*>(p_);
        p_ += n;
        if (tag == 'b') return PyBytes_FromStringAndSize(s, n);
        if (tag == 'B') return PyByteArray_FromStringAndSize(s, n);
        if (tag == 's') return PyUnicode_DecodeUTF8(s, n, "strict");
        return big_int(s, n);
      }
      case 't': case 'l': case 'd': return container(tag, depth);
      case 'o': return instance(depth);
      case 'p': return depth == 0 ? unpickle() : malformed("nested pickle");
      default: return malformed("unknown tag");
    }
  }

  bool at_end() const noexcept { return p_ == end_; }
  PyObject* malformed(const char* what) {
    PyErr_Format(st_->channel_error, "malformed message: %s", what);
    return nullptr;
  }

 private:
  bool has(std::size_t n) const noexcept { return static_cast<std::size_t>(end_ - p_) >= n; }
  bool take(void* dst, std::size_t n) {
    if (!has(n)) {
      malformed("truncated");
      return false;
    }
    std::memcpy(dst, p_, n);
    p_ += n;
    return true;
  }

  PyObject* big_int(const char* s, std::uint32_t n) {
    // "-0x..." or "0x...": PyLong_FromString wants a NUL-terminated string.
    PyObject* text = PyUnicode_DecodeASCII(s, n, "strict");
    if (text == nullptr) return nullptr;
    PyObject* v = PyLong_FromUnicodeObject(text, 0);
    Py_DECREF(text);
    return v;
  }

  PyObject* container(char tag, int depth) {
    std::uint32_t count = 0;
    if (!take(&count, 4)) return nullptr;
    // Each element takes at least one byte: a larger count is corruption, not a big alloc.
    if (!has(tag == 'd' ? std::size_t{count} * 2 : count)) return malformed("bad count");
    if (tag == 'd') {
      PyObject* d = PyDict_New();
      for (std::uint32_t i = 0; d != nullptr && i < count; ++i) {
        PyObject* k = value(depth + 1);
        PyObject* v = k ? value(depth + 1) : nullptr;
        if (v == nullptr || PyDict_SetItem(d, k, v) != 0) Py_CLEAR(d);
        Py_XDECREF(k);
        Py_XDECREF(v);
      }
      return d;
    }
    PyObject* seq = tag == 't' ? PyTuple_New(count) : PyList_New(count);
    for (std::uint32_t i = 0; seq != nullptr && i < count; ++i) {
      PyObject* item = value(depth + 1);
      if (item == nullptr) {
        Py_CLEAR(seq);
        break;
      }
      if (tag == 't') {
        PyTuple_SET_ITEM(seq, i, item);
      } else {
        PyList_SET_ITEM(seq, i, item);
      }
    }
    return seq;
  }

  PyObject* instance(int depth) {
    const std::byte* start = p_;
    std::uint32_t n = 0;
    if (!take(&n, 4) || !has(n)) return malformed("truncated class name");
    p_ += n;
    if (!take(&n, 4) || !has(n)) return malformed("truncated class name");
    p_ += n;
    const std::string_view names(reinterpret_cast<const char*>(start), static_cast<std::size_t>(p_ - start));
    PyObject* state = value(depth + 1);
    if (state == nullptr) return nullptr;
    if (state != Py_None && !PyDict_CheckExact(state)) {
      Py_DECREF(state);
      return malformed("bad instance state");
    }
    PyObject* obj = rebuild_instance(st_, names, state == Py_None ? nullptr : state);
    Py_DECREF(state);
    return obj;
  }

  PyObject* unpickle() {
    std::uint32_t nbufs = 0;
    if (!take(&nbufs, 4) || !has(std::size_t{nbufs} * 8)) return malformed("bad pickle header");
    PyObject* buffers = PyList_New(nbufs);
    for (std::uint32_t i = 0; buffers != nullptr && i < nbufs; ++i) {
      std::uint64_t n = 0;
      if (!take(&n, 8) || !has(n)) {
        Py_CLEAR(buffers);
        return malformed("truncated pickle buffer");
      }
      PyObject* b = PyByteArray_FromStringAndSize(reinterpret_cast<const char*>(p_), static_cast<Py_ssize_t>(n));
      p_ += n;
      if (b == nullptr) Py_CLEAR(buffers);
      else PyList_SET_ITEM(buffers, i, b);
    }
    if (buffers == nullptr) return nullptr;
    std::uint64_t n = 0;
    if (!take(&n, 8) || !has(n)) {
      Py_DECREF(buffers);
      return malformed("truncated pickle");
    }
    PyObject* data = PyMemoryView_FromMemory(const_cast<char*>(reinterpret_cast<const char*>(p_)),
                                             static_cast<Py_ssize_t>(n), PyBUF_READ);
    p_ += n;
    PyObject* result = nullptr;
    if (data != nullptr && load_pickle(st_)) {
      if (nbufs == 0) {
        // No keyword unless needed: CPython 3.12.0-3.12.3 corrupts its heap when an
        // isolated interpreter is the first to pass a keyword to a _pickle function (see
        // docs/python.md, "Known issues").
        result = PyObject_CallOneArg(st_->pickle_loads, data);
      } else {
        PyObject* kwnames = Py_BuildValue("(s)", "buffers");
        if (kwnames != nullptr) {
          PyObject* argv[] = {data, buffers};
          result = PyObject_Vectorcall(st_->pickle_loads, argv, 1, kwnames);
          Py_DECREF(kwnames);
        }
      }
    }
    Py_XDECREF(data);
    Py_DECREF(buffers);
    return result;
  }

  ModuleState* st_;
  const std::byte* p_;
  const std::byte* end_;
};

}  // namespace

PyObject* decode(ModuleState* st, const std::byte* data, std::size_t n) {
  Reader r(st, data, n);
  PyObject* v = r.value(0);
  if (v != nullptr && !r.at_end()) {
    Py_DECREF(v);
    return r.malformed("trailing bytes");
  }
  return v;
}

PyObject* decode_flat(ModuleState* st, const std::byte* data, std::size_t n) {
  if (n == 0) return nullptr;
  switch (static_cast<char>(data[0])) {
    case 'b': case 'B': case 's': case 'i': case 'f': case 'N': case 'T': case 'F':
      return decode(st, data, n);
    default:
      return nullptr;
  }
}

}  // namespace xchan::py
