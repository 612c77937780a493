"""A brick daemon's client sessions and stopped bricks over real gRPC (issue 10, point 4):
sessions recorded, listed, ended and expired; a brick gfsd stopped answers ESHUTDOWN
to everyone, a name never served ENODEV; a replicated brick served again waits for
its configuration."""

from __future__ import annotations

import errno
import math
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gfs.proto import admin_pb2 as apb
from gfs.proto import admin_pb2_grpc, brick_pb2_grpc
from gfs.proto import brick_pb2 as pb
from gfs.rpc.channel import insecure_channel
from tests.procs import BrickDaemon, wait_for

ROOT = uuid.UUID(int=1).bytes


class Node:
    def __init__(self, d: BrickDaemon) -> None:
        self.channel = insecure_channel(d.address)
        self.admin: Any = admin_pb2_grpc.AdminStub(self.channel)  # type: ignore[no-untyped-call]
        self.brick: Any = brick_pb2_grpc.BrickStub(self.channel)  # type: ignore[no-untyped-call]

    def session(self, brick: str, sid: str, interval: float = 10.0, **kw: Any) -> int:
        req = pb.SessionRequest(
            brick=brick,
            session=sid,
            hostname=kw.pop("hostname", "client-1"),
            mountpoint=kw.pop("mountpoint", "/mnt/v"),
            pid=kw.pop("pid", 42),
            interval=interval,
            **kw,
        )
        return int(self.brick.Session(req, timeout=10).err)

    def sessions(self, *bricks: str) -> list[Any]:
        return list(self.admin.Sessions(apb.SessionsRequest(bricks=bricks), timeout=10).sessions)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[Node, Path]]:
    root = tmp_path / "root"
    root.mkdir()
    d = BrickDaemon({"fixed": tmp_path / "fixed"}, tmp_path / "brickd.log", ["--root", str(root)])
    d.start()
    try:
        n = Node(d)
        for name in ("v-b0", "v-b1"):
            req = apb.ProvisionRequest(
                root=str(root), name=name, volume_id="vid", volume="v", brick=name
            )
            path = n.admin.Provision(req, timeout=10)
            assert n.admin.Serve(apb.ServeRequest(name=name, path=path.path), timeout=10).err == 0
        yield n, root
    finally:
        d.stop()


def test_sessions_recorded_listed_ended_and_expired(node: tuple[Node, Path]) -> None:
    n, _ = node
    assert n.session("v-b0", "s1", hostname="h1", mountpoint="/mnt/a", pid=7) == 0
    assert n.session("v-b1", "s1", hostname="h1", mountpoint="/mnt/a", pid=7) == 0
    assert n.session("v-b0", "s2", interval=0.2) == 0
    # An unknown name is answered ENODEV, and still noted: that mount will use it.
    assert n.session("nope", "s3") == errno.ENODEV
    got = {(s.brick, s.session) for s in n.sessions("v-b0")}
    assert got == {("v-b0", "s1"), ("v-b0", "s2")}
    one = next(s for s in n.sessions("v-b1"))
    assert (one.hostname, one.mountpoint, one.pid) == ("h1", "/mnt/a", 7)
    assert one.peer.startswith("127.0.0.1:") and 0 <= one.idle_seconds < 5
    assert len(n.sessions()) == 4  # no names: every brick's
    # Silent for three intervals: forgotten.
    wait_for(lambda: "s2" not in {s.session for s in n.sessions("v-b0")}, 5, "s2 to expire")
    assert n.session("v-b0", "s1", end=True) == 0  # an unmount ends it at once
    assert {(s.brick, s.session) for s in n.sessions("v-b0", "v-b1")} == {("v-b1", "s1")}


@pytest.mark.parametrize(
    "bad",
    [
        {"interval": 0.0},
        {"interval": 1e9},
        {"interval": math.nan},
        {"sid": ""},
        {"sid": "x" * 65},
        {"hostname": "h" * 256},
        {"mountpoint": "/" * 4097},
    ],
)
def test_bad_sessions_refused(node: tuple[Node, Path], bad: dict[str, Any]) -> None:
    n, _ = node
    args: dict[str, Any] = {"interval": 10.0, "sid": "s", **bad}
    assert n.session("v-b0", args.pop("sid"), args.pop("interval"), **args) == errno.EINVAL
    assert n.sessions() == []


