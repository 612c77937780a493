"""Forwarded handles on a member (issue 10, point 6), with a real gfs-brickd as the
member: nothing keeps a handle of a file open once no forward can close it, so a
deleted file's space is never held. Both ways are checked on their own: the member
closes what predates its leaving in_sync, and the primary still sends Release to a
member outside in_sync."""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gfs.brick.replica import Config, Replica
from gfs.brick.store import Brick
from gfs.proto import admin_pb2 as apb
from gfs.proto import admin_pb2_grpc, brick_pb2_grpc
from gfs.proto import brick_pb2 as pb
from gfs.rpc.channel import insecure_channel
from tests.procs import BrickDaemon, wait_for

ROOT = uuid.UUID(int=1).bytes
NOWHERE = "127.0.0.1:1"  # the primary's address: never called by the member


@pytest.fixture
def member(tmp_path: Path) -> Iterator[tuple[BrickDaemon, Path]]:
    path = tmp_path / "m"
    d = BrickDaemon({"m": path}, tmp_path / "brickd.log").start()
    try:
        yield d, path
    finally:
        d.stop()


def stubs(d: BrickDaemon) -> tuple[Any, Any]:
    ch = insecure_channel(d.address)
    admin = admin_pb2_grpc.AdminStub(ch)  # type: ignore[no-untyped-call]
    return admin, brick_pb2_grpc.BrickStub(ch)  # type: ignore[no-untyped-call]


def configure(admin: Any, epoch: int, member_state: str) -> None:
    r = admin.Configure(
        apb.ConfigureRequest(
            brick="m",
            volume="v",
            epoch=epoch,
            primary="p",
            members=[
                apb.Member(brick="p", address=NOWHERE, state="in_sync"),
                apb.Member(brick="m", address="", state=member_state),
            ],
            min_in_sync=1,
            failure_timeout=3,
        ),
        timeout=10,
    )
    assert r.err == 0


def forward(
    brick: Any, epoch: int, method: str, req: Any, session: str, fh: int, gfid: bytes
) -> None:
    r = brick.Forward(
        pb.ForwardRequest(
            brick="m",
            epoch=epoch,
            method=method,
            payload=req.SerializeToString(),
            session=session,
            fh=fh,
            gfid=gfid,
            sender="p",
        ),
        timeout=10,
    )
    assert r.err == 0 and pb.Reply.FromString(r.reply).err == 0


def open_files(pid: int, under: Path) -> list[str]:
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        link = f"/proc/{pid}/fd/{fd}"
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.stat(link).st_mode) and os.readlink(link).startswith(str(under)):
                out.append(os.readlink(link))
    return out


def open_and_unlink(brick: Any, epoch: int, session: str, gfid: bytes) -> None:
    """What the primary forwards for `open(O_CREAT)`, a write, then `unlink` while open."""
    make = pb.MakeNodeRequest(
        parent=ROOT, name=b"f", gfid=gfid, kind=pb.NODE_KIND_FILE, mode=0o100644, open=True,
        flags=os.O_RDWR,
    )  # fmt: skip
    forward(brick, epoch, "MakeNode", make, session, 5, gfid)
    forward(brick, epoch, "Write", pb.WriteRequest(fh=5, data=b"x" * 65536), session, 5, gfid)
    forward(brick, epoch, "Unlink", pb.NameRequest(parent=ROOT, name=b"f"), session, 0, b"")


def test_member_closes_forwarded_handles_when_it_leaves_in_sync(
    member: tuple[BrickDaemon, Path],
) -> None:
    d, path = member
    admin, brick = stubs(d)
    assert d.proc is not None
    configure(admin, 1, "in_sync")
    open_and_unlink(brick, 1, "primary-session", uuid.uuid4().bytes)
    assert len(open_files(d.proc.pid, path)) == 1  # unlinked while open: kept
    configure(admin, 2, "out")  # it failed a write: no Release will be forwarded
    assert open_files(d.proc.pid, path) == []


def test_primary_sends_release_to_a_member_outside_in_sync(
    member: tuple[BrickDaemon, Path], tmp_path: Path
) -> None:
    d, path = member
    admin, brick = stubs(d)
    assert d.proc is not None
    configure(admin, 1, "out")
    cfg = Config(
        volume="v",
        set_index=0,
        epoch=1,
        primary="p",
        members={"p": [NOWHERE, "in_sync"], "m": [d.address, "out"]},
        min_in_sync=1,
    )
    (tmp_path / "p").mkdir()
    primary = Replica(Brick("p", tmp_path / "p"), cfg, confirmed=True)
    gfid = uuid.uuid4().bytes
    # A handle the member took while it was healed (a heal that then failed).
    open_and_unlink(brick, 1, primary.session, gfid)
    assert len(open_files(d.proc.pid, path)) == 1
    release = pb.ForwardRequest(
        method="Release",
        payload=pb.FhRequest(fh=5).SerializeToString(),
        session=primary.session,
        fh=5,
        gfid=gfid,
    )
    assert primary.forward(release, "", pb.Reply(), pb.Reply, [gfid]) == 0
    pid = d.proc.pid
    wait_for(lambda: open_files(pid, path) == [], 10, "the member to release the handle")
    primary.brick.close()
