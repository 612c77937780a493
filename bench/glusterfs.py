"""The failover/heal measurements of bench/failover.py, against GlusterFS replica 3.

Everything runs on this machine: one glusterd (own working directory in a temp folder,
foreground, started and stopped here), a replica-3 volume with three bricks in the temp
folder, a FUSE mount (mount -t glusterfs). Default volume options (network.ping-timeout
42 s, client write-behind on), as a user gets them.

- write stall: a writer appends 4 KiB records (os.write on an O_APPEND fd) through the
  mount; one brick's glusterfsd is killed with SIGKILL; the stall is the longest time
  without an acknowledged write from the kill until 50 more writes succeeded plus 0.5 s.
  The brick is restarted (volume start force) and healed (heal info 0 everywhere) before
  the next kill. AFR has no primary: bricks 1 and 3 are killed in turn, reported apart.
  Each kill writes a fresh file, and the writer stops while the brick heals, so every
  heal is small and the kills are alike.
- heal throughput: brick 3 is killed, LARGE MiB of new files (64 MiB each) or SMALL files
  of 4 KiB are written, the brick is restarted and a heal triggered; the time from the
  restart until heal info shows 0 entries on every brick gives MB/s and files/s.

    python3 bench/glusterfs.py [--kills 20] [--large-mib 1024] [--small 10000]
        [--bricks 1,3] [--set KEY=VALUE ...] [--timeout 3600]

Needs root, /dev/fuse and glusterfs-server + glusterfs-client (installs nothing).
Appends to bench/results/glusterfs.txt.
"""

from __future__ import annotations

import argparse
import calendar
import contextlib
import itertools
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.gluster import (  # noqa: E402
    TOOLS,
    Gluster,
    glusterd_running,
    on_signal,
    run,
    set_deadline,
    wait_for,
)

SHD_LOG = Path("/var/log/glusterfs/glustershd.log")
SHD_LINE = re.compile(
    rb"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) \+0000\] I .*"
    rb"(performing|Completed) (?:granular |full )?(data|entry|metadata) selfheal",
    re.M,
)


class Appender:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.acks: list[float] = []
        self.errors = 0
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
                    self.errors += 1
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)

    def stall_after(self, t: float, settle: float) -> float:
        """Longest gap without an acknowledged write in [t, t + settle]."""
        pts = [t] + [a for a in list(self.acks) if t <= a <= t + settle]
        return max((b - a for a, b in itertools.pairwise(pts)), default=0.0)


def stalls(g: Gluster, brick: int, kills: int) -> tuple[list[float], list[float], int]:
    """Per kill: the stall, and the time from restart to healed; and write errors seen."""
    out, heals, errors = [], [], 0
    d = g.mnt / f"stall-b{brick}"
    d.mkdir()
    for k in range(kills):
        g.wait_healed(300)
        w = Appender(d / f"{k}.log")
        w.thread.start()
        try:
            wait_for(lambda w=w: len(w.acks) > 200, 60, "writes before the kill")
            time.sleep(0.3)
            n = len(w.acks)
            t = time.monotonic()
            g.kill_brick(brick)
            wait_for(lambda n=n, w=w: len(w.acks) > n + 50, 120, "writes after the kill")
            time.sleep(0.5)  # measure the whole stall window, not only its first ack
            out.append(w.stall_after(t, time.monotonic() - t))
        finally:
            w.stop.set()
            w.thread.join(60)
        errors += w.errors
        t0 = time.monotonic()
        g.restart_brick(brick)
        g.trigger_heal()
        heals.append(g.wait_healed(300) - t0)
        print(f"  kill {k + 1}/{kills} brick {brick}: stall {out[-1]:.3f} s", flush=True)
    return out, heals, errors


