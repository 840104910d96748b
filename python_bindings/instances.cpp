// Plain class instances: the per-class decision on the sending side and the class lookup
// on the receiving side, both cached per interpreter (see instances.hpp).
#include "instances.hpp"

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <unordered_map>

namespace xchan::py {
namespace {

constexpr std::size_t kMaxCachedClasses = 4096;  // past this, a cache starts over

// The caches hold classes by weak reference, as CPython's cross-interpreter registry does:
// a class nothing else uses can still be collected, and no reference cycle runs through
// this module's state unseen by the GC.

/// True if `ref` (a weak reference) still leads to `obj`.
bool is_referent(PyObject* ref, PyObject* obj) noexcept {
#if PY_VERSION_HEX >= 0x030D0000
  PyObject* target = nullptr;
  if (PyWeakref_GetRef(ref, &target) <= 0) return false;
  Py_DECREF(target);
  return target == obj;
#else
  return PyWeakref_GetObject(ref) == obj;
#endif
}

/// Whether `obj` has the attribute: 1, 0, or -1 with an exception set (one that is not
/// an AttributeError).
int has_attr(PyObject* obj, PyObject* name) {
  PyObject* attr = PyObject_GetAttr(obj, name);
  if (attr != nullptr) {
    Py_DECREF(attr);
    return 1;
  }
  if (!PyErr_ExceptionMatches(PyExc_AttributeError)) return -1;
  PyErr_Clear();
  return 0;
}

/// The object a weak reference points to (new reference), or nullptr if it is gone.
PyObject* referent(PyObject* ref) noexcept {
#if PY_VERSION_HEX >= 0x030D0000
  PyObject* obj = nullptr;
  return PyWeakref_GetRef(ref, &obj) > 0 ? obj : nullptr;
#else
  PyObject* obj = PyWeakref_GetObject(ref);  // borrowed; None once dead
  return obj == Py_None ? nullptr : Py_NewRef(obj);
#endif
}

/// Where a class's name leads, checked on every use of a cached class without running
/// Python code: the namespace that holds the last part of its qualified name (a module, or
/// the class it is nested in), by weak reference, and that part. A class redefined under
/// the same name (a re-run notebook cell, importlib.reload) is then noticed, as pickle,
/// which looks the name up every time, notices it. Both null when the namespace is
/// neither a module nor a class (a module's __getattr__ gave it, say): the cached class is
/// then trusted.
struct NameSite {
  PyObject* scope_ref = nullptr;  // owned
  PyObject* key = nullptr;        // owned (interned str)

  void clear() noexcept {
    Py_CLEAR(scope_ref);
    Py_CLEAR(key);
  }
  /// Takes `scope` and `key` (new references, may be null) as the new site.
  void reset(PyObject* scope, PyObject* key_part) noexcept {
    clear();
    const bool usable = scope != nullptr && key_part != nullptr &&
                        (PyModule_Check(scope) || (PyType_Check(scope) &&
                         PyType_HasFeature(reinterpret_cast<PyTypeObject*>(scope), Py_TPFLAGS_HEAPTYPE)));
    if (usable) {
      scope_ref = PyWeakref_NewRef(scope, nullptr);
      if (scope_ref == nullptr) PyErr_Clear();  // then trusted, as above
    }
    if (scope_ref != nullptr) key = Py_NewRef(key_part);
    Py_XDECREF(scope);
    Py_XDECREF(key_part);
  }
  /// False if the name no longer leads to `cls` (or to nothing). Runs no Python code.
  [[nodiscard]] bool still_names(PyObject* cls) const noexcept {
    if (scope_ref == nullptr) return true;
    PyObject* scope = referent(scope_ref);
    if (scope == nullptr) return false;
    PyObject* dict = PyModule_Check(scope) ? PyModule_GetDict(scope)
                                           : reinterpret_cast<PyTypeObject*>(scope)->tp_dict;
    PyObject* found = dict != nullptr ? PyDict_GetItemWithError(dict, key) : nullptr;  // borrowed
    if (found == nullptr) PyErr_Clear();
    Py_DECREF(scope);
    return found == cls;  // compared, never used
  }
};

/// A decision about one class, valid while the class lives, its version tag is
/// unchanged and its name still leads to it.
struct Decision {
  PyObject* ref = nullptr;    // owned weak reference to the class
  unsigned int version = 0;
  PyObject* names = nullptr;  // owned; nullptr: not plain
  NameSite site;              // plain classes only
};

/// A class found by name.
struct Found {
  PyObject* ref = nullptr;  // owned weak reference to the class
  unsigned int version = 0;
  bool has_setstate = false;
  NameSite site;
};

struct ClassCaches {
  // Keyed by address, which a new class may reuse once the old one is gone: an entry
  // counts only while its weak reference still leads to the same class.
  std::unordered_map<PyTypeObject*, Decision> by_type;
  std::map<std::string, Found, std::less<>> by_name;    // key: the names bytes
  PyObject* dispatch_table = nullptr;                   // copyreg.dispatch_table (owned)
  PyObject* setstate_name = nullptr;                    // interned "__setstate__" (owned)

