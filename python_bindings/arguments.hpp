// Argument parsing shared by the bindings' METH_FASTCALL entry points.
#pragma once

#include "python_api.hpp"
#include "xchan/channel/deadline.hpp"

namespace xchan::py {

/// Positional-or-keyword parsing for METH_FASTCALL | METH_KEYWORDS. `out` holds `count`
/// slots preset to defaults (borrowed references); the first `required` must be given.
/// Returns false with TypeError set.
bool parse_args(const char* fname, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                const char* const* names, Py_ssize_t count, Py_ssize_t required, PyObject** out);

/// Parses a timeout argument: None (or missing) -> never; a real number >= 0 -> that many
/// seconds (0 tries once). Negative or NaN -> ValueError, anything else (bool included)
/// -> TypeError.
/// Returns false with an exception set.
bool parse_timeout(PyObject* arg, Deadline& out);

}  // namespace xchan::py