def brick_bytes(d: Path) -> tuple[int, int]:
    files = [p for p in d.iterdir() if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def shd_span(since: int) -> tuple[float, int, int]:
    """From the self-heal daemon's log after byte offset since: seconds from its first
    'performing ... selfheal' to its last 'Completed ... selfheal', and the numbers of
    completed data and entry heals."""
    try:
        with open(SHD_LOG, "rb") as f:
            f.seek(since)
            data = f.read()
    except OSError:
        return 0.0, 0, 0
    stamps, done = [], {b"data": 0, b"entry": 0, b"metadata": 0}
    for ts, verb, kind in SHD_LINE.findall(data):
        stamps.append(
            calendar.timegm(time.strptime(ts.decode()[:19], "%Y-%m-%d %H:%M:%S"))
            + float("0" + ts.decode()[19:])
        )
        if verb == b"Completed":
            done[kind] += 1
    span = max(stamps) - min(stamps) if stamps else 0.0
    return span, done[b"data"], done[b"entry"]


def heal_run(g: Gluster, what: str, large_mib: int, small: int, brick: int = 3) -> str:
    g.wait_healed(300)
    g.kill_brick(brick)
    d = g.mnt / what
    d.mkdir()
    block = os.urandom(1 << 20)
    tw = time.monotonic()
    if what == "large":
        nfiles, nbytes = large_mib // 64, (large_mib // 64) * 64 << 20
        for i in range(nfiles):
            with open(d / f"f{i}", "wb") as f:
                for _ in range(64):
                    f.write(block)
    else:
        nfiles, nbytes = small, small * 4096
        for i in range(small):
            (d / f"s{i}").write_bytes(block[:4096])
    tw = time.monotonic() - tw
    mark = SHD_LOG.stat().st_size if SHD_LOG.exists() else 0
    t0 = time.monotonic()
    g.restart_brick(brick)
    up = time.monotonic() - t0
    g.trigger_heal()
    wall = g.wait_healed(1800) - t0
    span, ndata, nentry = shd_span(mark)
    shd = (
        f"self-heal daemon log: {ndata} data + {nentry} entry heals, first to last "
        f"{span:.1f} s; brick online {up:.1f} s after restart"
    )
    got = brick_bytes(g.bricks[brick - 1] / what)
    check = "ok" if got == (nfiles, nbytes) else f"MISMATCH brick has {got}"
    if what == "large":
        return (
            f"heal large: {nbytes / 1e6:.0f} MB ({nfiles} files) healed in {wall:.1f} s "
            f"= {nbytes / 1e6 / wall:.0f} MB/s (restart to heal info 0; write took {tw:.1f} s); "
            f"brick {brick} content {check}; {shd}"
        )
    return (
        f"heal small: {nfiles} files healed in {wall:.1f} s = {nfiles / wall:.0f} files/s "
        f"({nbytes / 1e6:.0f} MB; restart to heal info 0; write took {tw:.1f} s); "
        f"brick {brick} content {check}; {shd}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--bricks", default="1,3", help="bricks to kill for the stall, e.g. 1,3")
    ap.add_argument("--large-mib", type=int, default=1024)
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--timeout", type=float, default=3600, help="bound on the whole run (s)")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="volume option to set before start (default: none, GlusterFS defaults)",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/glusterfs.txt")
    a = ap.parse_args()
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        print(
            f"missing {', '.join(missing)}: run apt-get install -y glusterfs-server glusterfs-client",
            file=sys.stderr,
        )
        sys.exit(2)
    if os.geteuid() != 0:
        print("needs root (glusterd, mount)", file=sys.stderr)
        sys.exit(2)
    if glusterd_running():
        print("a glusterd already listens on 127.0.0.1:24007; stop it first", file=sys.stderr)
        sys.exit(2)
    set_deadline(a.timeout)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    signal.signal(signal.SIGALRM, on_signal)
    signal.alarm(int(a.timeout) + 60)  # backstop if a mount call blocks past the deadline
    version = run(["glusterfsd", "--version"]).splitlines()[0]
    bricks = [int(b) for b in a.bricks.split(",") if b]
    options = dict(kv.split("=", 1) for kv in a.set)
    opts = " ".join(f"{k}={v}" for k, v in options.items()) or "default options"
    lines = [
        f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} {version} replica 3 on one host "
        f"(loopback), {opts}; kills={a.kills} per brick {bricks} "
        f"large-mib={a.large_mib} small={a.small} cpus={os.cpu_count()} "
        f"loadavg={os.getloadavg()[0]:.1f}"
    ]
    print(lines[0], flush=True)
    vol = f"gbench{os.getpid()}"
    tmp = Path(tempfile.mkdtemp(prefix="gluster-bench-"))
    g = Gluster(tmp, vol, options)
    try:
        g.start()
        for brick in bricks if a.kills else []:
            s, h, errs = stalls(g, brick, a.kills)
            lines.append(
                f"write stall on brick {brick} kill: p50 {statistics.median(s):.3f} s, "
                f"max {max(s):.3f} s over {len(s)} kills ({errs} failed writes); "
                f"restart to healed p50 {statistics.median(h):.1f} s"
            )
            print(lines[-1], flush=True)
        for what in ("large", "small"):
            if (what == "large" and a.large_mib >= 64) or (what == "small" and a.small):
                lines.append(heal_run(g, what, a.large_mib, a.small))
                print(lines[-1], flush=True)
    except BaseException as e:
        lines.append(f"run failed: {type(e).__name__}: {e}")
        print(lines[-1], file=sys.stderr, flush=True)
        raise
    finally:
        g.close()
        shutil.rmtree(tmp, ignore_errors=True)
        a.out.parent.mkdir(parents=True, exist_ok=True)
        with open(a.out, "a") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
