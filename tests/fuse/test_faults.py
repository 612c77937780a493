"""Fault tests with real processes (issue: replication that cannot split-brain).

Two mounts append checksummed records continuously, to files of their own and
interleaved into one shared O_APPEND file under record locks, while a secondary's
brick daemon and then the primary's are killed with SIGKILL and restarted. A
reader on a third mount keeps a history (start, end, value) that is checked for
linearizability. Afterwards every acknowledged record is read back intact from
every mount and the bricks are identical on disk. Further cases: gfsd stopped
during I/O, a member whose disk fills, and a primary killed between applying a
mutation and forwarding it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import logging
import os
import signal
import stat
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from gfs.api import models as m
from tests.cluster import Cluster, local_cluster
from tests.procs import BrickDaemon, wait_for
from tests.replicas import (
    all_in_sync,
    assert_identical,
    demo_cluster,
    layout,
    make_file,
    mount,
    node_of,
)

log = logging.getLogger(__name__)

REC = 64
HEAL_DEADLINE = 120
PROGRESS_DEADLINE = 60
ROOT = b"\0" * 15 + b"\1"


def record(writer: str, seq: int) -> bytes:
    body = f"{writer}:{seq:09d}:".encode().ljust(REC - 9, b".")
    return body + f"{zlib.crc32(body):08x}\n".encode()


def parse(data: bytes) -> list[tuple[str, int]]:
    """Every record of a log; fails on a torn or corrupt one."""
    assert len(data) % REC == 0, f"log of {len(data)} bytes is not whole records"
    out = []
    for i in range(0, len(data), REC):
        rec = data[i : i + REC]
        body, crc = rec[: REC - 9], rec[REC - 9 : REC - 1]
        assert f"{zlib.crc32(body):08x}".encode() == crc, f"corrupt record at {i}: {rec!r}"
        writer, seq, _ = body.decode().split(":", 2)
        out.append((writer, int(seq)))
    return out


@dataclass
class Writer:
    mnt: Path
    name: str
    stop: threading.Event
    own: list[tuple[int, float, float]] = field(default_factory=list)  # (seq, start, end)
    shared: list[int] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)

    def run(self) -> None:
        own = os.open(self.mnt / f"{self.name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        shared = os.open(self.mnt / "shared.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        seq = 0
        try:
            while not self.stop.is_set():
                seq += 1
                rec = record(self.name, seq)
                t0 = time.monotonic()
                try:
                    os.write(own, rec)
                    self.own.append((seq, t0, time.monotonic()))
                    fcntl.lockf(shared, fcntl.LOCK_EX)
                    try:
                        os.write(shared, rec)
                        self.shared.append(seq)
                    finally:
                        fcntl.lockf(shared, fcntl.LOCK_UN)
                except OSError as e:
                    self.errors.append(e.errno or 0)
        finally:
            os.close(own)
            os.close(shared)

    def max_gap(self, since: float) -> float:
        ends = [since] + [e for _, _, e in self.own if e >= since]
        return max((b - a for a, b in itertools.pairwise(ends)), default=0.0)


@dataclass
class Reader:
    """Reads the last record of a writer's log through another mount: (start, end, seq)."""

    path: Path
    stop: threading.Event
    history: list[tuple[float, float, int]] = field(default_factory=list)

    def run(self) -> None:
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                with open(self.path, "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    if size < REC:
                        continue
                    f.seek(size - REC)
                    last = parse(f.read(REC))[0][1]
            except (OSError, AssertionError):
                continue  # an unavailable read is allowed; a stale one is not
            self.history.append((t0, time.monotonic(), last))


def check_linearizable(writes: list[tuple[int, float, float]], reads: list[Any]) -> None:
    """A read that began after a write was acknowledged sees that write or a later one."""
    acked = sorted((end, seq) for seq, _, end in writes)
    best, i = 0, 0
    for start, _, seen in sorted(reads):
        while i < len(acked) and acked[i][0] < start:
            best = max(best, acked[i][1])
            i += 1
        assert seen >= best, f"read at {start:.3f} saw record {seen}, older than acked {best}"


def wait_progress(writers: list[Writer], more: int, what: str) -> None:
    marks = [len(w.own) + more for w in writers]
    wait_for(
        lambda: all(len(w.own) >= k for w, k in zip(writers, marks, strict=True)),
        PROGRESS_DEADLINE,
        what,
    )


def test_writers_survive_kills_of_secondary_and_primary(demo: Cluster, tmp_path: Path) -> None:
    c = demo
    mounts = [mount(c, tmp_path, n).start() for n in ("a", "b", "r")]
    stop = threading.Event()
    writers = [Writer(mounts[0].mountpoint, "wa", stop), Writer(mounts[1].mountpoint, "wb", stop)]
    reader = Reader(mounts[2].mountpoint / "wa.log", stop)
    runs = [w.run for w in writers] + [reader.run]
    threads = [threading.Thread(target=run, daemon=True) for run in runs]
    stalls: dict[str, float] = {}
    try:
        for t in threads:
            t.start()
        wait_progress(writers, 20, "writers to start")
        for role in ("secondary", "primary"):
            rs = layout(c)
            victim = (
                node_of(c, rs, rs.primary)
                if role == "primary"
                else node_of(c, rs, next(b.id for b in rs.bricks if b.id != rs.primary))
            )
            t_kill = time.monotonic()
            victim.stop(signal.SIGKILL)
            wait_progress(writers, 20, f"writes to go on after the {role} was killed")
            stalls[role] = max(w.max_gap(t_kill) for w in writers)
            victim.start()
            wait_for(lambda: all_in_sync(c), HEAL_DEADLINE, f"the {role} to heal")
            wait_progress(writers, 10, f"writes after the {role} healed")
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    log.info("write stalls %s", stalls)
    wait_for(lambda: all_in_sync(c), HEAL_DEADLINE, "every member in sync at the end")
    try:
        for mnt in mounts:
            root = mnt.mountpoint
            for w in writers:
                got = [s for n, s in parse((root / f"{w.name}.log").read_bytes()) if n == w.name]
                acked = [s for s, _, _ in w.own]
                assert set(acked) <= set(got), f"{w.name}: acknowledged records missing"
                assert len(got) == len(set(got)), f"{w.name}: a record was applied twice"
            shared = parse((root / "shared.log").read_bytes())
            for w in writers:
                mine = [s for n, s in shared if n == w.name]
                assert set(w.shared) <= set(mine) and len(mine) == len(set(mine))
        check_linearizable(writers[0].own, reader.history)
        assert len(reader.history) > 10
        assert_identical(c)
    finally:
        for mnt in mounts:
            mnt.stop()


def test_io_goes_on_while_gfsd_is_stopped(demo: Cluster, tmp_path: Path) -> None:
    c = demo
    a = mount(c, tmp_path, "a").start()
    b = mount(c, tmp_path, "b").start()
    assert c.gfsd.proc is not None
    try:
        c.gfsd.proc.send_signal(signal.SIGSTOP)
        for i in range(20):
            (a.mountpoint / f"f{i}").write_text(f"value {i}")
            assert (b.mountpoint / f"f{i}").read_text() == f"value {i}"
        (b.mountpoint / "d").mkdir()
        os.rename(a.mountpoint / "f0", a.mountpoint / "d" / "f0")
        assert sorted(os.listdir(b.mountpoint / "d")) == ["f0"]
    finally:
        c.gfsd.proc.send_signal(signal.SIGCONT)
        b.stop()
        a.stop()
    assert_identical(c)


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_member_with_a_full_disk_leaves_in_sync(tmp_path: Path) -> None:
    with (
        tmpfs(tmp_path / "small", "8m") as small,
        local_cluster(tmp_path, root_of={2: small}) as c,
        c.client() as api,
    ):
        api.volume_create(m.VolumeCreate(name="demo", replica=3, size="6MiB"))
        api.volume_start("demo")
        rs = layout(c)
        full = next(b for b in rs.bricks if b.address == c.nodes[2].address)
        (small / "filler").write_bytes(b"\0" * (6 << 20))  # outside the brick: a full disk
        mnt = mount(c, tmp_path).start()
        try:
            data = os.urandom(3 << 20)
            try:
                (mnt.mountpoint / "big").write_bytes(data)
                written = True
            except OSError as e:
                assert e.errno == errno.ENOSPC  # the primary itself was full
                written = False
            after = layout(c)
            if written:
                # The full member left in_sync before the write was acknowledged.
                assert [b.name for b in after.bricks if not b.in_sync] == [full.name]
                assert (mnt.mountpoint / "big").read_bytes() == data
                for b in after.bricks:
                    if b.in_sync:
                        assert (Path(b.path) / "big").read_bytes() == data
            else:
                assert full.id == rs.primary
        finally:
            mnt.stop()


def _free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def _open_files_under(pid: int, fs: Path) -> list[str]:
    """Regular files on the filesystem of `fs` that process `pid` holds open."""
    dev = os.stat(fs).st_dev
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        link = f"/proc/{pid}/fd/{fd}"
        with contextlib.suppress(OSError):
            st = os.stat(link)
            if stat.S_ISREG(st.st_mode) and st.st_dev == dev:
                out.append(os.readlink(link))
    return out


def test_deleted_file_frees_the_space_of_a_member_that_hit_enospc(tmp_path: Path) -> None:
    """Issue 10, point 6: a member whose disk filled during a write leaves in_sync;
    the file is closed and deleted through the mount and heal brings the member
    back. Its daemon must then hold no fd of the file and its disk must have the
    space back, without a restart."""
    with (
        tmpfs(tmp_path / "small", "16m") as small,
        local_cluster(tmp_path, root_of={2: small}) as c,
        c.client() as api,
    ):
        bricks = [f"{d.address}:{root}/demo" for d, root in zip(c.nodes, c.roots, strict=True)]
        api.volume_create(m.VolumeCreate(name="demo", replica=3, bricks=bricks))
        api.volume_set("demo", {"replica.failure-detection-seconds": "1"})
        api.volume_start("demo")
        rs = layout(c)
        full = next(b for b in rs.bricks if b.address == c.nodes[2].address)
        assert full.id != rs.primary
        (small / "filler").write_bytes(b"\0" * (_free(small) - (4 << 20)))
        free_before = _free(small)
        mnt = mount(c, tmp_path).start()
        try:
            data = os.urandom(8 << 20)
            with open(mnt.mountpoint / "big", "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
                assert [b.name for b in layout(c).bricks if not b.in_sync] == [full.name]
                assert _free(small) < free_before - (2 << 20)  # the member's partial copy
            os.unlink(mnt.mountpoint / "big")
            wait_for(lambda: all_in_sync(c), HEAL_DEADLINE, "the full member to heal")
            assert not (Path(full.path) / "big").exists()
            daemon = c.nodes[2].proc
            assert daemon is not None
            assert _open_files_under(daemon.pid, small) == []
            assert _free(small) >= free_before - (256 << 10)  # the space is back
            (mnt.mountpoint / "small").write_bytes(b"fits again")
            assert_identical(c)
        finally:
            mnt.stop()


def crash_primary(c: Cluster, name: bytes) -> tuple[m.ReplicaSet, m.BrickInfo, BrickDaemon]:
    """Send a create of `name` (request id t:1) to the primary, whose fault injection
    kills it during the call: the layout before, the primary's brick and its daemon."""
    rs = layout(c)
    primary = next(b for b in rs.bricks if b.id == rs.primary)
    old = node_of(c, rs, rs.primary)
    tags = [("gfs-epoch", str(rs.epoch)), ("gfs-req", "t:1")]
    with pytest.raises(grpc.RpcError):  # the daemon dies during the call
        r = make_file(primary.address, primary.name, name, tags)
        raise AssertionError(f"MakeNode answered {r.err}")
    assert old.proc is not None and old.proc.wait(10) == -signal.SIGKILL
    return rs, primary, old


def test_primary_killed_after_forwarding_to_one_member(tmp_path: Path) -> None:
    """The primary makes `half`, forwards it to one member only and dies. That member is
    promoted; before its first mutation it passes the old primary's last forwards on,
    so the member that missed `half` has it once anything is acknowledged, and the
    client's retry (same request id) is answered from the dedup table (I1, I6)."""
    # No repair crawl after the promotion: it would copy `half` too, but seconds later.
    crash = {"GFS_FAULT_CRASH_MID_FORWARD": "MakeNode:half", "GFS_FAULT_SKIP_REPAIR": "1"}
    with demo_cluster(tmp_path, "100MiB", env={0: crash, 1: crash, 2: crash}) as c:
        rs, primary, old = crash_primary(c, b"half")
        got = [b.name for b in rs.bricks if (Path(b.path) / "half").exists()]
        assert len(got) == 2 and primary.name in got, got
        mnt = mount(c, tmp_path).start()
        try:
            (mnt.mountpoint / "after").write_text("acknowledged on the new primary")
            now = layout(c)
            new = next(b for b in now.bricks if b.id == now.primary)
            assert new.name in got  # the member that has it was promoted
            for b in now.bricks:
                if b.in_sync:
                    assert (Path(b.path) / "half").exists(), f"{b.name} is in sync without it"
            retry = [("gfs-epoch", str(now.epoch)), ("gfs-req", "t:1")]
            assert make_file(new.address, new.name, b"half", retry).err == 0
            old.env = {}
            old.start()
            wait_for(lambda: all_in_sync(c), HEAL_DEADLINE, "the old primary to heal")
            assert_identical(c)
        finally:
            mnt.stop()


def test_primary_killed_between_apply_and_forward(tmp_path: Path) -> None:
    """The primary makes `stray` locally and dies before forwarding it. The client's
    retry of an ordinary write fails over; the stray object exists only on the dead
    primary, and heal removes it when that brick comes back (I8)."""
    crash = {"GFS_FAULT_CRASH_BEFORE_FORWARD": "MakeNode:stray"}
    with demo_cluster(tmp_path, "100MiB", env={0: crash, 1: crash, 2: crash}) as c:
        _, primary, old = crash_primary(c, b"stray")
        assert (Path(primary.path) / "stray").exists()
        mnt = mount(c, tmp_path).start()
        try:
            (mnt.mountpoint / "after").write_text("acknowledged on the new primary")
            assert not (mnt.mountpoint / "stray").exists()
            old.env = {}
            old.start()
            wait_for(lambda: all_in_sync(c), HEAL_DEADLINE, "the old primary to heal")
            assert not (Path(primary.path) / "stray").exists()
            assert_identical(c)
        finally:
            mnt.stop()
