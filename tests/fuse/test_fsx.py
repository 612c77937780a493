"""fsx (tests/fsx.py) on a local folder, the control, and on a replica-3 gfs mount, whose
file must then be the model's bytes on every brick of the replica set.

GFS_FSX_OPS sets the number of operations (default DEFAULT_OPS), GFS_FSX_SEED the seed
(default random; printed, and named in any failure). `GFS_FSX_OPS=100000` is the long
run (docs/architecture.md, "Testing with fsx")."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import Cluster
from tests.fsx import FALLOC_OPS, Fsx, FsxFailure
from tests.procs import BrickDaemon, Mount
from tests.replicas import demo_cluster, layout, mount

DEFAULT_OPS = 3000  # the gfs case: about 85 s with its cluster on a loaded 2-core machine
OPS = int(os.environ.get("GFS_FSX_OPS", DEFAULT_OPS))
SEED = int(os.environ.get("GFS_FSX_SEED") or random.randrange(1 << 32))
# the gfs case ran at 55 ops/s on a loaded 2-core machine (the local one is faster): room for that
TIMEOUT = 120 + OPS // 20

# fallocate modes gfs documents (docs/architecture.md, "The FUSE client"); the others are
# the brick filesystem's and refused by gfs with EOPNOTSUPP
GFS_FALLOC = {"falloc", "falloc_keep", "punch_hole", "zero_range", "zero_range_keep"}


@pytest.fixture
def volume(tmp_path: Path) -> Iterator[tuple[Cluster, Path]]:
    """A replica-3 volume and a mount of it (kernel attribute caching off)."""
    with demo_cluster(tmp_path) as c:
        m: Mount = mount(c, tmp_path)
        m.start()
        try:
            yield c, m.mountpoint
        finally:
            m.stop()


def run(path: Path) -> Fsx:
    print(f"fsx seed {SEED}, {OPS} ops on {path} (GFS_FSX_SEED={SEED} replays it)")
    fsx = Fsx(path, SEED, OPS)
    stats = fsx.run()
    print(f"{stats.ops} ops in {stats.seconds:.1f} s: {stats.ops_per_second:.0f} ops/s")
    for name, why in stats.disabled.items():
        print(f"disabled: {name} ({why})")
    assert stats.ops == OPS
    return fsx


@pytest.mark.timeout(TIMEOUT)
def test_fsx_local(tmp_path: Path) -> None:
    fsx = run(tmp_path / "fsx")
    assert (tmp_path / "fsx").read_bytes() == fsx.model


@pytest.mark.fuse
@pytest.mark.timeout(TIMEOUT)
def test_fsx_replica3(volume: tuple[Cluster, Path]) -> None:
    c, mnt = volume
    fsx = run(mnt / "fsx")
    assert GFS_FALLOC.isdisjoint(fsx.stats.disabled), fsx.stats.disabled
    assert set(fsx.stats.disabled) <= set(FALLOC_OPS) - GFS_FALLOC
    bricks = layout(c).bricks
    assert len(bricks) == 3
    for b in bricks:
        on_brick = (Path(b.path) / "fsx").read_bytes()
        assert on_brick == fsx.model, f"brick {b.id} at {b.path} (seed {SEED})"
    assert (mnt / "fsx").read_bytes() == fsx.model


class Corrupting(Fsx):
    """Fsx with one byte changed behind its back, after operation `at`."""

    at = 50

    def verify(self) -> None:
        if self.opno == self.at:
            self.model.extend(b"x" * 100)  # make sure there is a byte to change
            os.pwrite(self.fd, b"x" * 100, len(self.model) - 100)
            os.pwrite(self.fd, b"\xa5", len(self.model) - 1)
        super().verify()


@pytest.mark.timeout(60)
def test_fsx_names_seed_operation_and_offset(tmp_path: Path) -> None:
    with pytest.raises(FsxFailure) as ei:
        Corrupting(tmp_path / "f", 7, 100).run()
    msg = str(ei.value)
    assert "seed 7, operation #50" in msg
    assert "first difference at offset" in msg
    assert "--seed 7" in msg
    assert msg.count("\n    #") == 20  # the last 20 operations


@pytest.mark.timeout(60)
def test_fsx_command_line(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "tests.fsx", str(tmp_path / "f"), "--seed", "3", "--ops", "300"],
        capture_output=True,
        text=True,
        timeout=50,
        cwd=Path(__file__).parents[2],
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("fsx seed 3\n")
    assert "ok: 300 ops" in r.stdout


@pytest.fixture
def writeback_mnt(tmp_path: Path) -> Iterator[Path]:
    """A mount of one brick with the kernel's writeback cache on."""
    d = BrickDaemon({"b0": tmp_path / "b0"}, tmp_path / "brickd.log").start()
    m = Mount(f"{d.address}/b0", tmp_path / "mnt", tmp_path / "mount.log", "writeback=on")
    try:
        m.start()
        yield m.mountpoint
    finally:
        m.stop()
        d.stop()


@pytest.mark.fuse
@pytest.mark.timeout(60)
def test_seek_data_sees_writes_still_in_the_writeback_cache(writeback_mnt: Path) -> None:
    """Found by fsx on a writeback=on mount: the brick knows nothing of dirty pages, so
    SEEK_DATA/SEEK_HOLE answered from its file skipped data not yet written back."""
    fd = os.open(writeback_mnt / "f", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        os.ftruncate(fd, 1 << 20)  # one hole
        os.pwrite(fd, b"x" * 4096, 512 << 10)  # in the page cache, not on the brick yet
        assert os.lseek(fd, 0, os.SEEK_DATA) <= 512 << 10
        assert os.lseek(fd, 512 << 10, os.SEEK_HOLE) >= (512 << 10) + 4096
        assert os.lseek(fd, 0, os.SEEK_HOLE) <= 1 << 20
    finally:
        os.close(fd)
