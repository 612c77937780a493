"""Ways of making a unary gRPC call, from trio (the client) and from a plain thread
fanning out to two servers (the primary's forwards).

Echo servers (sync grpc.server, each its own process) return the payload they get.
Trio-side modes, per payload size and concurrency:

- `future`: the grpcio future API, its done-callback waking trio (grpcio starts a
  channel polling thread for a call on an otherwise idle channel);
- `held`: the same while one long-lived streaming call stays open on the channel (the
  polling thread then lives on; the server holds a worker thread for it);
- `thread`: the blocking call in trio.to_thread;
- `pool`: gfs.rpc.bridge.call, the blocking call on gfs.rpc.pool's long-lived threads;
- `aio`: grpc.aio on an asyncio loop in its own thread.

Fan-out modes (`--fanout`): N caller threads, each sending one request to each of two
servers and waiting for both: `f-future`, `f-held`, `f-pool` (gfs.rpc.pool.start,
the shape of the primary's forwards) and `f-aio`.

    python bench/bridge.py [--seconds 3] [--modes ...] [--out bench/results/bridge.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import trio

from gfs.rpc import pool
from gfs.rpc.bridge import call
from gfs.rpc.channel import OPTIONS, SERVER_OPTIONS

METHOD = "/bench.Echo/Echo"
HOLD = "/bench.Echo/Hold"
TRIO_MODES = ("future", "held", "thread", "pool", "aio")
FANOUT_MODES = ("f-future", "f-held", "f-pool", "f-pool1", "f-aio")


def hold(req: bytes, ctx: Any) -> Any:
    """A server-streaming call that sends nothing until the client cancels it."""
    done = threading.Event()
    ctx.add_callback(done.set)
    done.wait()
    return iter(())


def serve(port_q: Any) -> None:
    handler = grpc.method_handlers_generic_handler(
        "bench.Echo",
        {
            "Echo": grpc.unary_unary_rpc_method_handler(lambda req, ctx: req),
            "Hold": grpc.unary_stream_rpc_method_handler(hold),
        },
    )
    server = grpc.server(ThreadPoolExecutor(32), options=SERVER_OPTIONS)
    server.add_generic_rpc_handlers((handler,))
    port_q.put(server.add_insecure_port("127.0.0.1:0"))
    server.start()
    server.wait_for_termination()


class AioLoop:
    """An asyncio loop in its own thread with grpc.aio channels to the given ports."""

    def __init__(self, ports: list[int]) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def open_all() -> list[Any]:
            return [grpc.aio.insecure_channel(f"127.0.0.1:{p}", options=OPTIONS) for p in ports]

        self.channels = asyncio.run_coroutine_threadsafe(open_all(), self.loop).result()
        self.methods = [ch.unary_unary(METHOD) for ch in self.channels]

    def close(self) -> None:
        async def close_all() -> None:
            for ch in self.channels:
                await ch.close()

        asyncio.run_coroutine_threadsafe(close_all(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()


async def aio_call(aio: AioLoop, payload: bytes) -> bytes:
    token = trio.lowlevel.current_trio_token()
    done = trio.Event()
    box: list[Any] = []

    def start() -> None:
        task = asyncio.ensure_future(aio.methods[0](payload, timeout=30), loop=aio.loop)

        def finished(t: asyncio.Task[Any]) -> None:
            box.append(t)
            token.run_sync_soon(done.set)

        task.add_done_callback(finished)

    aio.loop.call_soon_threadsafe(start)
    await done.wait()
    out: bytes = box[0].result()
    return out


async def run(
    mode: str, method: Any, aio: AioLoop, payload: bytes, conc: int, seconds: float
) -> dict[str, float]:
    limiter = trio.CapacityLimiter(max(conc, 40))
    count = 0
    lat: list[float] = []
    deadline = time.monotonic() + seconds

    async def one() -> bytes:
        if mode in ("future", "held"):
            # grpcio's future API: gfs's bridge before gfs.rpc.pool
            out: bytes = await call(method, payload, 30, cancellable=True)
            return out
        if mode == "pool":
            out = await call(method, payload, timeout=30)
            return out
        if mode == "aio":
            return await aio_call(aio, payload)
        out = await trio.to_thread.run_sync(lambda: method(payload, timeout=30), limiter=limiter)
        return out

    async def worker() -> None:
        nonlocal count
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            out = await one()
            assert len(out) == len(payload)
            lat.append(time.perf_counter() - t0)
            count += 1

    t0 = time.monotonic()
    async with trio.open_nursery() as n:
        for _ in range(conc):
            n.start_soon(worker)
    return summary(count, lat, len(payload), time.monotonic() - t0)


def fanout(
    mode: str, methods: list[Any], aio: AioLoop, payload: bytes, conc: int, seconds: float
) -> dict[str, float]:
    count = 0
    lat: list[float] = []
    mu = threading.Lock()
    deadline = time.monotonic() + seconds

    def aio_both() -> list[bytes]:
        async def both() -> list[bytes]:
            return list(await asyncio.gather(*(m(payload, timeout=30) for m in aio.methods)))

        return asyncio.run_coroutine_threadsafe(both(), aio.loop).result()

    def one() -> list[bytes]:
        if mode in ("f-future", "f-held"):
            futs = [m.future(payload, timeout=30) for m in methods]
            return [f.result() for f in futs]
        if mode == "f-pool":
            futs = [pool.start(m, payload, 30) for m in methods]
            return [f.result() for f in futs]
        if mode == "f-pool1":  # the last call in the calling thread
            futs = [pool.start(m, payload, 30) for m in methods[:-1]]
            last = methods[-1](payload, timeout=30)
            return [*(f.result() for f in futs), last]
        return aio_both()

    def worker() -> None:
        nonlocal count
        mine: list[float] = []
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            outs = one()
            assert all(len(o) == len(payload) for o in outs)
            mine.append(time.perf_counter() - t0)
        with mu:
            lat.extend(mine)
            count += len(mine)

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(conc)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return summary(count, lat, len(payload), time.monotonic() - t0)


def summary(count: int, lat: list[float], size: int, elapsed: float) -> dict[str, float]:
    lat.sort()
    return {
        "ops_per_s": count / elapsed,
        "mb_per_s": count * size / elapsed / 1e6,
        "p50_ms": lat[len(lat) // 2] * 1e3,
        "p99_ms": lat[int(len(lat) * 0.99)] * 1e3,
    }


@contextlib.contextmanager
def holding(channels: list[grpc.Channel], on: bool) -> Iterator[None]:
    held = [ch.unary_stream(HOLD)(b"") for ch in channels] if on else []
    try:
        yield
    finally:
        for h in held:
            h.cancel()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--modes", default=",".join(TRIO_MODES + FANOUT_MODES))
    ap.add_argument("--sizes", default="4096,1048576")
    ap.add_argument("--concurrency", default="1,16,100")
    ap.add_argument("--out", default="bench/results/bridge.json")
    args = ap.parse_args()
    modes = args.modes.split(",")
    unknown = set(modes) - set(TRIO_MODES + FANOUT_MODES)
    if unknown:
        ap.error(f"unknown modes: {', '.join(sorted(unknown))}")
    procs, ports = [], []
    for _ in range(2):
        q: Any = multiprocessing.Queue()
        srv = multiprocessing.Process(target=serve, args=(q,), daemon=True)
        srv.start()
        procs.append(srv)
        ports.append(q.get(timeout=20))
    channels = [grpc.insecure_channel(f"127.0.0.1:{p}", options=OPTIONS) for p in ports]
    methods = [ch.unary_unary(METHOD) for ch in channels]
    aio = AioLoop(ports)
    results = []
    try:
        for size in map(int, args.sizes.split(",")):
            payload = os.urandom(size)
            for conc in map(int, args.concurrency.split(",")):
                for mode in modes:
                    with holding(channels, mode in ("held", "f-held")):
                        if mode in TRIO_MODES:
                            r = trio.run(run, mode, methods[0], aio, payload, conc, args.seconds)
                        else:
                            r = fanout(mode, methods, aio, payload, conc, args.seconds)
                    row = {"mode": mode, "size": size, "concurrency": conc, **r}
                    results.append(row)
                    print(
                        f"{mode:8} size={size:>7} conc={conc:>3} ops/s={r['ops_per_s']:8.0f} "
                        f"MB/s={r['mb_per_s']:7.1f} p50={r['p50_ms']:6.2f}ms p99={r['p99_ms']:6.2f}ms",
                        flush=True,
                    )
    finally:
        aio.close()
        for srv in procs:
            srv.kill()
    with open(args.out, "w") as f:
        json.dump(
            {
                "date": time.strftime("%Y-%m-%d %H:%M"),
                "cpus": os.cpu_count(),
                "load": os.getloadavg(),
                "results": results,
            },
            f,
            indent=1,
        )


if __name__ == "__main__":
    main()
