"""Runs the xchan unittest suite in the main interpreter ('main') or inside a fresh
own-GIL subinterpreter created by the stdlib ('subinterpreter'); prints unittest's
summary ("Ran N tests", "OK"/"FAILED (...)") and exits non-zero on failure.

The __main__ guard matters: xchan.spawn re-runs the main script in each worker (as
__mp_main__, like multiprocessing's spawn), so top-level code must not start the suite."""
import sys


def main(where):
    if where == "main":
        import unittest
        suite = unittest.defaultTestLoader.discover(".", pattern="test_*.py")
        result = unittest.TextTestRunner(stream=sys.stdout, verbosity=1).run(suite)
        return 0 if result.wasSuccessful() else 1
    from subinterp import run_suite_in_subinterpreter
    return run_suite_in_subinterpreter()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "main"))
