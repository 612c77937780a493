"""Attacks on a brick daemon by a hostile client with the project's own stubs over a
plain channel (issue 12, "Brick hardening"), each against a real gfs-brickd on
loopback: the daemon must not be steered outside its bricks, must not let a non-root
caller make privileged objects, and a member applies forwards and heal writes only
from the primary it was configured with."""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
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
NOWHERE = "127.0.0.1:1"  # a primary's address the member never calls
NOBODY = 65534
VOL = "6f1c1d6e-0000-4000-8000-0000000000aa"


class Stubs:
    def __init__(self, d: BrickDaemon) -> None:
        self.channel = insecure_channel(d.address)
        self.brick: Any = brick_pb2_grpc.BrickStub(self.channel)  # type: ignore[no-untyped-call]
        self.admin: Any = admin_pb2_grpc.AdminStub(self.channel)  # type: ignore[no-untyped-call]

    def call(self, method: str, req: Any, epoch: int = 0) -> Any:
        md = [("gfs-epoch", str(epoch))] if epoch else None
        return getattr(self.brick, method)(req, timeout=10, metadata=md)

    def make(self, brick: str, parent: bytes, name: bytes, epoch: int = 0, **kw: Any) -> Any:
        kw.setdefault("kind", pb.NODE_KIND_FILE)
        kw.setdefault("mode", 0o100644)
        kw.setdefault("gfid", uuid.uuid4().bytes)
        req = pb.MakeNodeRequest(brick=brick, parent=parent, name=name, **kw)
        return self.call("MakeNode", req, epoch)


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[BrickDaemon, Stubs]]:
    """One daemon serving two bricks, as a node serving two volumes does."""
    d = BrickDaemon({"b0": tmp_path / "b0", "b1": tmp_path / "b1"}, tmp_path / "brickd.log")
    d.start()
    s = Stubs(d)
    try:
        yield d, s
    finally:
        s.channel.close()
        d.stop()


def index_target(parent: bytes, name: bytes) -> bytes:
    h = parent.hex()
    return f"../../{h[0:2]}/{h[2:4]}/{uuid.UUID(bytes=parent)}/".encode() + name


def test_crafted_symlink_cannot_reach_another_volumes_brick(
    two: tuple[BrickDaemon, Stubs],
) -> None:
    d, s = two
    b1 = d.bricks["b1"]
    secret = s.make("b1", ROOT, b"secret", kind=pb.NODE_KIND_DIR, mode=0o40700)
    assert secret.err == 0
    assert s.make("b1", secret.attr.gfid, b"payroll").err == 0
    # On b0: a symlink with the GFID of b1's directory, whose target reads like a
    # directory's index entry climbing out of b0 into b1.
    for target in (
        index_target(ROOT, b"../b1/secret"),
        index_target(ROOT, b"../../../../../../../../" + str(b1 / "secret").encode()[1:]),
    ):
        made = s.make(
            "b0",
            ROOT,
            b"trap",
            kind=pb.NODE_KIND_SYMLINK,
            mode=0o120777,
            target=target,
            gfid=secret.attr.gfid,
        )
        assert made.err == 0
        listing = s.call("ReadDir", pb.ReadDirRequest(brick="b0", gfid=secret.attr.gfid))
        assert listing.err != 0 and not listing.entries
        planted = s.make("b0", secret.attr.gfid, b"planted")
        assert planted.err != 0
        assert (
            s.call(
                "Lookup", pb.LookupRequest(brick="b0", parent=secret.attr.gfid, name=b"payroll")
            ).err
            != 0
        )
        assert sorted(os.listdir(b1 / "secret")) == ["payroll"]
        unlink = s.call("Unlink", pb.NameRequest(brick="b0", parent=ROOT, name=b"trap"))
        assert unlink.err == 0


def test_symlink_is_never_walked_as_a_directory(two: tuple[BrickDaemon, Stubs]) -> None:
    d, s = two
    sub = s.make("b0", ROOT, b"sub", kind=pb.NODE_KIND_DIR, mode=0o40755)
    link = s.make("b0", ROOT, b"l", kind=pb.NODE_KIND_SYMLINK, mode=0o120777, target=b"sub")
    assert sub.err == 0 and link.err == 0
    r = s.call("ReadDir", pb.ReadDirRequest(brick="b0", gfid=link.attr.gfid))
    assert r.err == errno.ENOTDIR
    r = s.make("b0", link.attr.gfid, b"x")
    assert r.err == errno.ENOTDIR
    assert os.listdir(d.bricks["b0"] / "sub") == []


