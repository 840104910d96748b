"""xchan.spawn: run a function in a fresh subinterpreter with its own GIL.

The parent pickles (fn, args) by reference, like multiprocessing's spawn start method: fn
must be importable by module and qualified name, or given as source code. Functions
defined in the parent's __main__ script work too: the worker runs that script as
__mp_main__ (so its `if __name__ == "__main__":` block does not run again) and resolves
__main__ to it. Channel ends in args are pickled as handles and re-attach in the worker.
"""
import pickle
import sys
import types

from . import _xchan


def _main_spec():
    """How the worker can re-create the parent's __main__ ({} if it cannot)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    name = getattr(spec, "name", None)
    if name is not None:
        # Like multiprocessing: a package's __main__ (python -m pkg, python -m unittest)
        # is not re-run in the worker; it is the program, not a library of functions.
        if name == "__main__" or name.endswith(".__main__"):
            return {}
        return {"module": name}
    path = getattr(main, "__file__", None)
    return {"path": path} if path else {}


def spawn(fn, *args, isolate="interpreter"):
    """Start fn(*args) in a new own-GIL subinterpreter on its own thread; return a Worker.

    fn is a function importable by module and qualified name (including functions defined
    in the main script), or a string of source code run with `args` bound. Worker.join()
    re-raises an exception of fn as xchan.WorkerError carrying its traceback text.
    """
    if isolate == "process":
        raise NotImplementedError("isolate='process' needs cross-process channels, which are not built yet")
    if isolate != "interpreter":
        raise ValueError(f"isolate must be 'interpreter' or 'process', not {isolate!r}")
    if isinstance(fn, str):
        target = ("source", fn)
    elif callable(fn):
        target = ("call", fn)
    else:
        raise TypeError(f"fn must be a function or source code, not {type(fn).__name__}")
    header = pickle.dumps(_main_spec())
    blob = pickle.dumps((target, args), protocol=5)  # fails here, in the parent, if fn is not importable
    return _xchan._spawn([p for p in sys.path if isinstance(p, str)], header, blob)


def _install_main(spec):
    if "path" in spec:
        import runpy
        namespace = runpy.run_path(spec["path"], run_name="__mp_main__")
    elif "module" in spec:
        import runpy
        namespace = runpy.run_module(spec["module"], run_name="__mp_main__", alter_sys=False)
    else:
        return
    main = types.ModuleType("__mp_main__")
    main.__dict__.update(namespace)
    sys.modules["__mp_main__"] = sys.modules["__main__"] = main


def run(header, blob):
    """Worker side (called by the native thread): returns None, or fn's traceback text."""
    try:
        _install_main(pickle.loads(header))
        (kind, fn), args = pickle.loads(blob)
        if kind == "source":
            exec(compile(fn, "<xchan.spawn source>", "exec"), {"__name__": "__xchan_worker__", "args": args})
        else:
            fn(*args)
        return None
    except BaseException:  # the parent re-raises it as WorkerError
        import traceback  # only now: it costs a worker ~2 ms of start-up

        return traceback.format_exc()
