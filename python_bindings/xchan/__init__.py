"""xchan: fast, bounded channels between interpreters with their own GIL.

    tx, rx = xchan.channel(capacity=1024, max_bytes=64 << 20)
    w = xchan.spawn(worker_fn, tx)        # a fresh own-GIL subinterpreter on its own thread
    for item in rx: ...                   # ends when every Sender is closed and drained
    w.join()

See README.md and docs/python.md.
"""
import atexit as _atexit
import os as _os
import sys as _sys

from . import _xchan
from ._xchan import (
    ChannelClosed,
    ChannelEmpty,
    ChannelError,
    PeerDied,
    Receiver,
    Sender,
    Worker,
    WorkerError,
    channel,
    max_message_for,
)
from ._version import __version__
from ._worker import spawn

__all__ = [
    "__version__", "ChannelClosed", "ChannelEmpty", "ChannelError", "ChannelFull", "PeerDied", "Queue",
    "QueueEmpty", "QueueError", "QueueFull", "QueueNotFoundError", "Receiver", "Sender", "Worker",
    "WorkerError", "channel", "create_queue", "max_message_for", "spawn",
]

_LAZY = {"Queue", "QueueEmpty", "QueueError", "QueueFull", "QueueNotFoundError", "create_queue"}


def __getattr__(name):
    # Loaded on first use, so that a worker that needs neither starts faster: the Queue
    # facade, and ChannelFull (its base queue.Full costs an import of queue.py).
    if name in _LAZY:
        from . import _queue

        value = getattr(_queue, name)
    elif name == "ChannelFull":
        value = _xchan.ChannelFull
    else:
        raise AttributeError(f"module 'xchan' has no attribute {name!r}")
    globals()[name] = value
    return value


# At exit this interpreter's ends close (so its workers see disconnection and finish), then
# its workers are joined, like non-daemon threads. Handlers registered after importing
# xchan run before this one and can still use channels.
_atexit.register(_xchan._shutdown)


# A forked child holds copies of this process's ends of shared channels (fork duplicates
# them, as it duplicates descriptors). A multiprocessing child ends with os._exit after its
# own finalizers, never running atexit: close them there too, or its exit would read as a
# process that died holding them (PeerDied for the peers).
class _ForkHook:
    registered = False


_fork_hook = _ForkHook()


def _close_ends_at_multiprocessing_exit(_hook):
    import multiprocessing.util

    multiprocessing.util.Finalize(None, _xchan._shutdown, exitpriority=0)


def _before_fork():
    mp_util = _sys.modules.get("multiprocessing.util")
    if mp_util is not None and not _fork_hook.registered:
        # Once: multiprocessing runs it in each child, after clearing its finalizers.
        mp_util.register_after_fork(_fork_hook, _close_ends_at_multiprocessing_exit)
        _fork_hook.registered = True


_os.register_at_fork(before=_before_fork)