def test_gfid_of_an_existing_object_is_not_taken_twice(two: tuple[BrickDaemon, Stubs]) -> None:
    _, s = two
    sub = s.make("b0", ROOT, b"sub", kind=pb.NODE_KIND_DIR, mode=0o40755)
    alias = s.make("b0", ROOT, b"alias", kind=pb.NODE_KIND_SYMLINK, mode=0o120777,
                   target=b"x", gfid=sub.attr.gfid)  # fmt: skip
    assert alias.err == errno.EEXIST
    retried = s.make("b0", ROOT, b"sub", kind=pb.NODE_KIND_DIR, mode=0o40755, gfid=sub.attr.gfid)
    assert retried.err == 0  # the same create again stays idempotent


@pytest.mark.parametrize(
    ("name", "code"),
    [(b"a/b", errno.EINVAL), (b"..", errno.EINVAL), (b"x\0", errno.EINVAL),
     (b"n" * 256, errno.ENAMETOOLONG)],
)  # fmt: skip
def test_every_entry_point_checks_names_and_gfids(
    two: tuple[BrickDaemon, Stubs], name: bytes, code: int
) -> None:
    _, s = two
    f = s.make("b0", ROOT, b"f")
    assert f.err == 0
    g = f.attr.gfid
    calls = [
        ("Lookup", pb.LookupRequest(brick="b0", parent=ROOT, name=name)),
        ("Unlink", pb.NameRequest(brick="b0", parent=ROOT, name=name)),
        ("Rmdir", pb.NameRequest(brick="b0", parent=ROOT, name=name)),
        ("Rename", pb.RenameRequest(brick="b0", old_parent=ROOT, old_name=b"f",
                                    new_parent=ROOT, new_name=name)),
        ("Rename", pb.RenameRequest(brick="b0", old_parent=ROOT, old_name=name,
                                    new_parent=ROOT, new_name=b"g")),
        ("Link", pb.LinkRequest(brick="b0", gfid=g, new_parent=ROOT, new_name=name)),
    ]  # fmt: skip
    for method, req in calls:
        assert s.call(method, req).err == code, method
    bad = g[:15]
    for method, req in [
        ("GetAttr", pb.GfidRequest(brick="b0", gfid=bad)),
        ("ReadDir", pb.ReadDirRequest(brick="b0", gfid=bad)),
        ("Lookup", pb.LookupRequest(brick="b0", parent=bad, name=b"f")),
        ("SetXattr", pb.XattrRequest(brick="b0", gfid=bad, name=b"user.a", value=b"1")),
        ("Link", pb.LinkRequest(brick="b0", gfid=bad, new_parent=ROOT, new_name=b"h")),
    ]:
        assert s.call(method, req).err == errno.EINVAL, method


# -- privileged objects ----------------------------------------------------------------------


def test_non_root_caller_makes_no_setuid_root_file_or_device(
    two: tuple[BrickDaemon, Stubs],
) -> None:
    d, s = two
    brick = d.bricks["b0"]
    blk = s.make("b0", ROOT, b"disk", kind=pb.NODE_KIND_SPECIAL,
                 mode=stat.S_IFBLK | 0o666, rdev=os.makedev(8, 0), uid=NOBODY, gid=NOBODY)  # fmt: skip
    assert blk.err == errno.EPERM and not (brick / "disk").exists()
    chr_ = s.make("b0", ROOT, b"mem", kind=pb.NODE_KIND_SPECIAL,
                  mode=stat.S_IFCHR | 0o666, rdev=os.makedev(1, 1), uid=NOBODY, gid=NOBODY)  # fmt: skip
    assert chr_.err == errno.EPERM and not (brick / "mem").exists()
    sgid = s.make("b0", ROOT, b"sg", mode=0o102755, uid=NOBODY, gid=0)
    assert sgid.err == errno.EPERM and not (brick / "sg").exists()
    # The attack of the issue: a file of nobody's, given to root, then made setuid.
    f = s.make("b0", ROOT, b"id", mode=0o100755, uid=NOBODY, gid=NOBODY)
    assert f.err == 0
    g = f.attr.gfid
    own = s.call("SetAttr", pb.SetAttrRequest(brick="b0", gfid=g, set_uid=True, uid=0,
                                              set_gid=True, gid=0))  # fmt: skip
    assert own.err == 0
    for caller in ({}, {"caller_uid": NOBODY}):
        r = s.call("SetAttr", pb.SetAttrRequest(brick="b0", gfid=g, set_mode=True,
                                                mode=0o4755, **caller))  # fmt: skip
        assert r.err == errno.EPERM
        r = s.call("SetAttr", pb.SetAttrRequest(brick="b0", gfid=g, set_mode=True,
                                                mode=0o2755, **caller))  # fmt: skip
        assert r.err == errno.EPERM
        cap = pb.XattrRequest(brick="b0", gfid=g, name=b"security.capability",
                              value=b"\x01\x00\x00\x02" + b"\xff" * 16, **caller)  # fmt: skip
        assert s.call("SetXattr", cap).err == errno.EPERM
    st = os.lstat(brick / "id")
    assert not st.st_mode & (stat.S_ISUID | stat.S_ISGID)
    # A non-root user's own setuid file is ordinary POSIX.
    mine = s.make("b0", ROOT, b"mine", mode=0o104755, uid=NOBODY, gid=NOBODY)
    assert mine.err == 0 and os.lstat(brick / "mine").st_mode & stat.S_ISUID
    # Root on its client (uid 0 in the request) may, with the default option.
    root_dev = s.make("b0", ROOT, b"null", kind=pb.NODE_KIND_SPECIAL,
                      mode=stat.S_IFCHR | 0o600, rdev=os.makedev(1, 3))  # fmt: skip
    assert root_dev.err == 0
    r = s.call("SetAttr", pb.SetAttrRequest(brick="b0", gfid=g, set_mode=True, mode=0o4755,
                                            caller_uid=0))  # fmt: skip
    assert r.err == 0 and os.lstat(brick / "id").st_mode & stat.S_ISUID