def test_stopped_brick_answers_eshutdown_until_served_again(node: tuple[Node, Path]) -> None:
    n, root = node
    assert n.session("v-b0", "s1") == 0
    assert n.admin.Unserve(apb.UnserveRequest(name="v-b0", stopped=True), timeout=10).err == 0
    # Behind gfsd's back (no `stopped`): the old answer, not served here.
    assert n.admin.Unserve(apb.UnserveRequest(name="v-b1"), timeout=10).err == 0
    lookup = pb.LookupRequest(parent=ROOT, name=b"x")
    for brick, code in (("v-b0", errno.ESHUTDOWN), ("v-b1", errno.ENODEV)):
        lookup.brick = brick
        assert n.brick.Lookup(lookup, timeout=10).err == code
        assert n.brick.Ping(pb.PingRequest(brick=brick), timeout=10).err == code
        fwd = pb.ForwardRequest(brick=brick, epoch=1, method="Unlink")
        assert n.brick.Forward(fwd, timeout=10).err == code
        hb = pb.HeartbeatRequest(asks=[pb.LeaseAsk(brick=brick, epoch=1, primary="p")])
        assert list(n.brick.Heartbeat(hb, timeout=10).errs) == [code]
        assert n.session(brick, "s1") == code
    # The mount of the stopped volume is still there: it still counts.
    assert {s.brick for s in n.sessions("v-b0", "v-b1")} == {"v-b0", "v-b1"}
    # A retried stop of a name already gone still marks it.
    assert n.admin.Unserve(apb.UnserveRequest(name="v-b1", stopped=True), timeout=10).err == 0
    lookup.brick = "v-b1"
    assert n.brick.Lookup(lookup, timeout=10).err == errno.ESHUTDOWN
    # Served again, it answers as before.
    path = str(root / "v-b0")
    assert n.admin.Serve(apb.ServeRequest(name="v-b0", path=path), timeout=10).err == 0
    lookup.brick = "v-b0"
    assert n.brick.Lookup(lookup, timeout=10).err == errno.ENOENT
    assert n.session("v-b0", "s1") == 0


def test_replicated_brick_waits_for_its_configuration(node: tuple[Node, Path]) -> None:
    n, root = node
    assert n.admin.Unserve(apb.UnserveRequest(name="v-b0", stopped=True), timeout=10).err == 0
    serve = apb.ServeRequest(name="v-b0", path=str(root / "v-b0"), replicated=True)
    assert n.admin.Serve(serve, timeout=10).err == 0
    lookup = pb.LookupRequest(brick="v-b0", parent=ROOT, name=b"x")
    # A mount that knew it as primary before the stop cannot use it yet.
    assert n.brick.Lookup(lookup, timeout=10).err == errno.EREMCHG
    assert n.brick.Ping(pb.PingRequest(brick="v-b0"), timeout=10).err == 0  # it is served
    assert n.session("v-b0", "s1") == errno.EAGAIN  # being started
    hb = pb.HeartbeatRequest(asks=[pb.LeaseAsk(brick="v-b0", epoch=1, primary="v-b0")])
    assert list(n.brick.Heartbeat(hb, timeout=10).errs) == [errno.EAGAIN]
    cfg = apb.ConfigureRequest(
        brick="v-b0",
        volume="v",
        epoch=1,
        primary="v-b0",
        members=[apb.Member(brick="v-b0", address="127.0.0.1:1", state="in_sync")],
        min_in_sync=1,
        failure_timeout=1.0,
    )
    assert n.admin.Configure(cfg, timeout=10).err == 0
    # Configured as the primary of a one-member set (no lease to wait for): it serves.
    assert n.brick.Lookup(lookup, timeout=10, metadata=[("gfs-epoch", "1")]).err == errno.ENOENT
    assert n.session("v-b0", "s1") == 0