  void clear_by_type() noexcept {
    for (auto& [type, d] : by_type) {
      Py_XDECREF(d.names);
      Py_XDECREF(d.ref);
      d.site.clear();
    }
    by_type.clear();
  }
  void clear_by_name() noexcept {
    for (auto& [name, f] : by_name) {
      Py_XDECREF(f.ref);
      f.site.clear();
    }
    by_name.clear();
  }
};

ClassCaches& caches(ModuleState* st) noexcept { return *static_cast<ClassCaches*>(st->classes); }

bool plain_layout(PyTypeObject* t) noexcept {
  return PyType_HasFeature(t, Py_TPFLAGS_HEAPTYPE) && PyType_HasFeature(t, Py_TPFLAGS_MANAGED_DICT) &&
         t->tp_itemsize == 0 && t->tp_basicsize == PyBaseObject_Type.tp_basicsize;
}

/// Layout and hooks of `type` and its bases (no Python code runs).
bool plain_shape(PyTypeObject* type) {
  if (!Py_IS_TYPE(reinterpret_cast<PyObject*>(type), &PyType_Type) || !plain_layout(type)) return false;
  PyObject* mro = type->tp_mro;
  if (mro == nullptr || !PyTuple_Check(mro) || PyTuple_GET_SIZE(mro) < 2) return false;
  const Py_ssize_t n = PyTuple_GET_SIZE(mro);
  if (PyTuple_GET_ITEM(mro, n - 1) != reinterpret_cast<PyObject*>(&PyBaseObject_Type)) return false;
  static const char* const kHooks[] = {"__reduce_ex__", "__reduce__", "__getstate__", "__getnewargs_ex__",
                                       "__getnewargs__", "__slots__"};
  for (Py_ssize_t i = 0; i < n - 1; ++i) {
    auto* base = reinterpret_cast<PyTypeObject*>(PyTuple_GET_ITEM(mro, i));
    if (!PyType_Check(reinterpret_cast<PyObject*>(base)) || !plain_layout(base) || base->tp_dict == nullptr) {
      return false;
    }
    for (const char* hook : kHooks) {
      if (PyDict_GetItemString(base->tp_dict, hook) != nullptr) return false;
    }
  }
  return true;
}

/// "u32 length + module, u32 length + qualname" as bytes (new reference).
PyObject* encode_names(std::string_view module, std::string_view qualname) {
  PyObject* out = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(8 + module.size() + qualname.size()));
  if (out == nullptr) return nullptr;
  char* p = PyBytes_AS_STRING(out);
  const auto um = static_cast<std::uint32_t>(module.size());
  const auto uq = static_cast<std::uint32_t>(qualname.size());
  std::memcpy(p, &um, 4);
  std::memcpy(p + 4, module.data(), module.size());
  std::memcpy(p + 4 + module.size(), &uq, 4);
  std::memcpy(p + 8 + module.size(), qualname.data(), qualname.size());
  return out;
}

/// Splits names bytes into module and qualname; false if malformed.
bool split_names(std::string_view names, std::string_view& module, std::string_view& qualname) noexcept {
  std::uint32_t lm = 0;
  std::uint32_t lq = 0;
  if (names.size() < 8) return false;
  std::memcpy(&lm, names.data(), 4);
  if (names.size() < 8 + std::size_t{lm}) return false;
  std::memcpy(&lq, names.data() + 4 + lm, 4);
  if (names.size() != 8 + std::size_t{lm} + lq) return false;
  module = names.substr(4, lm);
  qualname = names.substr(8 + lm, lq);
  return true;
}

/// Imports `module` and follows the dotted `qualname` (new reference, or nullptr with an
/// exception set). Runs Python code. With `site`, also gives where the last part was
/// looked up (new references: the namespace object and the interned part, for NameSite).
PyObject* resolve(std::string_view module, std::string_view qualname, PyObject** scope = nullptr,
                  PyObject** key = nullptr) {
  PyObject* name = PyUnicode_DecodeUTF8(module.data(), static_cast<Py_ssize_t>(module.size()), "strict");
  if (name == nullptr) return nullptr;
  PyObject* obj = PyImport_Import(name);
  Py_DECREF(name);
  while (obj != nullptr && !qualname.empty()) {
    const std::size_t dot = qualname.find('.');
    const std::string_view part = qualname.substr(0, dot);
    qualname = dot == std::string_view::npos ? std::string_view{} : qualname.substr(dot + 1);
    PyObject* attr = PyUnicode_DecodeUTF8(part.data(), static_cast<Py_ssize_t>(part.size()), "strict");
    if (attr != nullptr) PyUnicode_InternInPlace(&attr);
    PyObject* next = attr ? PyObject_GetAttr(obj, attr) : nullptr;
    if (next != nullptr && qualname.empty() && scope != nullptr) {
      *scope = Py_NewRef(obj);
      *key = Py_NewRef(attr);
    }
    Py_XDECREF(attr);
    Py_DECREF(obj);
    obj = next;
  }
  return obj;
}

/// The class named by `names` (new reference in `*cls`), and its cache entry.
bool find_class(ModuleState* st, std::string_view names, PyObject** cls, Found** found) {
  ClassCaches& c = caches(st);
  auto it = c.by_name.find(names);
  PyObject* known = it == c.by_name.end() ? nullptr : referent(it->second.ref);
  if (known != nullptr && !it->second.site.still_names(known)) Py_CLEAR(known);  // redefined
  if (known == nullptr) {
    std::string_view module;
    std::string_view qualname;
    if (!split_names(names, module, qualname)) {
      PyErr_SetString(st->channel_error, "malformed message: bad class name");
      return false;
    }
    PyObject* scope = nullptr;
    PyObject* key = nullptr;
    known = resolve(module, qualname, &scope, &key);
    if (known == nullptr || !PyType_Check(known)) {
      if (known != nullptr) PyErr_Format(PyExc_TypeError, "xchan: %R is not a class", known);
      Py_XDECREF(known);
      Py_XDECREF(scope);
      Py_XDECREF(key);
      return false;
    }
    PyObject* ref = PyWeakref_NewRef(known, nullptr);
    if (ref == nullptr) {
      Py_DECREF(known);
      Py_XDECREF(scope);
      Py_XDECREF(key);
      return false;
    }
    // The import ran Python code, which may have changed the cache: look again.
    it = c.by_name.find(names);
    if (it == c.by_name.end()) {
      if (c.by_name.size() >= kMaxCachedClasses) c.clear_by_name();
      it = c.by_name.emplace(std::string(names), Found{}).first;
    }
    Py_XSETREF(it->second.ref, ref);
    it->second.version = 0;
    it->second.site.reset(scope, key);
  }
  auto* type = reinterpret_cast<PyTypeObject*>(known);
  if (it->second.version == 0 || it->second.version != type->tp_version_tag) {
    // First use, or the class changed since: look for __setstate__ again. A metaclass
    // may run Python code here, which may change the cache: find the entry again after.
    const int has_setstate = has_attr(known, c.setstate_name);
    if (has_setstate < 0) {
      Py_DECREF(known);
      return false;
    }
    const unsigned int version = PyUnstable_Type_AssignVersionTag(type) ? type->tp_version_tag : 0;
    it = c.by_name.find(names);
    if (it == c.by_name.end()) {
      PyObject* ref = PyWeakref_NewRef(known, nullptr);
      if (ref == nullptr) {
        Py_DECREF(known);
        return false;
      }
      it = c.by_name.emplace(std::string(names), Found{ref, 0, false, NameSite{}}).first;
    }
    it->second.has_setstate = has_setstate != 0;
    it->second.version = version;
  }
  *cls = known;
  *found = &it->second;
  return true;
}

}  // namespace

