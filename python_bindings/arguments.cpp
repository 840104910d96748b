// Argument parsing shared by the bindings.
#include "arguments.hpp"

#include <cmath>

namespace xchan::py {

bool parse_args(const char* fname, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                const char* const* names, Py_ssize_t count, Py_ssize_t required, PyObject** out) {
  if (nargs > count) {
    PyErr_Format(PyExc_TypeError, "%s() takes at most %zd arguments (%zd given)", fname, count, nargs);
    return false;
  }
  for (Py_ssize_t i = 0; i < nargs; ++i) out[i] = args[i];
  const Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  for (Py_ssize_t k = 0; k < nkw; ++k) {
    PyObject* key = PyTuple_GET_ITEM(kwnames, k);
    Py_ssize_t i = 0;
    while (i < count && PyUnicode_CompareWithASCIIString(key, names[i]) != 0) ++i;
    if (i == count) {
      PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fname, key);
      return false;
    }
    if (i < nargs) {
      PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fname, names[i]);
      return false;
    }
    out[i] = args[nargs + k];
  }
  for (Py_ssize_t i = 0; i < required; ++i) {
    if (out[i] == nullptr) {
      PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", fname, names[i]);
      return false;
    }
  }
  return true;
}

bool parse_timeout(PyObject* arg, Deadline& out) {
  if (arg == nullptr || arg == Py_None) {
    out = Deadline::never();
    return true;
  }
  // A bool is an int to Python, but as a timeout it is a mistake (queue.get(True) meaning
  // "one second"): refused like any other non-number.
  if ((!PyFloat_Check(arg) && !PyLong_Check(arg)) || PyBool_Check(arg)) {
    PyErr_Format(PyExc_TypeError, "timeout must be a number or None, not %.100s", Py_TYPE(arg)->tp_name);
    return false;
  }
  const double seconds = PyFloat_AsDouble(arg);
  if (seconds == -1.0 && PyErr_Occurred()) return false;
  if (std::isnan(seconds) || seconds < 0) {
    PyErr_SetString(PyExc_ValueError, "timeout must be >= 0 (and not NaN)");
    return false;
  }
  out = Deadline::after_seconds(seconds);
  return true;
}

}  // namespace xchan::py
