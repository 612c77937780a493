from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import grpc
import pytest
import trio

from gfs.rpc import pool
from gfs.rpc.bridge import call
from gfs.rpc.channel import SERVER_OPTIONS, insecure_channel, parse_address


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:24101", ("127.0.0.1", 24101)), ("[::1]:5", ("::1", 5)), ("host:1", ("host", 1))],
)
def test_parse_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["", "host", ":80", "host:", "host:0", "host:65536", "host:x"])
def test_parse_address_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_address(text)


class Server:
    """A real gRPC server with an echo method and a method that blocks until released."""

    def __init__(self, port: int = 0) -> None:
        self.release = threading.Event()
        self.cancelled = threading.Event()
        self.blocked = threading.Event()

        def block(req: bytes, ctx: Any) -> bytes:
            self.blocked.set()
            ctx.add_callback(self.cancelled.set)
            self.release.wait(30)
            return req

        handler = grpc.method_handlers_generic_handler(
            "t.T",
            {
                "Echo": grpc.unary_unary_rpc_method_handler(lambda req, ctx: req),
                "Block": grpc.unary_unary_rpc_method_handler(block),
            },
        )
        pool = ThreadPoolExecutor(8, thread_name_prefix="server")
        self.server = grpc.server(pool, options=SERVER_OPTIONS)
        self.server.add_generic_rpc_handlers((handler,))
        self.port = self.server.add_insecure_port(f"127.0.0.1:{port}")
        self.server.start()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.release.set()
    s.server.stop(0)


def test_bridge_returns_result(server: Server) -> None:
    with insecure_channel(f"127.0.0.1:{server.port}") as ch:
        echo = ch.unary_unary("/t.T/Echo")

        async def main() -> list[bytes]:
            out: list[bytes] = []
            async with trio.open_nursery() as n:
                for i in range(50):

                    async def one(i: int = i) -> None:
                        out.append(await call(echo, b"x" * i, timeout=10))

                    n.start_soon(one)
            return out

        assert sorted(trio.run(main)) == sorted(b"x" * i for i in range(50))


def test_bridge_deadline_raises_rpc_error(server: Server) -> None:
    with insecure_channel(f"127.0.0.1:{server.port}") as ch:
        block = ch.unary_unary("/t.T/Block")
        with pytest.raises(grpc.RpcError) as e:
            trio.run(call, block, b"", 0.2)
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_bridge_cancel_returns_at_once(server: Server) -> None:
    """Cancelling the waiting trio task returns without waiting for the server; the
    abandoned call ends on its pool thread when the server answers."""
    with insecure_channel(f"127.0.0.1:{server.port}") as ch:
        block = ch.unary_unary("/t.T/Block")
        echo = ch.unary_unary("/t.T/Echo")

        async def main() -> None:
            with trio.move_on_after(0.3) as scope:
                await call(block, b"", 30)
            assert scope.cancelled_caught
            assert not server.release.is_set()  # trio did not wait for the server
            server.release.set()
            assert await call(echo, b"after", 10) == b"after"

        trio.run(main)


def test_bridge_cancellable_call_is_cancelled_at_the_server(server: Server) -> None:
    """With cancellable=True (a lock wait), cancelling the trio task cancels the RPC on
    the server side, so the server can withdraw what the call asked for."""
    with insecure_channel(f"127.0.0.1:{server.port}") as ch:
        block = ch.unary_unary("/t.T/Block")

        async def main() -> None:
            with trio.move_on_after(0.3):
                await call(block, b"", 30, cancellable=True)
            assert await trio.to_thread.run_sync(server.cancelled.wait, 10)

        trio.run(main)


