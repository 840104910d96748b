"""xchan: fast, bounded channels between interpreters with their own GIL.

    tx, rx = xchan.channel(capacity=1024, max_bytes=64 << 20)
    w = xchan.spawn(worker_fn, tx)        # a fresh own-GIL subinterpreter on its own thread
    for item in rx: ...                   # ends when every Sender is closed and drained
    w.join()

See README.md and docs/python.md.
"""
import atexit as _atexit

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
