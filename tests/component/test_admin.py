"""gfs-brickd's Admin service over real gRPC: node facts, provisioning, serving."""

from __future__ import annotations

import errno
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gfs.proto import admin_pb2 as apb
from gfs.proto import admin_pb2_grpc, brick_pb2_grpc
from gfs.proto import brick_pb2 as pb
from gfs.rpc.channel import insecure_channel
from tests.procs import BrickDaemon

ROOT = uuid.UUID(int=1).bytes
VOL = "6f1c1d6e-0000-4000-8000-000000000001"
OTHER = "6f1c1d6e-0000-4000-8000-000000000002"


def prov(root: Path, name: str, volume_id: str = VOL, brick: str = "") -> apb.ProvisionRequest:
    return apb.ProvisionRequest(
        root=str(root), name=name, volume_id=volume_id, volume="v", brick=brick or name
    )


def rm(
    root: Path,
    name: str,
    volume_id: str = VOL,
    brick: str = "",
    delete_data: bool = True,
    untouched: bool = False,
) -> apb.RemoveRequest:
    return apb.RemoveRequest(
        root=str(root),
        name=name,
        volume_id=volume_id,
        brick=brick or name,
        delete_data=delete_data,
        only_if_untouched=untouched,
    )


class Node:
    def __init__(self, d: BrickDaemon) -> None:
        self.channel = insecure_channel(d.address)
        self.admin: Any = admin_pb2_grpc.AdminStub(self.channel)  # type: ignore[no-untyped-call]
        self.brick: Any = brick_pb2_grpc.BrickStub(self.channel)  # type: ignore[no-untyped-call]


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[BrickDaemon, Path]]:
    root = tmp_path / "root"
    root.mkdir()
    d = BrickDaemon(
        {"fixed": tmp_path / "fixed"},
        tmp_path / "brickd.log",
        ["--root", str(root), "--zone", "z1"],
    )
    d.start()
    try:
        yield d, root
    finally:
        d.stop()


def test_info_reports_roots_and_zone(node: tuple[BrickDaemon, Path]) -> None:
    d, root = node
    info = Node(d).admin.Info(apb.InfoRequest(), timeout=10)
    assert info.err == 0 and info.zone == "z1" and info.node_id
    assert [r.path for r in info.roots] == [str(root)]
    r = info.roots[0]
    assert 0 < r.free_bytes <= r.total_bytes and r.used_bytes <= r.total_bytes
    assert [b.name for b in info.bricks] == ["fixed"]


def test_provision_serve_restart_remove(node: tuple[BrickDaemon, Path]) -> None:
    d, root = node
    n = Node(d)
    p = n.admin.Provision(prov(root, "vol1-b0"), timeout=10)
    assert p.err == 0 and p.created and Path(p.path) == root / "vol1-b0"
    again = n.admin.Provision(prov(root, "vol1-b0"), timeout=10)
    assert again.err == 0 and again.created  # idempotent: the txn engine may retry
    assert n.brick.Ping(pb.PingRequest(brick="vol1-b0"), timeout=10).err == errno.ENODEV
    assert n.admin.Serve(apb.ServeRequest(name="vol1-b0", path=p.path), timeout=10).err == 0
    assert n.admin.Serve(apb.ServeRequest(name="vol1-b0", path=p.path), timeout=10).err == 0
    made = n.brick.MakeNode(
        pb.MakeNodeRequest(
            brick="vol1-b0",
            parent=ROOT,
            name=b"f",
            gfid=uuid.uuid4().bytes,
            kind=pb.NODE_KIND_FILE,
            mode=0o100644,
        ),
        timeout=10,
    )
    assert made.err == 0 and (root / "vol1-b0" / "f").exists()
    # A provisioned folder is not handed out again, to another brick or volume.
    for other in (prov(root, "vol1-b0", OTHER), prov(root, "vol1-b0", brick="b9")):
        busy = n.admin.Provision(other, timeout=10)
        assert busy.err == errno.EEXIST and "served here" in busy.message

    d.stop(signal.SIGKILL)
    d.start()
    n = Node(d)
    assert n.brick.Ping(pb.PingRequest(brick="vol1-b0"), timeout=10).err == 0  # still served

    assert n.admin.Unserve(apb.UnserveRequest(name="vol1-b0"), timeout=10).err == 0
    assert n.brick.Ping(pb.PingRequest(brick="vol1-b0"), timeout=10).err == errno.ENODEV
    assert n.admin.Remove(rm(root, "vol1-b0", delete_data=False), timeout=10).err == 0
    assert (root / "vol1-b0" / "f").exists()  # data gone only when asked
    wipe = rm(root, "vol1-b0")
    assert n.admin.Remove(wipe, timeout=10).err == 0
    assert not (root / "vol1-b0").exists()
    assert n.admin.Remove(wipe, timeout=10).err == 0  # idempotent


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("../escape", errno.EINVAL),
        ("a/b", errno.EINVAL),
        (".hidden", errno.EINVAL),
        ("", errno.EINVAL),
        ("x" * 256, errno.ENAMETOOLONG),
    ],
)
def test_provision_rejects_bad_names(
    node: tuple[BrickDaemon, Path], tmp_path: Path, name: str, code: int
) -> None:
    d, root = node
    before = sorted(p.name for p in tmp_path.iterdir())
    reply = Node(d).admin.Provision(prov(root, name, brick="b"), timeout=10)
    assert reply.err == code
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_only_configured_roots(node: tuple[BrickDaemon, Path], tmp_path: Path) -> None:
    d, root = node
    n = Node(d)
    other = tmp_path / "other"
    other.mkdir()
    assert n.admin.Provision(prov(other, "b"), timeout=10).err == errno.EACCES
    assert n.admin.Serve(apb.ServeRequest(name="x", path=str(other)), timeout=10).err == (
        errno.EACCES
    )
    assert n.admin.Serve(apb.ServeRequest(name="x", path=str(root)), timeout=10).err == (
        errno.EACCES
    )
    assert n.admin.Remove(rm(other, "b"), timeout=10).err == errno.EACCES
    assert other.exists()


