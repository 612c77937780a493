"""One time for all replicas (docs/replication.md, "Times"): the primary decides the
mtime a mutation gives each object it changes, the forward carries it, and heal copies
it, so every brick holds the same mtime and a failover does not move it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.cluster import Cluster
from tests.procs import Mount, wait_for
from tests.replicas import all_in_sync, assert_identical, layout, mount, node_of

pytestmark = [pytest.mark.fuse, pytest.mark.timeout(180)]

HEAL_DEADLINE = 90
#: Rounds of the mutation mix: each forward lands on the members a little later than
#: the primary applied it, so without carried times some mtime differs almost surely.
ROUNDS = 4


def mutate(root: Path, tag: str) -> None:
    """Every kind of mutation that changes a time, under `root/tag`."""
    d = root / tag
    d.mkdir()
    (d / "sub").mkdir()
    f = d / "f"
    f.write_bytes(b"a" * 5000)  # create + write
    with open(f, "ab") as h:  # append
        h.write(b"b" * 100)
    os.truncate(f, 3000)
    with open(d / "alloc", "wb") as h:
        os.posix_fallocate(h.fileno(), 0, 65536)
    with open(f, "rb") as src, open(d / "copy", "wb") as dst:
        os.copy_file_range(src.fileno(), dst.fileno(), 3000)
    with open(d / "trunc", "wb") as h:
        h.write(b"t" * 10)
    with open(d / "trunc", "wb"):  # O_TRUNC open
        pass
    os.mkfifo(d / "fifo")
    os.symlink("f", d / "sym")
    os.link(f, d / "sub" / "hard")
    (d / "gone").write_text("x")
    os.unlink(d / "gone")
    (d / "empty").mkdir()
    os.rmdir(d / "empty")
    os.rename(d / "copy", d / "copied")  # within one directory
    os.rename(d / "alloc", d / "sub" / "alloc")  # across directories
    (d / "sub" / "deeper").mkdir()
    os.rename(d / "sub" / "deeper", d / "moved")  # a directory across directories
    (d / "victim").write_text("replaced")
    os.rename(d / "trunc", d / "victim")  # over an existing name
    os.setxattr(f, "user.k", b"v")
    os.chmod(d / "sub", 0o750)
    os.utime(d / "copied", ns=(1_000_000_123, 2_000_000_456))
    os.utime(d / "sub" / "hard")  # UTIME_NOW: the primary's clock


def test_every_replica_holds_the_primary_mtime(demo: Cluster, tmp_path: Path) -> None:
    """After a mix of mutations through a mount, every brick (the root included) holds
    the same mtime, to the nanosecond, for every file, directory, symlink and fifo."""
    mnt = mount(demo, tmp_path).start()
    try:
        for i in range(ROUNDS):
            mutate(mnt.mountpoint, f"r{i}")
        (mnt.mountpoint / "top").write_text("changes the root's mtime last")
        assert_identical(demo, times=True)
    finally:
        mnt.stop()


def _mtimes(root: Path) -> dict[str, int]:
    out: dict[str, int] = {".": root.lstat().st_mtime_ns}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = p.lstat().st_mtime_ns
    return out


def test_failover_keeps_mtime(demo: Cluster, tmp_path: Path) -> None:
    """The primary's daemon killed after writes: the new primary reports, through the
    mount, the same mtime of every object as the old one did."""
    c = demo
    rs = layout(c)
    mnt = mount(c, tmp_path).start()
    try:
        for i in range(ROUNDS):
            mutate(mnt.mountpoint, f"r{i}")
        before = _mtimes(mnt.mountpoint)
        node_of(c, rs, rs.primary).stop(signal.SIGKILL)
        # The first call after the kill fails over (the client asks gfsd and retries).
        (mnt.mountpoint / "r0" / "sub").stat()
        after = layout(c)
        assert after.primary != rs.primary and after.epoch > rs.epoch
        assert _mtimes(mnt.mountpoint) == before
    finally:
        mnt.stop()


def test_heal_copies_the_primary_mtime(demo: Cluster, tmp_path: Path) -> None:
    """A member killed, mutations while it is away, then heal: the healed member ends
    with the primary's mtime for everything, as the member that stayed does."""
    c = demo
    rs = layout(c)
    mnt: Mount = mount(c, tmp_path).start()
    try:
        mutate(mnt.mountpoint, "before")
        secondary = next(b for b in rs.bricks if b.id != rs.primary)
        node = next(d for d in c.nodes if d.address == secondary.address)
        node.stop(signal.SIGKILL)
        mutate(mnt.mountpoint, "during")
        os.utime(mnt.mountpoint / "before" / "f", ns=(5_000_000_000, 6_000_000_000))
        (mnt.mountpoint / "before" / "sub" / "new").write_text("made while away")
        node.start()
        wait_for(lambda: all_in_sync(c), HEAL_DEADLINE, "the restarted member to heal")
        assert_identical(c, times=True)
    finally:
        mnt.stop()
