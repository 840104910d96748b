"""xchan.spawn: run a function in a fresh subinterpreter with its own GIL.

The parent sends fn by reference, like multiprocessing's spawn start method: fn must be
importable by module and qualified name, or given as source code. Functions defined in the
parent's __main__ script work too: the worker runs that script as __mp_main__ (so its
`if __name__ == "__main__":` block does not run again) and resolves __main__ to it, but only
when the call refers to __main__ at all. Channel ends in args re-attach in the worker.

The call travels in xchan's own message format whenever it can (fn as module and qualified
name, ends as handles, args as native values), so a worker imports neither pickle nor the
parent's script unless it needs them; anything else is pickled, as multiprocessing does.
"""
import sys

from . import _xchan

_ENDS = (_xchan.Sender, _xchan.Receiver)


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


def _lookup(module, qualname):
    """The object named qualname in module, as pickle finds a global (None if absent)."""
    mod = sys.modules.get(module)
    if mod is None:
        __import__(module)
        mod = sys.modules[module]
    obj = mod
    for part in qualname.split("."):
        if part == "<locals>":
            return None
        obj = getattr(obj, part, None)
    return obj


def _reference(fn):
    """fn as (module, qualname) if the worker can find it again by those names, else None."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        return None
    try:
        return (module, qualname) if _lookup(module, qualname) is fn else None
    except Exception:  # not importable by that name: let pickle report it
        return None


_SCALARS = (bytes, str, int, float, bool, type(None))


def _plain(obj, depth=0):
    """True for values that arrive exactly as pickle would deliver them: scalars and
    tuples/lists/dicts of them. (The message codec delivers other buffers as bytes and
    instances without pickle's memo; spawn keeps pickle's semantics for those.)"""
    t = type(obj)
    if t in _SCALARS:
        return True
    if depth > 16:
        return False
    if t is tuple or t is list:
        return all(_plain(x, depth + 1) for x in obj)
    if t is dict:
        return all(_plain(k, depth + 1) and _plain(v, depth + 1) for k, v in obj.items())
    return False


def _encode_call(target, args):
    """The call as a native message, or None if some part needs pickle."""
    if target[0] == "call":
        ref = _reference(target[1])
        if ref is None:
            return None
        target = ("ref",) + ref
    # Top-level ends go as their handles, what pickling them would carry. A handle parks a
    # clone of the end until the worker takes it, so everything else is checked first.
    if not all(isinstance(a, _ENDS) or _plain(a) for a in args):
        return None
    packed = tuple(("e",) + a.__reduce__()[1] if isinstance(a, _ENDS) else ("v", a) for a in args)
    return _xchan._encode((target, packed))


def _describe(fn):
    """How reports name the worker: module.qualname of fn, or <source>."""
    if isinstance(fn, str):
        return "<source>"
    module = getattr(fn, "__module__", None) or "?"
    return f"{module}.{getattr(fn, '__qualname__', None) or repr(fn)}"


def spawn(fn, *args, isolate="interpreter", daemon=False):
    """Start fn(*args) in a new own-GIL subinterpreter on its own thread; return a Worker.

    fn is a function importable by module and qualified name (including functions defined
    in the main script), or a string of source code run with `args` bound. Worker.join()
    re-raises an exception of fn as xchan.WorkerError carrying its traceback text.

    At exit the interpreter waits for its workers (after closing its ends, which ends the
    loops of workers that receive from them); a daemon worker is asked to stop instead
    (SystemExit is raised in it). See docs/python.md, "Workers at exit".
    """
    if _importing_main:
        raise RuntimeError(
            "xchan.spawn() was called while a worker was running the main script to find its "
            "function: the script spawns workers at import time. Use the idiom\n\n"
            "    if __name__ == '__main__':\n        ...\n\n"
            "around the code that starts workers, as multiprocessing requires.")
    if isolate == "process":
        raise NotImplementedError("isolate='process' (process workers) is not built yet")
    if isolate != "interpreter":
        raise ValueError(f"isolate must be 'interpreter' or 'process', not {isolate!r}")
    if isinstance(fn, str):
        target = ("source", fn)
    elif callable(fn):
        target = ("call", fn)
    else:
        raise TypeError(f"fn must be a function or source code, not {type(fn).__name__}")
    blob = _encode_call(target, args)
    if blob is None:
        import pickle

        # Fails here, in the parent, if fn is not importable. Positional arguments only:
        # CPython 3.12.0-3.12.3 corrupts its heap when a subinterpreter is the first to pass
        # a keyword to a _pickle function (docs/python.md, "Known issues").
        blob = b"P" + pickle.dumps((target, args), 5)
    # The worker re-runs the main script only for calls that refer to __main__ (a pickled
    # or native reference names it; a false alarm just costs the re-run).
    refers_to_main = b"__main__" in blob or b"__mp_main__" in blob
    main_spec = _main_spec() if refers_to_main else {}
    if main_spec:
        # Objects of the worker's re-run main script come back as __mp_main__.X: here that
        # is __main__.X, as multiprocessing arranges in its parent.
        sys.modules.setdefault("__mp_main__", sys.modules["__main__"])
    worker = _xchan._spawn([p for p in sys.path if isinstance(p, str)], _xchan._encode(main_spec), blob,
                           _describe(fn), bool(daemon))
    # A Queue travels by id and exists while some copy of it does: the caller's copy may be
    # the last, so spawn() returns once the worker holds its own.
    holds_queue = b"xchan._queue" in blob
    if (main_spec or holds_queue) and not worker._wait_started():
        # Setting up the call failed there (re-running the main script, a module it imports
        # cannot load in a subinterpreter, say): raise that here, from spawn().
        worker.join()
    return worker


# True while this worker re-runs the parent's main script: a spawn() then means the script
# spawns at import time, without the `if __name__ == "__main__":` guard.
_importing_main = False


def _install_main(spec):
    global _importing_main
    if "path" not in spec and "module" not in spec:
        return
    import runpy

    _importing_main = True
    try:
        if "path" in spec:
            namespace = runpy.run_path(spec["path"], run_name="__mp_main__")
        else:
            namespace = runpy.run_module(spec["module"], run_name="__mp_main__", alter_sys=False)
    except ImportError as e:
        where = spec.get("path") or spec.get("module")
        module = e.name or _refused_module(str(e))
        raise ImportError(
            f"xchan worker: running the main script {where!r} in the worker's subinterpreter failed: {e} "
            f"(the worker needs the main script because the call refers to __main__). Put the worker "
            f"function in a module of its own that does not import {module!r}, or import it inside the "
            f"main script's `if __name__ == '__main__':` block.",
            name=module) from e
    except SystemExit as e:
        # The script exits when run as a worker's main (an optional dependency that cannot
        # load in a subinterpreter, say): the worker's function could never run.
        where = spec.get("path") or spec.get("module")
        raise RuntimeError(
            f"xchan worker: the main script {where!r} exited (SystemExit: {e}) while the worker's "
            f"subinterpreter ran it, before the worker's function could run (the worker needs the main "
            f"script because the call refers to __main__). Put the worker function in a module of its own.") from e
    finally:
        _importing_main = False
    import types

    main = types.ModuleType("__mp_main__")
    main.__dict__.update(namespace)
    sys.modules["__mp_main__"] = sys.modules["__main__"] = main


def _refused_module(message):
    """The module CPython names in "module X does not support loading in subinterpreters"."""
    words = message.split()
    return words[1] if len(words) > 2 and words[0] == "module" else None


def _decode_call(blob):
    if blob[:1] == b"P":
        import pickle

        return pickle.loads(blob[1:])
    target, packed = _xchan._decode(blob)
    if target[0] == "ref":
        fn = _lookup(target[1], target[2])
        if fn is None:
            raise AttributeError(f"xchan worker: no {target[2]!r} in module {target[1]!r} here")
        target = ("call", fn)
    args = tuple(_xchan._attach(*a[1:]) if a[0] == "e" else a[1] for a in packed)
    return target, args


def _failure(exc):
    """(traceback text, the pickled exception or None): how a failure goes to the parent,
    which re-raises the exception itself if it can rebuild it there."""
    import traceback  # only now: importing it adds to every worker's start-up

    text = "".join(traceback.format_exception(exc))
    try:
        import pickle

        data = pickle.dumps(exc, 5)  # positional: see spawn()
    except Exception:
        data = None
    return (text, data)


def prepare(header, blob):
    """Worker side, first step (called by the native thread): sets up the parent's main
    module if needed and decodes the call. Returns (call, None), call taking no arguments,
    or (None, failure)."""
    try:
        _install_main(_xchan._decode(header))
        (kind, fn), args = _decode_call(blob)
    except SystemExit:
        return (lambda: None), None
    except BaseException as e:
        return None, _failure(e)
    if kind == "source":
        code = compile(fn, "<xchan.spawn source>", "exec")
        return (lambda: exec(code, {"__name__": "__xchan_worker__", "args": args})), None
    return (lambda: fn(*args)), None


def call(prepared):
    """Worker side, second step: runs the call. Returns None, or its failure."""
    try:
        prepared()
        return None
    except SystemExit:  # an ordinary end of the worker, as in a thread
        return None
    except BaseException as e:
        return _failure(e)