def test_option_off_refuses_root_too(tmp_path: Path) -> None:
    d = BrickDaemon({"m": tmp_path / "m"}, tmp_path / "brickd.log").start()
    s = Stubs(d)
    try:
        cfg = apb.ConfigureRequest(
            brick="m", volume="v", epoch=1, primary="m",
            members=[apb.Member(brick="m", address=d.address, state="in_sync")],
            min_in_sync=1, failure_timeout=3, deny_privileged=True,
        )  # fmt: skip
        assert s.admin.Configure(cfg, timeout=10).err == 0
        dev = s.make("m", ROOT, b"null", epoch=1, kind=pb.NODE_KIND_SPECIAL,
                     mode=stat.S_IFCHR | 0o600, rdev=os.makedev(1, 3))  # fmt: skip
        assert dev.err == errno.EPERM
        suid = s.make("m", ROOT, b"su", epoch=1, mode=0o104755)
        assert suid.err == errno.EPERM
        plain = s.make("m", ROOT, b"plain", epoch=1)
        assert plain.err == 0
        r = s.call("SetAttr", pb.SetAttrRequest(brick="m", gfid=plain.attr.gfid, set_mode=True,
                                                mode=0o4755, caller_uid=0), 1)  # fmt: skip
        assert r.err == errno.EPERM
        cfg.epoch, cfg.deny_privileged = 2, False
        assert s.admin.Configure(cfg, timeout=10).err == 0
        assert s.make("m", ROOT, b"su", epoch=2, mode=0o104755).err == 0
    finally:
        s.channel.close()
        d.stop()


# -- forwards and heal writes ----------------------------------------------------------------


@pytest.fixture
def member(tmp_path: Path) -> Iterator[tuple[BrickDaemon, Stubs]]:
    d = BrickDaemon({"m": tmp_path / "m"}, tmp_path / "brickd.log").start()
    s = Stubs(d)
    cfg = apb.ConfigureRequest(
        brick="m", volume="v", epoch=3, primary="p",
        members=[apb.Member(brick="p", address=NOWHERE, state="in_sync"),
                 apb.Member(brick="m", address=d.address, state="in_sync")],
        min_in_sync=1, failure_timeout=3,
    )  # fmt: skip
    assert s.admin.Configure(cfg, timeout=10).err == 0
    try:
        yield d, s
    finally:
        s.channel.close()
        d.stop()


def forward_make(s: Stubs, name: bytes, epoch: int, sender: str) -> Any:
    make = pb.MakeNodeRequest(parent=ROOT, name=name, gfid=uuid.uuid4().bytes,
                              kind=pb.NODE_KIND_FILE, mode=0o100644)  # fmt: skip
    f = pb.ForwardRequest(brick="m", epoch=epoch, method="MakeNode",
                          payload=make.SerializeToString(), sender=sender)  # fmt: skip
    return s.brick.Forward(f, timeout=10)