ClassCheck check_plain_class(ModuleState* st, PyTypeObject* type, bool cached_only, bool& ran_python,
                             PyObject** names) {
  ClassCaches& c = caches(st);
  // A reducer registered with copyreg wins over everything, as in pickle; checked every
  // time because it can be registered at any moment.
  const int registered = PyDict_Contains(c.dispatch_table, reinterpret_cast<PyObject*>(type));
  if (registered < 0) return ClassCheck::kError;
  if (registered > 0) return ClassCheck::kNotPlain;
  auto it = c.by_type.find(type);
  if (it != c.by_type.end() && it->second.version != 0 && it->second.version == type->tp_version_tag &&
      is_referent(it->second.ref, reinterpret_cast<PyObject*>(type)) &&
      it->second.site.still_names(reinterpret_cast<PyObject*>(type))) {
    if (it->second.names == nullptr) return ClassCheck::kNotPlain;
    *names = Py_NewRef(it->second.names);
    return ClassCheck::kPlain;
  }
  if (cached_only) return ClassCheck::kNotPlain;

  PyObject* encoded = nullptr;
  PyObject* scope = nullptr;  // where the name was found (NameSite), new references
  PyObject* key = nullptr;
  if (plain_shape(type)) {
    PyObject* module = PyDict_GetItemString(type->tp_dict, "__module__");  // borrowed
    PyObject* qualname = PyType_GetQualName(type);
    if (qualname == nullptr) return ClassCheck::kError;
    if (module != nullptr && PyUnicode_Check(module) && PyUnicode_Check(qualname)) {
      Py_INCREF(module);
      ran_python = true;
      Py_ssize_t lm = 0;
      Py_ssize_t lq = 0;
      const char* m = PyUnicode_AsUTF8AndSize(module, &lm);
      const char* q = m ? PyUnicode_AsUTF8AndSize(qualname, &lq) : nullptr;
      const std::string_view module_name(m != nullptr ? m : "", static_cast<std::size_t>(lm));
      const std::string_view qualified(q != nullptr ? q : "", static_cast<std::size_t>(lq));
      PyObject* found = q ? resolve(module_name, qualified, &scope, &key) : nullptr;
      // Not found again by name (a local class, a renamed one): pickle decides, and
      // reports the error if it has to.
      if (found == reinterpret_cast<PyObject*>(type)) encoded = encode_names(module_name, qualified);
      Py_XDECREF(found);
      Py_DECREF(module);
      // An import that failed (ImportError, AttributeError, ...) leaves the decision to
      // pickle; Ctrl-C or SystemExit during it is the caller's, not a reason to pickle.
      if (encoded == nullptr && PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_Exception)) {
        Py_DECREF(qualname);
        Py_XDECREF(scope);
        Py_XDECREF(key);
        return ClassCheck::kError;
      }
      PyErr_Clear();
    }
    Py_DECREF(qualname);
  }
  // The imports above may have run anything, including code that changed `type` or this
  // cache (a module that sends an object while it is imported): look the entry up again.
  const unsigned int version = PyUnstable_Type_AssignVersionTag(type) ? type->tp_version_tag : 0;
  PyObject* ref = PyWeakref_NewRef(reinterpret_cast<PyObject*>(type), nullptr);
  if (ref == nullptr) {
    Py_XDECREF(encoded);
    Py_XDECREF(scope);
    Py_XDECREF(key);
    return ClassCheck::kError;
  }
  if (encoded == nullptr) {  // not plain: no name to check later
    Py_CLEAR(scope);
    Py_CLEAR(key);
  }
  it = c.by_type.find(type);
  if (it == c.by_type.end()) {
    if (c.by_type.size() >= kMaxCachedClasses) c.clear_by_type();
    it = c.by_type.emplace(type, Decision{}).first;
  }
  Py_XSETREF(it->second.names, encoded);
  Py_XSETREF(it->second.ref, ref);
  it->second.version = version;
  it->second.site.reset(scope, key);
  if (encoded == nullptr) return ClassCheck::kNotPlain;
  *names = Py_NewRef(encoded);
  return ClassCheck::kPlain;
}

