// The message codec. A message is one tagged value:
//   'N' None   'T' True   'F' False
//   'i' int64 (8 bytes LE)          'I' big int: u32 length + ASCII hex ("-0x1f")
//   'f' float (8 bytes)             'b' bytes: u32 length + bytes    's' str: u32 length + UTF-8
//   'B' bytearray: u32 length + bytes
//   't' tuple / 'l' list: u32 count + values      'd' dict: u32 count + key, value pairs
//   'o' instance of a plain class: u32 length + module, u32 length + qualname (UTF-8),
//       then its state: 'N' (an empty __dict__) or a 'd' value (see instances.hpp)
//   'p' pickle protocol 5: u32 buffer count + (u64 length + bytes) per out-of-band buffer,
//       then u64 length + the pickle
// Native values are exact built-in types (a memoryview travels as 'b', its bytes) and
// instances of plain classes, and the write pass runs no Python code: it happens inside
// the ring's reservation, under its producer lock. Anything else (subclasses of built-ins,
// other buffer types such as array.array, other types, nesting deeper than kMaxDepth) is
// pickled beforehand, so that it arrives as pickle would give it back.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "module_state.hpp"
#include "xchan/channel/registry.hpp"

namespace xchan::py {

class Encoded {
 public:
  Encoded() = default;
  Encoded(const Encoded&) = delete;
  Encoded& operator=(const Encoded&) = delete;
  ~Encoded();

  /// Prepares `obj` (borrowed; must outlive this object). May call Python (pickle, or the
  /// import of a class's module). Returns false with a Python exception set.
  [[nodiscard]] bool prepare(ModuleState* st, PyObject* obj);

  /// True if the last prepare() or refresh() ran Python code, which may have changed
  /// other objects prepared before it (in a batch): those must then be refresh()ed before
  /// anything is written.
  [[nodiscard]] bool ran_python() const noexcept { return ran_python_; }

  /// Makes the encoding match the prepared object as it is now, for when other Python code
  /// may have changed it since prepare() (another thread while the GIL was released, or
  /// pickling a later item of a batch). A pickle is a snapshot and stays; a native value
  /// is sized again, and prepared afresh (which may run Python code: see ran_python())
  /// if it can no longer be encoded natively. Returns false with an exception set.
  [[nodiscard]] bool refresh();

  /// Drops everything prepared (references, buffers); prepare() may be called again.
  void reset() noexcept;

  /// Marks the message as sent (or otherwise handed on, as bytes): the ends its pickling
  /// parked now travel with it. Until then they belong to this object, and reset() or the
  /// destructor closes them, so that a message that is never sent leaves no end of its
  /// open behind (a channel that could then never close).
  void sent() noexcept { parked_.clear(); }

  /// Exact encoded size.
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  /// Writes exactly size() bytes to `out`. Runs no Python code; needs the GIL (it reads
  /// the prepared objects).
  void write(std::byte* out) const noexcept;

 private:
  /// Where the write pass is in aux_ and views_ (both filled in traversal order).
  struct Cursor {
    std::size_t aux = 0;
    std::size_t view = 0;
  };

  Py_ssize_t native_size(PyObject* obj, int depth);
  Py_ssize_t instance_size(PyObject* obj, int depth);
  std::byte* write_value(PyObject* obj, std::byte* out, Cursor& at) const noexcept;
  bool prepare_pickle(ModuleState* st, PyObject* obj);
  void drop_native_state() noexcept;
  void drop_parked() noexcept;
  /// Holds a read-only, C-contiguous view of `obj`'s buffer until reset (a copy if the
  /// buffer is not contiguous), so that the write pass only copies bytes. nullptr with an
  /// exception set on failure.
  const Py_buffer* hold_contiguous(PyObject* obj);
  /// The native size of root_ computed afresh, deciding classes from the cache only (runs
  /// no Python code).
  Py_ssize_t size_again();

  ModuleState* st_ = nullptr;
  PyObject* root_ = nullptr;           // borrowed
  bool pickled_ = false;
  bool ran_python_ = false;
  bool cached_only_ = false;           // sizing must not run Python code (refresh)
  std::size_t size_ = 0;
  // Owned, in traversal order: hex strings of big ints; for each instance, its class's
  // names bytes and its __dict__; contiguous copies of non-contiguous buffers.
  std::vector<PyObject*> aux_;
  // Held buffers (memoryviews, or pickle's out-of-band buffers), in traversal
  // order, each C-contiguous. Boxed: a Py_buffer may point into itself (shape = &len), so
  // it must never move. (Empty for most messages, and an empty vector allocates nothing.)
  std::vector<std::unique_ptr<Py_buffer>> views_;
  PyObject* pickle_ = nullptr;         // owned: the pickle bytes (pickled_ only)
  PyObject* pickle_buffers_ = nullptr; // owned: list of PickleBuffer (pickled_ only)
  std::vector<ParkToken> parked_;      // ends parked while pickling, until sent()
};

/// Records an end that Sender/Receiver.__reduce__ parked, for the message this thread is
/// pickling, if any (see Encoded::sent). Throws std::bad_alloc.
void log_parked(const ParkToken& token);

/// Imports pickle into the module state if not done yet (runs Python code). Returns false
/// with an exception set if that fails.
[[nodiscard]] bool load_pickle(ModuleState* st);

/// Decodes a whole message. Returns a new reference, or nullptr with an exception set
/// (xchan.ChannelError for malformed data, or whatever unpickling raised).
PyObject* decode(ModuleState* st, const std::byte* data, std::size_t n);

/// Decodes a message whose top-level value needs no GC-tracked allocation and runs no
/// Python code (bytes, str, numbers, None, bools), so it may run under the consumer lock.
/// Returns nullptr without an exception for anything else.
PyObject* decode_flat(ModuleState* st, const std::byte* data, std::size_t n);

}  // namespace xchan::py
