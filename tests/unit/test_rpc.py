from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
import trio

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

    def __init__(self) -> None:
        self.release = threading.Event()
        self.cancelled = threading.Event()

        def block(req: bytes, ctx: Any) -> bytes:
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
        self.server = grpc.server(ThreadPoolExecutor(8), options=SERVER_OPTIONS)
        self.server.add_generic_rpc_handlers((handler,))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
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


def test_bridge_cancel_cancels_rpc(server: Server) -> None:
    """Cancelling the waiting trio task cancels the RPC on the server side."""
    with insecure_channel(f"127.0.0.1:{server.port}") as ch:
        block = ch.unary_unary("/t.T/Block")

        async def main() -> None:
            with trio.move_on_after(0.3):
                await call(block, b"", 30)
            # trio must not wait for the server: the call is cancelled, not awaited
            assert await trio.to_thread.run_sync(server.cancelled.wait, 10)

        trio.run(main)


def test_bridge_unreachable_is_unavailable() -> None:
    from tests.procs import free_port

    with insecure_channel(f"127.0.0.1:{free_port()}") as ch:
        echo = ch.unary_unary("/t.T/Echo")
        with pytest.raises(grpc.RpcError) as e:
            trio.run(call, echo, b"", 5)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