PyObject* rebuild_instance(ModuleState* st, std::string_view names, PyObject* state) {
  Found* found = nullptr;
  PyObject* cls = nullptr;  // owned: the cache may drop it while Python code runs
  if (!find_class(st, names, &cls, &found)) return nullptr;
  const bool has_setstate = found->has_setstate;
  auto* type = reinterpret_cast<PyTypeObject*>(cls);
  PyObject* obj = nullptr;
  if (type->tp_new == nullptr) {
    PyErr_Format(PyExc_TypeError, "xchan: cannot create '%s' instances", type->tp_name);
  } else {
    PyObject* no_args = PyTuple_New(0);
    obj = no_args ? type->tp_new(type, no_args, nullptr) : nullptr;  // cls.__new__(cls)
    Py_XDECREF(no_args);
  }
  Py_DECREF(cls);
  if (obj == nullptr || state == nullptr) return obj;
  if (has_setstate) {
    PyObject* r = PyObject_CallMethodOneArg(obj, caches(st).setstate_name, state);
    if (r == nullptr) Py_CLEAR(obj);
    Py_XDECREF(r);
    return obj;
  }
  PyObject* dict = PyObject_GenericGetDict(obj, nullptr);
  Py_ssize_t pos = 0;
  PyObject* key = nullptr;
  PyObject* value = nullptr;
  while (dict != nullptr && PyDict_Next(state, &pos, &key, &value)) {
    Py_INCREF(key);
    if (PyUnicode_CheckExact(key)) PyUnicode_InternInPlace(&key);  // as pickle does
    const int rc = PyDict_SetItem(dict, key, value);
    Py_DECREF(key);
    if (rc != 0) Py_CLEAR(dict);
  }
  if (dict == nullptr) Py_CLEAR(obj);
  Py_XDECREF(dict);
  return obj;
}

