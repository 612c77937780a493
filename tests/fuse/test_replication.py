"""The replication protocol with real processes (docs/replication.md): members and
primaries killed with SIGKILL and restarted, writes that go on, EROFS below
min_in_sync, heal that makes every brick identical, and exactly-once retries."""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from gfs.api.client import ApiError
from gfs.proto import brick_pb2 as pb
from gfs.proto import brick_pb2_grpc
from gfs.rpc.channel import insecure_channel
from tests.cluster import Cluster
from tests.procs import wait_for
from tests.replicas import (
    all_in_sync,
    assert_identical,
    demo_cluster,
    layout,
    mount,
    node_of,
    tree,
)

HEAL_DEADLINE = 90


def test_secondary_killed_writes_go_on_then_heal(demo: Cluster, tmp_path: Path) -> None:
    c = demo
    rs = layout(c)
    mnt = mount(c, tmp_path).start()
    try:
        root = mnt.mountpoint
        (root / "d").mkdir()
        (root / "d" / "before").write_bytes(b"b" * 300_000)
        (root / "gone").write_text("only until the member is away")
        secondary = next(b for b in rs.bricks if b.id != rs.primary)
        node = next(d for d in c.nodes if d.address == secondary.address)
        node.stop(signal.SIGKILL)
        # Writes go on once the dead member has left in_sync (epoch + 1).
        (root / "d" / "during").write_bytes(b"d" * 2_500_000)
        with open(root / "d" / "before", "r+b") as f:
            f.seek(100_000)
            f.write(b"X" * 5000)
        os.unlink(root / "gone")
        os.rename(root / "d" / "during", root / "d" / "renamed")
        os.setxattr(root / "d", "user.k", b"v")
        # More while away, for the change index: new trees, moves across directories,
        # hard links, truncation, modes.
        (root / "n" / "m" / "o").mkdir(parents=True)
        (root / "n" / "m" / "o" / "deep").write_text("deep")
        (root / "e").mkdir()
        os.rename(root / "n" / "m", root / "e" / "m2")
        os.link(root / "d" / "renamed", root / "e" / "hard")
        os.truncate(root / "d" / "before", 1234)
        os.chmod(root / "e", 0o701)
        subprocess.run(["setfacl", "-m", "u:nobody:r", root / "d" / "before"], check=True)
        subprocess.run(["setfacl", "-d", "-m", "u:nobody:rx", root / "e"], check=True)
        after = layout(c)
        assert after.epoch > rs.epoch
        assert [b.name for b in after.bricks if not b.in_sync] == [secondary.name]
        node.start()
        wait_for(lambda: all_in_sync(c), HEAL_DEADLINE, "the restarted member to heal")
        assert (root / "d" / "renamed").read_bytes() == b"d" * 2_500_000
        assert (root / "e" / "m2" / "o" / "deep").read_text() == "deep"
        assert_identical(c)
        with c.client() as api:
            info = api.heal_info("demo")
        assert info.sets[0].in_sync == 3 and info.sets[0].epoch == layout(c).epoch
    finally:
        mnt.stop()


