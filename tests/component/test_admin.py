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
    p = n.admin.Provision(apb.ProvisionRequest(root=str(root), name="vol1-b0"), timeout=10)
    assert p.err == 0 and p.created and Path(p.path) == root / "vol1-b0"
    again = n.admin.Provision(apb.ProvisionRequest(root=str(root), name="vol1-b0"), timeout=10)
    assert again.err == 0 and not again.created  # idempotent: the txn engine may retry
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
    # A provisioned folder with data in it is not handed out again.
    busy = n.admin.Provision(apb.ProvisionRequest(root=str(root), name="vol1-b0"), timeout=10)
    assert busy.err == errno.EEXIST

    d.stop(signal.SIGKILL)
    d.start()
    n = Node(d)
    assert n.brick.Ping(pb.PingRequest(brick="vol1-b0"), timeout=10).err == 0  # still served

    assert n.admin.Unserve(apb.UnserveRequest(name="vol1-b0"), timeout=10).err == 0
    assert n.brick.Ping(pb.PingRequest(brick="vol1-b0"), timeout=10).err == errno.ENODEV
    keep = apb.RemoveRequest(root=str(root), name="vol1-b0", delete_data=False)
    assert n.admin.Remove(keep, timeout=10).err == 0
    assert (root / "vol1-b0" / "f").exists()  # data gone only when asked
    wipe = apb.RemoveRequest(root=str(root), name="vol1-b0", delete_data=True)
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
    reply = Node(d).admin.Provision(apb.ProvisionRequest(root=str(root), name=name), timeout=10)
    assert reply.err == code
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_only_configured_roots(node: tuple[BrickDaemon, Path], tmp_path: Path) -> None:
    d, root = node
    n = Node(d)
    other = tmp_path / "other"
    other.mkdir()
    assert n.admin.Provision(apb.ProvisionRequest(root=str(other), name="b"), timeout=10).err == (
        errno.EACCES
    )
    assert n.admin.Serve(apb.ServeRequest(name="x", path=str(other)), timeout=10).err == (
        errno.EACCES
    )
    assert n.admin.Serve(apb.ServeRequest(name="x", path=str(root)), timeout=10).err == (
        errno.EACCES
    )
    wipe = apb.RemoveRequest(root=str(other), name="b", delete_data=True)
    assert n.admin.Remove(wipe, timeout=10).err == errno.EACCES
    assert other.exists()


def test_quota_enforced_shown_and_persisted(node: tuple[BrickDaemon, Path]) -> None:
    d, root = node
    n = Node(d)
    MiB = 1 << 20
    path = n.admin.Provision(apb.ProvisionRequest(root=str(root), name="q"), timeout=10).path
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
