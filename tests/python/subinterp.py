"""Runs code in a fresh own-GIL subinterpreter created by the stdlib (_interpreters on
3.13, _xxsubinterpreters on 3.12), so the tests do not depend on xchan.spawn."""
import os
import sys
import tempfile


def _module():
    try:
        import _interpreters as m  # 3.13
        return m, lambda: m.create("isolated")
    except ImportError:
        import _xxsubinterpreters as m  # 3.12
        return m, lambda: m.create(isolated=True)


def create():
    """Returns (module, interpreter id) of a new isolated interpreter."""
    m, make = _module()
    return m, make()


def run(m, iid, code):
    """Runs `code` in interpreter `iid`; raises RuntimeError if it raised."""
    result = m.run_string(iid, code)
    if result is not None:  # 3.13 returns an exception snapshot instead of raising
        raise RuntimeError(getattr(result, "formatted", None) or str(result))


def run_isolated(code):
    """Runs `code` in a new isolated interpreter, then destroys it."""
    m, iid = create()
    try:
        run(m, iid, code)
    finally:
        m.destroy(iid)


def run_suite_in_subinterpreter():
    here = os.path.dirname(os.path.abspath(__file__))
    fd, result_path = tempfile.mkstemp(prefix="xchan-suite-")
    os.close(fd)
    code = f"""
import sys
sys.path[:] = {sys.path!r}
import unittest
from run_suite import load_suite, run
result = run(load_suite({here!r}, in_subinterpreter=True))
with open({result_path!r}, "w") as f:
    f.write("ok" if result.wasSuccessful() else "failed")
"""
    try:
        run_isolated(code)
        with open(result_path) as f:
            ok = f.read() == "ok"
    finally:
        os.unlink(result_path)
    print("suite ran inside an own-GIL subinterpreter:", "passed" if ok else "FAILED")
    return 0 if ok else 1
