"""CPython's own tests of its interpreter queues (test/test_interpreters/test_queues.py of
the running interpreter, 3.13 and later; 3.12 ships none), loaded at run time, not copied,
and run against xchan.Queue: the module's `queues` is replaced by cpython_queues_adapter,
in this interpreter and in every interpreter the tests create. Tests of behaviour xchan
does not have on purpose are listed in DIFFERENCES with the reason (docs/python.md names
them too); every other test must pass."""
import importlib
import os
import sys
import textwrap
import unittest

import cpython_queues_adapter

try:
    _cpython = importlib.import_module("test.test_interpreters.test_queues")
except ImportError:  # no such tests in this CPython (3.12), or _interpqueues missing
    _cpython = None

DIFFERENCES = {
    # The low-level _interpqueues module itself, not the queue API.
    "LowLevelTests": "tests CPython's _interpqueues module, which xchan does not replace",
    # xchan copies every item (as pickle would); nothing is refused as "not shareable".
    "TestQueueOps.test_put_syncobj": "xchan shares every picklable item; syncobj=True refuses nothing",
    "TestQueueOps.test_put_get_default_syncobj": "xchan shares every picklable item; syncobj=True refuses nothing",
    # Items outlive the interpreter that put them: no UNBOUND replacement or removal.
    "TestQueueOps.test_put_cleared_with_subinterpreter": "items are delivered after their interpreter is gone",
    "TestQueueOps.test_put_cleared_with_subinterpreter_mixed": "items are delivered after their interpreter is gone",
    "TestQueueOps.test_put_cleared_with_subinterpreter_multiple": "items are delivered after their interpreter is gone",
    # queues.list_all(): xchan keeps no process-wide list of queues.
    "TestQueueOps.test_put_get_different_interpreters": "it counts every queue of the process with list_all()",
}


class _Interpreters:
    """test.support.interpreters, except that every interpreter it creates resolves
    `from test.support.interpreters import queues` to the adapter."""

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)

    def create(self):
        interp = self._real.create()
        interp.exec(textwrap.dedent(f"""
            import sys
            sys.path[:] = {sys.path!r}
            import cpython_queues_adapter
            import test.support.interpreters as _interpreters
            _interpreters.queues = cpython_queues_adapter
            sys.modules["test.support.interpreters.queues"] = cpython_queues_adapter
        """))
        return interp


def load_tests(loader, standard_tests, pattern):
    suite = unittest.TestSuite()
    if _cpython is None:
        return suite
    _cpython.queues = cpython_queues_adapter
    _cpython.interpreters = _Interpreters(_cpython.interpreters)
    _cpython.get_num_queues = lambda: 0
    _cpython.TestBase.tearDown = lambda self: None  # it destroys _interpqueues' queues
    for name in ("QueueTests", "TestQueueOps"):
        for test in loader.loadTestsFromTestCase(getattr(_cpython, name)):
            test_id = f"{name}.{test._testMethodName}"
            if name not in DIFFERENCES and test_id not in DIFFERENCES:
                suite.addTest(test)
    return suite
