"""Handles on a member (issue 10, point 6; issue 11), with a real gfs-brickd as the
member: members hold no handles (open and release are not forwarded; a handle
operation opens the object by GFID for that one operation), and a file the primary
unlinks while it has it open is pinned on the members until the primary's last close,
or until the member leaves in_sync, so a deleted file's space is never held for
good."""

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
from gfs.brick.service import BrickService
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


def index_file(path: Path, gfid: bytes) -> Path:
    """Where a brick keeps `gfid`'s data, whatever names it has."""
    h = gfid.hex()
    return path / ".gfs" / "gfid" / h[0:2] / h[2:4] / str(uuid.UUID(bytes=gfid))


def open_and_unlink(brick: Any, epoch: int, session: str, gfid: bytes) -> None:
    """What the primary forwards for `open(O_CREAT)`, a write, then `unlink` while open:
    the unlink pins the file it still has open."""
    make = pb.MakeNodeRequest(
        parent=ROOT, name=b"f", gfid=gfid, kind=pb.NODE_KIND_FILE, mode=0o100644, open=True,
        flags=os.O_RDWR,
    )  # fmt: skip
    forward(brick, epoch, "MakeNode", make, session, 0, b"")
    forward(brick, epoch, "Write", pb.WriteRequest(fh=5, data=b"x" * 65536), session, 5, gfid)
    r = brick.Forward(
        pb.ForwardRequest(
            brick="m",
            epoch=epoch,
            method="Unlink",
            payload=pb.NameRequest(parent=ROOT, name=b"f").SerializeToString(),
            session=session,
            pin=gfid,
            sender="p",
        ),
        timeout=10,
    )
    assert r.err == 0 and pb.Reply.FromString(r.reply).err == 0


def test_member_holds_no_handle_and_keeps_a_pinned_file_until_unpin(
    member: tuple[BrickDaemon, Path],
) -> None:
    d, path = member
    admin, brick = stubs(d)
    assert d.proc is not None
    configure(admin, 1, "in_sync")
    gfid = uuid.uuid4().bytes
    open_and_unlink(brick, 1, "primary-session", gfid)
    assert open_files(d.proc.pid, path) == []  # no handle forwarded, none opened
    assert index_file(path, gfid).stat().st_size == 65536  # unlinked, kept
    unpin = pb.GfidRequest(gfid=gfid)
    forward(brick, 1, "Unpin", unpin, "primary-session", 0, gfid)
    assert not index_file(path, gfid).exists()


def test_member_drops_pins_when_it_leaves_in_sync(member: tuple[BrickDaemon, Path]) -> None:
    d, path = member
    admin, brick = stubs(d)
    configure(admin, 1, "in_sync")
    gfid = uuid.uuid4().bytes
    open_and_unlink(brick, 1, "primary-session", gfid)
    assert index_file(path, gfid).exists()
    configure(admin, 2, "out")  # it failed a write: no Unpin is owed to it
    assert not index_file(path, gfid).exists()


class Ctx:
    """The part of a gRPC servicer context the replication rules read."""

    def __init__(self, epoch: int, req: str) -> None:
        self.md = [("gfs-epoch", str(epoch)), ("gfs-req", req)]

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return self.md


def test_primary_pins_an_open_file_it_unlinks_and_unpins_at_its_last_close(
    member: tuple[BrickDaemon, Path], tmp_path: Path
) -> None:
    """A primary in this process (`p`) and the member daemon (`m`), in sync: the open
    is not forwarded, the unlink pins, the last Release unpins, unawaited."""
    d, path = member
    admin, _ = stubs(d)
    configure(admin, 1, "in_sync")
    cfg = Config(
        volume="v",
        set_index=0,
        epoch=1,
        primary="p",
        members={"p": [NOWHERE, "in_sync"], "m": [d.address, "in_sync"]},
        min_in_sync=1,
    )
    (tmp_path / "p").mkdir()
    svc = BrickService({"p": Brick("p", tmp_path / "p")})
    primary = Replica(svc.bricks["p"], cfg, confirmed=True)
    svc.configured("p", primary)
    gfid = uuid.uuid4().bytes
    made = svc.MakeNode(
        pb.MakeNodeRequest(
            brick="p", parent=ROOT, name=b"f", gfid=gfid, kind=pb.NODE_KIND_FILE,
            mode=0o100644, open=True, flags=os.O_RDWR,
        ),
        Ctx(1, "c:1"),
    )  # fmt: skip
    assert made.err == 0
    fhs = [made.fh, svc.Open(pb.OpenRequest(brick="p", gfid=gfid, flags=os.O_RDWR), Ctx(1, "")).fh]
    w = svc.Write(pb.WriteRequest(brick="p", fh=fhs[0], data=b"y" * 4096), Ctx(1, "c:2"))
    assert w.err == 0 and w.written == 4096
    assert index_file(path, gfid).stat().st_size == 4096
    assert svc.Unlink(pb.NameRequest(brick="p", parent=ROOT, name=b"f"), Ctx(1, "c:3")).err == 0
    assert primary.pinned == {gfid}
    assert svc.Release(pb.FhRequest(brick="p", fh=fhs[0]), Ctx(1, "")).err == 0
    assert index_file(path, gfid).exists()  # the primary still has it open
    assert svc.Release(pb.FhRequest(brick="p", fh=fhs[1]), Ctx(1, "")).err == 0
    assert primary.pinned == set()
    wait_for(lambda: not index_file(path, gfid).exists(), 10, "the member to unpin")
    assert not index_file(tmp_path / "p", gfid).exists()
    svc.bricks["p"].close()
