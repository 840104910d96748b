// Instances of plain Python classes in the native codec. Pickle saves such an object as
// "copyreg.__newobj__(cls)" plus its __dict__ as state, and loads it as cls.__new__(cls)
// followed by __setstate__(state) or a __dict__ update. The codec does the same without
// pickle's per-call machinery (a Pickler, a memo, a module import check for every
// global): the class travels as its module and qualified name, the state as a native dict.
//
// "Plain" is decided per class, so that the result is exactly what pickle would give:
// the class's metaclass is `type`; it and its bases (up to object) are Python classes with
// an instance __dict__ and no __slots__; none of them defines __reduce_ex__, __reduce__,
// __getstate__, __getnewargs_ex__ or __getnewargs__; copyreg has no reducer for it; and
// importing its module and following its qualified name gives the class back. Anything
// else (and every subclass of a built-in type) goes through pickle as before.
#pragma once

#include <cstddef>
#include <string_view>

#include "module_state.hpp"

namespace xchan::py {

enum class ClassCheck : std::uint8_t { kPlain, kNotPlain, kError };

/// Decides whether instances of `type` may be encoded natively. On kPlain, `*names` is a
/// new reference to a bytes object holding "u32 length + module, u32 length + qualname"
/// (UTF-8), ready to be written into a message. Decisions are cached per class (and
/// redone when the class is modified). A first decision imports the class's module, so it
/// may run Python code: then `ran_python` is set. With `cached_only`, a class not decided
/// yet is kNotPlain instead. kError leaves a Python exception set.
ClassCheck check_plain_class(ModuleState* st, PyTypeObject* type, bool cached_only, bool& ran_python,
                             PyObject** names);

/// Rebuilds an instance from the names written by the sender (the bytes check_plain_class
/// gave) and its state (a dict, or nullptr for none): finds the class (cached per
/// interpreter), calls cls.__new__(cls), then __setstate__(state) if the class has one,
/// else updates the instance __dict__, as pickle does. New reference, or nullptr with an
/// exception set.
PyObject* rebuild_instance(ModuleState* st, std::string_view names, PyObject* state);

/// Per-interpreter caches behind the two functions above (module exec / traverse / clear).
/// They hold classes by weak reference only.
[[nodiscard]] bool init_class_caches(ModuleState* st);
int traverse_class_caches(ModuleState* st, visitproc visit, void* arg);
void clear_class_caches(ModuleState* st) noexcept;

}  // namespace xchan::py
