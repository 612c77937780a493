"""RPCs per FUSE operation on a local replica-3 volume (three gfs-brickd with
`--metrics-listen`, one gfsd, a FUSE mount with the default options, all on this
machine): each operation runs REPEAT times on fresh objects and the bricks' operation
counters (`gfs_brick_operation_duration_seconds_count`, forwards labelled
`Forward/METHOD`) are read before and after, so the table shows, per operation, the
client→primary calls and the primary→member forwards it cost.

    python bench/rpc_count.py [--repeat 20]

Needs root and /dev/fuse. Prints a Markdown table (and JSON with --json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from tests.cluster import Cluster, local_cluster  # noqa: E402
from tests.procs import Mount, free_port, wait_for  # noqa: E402
from tests.replicas import all_in_sync, layout, node_of, start_demo  # noqa: E402

#: Background traffic that is no FUSE operation's cost.
IGNORED = {"Heartbeat", "Session", "Ping", "Statfs"}
DATA = os.urandom(4096)


def scrape(port: int) -> Counter[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out: Counter[str] = Counter()
    for fam in text_string_to_metric_families(text):
        if fam.name != "gfs_brick_operation_duration_seconds":
            continue
        for s in fam.samples:
            if s.name.endswith("_count") and s.labels["op"] not in IGNORED:
                out[s.labels["op"]] += int(s.value)
    return out


def settled(ports: list[int]) -> list[Counter[str]]:
    """The counters once they stop moving: the kernel sends RELEASE after close()
    returned, and some forwards are not awaited."""
    last = [scrape(p) for p in ports]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = [scrape(p) for p in ports]
        if now == last:
            return now
        last = now
    raise RuntimeError("the bricks' counters did not settle")


def scenarios(mnt: Path) -> list[tuple[str, Callable[[int], None], Callable[[int], None]]]:
    """(name, prepare(i), measured(i)): prepare runs before the counters are read."""
    d = mnt / "d"
    fds: dict[int, int] = {}

    def path(kind: str, i: int) -> Path:
        return d / f"{kind}{i}"

    def put(kind: str) -> Callable[[int], None]:
        def prep(i: int) -> None:
            path(kind, i).write_bytes(DATA)

        return prep

    def none(i: int) -> None:
        pass

    def create(i: int) -> None:
        os.close(os.open(path("c", i), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))

    def create_write(i: int) -> None:
        fd = os.open(path("cw", i), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        os.write(fd, DATA)
        os.close(fd)

    def open_rd_close(i: int) -> None:
        os.close(os.open(path("o", i), os.O_RDONLY))

    def open_wr_close(i: int) -> None:
        os.close(os.open(path("ow", i), os.O_WRONLY))

    def read_small(i: int) -> None:
        assert path("r", i).read_bytes() == DATA

    def open_fd(i: int) -> None:
        path("w", i).write_bytes(DATA)
        fds[i] = os.open(path("w", i), os.O_WRONLY)

    def write(i: int) -> None:
        os.pwrite(fds[i], DATA, 0)

    def fsync(i: int) -> None:
        os.fsync(fds[i])

    def close(i: int) -> None:
        os.close(fds.pop(i))

    def stat_cold(i: int) -> None:
        os.stat(path("s", i))

    def unlink(i: int) -> None:
        os.unlink(path("u", i))

    def mkdir(i: int) -> None:
        os.mkdir(path("m", i))

    def rename(i: int) -> None:
        os.rename(path("n", i), path("n2-", i))

    def write_then(i: int) -> None:
        open_fd(i)
        os.pwrite(fds[i], DATA, 0)

    return [
        ("create+close (empty)", none, create),
        ("create+write 4 KiB+close", none, create_write),
        ("open O_RDONLY+close", put("o"), open_rd_close),
        ("open O_WRONLY+close", put("ow"), open_wr_close),
        ("open+read 4 KiB+close", put("r"), read_small),
        ("write 4 KiB (open fd)", open_fd, write),
        ("fsync (after a write)", write_then, fsync),
        ("close (after a write)", write_then, close),
        ("stat (cold)", put("s"), stat_cold),
        ("unlink", put("u"), unlink),
        ("mkdir", none, mkdir),
        ("rename", put("n"), rename),
    ]


def measure(c: Cluster, ports: list[int], mnt: Path, repeat: int) -> list[dict[str, object]]:
    rs = layout(c)
    primary = node_of(c, rs, rs.primary)
    pport = ports[c.nodes.index(primary)]
    others = [p for p, n in zip(ports, c.nodes, strict=True) if n is not primary]
    (mnt / "d").mkdir()
    rows = []
    for name, prep, fn in scenarios(mnt):
        for i in range(repeat):
            prep(i)
        before = settled([pport, *others])
        for i in range(repeat):
            fn(i)
        after = settled([pport, *others])
        calls = after[0] - before[0]
        fwd: Counter[str] = Counter()
        for a, b in zip(after[1:], before[1:], strict=True):
            fwd += a - b
        client = {k: v / repeat for k, v in sorted(calls.items()) if not k.startswith("Forward")}
        forwards = {
            k.removeprefix("Forward/"): v / repeat
            for k, v in sorted(fwd.items())
            if k.startswith("Forward")
        }
        rows.append({"op": name, "client_calls": client, "forwards": forwards})
    return rows


def fmt(d: object) -> str:
    assert isinstance(d, dict)
    total = sum(d.values())
    if not total:
        return "0"
    parts = ", ".join(f"{k} {v:g}" for k, v in d.items())
    return f"{total:g} ({parts})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.repeat < 1:
        ap.error("--repeat must be at least 1")
    ports = [free_port() for _ in range(3)]
    with tempfile.TemporaryDirectory(prefix="gfs-rpc-count-") as t:
        tmp = Path(t)

        def args(i: int) -> list[str]:
            return ["--metrics-listen", f"127.0.0.1:{ports[i]}"]

        with local_cluster(tmp, brickd_args=args) as c:
            with c.client() as api:
                start_demo(api, failure="3")
            wait_for(lambda: all_in_sync(c), 60, "every member in sync")
            opts = f"token-file={c.gfsd.state / 'admin.token'}"
            m = Mount(f"{c.gfsd.address}:/demo", tmp / "mnt", tmp / "mnt.log", opts).start()
            try:
                rows = measure(c, ports, tmp / "mnt", a.repeat)
            finally:
                m.stop()
    if a.json:
        print(json.dumps(rows, indent=1))
    print("| operation | client→primary calls | primary→member forwards (both members) |")
    print("|---|---|---|")
    for r in rows:
        print(f"| {r['op']} | {fmt(r['client_calls'])} | {fmt(r['forwards'])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
