"""Write-behind (client/writebehind.py) on real mounts of a replica-3 volume: what it
must keep of POSIX and of durability (docs/replication.md, "Close: what it guarantees")."""

from __future__ import annotations

import errno
import os
import random
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import Cluster
from tests.procs import Mount, wait_for
from tests.replicas import all_in_sync, demo_cluster, layout, mount, node_of

pytestmark = pytest.mark.fuse
KiB = 1024


def wb_mount(c: Cluster, tmp_path: Path, name: str = "mnt") -> Mount:
    m = mount(c, tmp_path, name)
    m.options += ",write-behind=on"
    return m.start()


@pytest.fixture
def mnt(demo: Cluster, tmp_path: Path) -> Iterator[Path]:
    m = wb_mount(demo, tmp_path)
    try:
        yield m.mountpoint
    finally:
        m.stop()


def scattered(seed: int, count: int, span: int) -> tuple[list[tuple[int, bytes]], bytes]:
    """`count` 4 KiB writes at random 4 KiB offsets below `span`, and the file they make."""
    rnd = random.Random(seed)
    image = bytearray(span)
    writes = []
    for _ in range(count):
        off = rnd.randrange(span // (4 * KiB)) * 4 * KiB
        data = rnd.randbytes(4 * KiB)
        writes.append((off, data))
        image[off : off + len(data)] = data
    end = max(off + 4 * KiB for off, _ in writes)
    return writes, bytes(image[:end])


def test_fsync_makes_buffered_writes_durable_on_every_brick(demo: Cluster, mnt: Path) -> None:
    writes, image = scattered(1, 200, 2 << 20)
    fd = os.open(mnt / "f", os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        for off, data in writes:
            assert os.pwrite(fd, data, off) == len(data)
        os.fsync(fd)
        # Before close: every in-sync brick holds every byte.
        for b in layout(demo).bricks:
            assert b.in_sync
            assert (Path(b.path) / "f").read_bytes() == image, b.name
    finally:
        os.close(fd)


def test_fsync_of_a_read_only_descriptor_sends_the_file(demo: Cluster, mnt: Path) -> None:
    fd = os.open(mnt / "r", os.O_CREAT | os.O_WRONLY, 0o644)
    ro = os.open(mnt / "r", os.O_RDONLY)
    try:
        for i in range(20):
            os.write(fd, bytes([97 + i]) * 100)
        os.fsync(ro)
        want = b"".join(bytes([97 + i]) * 100 for i in range(20))
        for b in layout(demo).bricks:
            assert (Path(b.path) / "r").read_bytes() == want, b.name
    finally:
        os.close(ro)
        os.close(fd)


def test_read_your_writes_and_stat_before_close(mnt: Path) -> None:
    fd = os.open(mnt / "f", os.O_CREAT | os.O_RDWR, 0o644)
    other = os.open(mnt / "f", os.O_RDONLY)
    try:
        before = os.fstat(fd).st_mtime_ns
        for i in range(10):
            os.write(fd, bytes([65 + i]) * 1000)
        assert os.fstat(fd).st_size == 10_000
        st = os.stat(mnt / "f")
        assert st.st_size == 10_000 and st.st_mtime_ns >= before
        assert os.pread(fd, 3000, 0) == b"A" * 1000 + b"B" * 1000 + b"C" * 1000
        os.pwrite(fd, b"zz", 4999)  # an overlapping rewrite
        assert os.pread(other, 10, 4995) == b"EEEEzzFFFF"
        assert os.lseek(fd, 0, os.SEEK_END) == 10_000
        os.ftruncate(fd, 5000)
        assert os.pread(other, 100, 4990) == b"EEEEEEEEEz"
        assert os.fstat(other).st_size == 5000
    finally:
        os.close(other)
        os.close(fd)


def test_another_mount_sees_the_data_after_close(demo: Cluster, mnt: Path, tmp_path: Path) -> None:
    b = wb_mount(demo, tmp_path, "b")
    try:
        writes, image = scattered(2, 300, 1 << 20)
        with open(mnt / "g", "wb", buffering=0) as f:
            for off, data in writes:
                f.seek(off)
                f.write(data)
        assert (b.mountpoint / "g").read_bytes() == image
        # and back: B appends small records, A reads them once B closed
        with open(b.mountpoint / "g", "r+b", buffering=0) as f:
            f.seek(len(image))
            for i in range(50):
                f.write(b"%04d" % i)
        tail = b"".join(b"%04d" % i for i in range(50))
        assert (mnt / "g").read_bytes() == image + tail
    finally:
        b.stop()


def test_enospc_is_reported_at_the_latest_at_close(tmp_path: Path) -> None:
    with demo_cluster(tmp_path, size="1MiB") as c:
        m = wb_mount(c, tmp_path)
        try:
            chunk = b"q" * (16 * KiB)
            written = 0
            with pytest.raises(OSError) as e:  # a write or the close
                fd = os.open(m.mountpoint / "big", os.O_CREAT | os.O_WRONLY, 0o644)
                try:
                    for _ in range(128):  # 2 MiB into a 1 MiB volume
                        written += os.write(fd, chunk)
                finally:
                    os.close(fd)
            assert e.value.errno in (errno.ENOSPC, errno.EDQUOT)
            # The bricks agree, and the volume works once there is room again.
            sizes = {(Path(b.path) / "big").stat().st_size for b in layout(c).bricks}
            assert len(sizes) == 1
            os.unlink(m.mountpoint / "big")
            (m.mountpoint / "small").write_bytes(b"ok")
            assert (m.mountpoint / "small").read_bytes() == b"ok"
        finally:
            m.stop()


def test_failover_with_buffered_data_then_fsync(demo: Cluster, mnt: Path, tmp_path: Path) -> None:
    c = demo
    rs = layout(c)
    writes, image = scattered(3, 100, 1 << 20)
    fd = os.open(mnt / "h", os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        half = len(writes) // 2
        for off, data in writes[:half]:
            os.pwrite(fd, data, off)
        node_of(c, rs, rs.primary).stop(signal.SIGKILL)  # some of it still buffered
        for off, data in writes[half:]:
            os.pwrite(fd, data, off)
        os.fsync(fd)
    finally:
        os.close(fd)
    after = layout(c)
    assert after.primary != rs.primary and after.epoch > rs.epoch
    for b in after.bricks:
        if b.in_sync:
            assert (Path(b.path) / "h").read_bytes() == image, b.name
    other = wb_mount(c, tmp_path, "b")
    try:
        assert (other.mountpoint / "h").read_bytes() == image
    finally:
        other.stop()
    node_of(c, rs, rs.primary).start()
    wait_for(lambda: all_in_sync(c), 90, "the old primary to heal")


def test_write_behind_off_writes_through(demo: Cluster, tmp_path: Path) -> None:
    m = mount(demo, tmp_path)
    m.options += ",write-behind=off"
    m.start()
    try:
        fd = os.open(m.mountpoint / "f", os.O_CREAT | os.O_WRONLY, 0o644)
        try:
            os.write(fd, b"through")
            # acknowledged by every member before write(2) returned
            for b in layout(demo).bricks:
                assert (Path(b.path) / "f").read_bytes() == b"through"
        finally:
            os.close(fd)
    finally:
        m.stop()
