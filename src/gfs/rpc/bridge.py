"""Call gRPC from trio without blocking the trio thread.

A unary call is started with the grpcio future API; its done-callback runs on a
gRPC thread and wakes the waiting trio task through the trio token. No thread is
held per call, and cancelling the trio task cancels the RPC.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar

import grpc
import trio

R = TypeVar("R")

#: gRPC metadata sent with every call made from this task (replication tags: epoch,
#: request id); a context variable so concurrent trio tasks never see each other's.
METADATA: ContextVar[tuple[tuple[str, str], ...]] = ContextVar("gfs_rpc_metadata", default=())


class UnaryMethod(Protocol):
    def future(
        self, request: Any, timeout: float | None = ..., metadata: Any = ...
    ) -> grpc.Future: ...


async def call(method: UnaryMethod, request: Any, timeout: float) -> Any:
    """Run `method(request)` with a deadline; raises grpc.RpcError on transport failure."""
    token = trio.lowlevel.current_trio_token()
    done = trio.Event()
    fut = method.future(request, timeout=timeout, metadata=METADATA.get() or None)

    def wake(_: grpc.Future) -> None:
        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(done.set)

    fut.add_done_callback(wake)
    try:
        await done.wait()
    except BaseException:
        fut.cancel()
        raise
    return fut.result()