def test_acls_identical_on_every_brick(demo: Cluster, tmp_path: Path) -> None:
    """Default-ACL inheritance and the umask are applied by each member alike."""
    c = demo
    mnt = mount(c, tmp_path).start()
    try:
        root = mnt.mountpoint
        (root / "d").mkdir()
        subprocess.run(["setfacl", "-m", "u:nobody:rwx", root / "d"], check=True, timeout=30)
        subprocess.run(["setfacl", "-d", "-m", "u:nobody:rx", root / "d"], check=True, timeout=30)
        code = (
            "import os; os.umask(0o077); "
            "os.close(os.open('d/f', os.O_CREAT | os.O_WRONLY, 0o666)); "
            "os.mkdir('d/sub', 0o777); os.mkdir('plain', 0o777)"
        )
        subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=30)
        (root / "g").write_bytes(b"")
        subprocess.run(["setfacl", "-m", "u:nobody:rw", root / "g"], check=True, timeout=30)
        os.chmod(root / "g", 0o640)  # rewrites the mask on every brick
        assert_identical(c)
        t = tree(Path(layout(c).bricks[0].path))
        assert set(t["d/f"]["xattrs"]) >= {"system.posix_acl_access"}
        assert set(t["d/sub"]["xattrs"]) >= {"system.posix_acl_access", "system.posix_acl_default"}
        assert stat.S_IMODE(t["d/f"]["mode"]) == 0o644  # the umask was not applied
        assert stat.S_IMODE(t["./plain"]["mode"]) == 0o700  # no default ACL: it was
        assert stat.S_IMODE(t["./g"]["mode"]) == 0o640
    finally:
        mnt.stop()


def test_primary_killed_fails_over(demo: Cluster, tmp_path: Path) -> None:
    c = demo
    rs = layout(c)
    a = mount(c, tmp_path, "a").start()
    b = mount(c, tmp_path, "b").start()
    try:
        (a.mountpoint / "f").write_text("acknowledged before the kill")
        node_of(c, rs, rs.primary).stop(signal.SIGKILL)
        # The next write fails over to an in-sync member and succeeds.
        with open(a.mountpoint / "log", "ab") as f:
            for i in range(20):
                f.write(f"record {i}\n".encode())
        after = layout(c)
        assert after.primary != rs.primary and after.epoch > rs.epoch
        assert (b.mountpoint / "f").read_text() == "acknowledged before the kill"
        expected = "".join(f"record {i}\n" for i in range(20))
        assert (b.mountpoint / "log").read_text() == expected
        node_of(c, rs, rs.primary).start()
        wait_for(lambda: all_in_sync(c), HEAL_DEADLINE, "the old primary to heal")
        assert_identical(c)
    finally:
        b.stop()
        a.stop()


def _index_file(brick: str, gfid: bytes) -> Path:
    h = gfid.hex()
    return Path(brick) / ".gfs" / "gfid" / h[0:2] / h[2:4] / str(uuid.UUID(bytes=gfid))


