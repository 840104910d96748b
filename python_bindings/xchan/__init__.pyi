# The public API of xchan (docs/python.md).
from typing import Any

from ._queue import (
    Queue as Queue,
    QueueEmpty as QueueEmpty,
    QueueError as QueueError,
    QueueFull as QueueFull,
    QueueNotFoundError as QueueNotFoundError,
    create_queue as create_queue,
)
from ._xchan import (
    ChannelClosed as ChannelClosed,
    ChannelEmpty as ChannelEmpty,
    ChannelError as ChannelError,
    ChannelFull as ChannelFull,
    PeerDied as PeerDied,
    Receiver as Receiver,
    Sender as Sender,
    Worker as Worker,
    WorkerError as WorkerError,
    channel as channel,
    max_message_for as max_message_for,
)

__version__: str

__all__ = [
    "__version__", "ChannelClosed", "ChannelEmpty", "ChannelError", "ChannelFull", "PeerDied", "Queue",
    "QueueEmpty", "QueueError", "QueueFull", "QueueNotFoundError", "Receiver", "Sender", "Worker",
    "WorkerError", "channel", "create_queue", "max_message_for", "spawn",
]

def spawn(fn: Any, *args: Any, isolate: str = "interpreter", daemon: bool = False) -> Worker: ...
