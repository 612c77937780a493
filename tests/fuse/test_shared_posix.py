"""The POSIX that applications sharing a volume rely on, with two mounts of one replica-3
volume: locks that exclude across mounts and go with a mount that dies, fallocate done on
every replica, and SEEK_DATA/SEEK_HOLE (docs/replication.md, "Locks")."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import Cluster
from tests.fuse.test_posix import (
    FALLOC_FL_KEEP_SIZE,
    FALLOC_FL_PUNCH_HOLE,
    FALLOC_FL_ZERO_RANGE,
    LOCK_CONFLICT,
    MiB,
    fallocate,
    opened,
    try_lock_elsewhere,
)
from tests.procs import Mount, wait_for
from tests.replicas import demo_cluster, layout, mount

pytestmark = pytest.mark.fuse

KEEPALIVE = "keepalive=0.5"  # a lost session (and its locks) is dropped after 1.5 s


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One replica-3 volume for the module (each test has its own mounts and files)."""
    with demo_cluster(tmp_path_factory.mktemp("shared")) as c:
        yield c


@contextlib.contextmanager
def two_volume_mounts(c: Cluster, tmp_path: Path) -> Iterator[tuple[Mount, Mount]]:
    a, b = mount(c, tmp_path, "mA"), mount(c, tmp_path, "mB")
    a.options += "," + KEEPALIVE
    b.options += "," + KEEPALIVE
    try:
        a.start()
        b.start()
        yield a, b
    finally:
        b.stop()
        a.stop()


def test_locks_exclude_across_mounts_of_a_replica_volume(demo: Cluster, tmp_path: Path) -> None:
    with two_volume_mounts(demo, tmp_path) as (ma, mb):
        a, b = ma.mountpoint / "excl", mb.mountpoint / "excl"
        a.write_bytes(b"x" * 100)
        with opened(a, os.O_RDWR) as fd:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
            assert try_lock_elsewhere(b, 10, 0) in LOCK_CONFLICT
            assert try_lock_elsewhere(b, 10, 10) == 0
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            assert try_lock_elsewhere(b, kind="flock") in LOCK_CONFLICT
        assert try_lock_elsewhere(b) == 0
        assert try_lock_elsewhere(b, kind="flock") == 0


def test_locks_of_a_killed_mount_are_released(demo: Cluster, tmp_path: Path) -> None:
    with two_volume_mounts(demo, tmp_path) as (ma, mb):
        a, b = ma.mountpoint / "killed", mb.mountpoint / "killed"
        a.write_bytes(b"x")
        fd = os.open(a, os.O_RDWR)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            assert try_lock_elsewhere(b) in LOCK_CONFLICT
            assert ma.proc is not None
            ma.proc.send_signal(signal.SIGKILL)
            ma.proc.wait(10)
            # the bricks drop the dead session's locks once its lease runs out
            wait_for(lambda: try_lock_elsewhere(b) == 0, 30, "the dead mount's lock to go")
            wait_for(lambda: try_lock_elsewhere(b, kind="flock") == 0, 30, "its flock to go")
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)  # the connection of the dead mount is gone


def brick_files(c: Cluster, name: str) -> list[Path]:
    return [Path(br.path) / name for br in layout(c).bricks]


def test_fallocate_on_every_replica(demo: Cluster, tmp_path: Path) -> None:
    with two_volume_mounts(demo, tmp_path) as (ma, mb):
        p = ma.mountpoint / "falloc"
        with opened(p, os.O_CREAT | os.O_RDWR) as fd:
            os.pwrite(fd, b"x" * (64 << 10), 0)
            fallocate(fd, 0, 0, 2 * MiB)
            fallocate(fd, FALLOC_FL_KEEP_SIZE, 2 * MiB, MiB)
            fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 16 << 10)
            fallocate(fd, FALLOC_FL_ZERO_RANGE, 32 << 10, 8 << 10)
            os.fsync(fd)
            want = os.pread(fd, 3 * MiB, 0)
            st = os.fstat(fd)
        assert st.st_size == 2 * MiB
        assert want[: 16 << 10] == bytes(16 << 10)
        assert want[16 << 10 : 32 << 10] == b"x" * (16 << 10)
        assert want[32 << 10 : 40 << 10] == bytes(8 << 10)
        assert want[40 << 10 : 64 << 10] == b"x" * (24 << 10)
        assert (mb.mountpoint / "falloc").read_bytes() == want
        with opened(mb.mountpoint / "falloc", os.O_RDONLY) as fd:
            assert os.lseek(fd, 0, os.SEEK_DATA) == 16 << 10  # the punched hole
        for f in brick_files(demo, "falloc"):
            bst = f.stat()
            assert (bst.st_size, f.read_bytes()) == (st.st_size, want), f
            # the KEEP_SIZE blocks past the end are there too: about 3 MiB less the hole
            assert bst.st_blocks * 512 >= 3 * MiB - (16 << 10), f
            with opened(f, os.O_RDONLY) as fd:
                assert os.lseek(fd, 0, os.SEEK_DATA) == 16 << 10, f


def test_copy_file_range_on_every_replica(demo: Cluster, tmp_path: Path) -> None:
    with two_volume_mounts(demo, tmp_path) as (ma, mb):
        data = os.urandom(5 * MiB + 7)
        (ma.mountpoint / "csrc").write_bytes(data)
        with (
            opened(ma.mountpoint / "csrc", os.O_RDONLY) as src,
            opened(ma.mountpoint / "cdst", os.O_CREAT | os.O_WRONLY) as dst,
        ):
            done = 0
            while done < len(data):
                n = os.copy_file_range(src, dst, len(data) - done, done, done)
                assert n > 0
                done += n
        assert (mb.mountpoint / "cdst").read_bytes() == data
        for f in brick_files(demo, "cdst"):
            assert f.read_bytes() == data, f
