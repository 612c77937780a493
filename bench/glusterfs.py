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
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ("glusterd", "gluster", "glusterfsd", "mount.glusterfs")
ENTRIES = re.compile(r"^Number of entries: (\d+|-)\s*$", re.M)
SHD_LOG = Path("/var/log/glusterfs/glustershd.log")
SHD_LINE = re.compile(
    rb"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) \+0000\] I .*"
    rb"(performing|Completed) (?:granular |full )?(data|entry|metadata) selfheal",
    re.M,
)


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def check(self, what: str) -> None:
        if self.left() <= 0:
            raise TimeoutError(f"overall deadline reached while waiting for {what}")


DEADLINE = Deadline(3600)


def wait_for(cond: Callable[[], bool], timeout: float, what: str, poll: float = 0.05) -> float:
    """Poll cond until true; return the monotonic time it first held."""
    end = min(time.monotonic() + timeout, DEADLINE.end)
    while True:
        if cond():
            return time.monotonic()
        if time.monotonic() > end:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


def run(args: list[str], timeout: float = 120, check: bool = True) -> str:
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({p.returncode}): {p.stdout}{p.stderr}")
    return p.stdout


def gluster(*args: str, timeout: float = 120, check: bool = True) -> str:
    return run(["gluster", "--mode=script", *args], timeout=timeout, check=check)


def brick_host() -> str:
    """The CLI refuses 127.0.0.1/localhost as a brick host; this host's name resolves to a
    local address here (it is what glusterd matches against its own addresses)."""
    name = socket.gethostname()
    try:
        socket.gethostbyname(name)
        return name
    except OSError:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent; picks the outgoing address
            return str(s.getsockname()[0])
        finally:
            s.close()


def glusterd_running() -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", 24007), 1):
        return True
    return False


def proc_cmdlines() -> Iterator[tuple[int, str]]:
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                raw = (d / "cmdline").read_bytes()
            except OSError:
                continue
            if raw:
                yield int(d.name), raw.replace(b"\0", b" ").decode(errors="replace")