def test_quota_enforced_shown_and_persisted(node: tuple[BrickDaemon, Path]) -> None:
    d, root = node
    n = Node(d)
    MiB = 1 << 20
    path = n.admin.Provision(prov(root, "q"), timeout=10).path
    assert (
        n.admin.Serve(apb.ServeRequest(name="q", path=path, quota_bytes=MiB), timeout=10).err == 0
    )

    def statfs() -> Any:
        return n.brick.Statfs(pb.StatfsRequest(brick="q"), timeout=10)

    s = statfs()
    assert s.blocks * s.frsize == MiB and s.bavail * s.frsize == MiB
    f = n.brick.MakeNode(
        pb.MakeNodeRequest(
            brick="q",
            parent=ROOT,
            name=b"f",
            gfid=uuid.uuid4().bytes,
            kind=pb.NODE_KIND_FILE,
            mode=0o100644,
            open=True,
            flags=os.O_RDWR,
        ),
        timeout=10,
    )
    w = n.brick.Write(
        pb.WriteRequest(brick="q", fh=f.fh, offset=0, data=b"x" * (MiB // 2)), timeout=10
    )
    assert w.err == 0
    assert statfs().bavail * s.frsize <= MiB // 2
    big = n.brick.Write(
        pb.WriteRequest(brick="q", fh=f.fh, offset=MiB // 2, data=b"y" * MiB), timeout=10
    )
    assert big.err == errno.ENOSPC  # never silently past the size
    # Blocks count, not the apparent size: a byte far past the quota allocates one block,
    # and overwriting data already allocated needs no room.
    far = n.brick.Write(pb.WriteRequest(brick="q", fh=f.fh, offset=8 * MiB, data=b"z"), timeout=10)
    assert far.err == 0 and far.size == 8 * MiB + 1
    assert statfs().bavail * s.frsize >= MiB // 2 - 8192
    again = n.brick.Write(
        pb.WriteRequest(brick="q", fh=f.fh, offset=0, data=b"w" * (MiB // 2)), timeout=10
    )
    assert again.err == 0
    assert n.brick.Release(pb.FhRequest(brick="q", fh=f.fh), timeout=10).err == 0
    assert n.brick.Unlink(pb.NameRequest(brick="q", parent=ROOT, name=b"f"), timeout=10).err == 0
    assert statfs().bavail * s.frsize == MiB  # freed blocks come back
    # A larger quota (volume expand) applies to the served brick, and survives a restart.
    assert (
        n.admin.Serve(apb.ServeRequest(name="q", path=path, quota_bytes=4 * MiB), timeout=10).err
        == 0
    )
    d.stop(signal.SIGKILL)
    d.start()
    n = Node(d)
    s = statfs()
    assert s.blocks * s.frsize == 4 * MiB


def test_remove_only_what_the_marker_says_is_ours(node: tuple[BrickDaemon, Path]) -> None:
    """Remove refuses a folder without a marker or with another owner's, and changes
    nothing then (it does not even stop serving it)."""
    d, root = node
    n = Node(d)
    (root / "theirs").mkdir()
    (root / "theirs" / "data.txt").write_text("x")
    r = n.admin.Remove(rm(root, "theirs"), timeout=10)
    assert r.err == errno.EPERM and "no ownership marker" in r.message
    assert (root / "theirs" / "data.txt").read_text() == "x"
    untouched = n.admin.Remove(rm(root, "theirs", untouched=True), timeout=10)
    assert untouched.err == 0 and "kept" in untouched.message
    assert (root / "theirs" / "data.txt").read_text() == "x"

    p = n.admin.Provision(prov(root, "a"), timeout=10)
    assert (
        p.err == 0 and n.admin.Serve(apb.ServeRequest(name="a", path=p.path), timeout=10).err == 0
    )
    for foreign in (
        rm(root, "a", OTHER),
        rm(root, "a", brick="b"),
        rm(root, "a", OTHER, untouched=True),
    ):
        r = n.admin.Remove(foreign, timeout=10)
        assert (r.err, "kept" in r.message) in ((errno.EPERM, False), (0, True)), r
        assert r.err == 0 or "belongs to brick a of volume v" in r.message
        assert n.brick.Ping(pb.PingRequest(brick="a"), timeout=10).err == 0  # still served
    # A served brick holds more than its marker: the undo of an unconfirmed
    # Provision leaves it alone.
    assert "kept" in n.admin.Remove(rm(root, "a", untouched=True), timeout=10).message
    assert n.brick.Ping(pb.PingRequest(brick="a"), timeout=10).err == 0
    assert n.admin.Remove(rm(root, "a"), timeout=10).err == 0
    assert not (root / "a").exists()


def test_operator_folder_is_taken_and_kept(node: tuple[BrickDaemon, Path]) -> None:
    """An existing empty folder is taken (created=False): removing it with data
    empties it and keeps the folder; an untouched-only remove drops just the marker."""
    d, root = node
    n = Node(d)
    (root / "mine").mkdir()
    p = n.admin.Provision(prov(root, "mine"), timeout=10)
    assert p.err == 0 and not p.created
    assert n.admin.Serve(apb.ServeRequest(name="mine", path=p.path), timeout=10).err == 0
    (root / "mine" / "f").write_text("y")
    assert n.admin.Remove(rm(root, "mine"), timeout=10).err == 0
    assert (root / "mine").is_dir() and list((root / "mine").iterdir()) == []

    assert n.admin.Provision(prov(root, "mine", brick="again"), timeout=10).err == 0
    assert n.admin.Remove(rm(root, "mine", brick="again", untouched=True), timeout=10).err == 0
    assert (root / "mine").is_dir() and list((root / "mine").iterdir()) == []
    made = n.admin.Provision(prov(root, "new"), timeout=10)
    assert made.err == 0 and made.created
    r = n.admin.Remove(rm(root, "new", untouched=True), timeout=10)
    assert r.err == 0 and r.message == "" and not (root / "new").exists()


def test_provision_refuses_folders_in_use(tmp_path: Path) -> None:
    """Non-empty folders, and folders inside another brick folder (nested roots),
    are refused by the daemon itself, whatever gfsd believes."""
    outer_root = tmp_path / "a"
    inner_root = outer_root / "outer"
    inner_root.mkdir(parents=True)
    d = BrickDaemon(
        {"fixed": tmp_path / "fixed"},
        tmp_path / "brickd.log",
        ["--root", str(outer_root), "--root", str(inner_root), "--zone", "z1"],
    )
    try:
        d.start()
        n = Node(d)
        (outer_root / "full").mkdir()
        (outer_root / "full" / "data.txt").write_text("x")
        r = n.admin.Provision(prov(outer_root, "full"), timeout=10)
        assert r.err == errno.EEXIST and "not empty" in r.message
        assert (outer_root / "full" / "data.txt").read_text() == "x"
        # outer_root/outer (= inner_root) becomes a brick: nothing inside it can.
        assert n.admin.Provision(prov(outer_root, "outer"), timeout=10).err == 0
        r = n.admin.Provision(prov(inner_root, "x", OTHER), timeout=10)
        assert r.err == errno.EEXIST and "lies inside the brick folder" in r.message
        assert not (inner_root / "x").exists()
    finally:
        d.stop()
