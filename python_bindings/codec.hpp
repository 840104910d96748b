// The message codec. A message is one tagged value:
//   'N' None   'T' True   'F' False
//   'i' int64 (8 bytes LE)          'I' big int: u32 length + ASCII hex ("-0x1f")
//   'f' float (8 bytes)             'b' bytes: u32 length + bytes    's' str: u32 length + UTF-8
//   't' tuple / 'l' list: u32 count + values      'd' dict: u32 count + key, value pairs
//   'p' pickle protocol 5: u32 buffer count + (u64 length + bytes) per out-of-band buffer,
//       then u64 length + the pickle
// Native values are exact built-in types only, so that encoding runs no Python code: the
// write pass happens inside the ring's reservation, under its producer lock. Anything else
// (subclasses, other types, nesting deeper than kMaxDepth) is pickled beforehand, except
// that a top-level object exposing the buffer protocol is sent as its bytes.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "module_state.hpp"

namespace xchan::py {

class Encoded {
 public:
  Encoded() = default;
  Encoded(const Encoded&) = delete;
  Encoded& operator=(const Encoded&) = delete;
  ~Encoded();

  /// Prepares `obj` (borrowed; must outlive this object). May call Python (pickle).
  /// Returns false with a Python exception set.
  [[nodiscard]] bool prepare(ModuleState* st, PyObject* obj);

  /// Exact encoded size.
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  /// Writes exactly size() bytes to `out`. Runs no Python code; needs the GIL (it reads
  /// the prepared objects).
  void write(std::byte* out) const noexcept;

 private:
  /// Where the write pass is in aux_ and views_ (both filled in traversal order).
  struct Cursor {
    std::size_t hex = 0;
    std::size_t view = 0;
  };

  Py_ssize_t native_size(PyObject* obj, int depth);
  std::byte* write_value(PyObject* obj, std::byte* out, Cursor& at) const noexcept;
  bool prepare_pickle(ModuleState* st, PyObject* obj);
  /// Gets a read-only buffer of `obj` and keeps it until destruction; nullptr with an
  /// exception set on failure.
  const Py_buffer* hold_view(PyObject* obj);

  PyObject* root_ = nullptr;           // borrowed
  bool pickled_ = false;
  std::size_t size_ = 0;
  std::vector<PyObject*> aux_;         // owned: hex strings of big ints, in traversal order
  // Held buffers (memoryviews/bytearrays, or pickle's out-of-band buffers), in traversal
  // order. Boxed: a Py_buffer may point into itself (shape = &len), so it must never move.
  // (Empty for most messages, and an empty vector allocates nothing, unlike a deque.)
  std::vector<std::unique_ptr<Py_buffer>> views_;
  PyObject* converted_ = nullptr;      // owned: bytes made from a top-level buffer object
  PyObject* pickle_ = nullptr;         // owned: the pickle bytes (pickled_ only)
  PyObject* pickle_buffers_ = nullptr; // owned: list of PickleBuffer (pickled_ only)
};

/// Decodes a whole message. Returns a new reference, or nullptr with an exception set
/// (xchan.ChannelError for malformed data, or whatever unpickling raised).
PyObject* decode(ModuleState* st, const std::byte* data, std::size_t n);

/// Decodes a message whose top-level value needs no GC-tracked allocation and runs no
/// Python code (bytes, str, numbers, None, bools), so it may run under the consumer lock.
/// Returns nullptr without an exception for anything else.
PyObject* decode_flat(ModuleState* st, const std::byte* data, std::size_t n);

}  // namespace xchan::py