def test_bridge_starts_no_thread_per_call(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """Calls one after another reuse the pool's threads (grpcio's future API started a
    polling thread for each call on an idle channel)."""
    with insecure_channel(f"127.0.0.1:{server.port}") as ch:
        echo = ch.unary_unary("/t.T/Echo")

        async def sequential(n: int) -> None:
            for _ in range(n):
                assert await call(echo, b"x", 10) == b"x"

        trio.run(sequential, 3)  # the pool has its thread
        started: list[str] = []
        real = threading.Thread.start

        def counting(self: threading.Thread) -> None:
            if not self.name.startswith("server"):  # the test's server is in this process
                started.append(self.name)
            real(self)

        monkeypatch.setattr(threading.Thread, "start", counting)
        trio.run(sequential, 30)
        assert started == []


def test_pool_deadline_includes_wait_for_a_thread(server: Server) -> None:
    """A call queued behind a busy pool gets only what is left of its deadline."""
    one = pool._Pool(1)
    with insecure_channel(f"127.0.0.1:{server.port}") as ch:
        block = ch.unary_unary("/t.T/Block")
        echo = ch.unary_unary("/t.T/Echo")
        busy: Future[Any] = Future()
        one.submit_future(busy, block, b"", time.monotonic() + 30, None)
        queued: Future[Any] = Future()
        one.submit_future(queued, echo, b"", time.monotonic() + 0.3, None)
        time.sleep(0.5)  # the queued call's whole deadline passes while it waits
        server.release.set()
        assert busy.result(10) == b""
        with pytest.raises(grpc.RpcError) as e:
            queued.result(10)
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_pool_batch_all_in_flight_at_once(server: Server) -> None:
    """A batch's calls run at the same time (the last in the calling thread): two
    calls that each wait for the other to arrive both complete."""
    arrived = threading.Barrier(2, timeout=10)

    def meet(req: bytes, ctx: Any) -> bytes:
        arrived.wait()
        return req

    server.server.stop(0)
    handler = grpc.method_handlers_generic_handler(
        "t.M", {"Meet": grpc.unary_unary_rpc_method_handler(meet)}
    )
    srv = grpc.server(ThreadPoolExecutor(4), options=SERVER_OPTIONS)
    srv.add_generic_rpc_handlers((handler,))
    port = srv.add_insecure_port("127.0.0.1:0")
    srv.start()
    try:
        with insecure_channel(f"127.0.0.1:{port}") as ch:
            m = ch.unary_unary("/t.M/Meet")
            with pool.batch() as b:
                futs = [b.start(m, b"a", 10), b.start(m, b"b", 10)]
            assert futs[1].done()  # the last one ran here
            assert [f.result(10) for f in futs] == [b"a", b"b"]
    finally:
        srv.stop(0)


def test_pool_call_cancelled_by_channel_close(server: Server) -> None:
    """Closing a channel ends its calls in flight on the pool's threads."""
    ch = insecure_channel(f"127.0.0.1:{server.port}")
    fut = pool.start(ch.unary_unary("/t.T/Block"), b"", 30)
    assert server.blocked.wait(10)
    assert not fut.done()
    ch.close()
    with pytest.raises(grpc.RpcError) as e:
        fut.result(10)
    assert e.value.code() == grpc.StatusCode.CANCELLED


def test_calls_after_server_restart() -> None:
    """A call to a stopped server fails within its deadline, and calls on the same
    channel work again once a server listens on the port again (reconnect backoff
    is at most a second)."""
    first = Server()
    port = first.port
    with insecure_channel(f"127.0.0.1:{port}") as ch:
        echo = ch.unary_unary("/t.T/Echo")
        assert trio.run(call, echo, b"1", 10) == b"1"
        first.server.stop(0).wait()
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as e:
            trio.run(call, echo, b"2", 2)
        assert e.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        assert time.monotonic() - t0 < 10
        second = Server(port)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    assert trio.run(call, echo, b"3", 2) == b"3"
                    break
                except grpc.RpcError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        finally:
            second.server.stop(0)


def test_bridge_unreachable_is_unavailable() -> None:
    from tests.procs import free_port

    with insecure_channel(f"127.0.0.1:{free_port()}") as ch:
        echo = ch.unary_unary("/t.T/Echo")
        with pytest.raises(grpc.RpcError) as e:
            trio.run(call, echo, b"", 5)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