def test_unlinked_while_open_is_kept_through_writes_and_failover(
    demo: Cluster, tmp_path: Path
) -> None:
    """Members hold no handles: the unlink pins the open file on them, so writes after
    it stay replicated (nobody leaves in_sync), the client's handle reopens by GFID on
    the new primary after a failover, and the last close frees the data everywhere."""
    c = demo
    rs = layout(c)
    a = mount(c, tmp_path, "a").start()
    try:
        (a.mountpoint / "kept").write_text("a file with a name, for the comparison")
        fd = os.open(a.mountpoint / "tmp", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.write(fd, b"a" * 4096)
            gfid = os.getxattr(Path(rs.bricks[0].path) / "tmp", "trusted.gfs.gfid")
            os.unlink(a.mountpoint / "tmp")
            os.pwrite(fd, b"b" * 4096, 4096)
            assert layout(c).epoch == rs.epoch and all_in_sync(c)
            for b in rs.bricks:
                assert _index_file(b.path, gfid).read_bytes() == b"a" * 4096 + b"b" * 4096
            node_of(c, rs, rs.primary).stop(signal.SIGKILL)
            os.pwrite(fd, b"c" * 4096, 8192)  # fails over, reopens by GFID
            after = layout(c)
            assert after.primary != rs.primary
            left = [b for b in after.bricks if b.in_sync]
            assert len(left) == 2  # the write after the failover reached the other member
            for b in left:
                assert _index_file(b.path, gfid).read_bytes()[8192:] == b"c" * 4096
        finally:
            os.close(fd)
        wait_for(
            lambda: not any(_index_file(b.path, gfid).exists() for b in left),
            30,
            "the last close to free the unlinked file on the bricks in sync",
        )
        node_of(c, rs, rs.primary).start()
        wait_for(lambda: all_in_sync(c), HEAL_DEADLINE, "the old primary to heal")
        assert_identical(c)
    finally:
        a.stop()


def test_below_min_in_sync_is_read_only(demo: Cluster, tmp_path: Path) -> None:
    c = demo
    rs = layout(c)
    mnt = mount(c, tmp_path).start()
    try:
        (mnt.mountpoint / "f").write_text("kept")
        for b in rs.bricks:
            if b.id != rs.primary:
                next(d for d in c.nodes if d.address == b.address).stop(signal.SIGKILL)
        with pytest.raises(OSError) as e:
            (mnt.mountpoint / "g").write_text("x")
            (mnt.mountpoint / "h").write_text("y")
        assert e.value.errno == errno.EROFS  # never a silent single copy
        assert (mnt.mountpoint / "f").read_text() == "kept"  # reads go on
    finally:
        mnt.stop()


def test_retried_request_applies_once(demo: Cluster) -> None:
    """An append sent twice with one request id lands once (answered from the dedup
    table), and a brick that is not the primary refuses the request."""
    c = demo
    rs = layout(c)
    primary = next(b for b in rs.bricks if b.id == rs.primary)
    with insecure_channel(primary.address) as ch:
        stub: Any = brick_pb2_grpc.BrickStub(ch)  # type: ignore[no-untyped-call]
        tags = [("gfs-epoch", str(rs.epoch))]
        gfid = os.urandom(16)
        made = stub.MakeNode(
            pb.MakeNodeRequest(
                brick=primary.name,
                parent=b"\0" * 15 + b"\1",
                name=b"once",
                gfid=gfid,
                kind=pb.NODE_KIND_FILE,
                mode=0o100644,
                open=True,
                flags=os.O_WRONLY | os.O_APPEND,
            ),
            timeout=10,
            metadata=[*tags, ("gfs-req", "t:1")],
        )
        assert made.err == 0
        write = pb.WriteRequest(brick=primary.name, fh=made.fh, data=b"record\n")
        for _ in range(2):
            r = stub.Write(write, timeout=10, metadata=[*tags, ("gfs-req", "t:2")])
            assert r.err == 0 and r.size == 7
        stale = stub.Write(write, timeout=10, metadata=[("gfs-epoch", str(rs.epoch - 1))])
        assert stale.err == errno.EREMCHG
        stub.Release(
            pb.FhRequest(brick=primary.name, fh=made.fh),
            timeout=10,
            metadata=[*tags, ("gfs-req", "t:3")],
        )
    for b in rs.bricks:
        assert (Path(b.path) / "once").read_bytes() == b"record\n"
    other = next(b for b in rs.bricks if b.id != rs.primary)
    with insecure_channel(other.address) as ch:
        stub = brick_pb2_grpc.BrickStub(ch)  # type: ignore[no-untyped-call]
        r = stub.GetAttr(pb.GfidRequest(brick=other.name, gfid=gfid), timeout=10, metadata=tags)
        assert r.err == errno.EREMCHG  # only the primary serves


def test_deposed_primary_serves_no_reads(demo: Cluster, tmp_path: Path) -> None:
    """A primary frozen (SIGSTOP) while the set fails over: when it runs again it still
    believes it is primary of the old epoch, yet answers no read with old data, because
    its read lease ran out and the members withhold it (I7)."""
    c = demo
    rs = layout(c)
    mnt = mount(c, tmp_path).start()
    old = node_of(c, rs, rs.primary)
    old_brick = next(b for b in rs.bricks if b.id == rs.primary)
    assert old.proc is not None
    try:
        (mnt.mountpoint / "f").write_text("old")
        old.proc.send_signal(signal.SIGSTOP)
        (mnt.mountpoint / "f").write_text("new")  # fails over, then succeeds
        after = layout(c)
        assert after.primary != rs.primary
        old.proc.send_signal(signal.SIGCONT)
        with insecure_channel(old.address) as ch:
            stub: Any = brick_pb2_grpc.BrickStub(ch)  # type: ignore[no-untyped-call]
            r = stub.Lookup(
                pb.LookupRequest(brick=old_brick.name, parent=b"\0" * 15 + b"\1", name=b"f"),
                timeout=30,
                metadata=[("gfs-epoch", str(rs.epoch))],
            )
        assert r.err == errno.EREMCHG  # not the old size of "f"
        assert (mnt.mountpoint / "f").read_text() == "new"
        wait_for(lambda: all_in_sync(c), HEAL_DEADLINE, "the old primary to heal")
        assert_identical(c)
    finally:
        old.proc.send_signal(signal.SIGCONT)
        mnt.stop()


def test_replace_dead_brick_is_filled_by_heal(tmp_path: Path) -> None:
    with demo_cluster(tmp_path, "100MiB", bricks=4) as c, c.client() as api:
        rs = layout(c)
        mnt = mount(c, tmp_path).start()
        try:
            (mnt.mountpoint / "d").mkdir()
            (mnt.mountpoint / "d" / "f").write_bytes(b"z" * 1_500_000)
            old = next(b for b in rs.bricks if b.id != rs.primary)
            node = next(d for d in c.nodes if d.address == old.address)
            node.stop(signal.SIGKILL)
            spare = next(
                i for i, d in enumerate(c.nodes) if d.address not in {b.address for b in rs.bricks}
            )
            new = f"{c.nodes[spare].address}:{c.roots[spare]}/fresh"
            other = next(b for b in rs.bricks if b.id == rs.primary)
            k = next(i for i, d in enumerate(c.nodes) if d.address == other.address)
            with pytest.raises(ApiError, match="distinct peers"):
                api.volume_replace_brick("demo", old.name, f"{other.address}:{c.roots[k]}/x")
            v = api.volume_replace_brick("demo", old.name, new)
            names = [b.name for b in v.replica_sets[0].bricks]
            assert old.name not in names
            (mnt.mountpoint / "after").write_text("written while the new brick heals")
            wait_for(lambda: all_in_sync(c), HEAL_DEADLINE, "the new brick to heal")
            assert (Path(c.roots[spare]) / "fresh" / "d" / "f").read_bytes() == b"z" * 1_500_000
            assert_identical(c)
        finally:
            mnt.stop()


def test_utime_now_is_the_primary_clock_on_every_replica(tmp_path: Path) -> None:
    """`touch` (UTIME_NOW) takes the time from the primary's clock, not the client's, and
    every replica gets the same one. The brick hosts' clocks run a day ahead here."""
    day = 86_400 * 10**9
    skew = {"GFS_FAULT_CLOCK_OFFSET_NS": str(day)}
    with demo_cluster(tmp_path, env={0: skew, 1: skew, 2: skew}) as c:
        mnt = mount(c, tmp_path).start()
        try:
            f = mnt.mountpoint / "touched"
            f.write_bytes(b"x")
            before = time.time_ns()
            os.utime(f)  # times=NULL: UTIME_NOW for both
            st = f.stat()
            for t in (st.st_atime_ns, st.st_mtime_ns):
                assert before + day - 60 * 10**9 < t < time.time_ns() + day + 60 * 10**9
            os.utime(f, ns=(1_000_000_123, 2_000_000_456))  # explicit times stay exact
            assert (f.stat().st_atime_ns, f.stat().st_mtime_ns) == (1_000_000_123, 2_000_000_456)
            os.utime(f)
            bricks = [Path(b.path) / "touched" for b in layout(c).bricks]
            times = {(b.stat().st_atime_ns, b.stat().st_mtime_ns) for b in bricks}
            assert len(times) == 1, times
            assert next(iter(times))[1] > before + day - 60 * 10**9
        finally:
            mnt.stop()