def test_forward_only_from_the_configured_primary(member: tuple[BrickDaemon, Stubs]) -> None:
    d, s = member
    path = d.bricks["m"]
    for epoch, sender in [(3, ""), (3, "evil"), (3, "m"), (9, "evil"), (9, "")]:
        r = forward_make(s, b"forged", epoch, sender)
        assert r.err == errno.EACCES, (epoch, sender)
    assert not (path / "forged").exists()
    r = forward_make(s, b"real", 3, "p")
    assert r.err == 0 and pb.EntryReply.FromString(r.reply).err == 0
    assert (path / "real").exists()


def test_heal_writes_only_from_the_configured_primary(member: tuple[BrickDaemon, Stubs]) -> None:
    d, s = member
    path = d.bricks["m"]
    attr = pb.Attr(gfid=uuid.uuid4().bytes, mode=0o100644)
    for sender in ("", "evil", "m"):
        put = pb.HealPutRequest(
            brick="m", epoch=3, parent=ROOT, name=b"h", attr=attr, sender=sender
        )
        assert s.brick.HealPut(put, timeout=10).err == errno.EACCES
    assert not (path / "h").exists()
    put = pb.HealPutRequest(brick="m", epoch=3, parent=ROOT, name=b"h", attr=attr, sender="p")
    assert s.brick.HealPut(put, timeout=10).err == 0 and (path / "h").exists()
    gone = pb.HealRemoveRequest(brick="m", epoch=3, parent=ROOT, name=b"h", sender="evil")
    assert s.brick.HealRemove(gone, timeout=10).err == errno.EACCES
    assert (path / "h").exists()


# -- state files -----------------------------------------------------------------------------


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[BrickDaemon, Path]]:
    root = tmp_path / "root"
    root.mkdir()
    d = BrickDaemon({"fixed": tmp_path / "fixed"}, tmp_path / "brickd.log", ["--root", str(root)])
    d.start()
    try:
        yield d, root
    finally:
        d.stop()


def serve_replicated(s: Stubs, root: Path, name: str) -> Path:
    p = s.admin.Provision(
        apb.ProvisionRequest(root=str(root), name=name, volume_id=VOL, volume="v", brick=name),
        timeout=10,
    )
    assert p.err == 0
    assert (
        s.admin.Serve(apb.ServeRequest(name=name, path=p.path, replicated=True), timeout=10).err
        == 0
    )
    cfg = apb.ConfigureRequest(
        brick=name, volume="v", epoch=1, primary=name, token="secret",
        members=[apb.Member(brick=name, address=NOWHERE, state="in_sync")],
        min_in_sync=1, failure_timeout=3,
    )  # fmt: skip
    assert s.admin.Configure(cfg, timeout=10).err == 0
    return Path(p.path)


def mode(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


def test_state_files_are_private(node: tuple[BrickDaemon, Path]) -> None:
    d, root = node
    s = Stubs(d)
    brick = serve_replicated(s, root, "v-b0")
    s.channel.close()
    assert mode(root / ".gfs-node.json") == 0o600
    assert mode(brick / ".gfs") == 0o700
    for f in ("replica.json", "owner.json", "brick-id"):
        assert mode(brick / ".gfs" / f) == 0o600, f


def test_served_paths_outside_roots_are_refused_after_restart(
    node: tuple[BrickDaemon, Path], tmp_path: Path
) -> None:
    d, root = node
    s = Stubs(d)
    brick = serve_replicated(s, root, "v-b0")
    s.channel.close()
    d.stop(signal.SIGKILL)
    secret = tmp_path / "root-only"
    secret.mkdir(mode=0o700)
    (secret / "key").write_text("s3cret")
    state = root / ".gfs-node.json"
    data = json.loads(state.read_text())
    data["served"]["evil"] = {"path": str(secret), "quota": 0}
    data["served"]["climb"] = {"path": str(root / ".." / "root-only"), "quota": 0}
    state.write_text(json.dumps(data))
    os.chmod(state, 0o666)  # as umask 0 used to leave it
    os.chmod(brick / ".gfs" / "replica.json", 0o644)
    d.start()
    s = Stubs(d)
    try:
        served = {b.name for b in s.admin.Info(apb.InfoRequest(), timeout=10).bricks}
        assert served == {"fixed", "v-b0"}
        assert s.brick.Ping(pb.PingRequest(brick="evil"), timeout=10).err == errno.ENODEV
        assert s.brick.Ping(pb.PingRequest(brick="climb"), timeout=10).err == errno.ENODEV
    finally:
        s.channel.close()
    log = d.log.read_text()
    assert "brick_outside_roots brick=evil" in log and "brick_outside_roots brick=climb" in log
    assert "state_file_mode_fixed" in log
    assert mode(state) == 0o600 and mode(brick / ".gfs" / "replica.json") == 0o600
    assert not (secret / ".gfs").exists()  # never even opened as a brick
