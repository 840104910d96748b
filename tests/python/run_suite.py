"""Runs the xchan unittest suite in the main interpreter ('main') or inside a fresh
own-GIL subinterpreter created by the stdlib ('subinterpreter'); prints unittest's
summary ("Ran N tests", "OK"/"FAILED (...)") and exits non-zero on failure.

The __main__ guard matters: xchan.spawn re-runs the main script in each worker (as
__mp_main__, like multiprocessing's spawn), so top-level code must not start the suite."""
import os
import sys


# Modules that run in the main interpreter only: test_processes_* start processes, which
# isolated interpreters may not do; test_main_* need packages that refuse to load in
# subinterpreters (hypothesis's native module, numpy).
MAIN_ONLY_PREFIXES = ("test_processes_", "test_main_")


def load_suite(directory, in_subinterpreter=False):
    """Every test_*.py module; in a subinterpreter, all but the main-only ones."""
    import unittest
    names = sorted(f[:-3] for f in os.listdir(directory) if f.startswith("test_") and f.endswith(".py"))
    if in_subinterpreter:
        names = [n for n in names if not n.startswith(MAIN_ONLY_PREFIXES)]
    if directory not in sys.path:
        sys.path.insert(0, directory)
    return unittest.defaultTestLoader.loadTestsFromNames(names)


def run(suite):
    """Runs the suite and prints, after unittest's own summary, one line that
    scripts/test_summary.py reads: "xchan suite: N passed, N failed, N skipped", counted
    from the outcomes themselves (unittest's "Ran N" leaves skipped tests out on some
    versions, 3.12.1 among them, and counts them on others)."""
    import unittest

    class CountingResult(unittest.TextTestResult):
        passed = 0

        def addSuccess(self, test):
            super().addSuccess(test)
            self.passed += 1

        def addExpectedFailure(self, test, err):
            super().addExpectedFailure(test, err)
            self.passed += 1

    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=1, resultclass=CountingResult).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print(f"xchan suite: {result.passed} passed, {failed} failed, {len(result.skipped)} skipped", flush=True)
    return result


def where_xchan_is():
    """Prints which xchan the suite tests; with XCHAN_EXPECT_INSTALLED set (the installed
    wheel's run), refuses one that is not installed in site-packages."""
    import xchan
    location = os.path.dirname(xchan.__file__)
    print(f"xchan {xchan.__version__} from {location}", flush=True)
    if os.environ.get("XCHAN_EXPECT_INSTALLED") and "site-packages" not in location:
        print("expected the installed package, not a build or source tree", flush=True)
        return False
    return True


def main(where):
    if not where_xchan_is():
        return 1
    if where == "main":
        suite = load_suite(os.path.dirname(os.path.abspath(__file__)))
        return 0 if run(suite).wasSuccessful() else 1
    from subinterp import run_suite_in_subinterpreter
    return run_suite_in_subinterpreter()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "main"))
