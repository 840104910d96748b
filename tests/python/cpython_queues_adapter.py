"""Stands in for CPython 3.13's test.support.interpreters.queues so that CPython's own queue
tests (test_cpython_queues.py) exercise xchan.Queue: the 3.13 names (create, Queue(id),
syncobj=, unbound=) mapped onto xchan's 3.14-style API. Importable in any interpreter."""
import xchan

QueueError = xchan.QueueError
QueueNotFoundError = xchan.QueueNotFoundError
QueueEmpty = xchan.QueueEmpty
QueueFull = xchan.QueueFull


class ItemInterpreterDestroyed(QueueError):
    """Never raised: xchan delivers items after their interpreter is gone."""


UNBOUND = object()
UNBOUND_ERROR = object()
UNBOUND_REMOVE = object()


class Queue(xchan.Queue):
    __slots__ = ()

    def __new__(cls, id=None, /, *args, **kwargs):
        if id is None or args or kwargs:
            return super().__new__(cls)
        return cls.from_id(id)

    def __init__(self, *args, **kwargs):
        if not args and not kwargs:  # a new queue from create()
            super().__init__()
        elif kwargs.get("_maxsize") is not None:
            super().__init__(kwargs["_maxsize"])
        # Queue(id): already set up by from_id()

    def put(self, obj, timeout=None, *, syncobj=None, unbound=None, block=True):
        super().put(obj, block, timeout)

    def put_nowait(self, obj, *, syncobj=None, unbound=None):
        super().put_nowait(obj)

    def get(self, timeout=None, *, block=True):
        return super().get(block, timeout)


def create(maxsize=0, *, syncobj=False, unbounditems=UNBOUND):
    return Queue(_maxsize=maxsize)


def list_all():
    raise NotImplementedError("xchan keeps no list of queues")
