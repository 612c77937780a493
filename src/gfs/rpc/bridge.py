"""Call gRPC from trio without blocking the trio thread.

A unary call runs as a blocking call on one of gfs.rpc.pool's long-lived threads; its
completion wakes the waiting trio task through the trio token. Cancelling the trio task
returns at once: a call not yet started is dropped, a started one is abandoned and runs
to its reply or deadline on its pool thread (the server is not told). A call whose
cancellation the server must see (a lock wait that a signal interrupts) is made with
`cancellable=True`: grpcio's future API, whose cancel reaches the server, at the price
of the thread grpcio may start for it.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import Future
from contextvars import ContextVar
from typing import Any, cast

import grpc
import trio

from gfs.rpc.pool import UnaryMethod, start

#: gRPC metadata sent with every call made from this task (replication tags: epoch,
#: request id); a context variable so concurrent trio tasks never see each other's.
METADATA: ContextVar[tuple[tuple[str, str], ...]] = ContextVar("gfs_rpc_metadata", default=())


async def call(method: UnaryMethod, request: Any, timeout: float, cancellable: bool = False) -> Any:
    """Run `method(request)` with a deadline; raises grpc.RpcError on transport failure."""
    token = trio.lowlevel.current_trio_token()
    done = trio.Event()
    fut: Future[Any] | grpc.Future
    if cancellable:
        fut = cast(Any, method).future(request, timeout=timeout, metadata=METADATA.get() or None)
    else:
        fut = start(method, request, timeout, METADATA.get() or None)

    def wake(_: Any) -> None:
        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(done.set)

    fut.add_done_callback(wake)
    try:
        await done.wait()
    except BaseException:
        fut.cancel()
        raise
    return fut.result()
