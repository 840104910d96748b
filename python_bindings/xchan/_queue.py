"""xchan.Queue: the API of CPython 3.14's concurrent.interpreters.Queue (PEP 734) over an
xchan channel.

Code written for concurrent.interpreters switches by changing its import. A Queue is
shareable: pass it to xchan.spawn, pickle it, or send it over a channel or another queue;
every copy, in any interpreter of the process, is the same queue (equal, same hash, same
id) while some copy of it exists. Differences from 3.14, all deliberate:

- Items are always delivered, also after the interpreter that put them is gone (they live
  in channel memory, not in that interpreter), so `unbounditems` is accepted and has no
  effect; Queue(id) is Queue.from_id(id), since Queue(maxsize) creates a queue.
- Every item is copied, as pickle would copy it (queue.put(obj) never shares obj itself).
- The queue holds at most max_bytes of items (64 MiB unless given): put() waits for room.
"""
import weakref

from . import _xchan

__all__ = ["Queue", "QueueEmpty", "QueueError", "QueueFull", "QueueNotFoundError", "create_queue"]


class QueueError(_xchan.ChannelError):
    """Base class of Queue errors."""


class QueueNotFoundError(QueueError):
    """No queue has that id (every copy of it is gone)."""


class QueueEmpty(QueueError, _xchan.ChannelEmpty):
    """get() found nothing in time (also a queue.Empty)."""


class QueueFull(QueueError, _xchan.ChannelFull):
    """put() found no room in time (also a queue.Full)."""


# Items in flight when maxsize <= 0: the channel's limit on messages, as high as it goes.
_UNBOUNDED = 1 << 40
_DEFAULT_MAX_BYTES = 64 << 20


def _check_maxsize(maxsize):
    if not isinstance(maxsize, int) or isinstance(maxsize, bool):
        raise TypeError(f"maxsize must be an int, not {type(maxsize).__name__}")
    return maxsize


def create_queue(maxsize=-1, *, unbounditems=None, max_bytes=_DEFAULT_MAX_BYTES):
    """A new queue (concurrent.interpreters.create_queue). maxsize <= 0: no limit on the
    number of items (their bytes are still bounded by max_bytes)."""
    return Queue(maxsize, unbounditems=unbounditems, max_bytes=max_bytes)


class Queue:
    """A FIFO queue shared between interpreters (see the module's docstring).

    Queue(maxsize=0): a new queue; maxsize <= 0 means no limit on the number of items.
    """

    __slots__ = ("_tx", "_rx", "_maxsize", "_id", "__weakref__")

    def __init__(self, maxsize=0, *, unbounditems=None, max_bytes=_DEFAULT_MAX_BYTES):
        self._maxsize = _check_maxsize(maxsize)
        self._tx, self._rx = _xchan._queue_channel(maxsize if maxsize > 0 else _UNBOUNDED, max_bytes)
        self._id = self._tx._channel_id
        _known[self._id] = self

    @classmethod
    def from_id(cls, queue_id, maxsize=None):
        """The queue with that id, or QueueNotFoundError. Within one interpreter, the same
        object each time while it exists (as concurrent.interpreters.Queue(id) gives)."""
        known = _known.get(queue_id)
        if known is not None:
            return known
        q = object.__new__(cls)
        try:
            q._tx, q._rx = _xchan._attach_queue(queue_id)
        except _xchan.ChannelClosed:
            raise QueueNotFoundError(f"queue {queue_id} not found") from None
        q._id = queue_id
        q._maxsize = maxsize if maxsize is not None else _maxsize_of(q._tx)
        _known[queue_id] = q
        return q

    def __reduce__(self):
        # By id, like PEP 734's queues: a copy unpickled anywhere in this process (any
        # number of times) is the same queue while some copy of it exists.
        return (type(self).from_id, (self._id, self._maxsize))

    def __repr__(self):
        return f"xchan.Queue.from_id({self._id})"

    def __eq__(self, other):
        return isinstance(other, Queue) and other._id == self._id

    def __hash__(self):
        return hash(self._id)

    @property
    def id(self):
        """The queue's id: the same in every copy of it, in every interpreter."""
        return self._id

    @property
    def maxsize(self):
        return self._maxsize

    def empty(self):
        return self.qsize() == 0

    def full(self):
        return self._maxsize > 0 and self.qsize() >= self._maxsize

    def qsize(self):
        return self._rx.qsize()

    def put(self, obj, block=True, timeout=None, *, unbounditems=None):
        """Add obj, waiting for room (up to timeout seconds) if block; QueueFull otherwise."""
        try:
            if block:
                self._tx.send(obj, timeout)
            else:
                self._tx.send_nowait(obj)
        except _xchan.ChannelFull:
            raise QueueFull("queue is full") from None

    def put_nowait(self, obj, *, unbounditems=None):
        self.put(obj, block=False)

    def get(self, block=True, timeout=None):
        """The oldest item, waiting for one (up to timeout seconds) if block; QueueEmpty
        otherwise."""
        try:
            return self._rx.recv(timeout) if block else self._rx.recv_nowait()
        except _xchan.ChannelEmpty:
            raise QueueEmpty("queue is empty") from None

    def get_nowait(self):
        return self.get(block=False)


# This interpreter's Queue objects by id, so that every copy that arrives here is the one
# object (the module is imported once per interpreter).
_known = weakref.WeakValueDictionary()


def _maxsize_of(end):
    capacity = end.stats()["capacity"]
    return 0 if capacity >= _UNBOUNDED else capacity