bool init_class_caches(ModuleState* st) {
  auto* c = new (std::nothrow) ClassCaches();
  if (c == nullptr) {
    PyErr_NoMemory();
    return false;
  }
  st->classes = c;
  PyObject* copyreg = PyImport_ImportModule("copyreg");
  if (copyreg == nullptr) return false;
  c->dispatch_table = PyObject_GetAttrString(copyreg, "dispatch_table");
  Py_DECREF(copyreg);
  if (c->dispatch_table == nullptr) return false;
  if (!PyDict_Check(c->dispatch_table)) {
    PyErr_SetString(PyExc_TypeError, "copyreg.dispatch_table is not a dict");
    return false;
  }
  c->setstate_name = PyUnicode_InternFromString("__setstate__");
  return c->setstate_name != nullptr;
}

int traverse_class_caches(ModuleState* st, visitproc visit, void* arg) {
  auto* c = static_cast<ClassCaches*>(st->classes);
  if (c == nullptr) return 0;
  Py_VISIT(c->dispatch_table);
  return 0;
}

void clear_class_caches(ModuleState* st) noexcept {
  auto* c = static_cast<ClassCaches*>(st->classes);
  if (c == nullptr) return;
  st->classes = nullptr;
  c->clear_by_type();
  c->clear_by_name();
  Py_CLEAR(c->dispatch_table);
  Py_CLEAR(c->setstate_name);
  delete c;
}

}  // namespace xchan::py
