"""Failover and heal on a local replica-3 volume (three gfs-brickd, one gfsd, a FUSE
mount, all on this machine):

- write stall: a writer appends 4 KiB records through the mount while the primary's
  (or a secondary's) brick daemon is killed with SIGKILL; the stall is the longest
  time without an acknowledged write after the kill. The member is restarted and
  healed before the next kill.
- heal throughput: a secondary is killed, LARGE MiB of new files (or SMALL files of
  4 KiB) are written, the member is restarted; the crawl's own time (from the
  primary's log) gives MB/s and files/s, and the wall time from restart to in_sync
  is reported beside it.

    python bench/failover.py [--kills 20] [--failure-seconds 3] [--large-mib 1024] [--small 10000]

Needs root and /dev/fuse. Appends to bench/results/failover.txt.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gfs.api import models as m  # noqa: E402
from tests.cluster import Cluster, local_cluster  # noqa: E402
from tests.procs import BrickDaemon, wait_for  # noqa: E402
from tests.replicas import all_in_sync, layout, mount, node_of  # noqa: E402

CRAWL = re.compile(rb"heal crawl .* files=(\d+) bytes=(\d+) .* seconds=([\d.]+)")


class Appender:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.acks: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        block = b"r" * 4096
        try:
            while not self.stop.is_set():
                try:
                    os.write(fd, block)
                    self.acks.append(time.monotonic())
                except OSError:
                    pass
        finally:
            os.close(fd)

    def stall_after(self, t: float, settle: float) -> float:
        """Longest gap without an acknowledged write in [t, t + settle]."""
        pts = [t] + [a for a in list(self.acks) if t <= a <= t + settle]
        return max((b - a for a, b in itertools.pairwise(pts)), default=0.0)


def victim(c: Cluster, role: str) -> BrickDaemon:
    rs = layout(c)
    if role == "primary":
        return node_of(c, rs, rs.primary)
    return node_of(c, rs, next(b.id for b in rs.bricks if b.id != rs.primary))


def stalls(c: Cluster, w: Appender, role: str, kills: int) -> list[float]:
    out = []
    for _ in range(kills):
        wait_for(lambda: all_in_sync(c), 300, "all members in sync")
        v = victim(c, role)
        n = len(w.acks)
        t = time.monotonic()
        v.stop(signal.SIGKILL)
        wait_for(lambda n=n: len(w.acks) > n + 50, 120, "writes after the kill")
        time.sleep(0.5)  # measure the whole stall window, not only its first ack
        out.append(w.stall_after(t, time.monotonic() - t))
        v.start()
    return out


def crawl_stats(log: Path, since: int) -> tuple[int, int, float]:
    data = log.read_bytes()[since:]
    hits = CRAWL.findall(data)
    files = sum(int(f) for f, _, _ in hits)
    nbytes = sum(int(b) for _, b, _ in hits)
    secs = sum(float(s) for _, _, s in hits)
    return files, nbytes, secs


def heal_run(c: Cluster, tmp: Path, root: Path, what: str, large_mib: int, small: int) -> str:
    wait_for(lambda: all_in_sync(c), 300, "all members in sync")
    rs = layout(c)
    primary = node_of(c, rs, rs.primary)
    v = victim(c, "secondary")
    v.stop(signal.SIGKILL)
    d = root / what
    d.mkdir()
    block = os.urandom(1 << 20)
    if what == "large":
        for i in range(large_mib // 64):
            with open(d / f"f{i}", "wb") as f:
                for _ in range(64):
                    f.write(block)
    else:
        for i in range(small):
            (d / f"s{i}").write_bytes(block[:4096])
    mark = primary.log.stat().st_size
    t0 = time.monotonic()
    v.start()
    wait_for(lambda: all_in_sync(c), 1800, "the member to heal")
    wall = time.monotonic() - t0
    files, nbytes, secs = crawl_stats(primary.log, mark)
    if what == "large":
        return (
            f"heal large: {nbytes / 1e6:.0f} MB copied in {secs:.1f} s crawl "
            f"= {nbytes / 1e6 / max(secs, 1e-9):.0f} MB/s; restart to in_sync {wall:.1f} s"
        )
    return (
        f"heal small: {files} files in {secs:.1f} s crawl = {files / max(secs, 1e-9):.0f} files/s "
        f"({nbytes / 1e6:.0f} MB); restart to in_sync {wall:.1f} s"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--failure-seconds", type=float, default=3.0)
    ap.add_argument("--large-mib", type=int, default=1024)
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/failover.txt")
    a = ap.parse_args()
    lines = [
        f"# {time.strftime('%Y-%m-%d %H:%M')} kills={a.kills} "
        f"failure-detection-seconds={a.failure_seconds} cpus={os.cpu_count()}"
    ]
    with tempfile.TemporaryDirectory(prefix="gfs-bench-") as tmpdir:
        tmp = Path(tmpdir)
        with local_cluster(tmp) as c, c.client() as api:
            api.volume_create(m.VolumeCreate(name="demo", replica=3, size="20GiB"))
            api.volume_set("demo", {"replica.failure-detection-seconds": str(a.failure_seconds)})
            api.volume_start("demo")
            mnt = mount(c, tmp).start()
            try:
                if a.kills:
                    w = Appender(mnt.mountpoint / "stall.log")
                    w.thread.start()
                    try:
                        for role in ("secondary", "primary"):
                            s = stalls(c, w, role, a.kills)
                            lines.append(
                                f"write stall on {role} kill: p50 {statistics.median(s):.2f} s, "
                                f"max {max(s):.2f} s over {len(s)} kills"
                            )
                            print(lines[-1], flush=True)
                    finally:
                        w.stop.set()
                        w.thread.join(30)
                for what in ("large", "small"):
                    if (what == "large" and a.large_mib) or (what == "small" and a.small):
                        lines.append(heal_run(c, tmp, mnt.mountpoint, what, a.large_mib, a.small))
                        print(lines[-1], flush=True)
            finally:
                mnt.stop()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with open(a.out, "a") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
