"""GlusterFS replica 3 on this host, for the benchmarks (bench/glusterfs.py, bench/compare.py).

One glusterd with its own working directory in a temp folder (foreground, started and
stopped here), a replica-3 volume with three bricks in that folder (`force`: they share
one host and one disk), FUSE mounts with mount -t glusterfs. close() undoes all of it and
kills only processes whose command lines name this run's folder or volume.

Needs root, /dev/fuse and glusterfs-server + glusterfs-client.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

TOOLS = ("glusterd", "gluster", "glusterfsd", "mount.glusterfs")
PACKAGES = ("glusterfs-server", "glusterfs-client")
ENTRIES = re.compile(r"^Number of entries: (\d+|-)\s*$", re.M)


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def check(self, what: str) -> None:
        if self.left() <= 0:
            raise TimeoutError(f"overall deadline reached while waiting for {what}")


DEADLINE = Deadline(3600)


def set_deadline(seconds: float) -> None:
    """Bound every wait_for of this run to `seconds` from now."""
    global DEADLINE
    DEADLINE = Deadline(seconds)


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
    """glusterd + one replica-3 volume + mounts (the first at tmp/mnt), all in tmp;
    close() undoes it all."""

    def __init__(self, tmp: Path, vol: str, options: dict[str, str]) -> None:
        self.options = options
        self.tmp = tmp
        self.vol = vol
        self.host = brick_host()
        self.bricks = [tmp / f"b{i}" for i in (1, 2, 3)]
        self.mnt = tmp / "mnt"
        self.glusterd: subprocess.Popen[bytes] | None = None
        self.created = False
        self.mounts: list[Path] = []

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
            start_new_session=True,  # Ctrl-C reaches the benchmark, which then stops it in order
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
        self.mount(self.mnt)

    def mount(self, point: Path) -> Path:
        """A (further) FUSE mount of the volume on `point`."""
        point.mkdir(exist_ok=True)
        if point not in self.mounts:
            self.mounts.append(point)
        run(["mount", "-t", "glusterfs", f"127.0.0.1:/{self.vol}", str(point)], timeout=60)
        wait_for(lambda: os.path.ismount(point), 30, f"the mount on {point}")
        return point

    def unmount(self, point: Path) -> None:
        """Unmount `point` and wait for its glusterfs client process to exit."""
        run(["umount", str(point)], timeout=30)
        key = f" {point}"
        wait_for(
            lambda: not any(cmd.rstrip().endswith(key) for _, cmd in proc_cmdlines()),
            30,
            f"the client of {point} to exit",
            poll=0.05,
        )

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

        for point in reversed(self.mounts):
            for args in (["umount", str(point)], ["umount", "-l", str(point)]):
                if os.path.ismount(point):
                    attempt(functools.partial(run, args, 30))
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
        for log in Path("/var/log/glusterfs").glob(f"{mangled}-*.log"):
            log.unlink(missing_ok=True)
        if errors:
            print("cleanup: " + "; ".join(errors), file=sys.stderr)


def on_signal(signum: int, frame: FrameType | None) -> None:
    """SIGTERM/SIGHUP/SIGALRM as an exception, so that finally blocks clean up."""
    raise SystemExit(f"stopped by signal {signum}")
