"""Checks the package's .pyi stubs, run by meson with the tools venv's python (see
requirements/tools.txt): mypy's stubtest compares them with the built module, and mypy
--strict checks the examples and test_typed_api.py against them. Prints each tool's
output and a last line "xchan suite: N passed, N failed, 0 skipped" (one per check)."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))


def main():
    package_dir = os.environ["PYTHONPATH"].split(os.pathsep)[0]
    cache = os.path.join(os.path.dirname(package_dir), "mypy_cache")
    env = dict(os.environ, MYPYPATH=os.pathsep.join([package_dir, HERE]))
    checks = {
        "stubtest xchan": [sys.executable, "-m", "mypy.stubtest", "xchan"],
        # (The untyped helpers the typed test imports, workers.py, are followed silently.)
        "mypy --strict": [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--cache-dir", cache,
                          os.path.join(ROOT, "examples", "quick_start.py"), os.path.join(HERE, "test_typed_api.py")],
    }
    passed = failed = 0
    for name, command in checks.items():
        r = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
        print(f"== {name}: exit {r.returncode}\n{r.stdout}{r.stderr}", flush=True)
        passed += r.returncode == 0
        failed += r.returncode != 0
    print(f"xchan suite: {passed} passed, {failed} failed, 0 skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
