"""Management-plane scale: create N size-based replica-3 volumes through the REST
API with C concurrent clients on 3 local peers, then start them all; report
ops/s, p50/p99 latency and the resident memory of gfsd and of each gfs-brickd.

    python bench/scale.py --volumes 1000 --clients 50 --db sqlite|postgresql

Appends to bench/results/scale.txt. Needs root only for --db postgresql (a
throwaway server run as the postgres user, see tests/mgmt/pgserver.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gfs.api import models as m  # noqa: E402
from gfs.api.client import Client  # noqa: E402
from tests.cluster import local_cluster  # noqa: E402
from tests.mgmt.pgserver import PgServer  # noqa: E402


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def timed(n: int, clients: int, fn: Callable[[int], object]) -> tuple[float, list[float]]:
    lat: list[float] = []

    def one(i: int) -> None:
        t0 = time.monotonic()
        fn(i)
        lat.append(time.monotonic() - t0)

    t0 = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(n)))
    return time.monotonic() - t0, sorted(lat)


def pct(lat: list[float], p: float) -> float:
    return lat[min(len(lat) - 1, int(len(lat) * p))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--volumes", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/scale.txt")
    a = ap.parse_args()
    pg = PgServer().start() if a.db == "postgresql" else None
    try:
        url = pg.create_db("scale") if pg else None
        with (
            tempfile.TemporaryDirectory(prefix="gfs-scale-") as tmp,
            local_cluster(Path(tmp), url) as c,
        ):
            local = {}

            def api() -> Client:
                import threading

                t = threading.get_ident()
                if t not in local:
                    local[t] = c.client()
                return local[t]

            spec = lambda i: m.VolumeCreate(name=f"s{i}", replica=3, size="1MiB")  # noqa: E731
            create_s, create_lat = timed(
                a.volumes, a.clients, lambda i: api().volume_create(spec(i))
            )
            start_s, start_lat = timed(a.volumes, a.clients, lambda i: api().volume_start(f"s{i}"))
            t0 = time.monotonic()
            listed = len(api().volumes())
            list_s = time.monotonic() - t0
            assert listed == a.volumes
            assert c.gfsd.proc is not None
            mem = [f"gfsd {rss_mib(c.gfsd.proc.pid):.0f} MiB"] + [
                f"brickd{i} {rss_mib(d.proc.pid):.0f} MiB"
                for i, d in enumerate(c.nodes)
                if d.proc is not None
            ]
        lines = [
            f"== {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())} db={a.db} "
            f"volumes={a.volumes} clients={a.clients} (3 local peers, replica 3, 2 cores)",
            f"create: {a.volumes / create_s:.1f} ops/s, p50 {pct(create_lat, 0.5):.0f} ms, "
            f"p99 {pct(create_lat, 0.99):.0f} ms",
            f"start:  {a.volumes / start_s:.1f} ops/s, p50 {pct(start_lat, 0.5):.0f} ms, "
            f"p99 {pct(start_lat, 0.99):.0f} ms",
            f"list all volumes: {list_s * 1000:.0f} ms",
            "RSS after: " + ", ".join(mem),
        ]
    finally:
        if pg:
            pg.stop()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with open(a.out, "a") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