class Gluster:
    """glusterd + one replica-3 volume + a mount, all in tmp; close() undoes it all."""

    def __init__(self, tmp: Path, vol: str, options: dict[str, str]) -> None:
        self.options = options
        self.tmp = tmp
        self.vol = vol
        self.host = brick_host()
        self.bricks = [tmp / f"b{i}" for i in (1, 2, 3)]
        self.mnt = tmp / "mnt"
        self.glusterd: subprocess.Popen[bytes] | None = None
        self.created = False
        self.mounted = False

    # -- setup ---------------------------------------------------------------------
    def start(self) -> None:
        wd = self.tmp / "glusterd"
        wd.mkdir()
        volfile = self.tmp / "glusterd.vol"
        conf = Path("/etc/glusterfs/glusterd.vol").read_text()
        conf = re.sub(r"option working-directory \S+", f"option working-directory {wd}", conf)
        volfile.write_text(conf)
        self.glusterd = subprocess.Popen(
            ["glusterd", "-N", "-f", str(volfile), "-l", str(self.tmp / "glusterd.log")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def up() -> bool:
            assert self.glusterd is not None
            if self.glusterd.poll() is not None:
                log = (self.tmp / "glusterd.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"glusterd exited ({self.glusterd.returncode}): {log}")
            return "Number of Peers" in gluster("peer", "status", timeout=10, check=False)

        wait_for(up, 30, "glusterd to answer", poll=0.2)
        for b in self.bricks:
            b.mkdir()
        gluster(
            "volume",
            "create",
            self.vol,
            "replica",
            "3",
            *(f"{self.host}:{b}" for b in self.bricks),
            "force",
        )
        self.created = True
        for k, v in self.options.items():
            gluster("volume", "set", self.vol, k, v)
        gluster("volume", "start", self.vol)
        wait_for(lambda: len(self.brick_pids()) == 3, 60, "bricks online", poll=0.2)
        self.mnt.mkdir()
        run(["mount", "-t", "glusterfs", f"127.0.0.1:/{self.vol}", str(self.mnt)], timeout=60)
        self.mounted = True
        wait_for(lambda: os.path.ismount(self.mnt), 30, "the mount")

    # -- state ---------------------------------------------------------------------
    def brick_pids(self) -> dict[int, int]:
        """Brick number (1..3) -> pid of its running glusterfsd."""
        out = gluster("volume", "status", self.vol, "--xml", timeout=60, check=False)
        try:
            root = ET.fromstring(out)
        except ET.ParseError:
            return {}
        pids = {}
        for node in root.iter("node"):
            path, status, pid = node.findtext("path"), node.findtext("status"), node.findtext("pid")
            for i, b in enumerate(self.bricks, 1):
                if path == str(b) and status == "1" and pid and pid.isdigit() and int(pid) > 0:
                    pids[i] = int(pid)
        return pids

    def heal_count(self) -> int | None:
        """Cheap poll: index entries per brick (statistics heal-count); None if unknown."""
        out = gluster("volume", "heal", self.vol, "statistics", "heal-count", check=False)
        n = ENTRIES.findall(out)
        if len(n) != 3 or "-" in n:
            return None
        return sum(int(x) for x in n)

    def healed(self) -> bool:
        """heal info: every brick connected and 0 entries."""
        out = gluster("volume", "heal", self.vol, "info", timeout=300, check=False)
        n = ENTRIES.findall(out)
        return out.count("Status: Connected") == 3 and n == ["0", "0", "0"]

    def wait_healed(self, timeout: float) -> float:
        """Time when heal-count first read 0 and heal info then confirmed 0 everywhere."""
        end = time.monotonic() + timeout
        while True:
            t = wait_for(lambda: self.heal_count() == 0, end - time.monotonic(), "heal", 0.25)
            if self.healed():
                return t
            time.sleep(0.25)

    # -- brick control -------------------------------------------------------------
    def kill_brick(self, i: int) -> None:
        pid = self.brick_pids()[i]
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not Path(f"/proc/{pid}").exists(), 10, "the brick to die")

    def restart_brick(self, i: int) -> None:
        gluster("volume", "start", self.vol, "force")
        wait_for(lambda: i in self.brick_pids(), 60, f"brick {i} online", poll=0.1)

    def trigger_heal(self) -> None:
        # "Launching heal ... has been unsuccessful" happens if the shd is still
        # reconnecting; it heals by itself on reconnect anyway.
        gluster("volume", "heal", self.vol, check=False)

    # -- teardown ------------------------------------------------------------------
    def ours(self) -> list[int]:
        """Processes of this run only: their command lines name our temp folder or volume."""
        keys = (str(self.tmp), f"shd/{self.vol} ", f"/{self.vol} ")
        me = os.getpid()
        return [pid for pid, cmd in proc_cmdlines() if pid != me and any(k in cmd for k in keys)]

    def close(self) -> None:
        errors: list[str] = []

        def attempt(f: Callable[[], object]) -> None:
            try:
                f()
            except Exception as e:
                errors.append(f"{type(e).__name__}: {e}")

        if self.mounted:
            attempt(lambda: run(["umount", str(self.mnt)], timeout=30))
            if os.path.ismount(self.mnt):
                attempt(lambda: run(["umount", "-l", str(self.mnt)], timeout=30))
        if self.created and self.glusterd is not None and self.glusterd.poll() is None:
            attempt(lambda: gluster("volume", "stop", self.vol, "force", timeout=60))
            attempt(lambda: gluster("volume", "delete", self.vol, timeout=60))
        if self.glusterd is not None:
            self.glusterd.terminate()
            try:
                self.glusterd.wait(15)
            except subprocess.TimeoutExpired:
                self.glusterd.kill()
                self.glusterd.wait(15)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            left = self.ours()
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            with contextlib.suppress(TimeoutError):
                wait_for(lambda: not self.ours(), 10, "our gluster processes to exit", 0.2)
        if self.ours():
            errors.append(f"processes left behind: {self.ours()}")
        for p in (
            Path("/var/run/gluster/vols") / self.vol,
            Path("/var/run/gluster/shd") / self.vol,
        ):
            shutil.rmtree(p, ignore_errors=True)
        mangled = str(self.tmp).strip("/").replace("/", "-")
        for log in Path("/var/log/glusterfs/bricks").glob(f"{mangled}-*.log"):
            log.unlink(missing_ok=True)
        for log in Path("/var/log/glusterfs").glob(f"{mangled}-mnt.log"):
            log.unlink(missing_ok=True)
        if errors:
            print("cleanup: " + "; ".join(errors), file=sys.stderr)


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


def on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(f"stopped by signal {signum}")


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
    global DEADLINE
    DEADLINE = Deadline(a.timeout)
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
