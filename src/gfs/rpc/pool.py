"""Blocking unary gRPC calls on a few long-lived threads.

grpcio's future API polls a channel with a thread it starts whenever a call begins on
a channel with no other call in flight, so calls made one after another (a FUSE client
serving one request at a time, a primary forwarding each mutation) each pay a thread
start and its hand-offs (docs/performance.md, "RPC cost"). A blocking call polls its
own completion queue in the thread that makes it: run on threads that live as long as
the process, a call costs one hand-off to a waiting thread instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from queue import SimpleQueue
from typing import Any, Protocol

import grpc

#: Threads at most; more calls at once wait for one (their deadline keeps running).
LIMIT = 64


class UnaryMethod(Protocol):
    def __call__(self, request: Any, timeout: float | None = ..., metadata: Any = ...) -> Any: ...


class _Pool:
    def __init__(self, limit: int) -> None:
        self._jobs: SimpleQueue[tuple[Future[Any], UnaryMethod, Any, float, Any]] = SimpleQueue()
        self._mu = threading.Lock()
        self._limit = limit
        self._threads = 0
        self._idle = 0

    def submit_future(
        self, fut: Future[Any], method: UnaryMethod, request: Any, deadline: float, metadata: Any
    ) -> None:
        with self._mu:
            if self._idle:
                self._idle -= 1
            elif self._threads < self._limit:
                self._threads += 1
                # Daemon threads: a call abandoned by a cancelled caller must not keep the
                # process from exiting until its deadline.
                threading.Thread(target=self._work, name="rpc-call", daemon=True).start()
        self._jobs.put((fut, method, request, deadline, metadata))

    def _work(self) -> None:
        while True:
            fut, method, request, deadline, metadata = self._jobs.get()
            _run(fut, method, request, deadline, metadata)
            del fut, method, request, metadata
            with self._mu:
                self._idle += 1


def _run(
    fut: Future[Any], method: UnaryMethod, request: Any, deadline: float, metadata: Any
) -> None:
    if not fut.set_running_or_notify_cancel():
        return
    try:
        # A call that waited for a thread gets only what is left of its deadline.
        left = deadline - time.monotonic()
        if left <= 0:
            raise Expired()
        fut.set_result(method(request, timeout=left, metadata=metadata))
    except BaseException as e:  # handed to whoever waits for the future
        fut.set_exception(e)


class Expired(grpc.RpcError, grpc.Call):  # type: ignore[misc]
    """DEADLINE_EXCEEDED for a call whose deadline passed before a thread was free."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.DEADLINE_EXCEEDED

    def details(self) -> str:
        return "deadline passed while waiting for an RPC thread"

    def initial_metadata(self) -> tuple[()]:
        return ()

    def trailing_metadata(self) -> tuple[()]:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float:
        return 0.0

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Any) -> bool:
        return False


_pool = _Pool(LIMIT)


def start(method: UnaryMethod, request: Any, timeout: float, metadata: Any = None) -> Future[Any]:
    """Start `method(request)` with a deadline on a pool thread; the future's result is
    the reply, or it raises grpc.RpcError. Cancelling the future drops a call not yet
    started; a started one runs to its reply or deadline."""
    fut: Future[Any] = Future()
    _pool.submit_future(fut, method, request, time.monotonic() + timeout, metadata)
    return fut


class Batch:
    """Calls started together: on leaving `batch()` all but the last go to the pool and
    the last runs in the calling thread, which would only wait for them otherwise."""

    def __init__(self) -> None:
        self._calls: list[tuple[Future[Any], UnaryMethod, Any, float, Any]] = []

    def start(
        self, method: UnaryMethod, request: Any, timeout: float, metadata: Any = None
    ) -> Future[Any]:
        fut: Future[Any] = Future()
        self._calls.append((fut, method, request, time.monotonic() + timeout, metadata))
        return fut


@contextmanager
def batch() -> Iterator[Batch]:
    b = Batch()
    yield b
    calls, b._calls = b._calls, []
    for fut, method, request, deadline, metadata in calls[:-1]:
        _pool.submit_future(fut, method, request, deadline, metadata)
    if calls:
        _run(*calls[-1])
