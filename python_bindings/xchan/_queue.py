"""xchan.Queue: a facade with the API of PEP 734's concurrent.interpreters.Queue.

Code written for the stdlib queue switches by changing its import. A Queue is shareable:
pass it to xchan.spawn, pickle it, or send it over a channel; every copy is the same queue.
"""
from . import _xchan


class QueueError(_xchan.ChannelError):
    """Base class of Queue errors."""


class QueueEmpty(QueueError, _xchan.ChannelEmpty):
    """get() found nothing in time (also a queue.Empty)."""


class QueueFull(QueueError, _xchan.ChannelFull):
    """put() found no room in time (also a queue.Full)."""


_UNBOUNDED = 1 << 31


class Queue:
    """A FIFO queue shared between interpreters.

    maxsize=0 means no limit on the count of items (memory is still bounded by max_bytes).
    """

    def __init__(self, maxsize=0, *, max_bytes=64 << 20):
        if not isinstance(maxsize, int) or maxsize < 0:
            raise ValueError("maxsize must be an int >= 0")
        self._maxsize = maxsize
        self._tx, self._rx = _xchan.channel(capacity=maxsize or _UNBOUNDED, max_bytes=max_bytes)

    @classmethod
    def _from_ends(cls, tx, rx, maxsize):
        q = cls.__new__(cls)
        q._tx, q._rx, q._maxsize = tx, rx, maxsize
        return q

    def __reduce__(self):
        return (Queue._from_ends, (self._tx, self._rx, self._maxsize))

    @property
    def maxsize(self):
        return self._maxsize

    def put(self, obj, timeout=None, *, block=True):
        try:
            if block:
                self._tx.send(obj, timeout)
            else:
                self._tx.send_nowait(obj)
        except _xchan.ChannelFull:
            raise QueueFull("queue is full") from None

    def put_nowait(self, obj):
        self.put(obj, block=False)

    def get(self, timeout=None, *, block=True):
        try:
            return self._rx.recv(timeout) if block else self._rx.recv_nowait()
        except _xchan.ChannelEmpty:
            raise QueueEmpty("queue is empty") from None

    def get_nowait(self):
        return self.get(block=False)

    def qsize(self):
        return self._rx.qsize()

    def empty(self):
        return self.qsize() == 0

    def full(self):
        return self._maxsize > 0 and self.qsize() >= self._maxsize
