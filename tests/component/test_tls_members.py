"""A member takes forwards, heal and lease requests only from a brick daemon whose
certificate names the host of the member it claims to be (issue 12: only the bricks of
the same replica set may call the replication RPCs)."""

from __future__ import annotations

import errno
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from gfs import certs
from gfs.proto import admin_pb2 as apb
from gfs.proto import admin_pb2_grpc, brick_pb2_grpc
from gfs.proto import brick_pb2 as pb
from tests.procs import BrickDaemon, tls_channel

ROOT = uuid.UUID(int=1).bytes
PRIMARY = "127.0.0.1:1"  # the configured primary's address (never dialled here)


@dataclass
class Member:
    daemon: BrickDaemon
    ca: Path


@pytest.fixture
def member(tmp_path: Path) -> Iterator[Member]:
    ca = tmp_path / "ca"
    certs.init_ca(ca)
    certs.issue(ca, "node", "m", hosts=["127.0.0.1"])
    certs.issue(ca, "node", "p", hosts=["127.0.0.1"])  # the primary's host
    certs.issue(ca, "node", "elsewhere", hosts=["10.99.0.7", "other.example"])
    certs.issue(ca, "admin", "gfsd", hosts=[])
    d = BrickDaemon({"m": tmp_path / "m"}, tmp_path / "brickd.log", tls=ca / "m").start()
    cfg = apb.ConfigureRequest(
        brick="m", volume="v", epoch=3, primary="p",
        members=[apb.Member(brick="p", address=PRIMARY, state="in_sync"),
                 apb.Member(brick="m", address=d.address, state="in_sync")],
        min_in_sync=1, failure_timeout=3,
    )  # fmt: skip
    with tls_channel(d.address, ca / "gfsd") as ch:
        stub: Any = admin_pb2_grpc.AdminStub(ch)  # type: ignore[no-untyped-call]
        assert stub.Configure(cfg, timeout=10).err == 0
    try:
        yield Member(d, ca)
    finally:
        d.stop()


def calls(ch: grpc.Channel) -> dict[str, int]:
    s: Any = brick_pb2_grpc.BrickStub(ch)  # type: ignore[no-untyped-call]
    name = uuid.uuid4().hex.encode()
    make = pb.MakeNodeRequest(parent=ROOT, name=name, gfid=uuid.uuid4().bytes,
                              kind=pb.NODE_KIND_FILE, mode=0o100644)  # fmt: skip
    fwd = pb.ForwardRequest(brick="m", epoch=3, method="MakeNode",
                            payload=make.SerializeToString(), sender="p")  # fmt: skip
    attr = pb.Attr(gfid=uuid.uuid4().bytes, mode=0o100644)
    put = pb.HealPutRequest(brick="m", epoch=3, parent=ROOT, name=name + b"h", attr=attr,
                            sender="p")  # fmt: skip
    beat = pb.HeartbeatRequest(asks=[pb.LeaseAsk(brick="m", epoch=3, primary="p")])
    return {
        "Forward": s.Forward(fwd, timeout=10).err,
        "HealPut": s.HealPut(put, timeout=10).err,
        "HealEntries": s.HealEntries(pb.ReadDirRequest(brick="m", gfid=ROOT), timeout=10).err,
        "Heartbeat": s.Heartbeat(beat, timeout=10).errs[0],
    }


def test_node_certificate_of_another_host_cannot_act_as_the_primary(member: Member) -> None:
    before = sorted(p.name for p in member.daemon.bricks["m"].iterdir())
    with tls_channel(member.daemon.address, member.ca / "elsewhere") as ch:
        got = calls(ch)
    assert got == {
        "Forward": errno.EACCES,
        "HealPut": errno.EACCES,
        "HealEntries": errno.EACCES,
        "Heartbeat": errno.EACCES,
    }
    assert sorted(p.name for p in member.daemon.bricks["m"].iterdir()) == before
    assert "certificate does not name the member's host" in member.daemon.log.read_text()


def test_the_primarys_certificate_is_taken(member: Member) -> None:
    with tls_channel(member.daemon.address, member.ca / "p") as ch:
        got = calls(ch)
    assert got == {"Forward": 0, "HealPut": 0, "HealEntries": 0, "Heartbeat": 0}
