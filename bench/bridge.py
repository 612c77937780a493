"""Compare two ways of calling gRPC from trio: the future bridge vs a thread pool.

An echo server (sync grpc.server, its own process) returns the payload it gets.
For each payload size and concurrency, `future` uses gfs.rpc.bridge.call,
`held` does the same while one long-lived streaming call stays open on the
channel (grpcio then keeps the channel's polling thread instead of starting one
for a call on an idle channel), and `thread` runs the blocking call in
trio.to_thread with a large limiter.

    python bench/bridge.py [--seconds 3] [--out bench/results/bridge.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import trio

from gfs.rpc.bridge import call
from gfs.rpc.channel import OPTIONS, SERVER_OPTIONS

METHOD = "/bench.Echo/Echo"
HOLD = "/bench.Echo/Hold"


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


async def run(
    mode: str, method: Any, payload: bytes, conc: int, seconds: float
) -> dict[str, float]:
    limiter = trio.CapacityLimiter(max(conc, 40))
    count = 0
    lat: list[float] = []
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal count
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            if mode in ("future", "held"):
                out = await call(method, payload, timeout=30)
            else:
                out = await trio.to_thread.run_sync(
                    lambda: method(payload, timeout=30), limiter=limiter
                )
            assert len(out) == len(payload)
            lat.append(time.perf_counter() - t0)
            count += 1

    t0 = time.monotonic()
    async with trio.open_nursery() as n:
        for _ in range(conc):
            n.start_soon(worker)
    elapsed = time.monotonic() - t0
    lat.sort()
    return {
        "ops_per_s": count / elapsed,
        "mb_per_s": count * len(payload) / elapsed / 1e6,
        "p50_ms": lat[len(lat) // 2] * 1e3,
        "p99_ms": lat[int(len(lat) * 0.99)] * 1e3,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--out", default="bench/results/bridge.json")
    args = ap.parse_args()
    q: Any = multiprocessing.Queue()
    srv = multiprocessing.Process(target=serve, args=(q,), daemon=True)
    srv.start()
    port = q.get(timeout=20)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=OPTIONS)
    method = channel.unary_unary(METHOD)
    results = []
    try:
        for size in (4096, 1 << 20):
            payload = os.urandom(size)
            for conc in (1, 16, 100):
                for mode in ("future", "held", "thread"):
                    held = channel.unary_stream(HOLD)(b"") if mode == "held" else None
                    try:
                        r = trio.run(run, mode, method, payload, conc, args.seconds)
                    finally:
                        if held is not None:
                            held.cancel()
                    row = {"mode": mode, "size": size, "concurrency": conc, **r}
                    results.append(row)
                    print(
                        f"{mode:6} size={size:>7} conc={conc:>3} ops/s={r['ops_per_s']:8.0f} "
                        f"MB/s={r['mb_per_s']:7.1f} p50={r['p50_ms']:6.2f}ms p99={r['p99_ms']:6.2f}ms",
                        flush=True,
                    )
    finally:
        srv.kill()
    with open(args.out, "w") as f:
        json.dump(
            {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "results": results},
            f,
            indent=1,
        )


if __name__ == "__main__":
    main()
