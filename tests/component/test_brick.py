"""gfs-brickd over real gRPC on loopback: the brick API's contract, edge by edge."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from gfs.proto import brick_pb2 as pb
from gfs.proto import brick_pb2_grpc
from gfs.rpc.channel import insecure_channel
from tests.procs import BIN, BrickDaemon, free_port, wait_for

ROOT = uuid.UUID(int=1).bytes
FILE, DIR, SYMLINK, SPECIAL = (
    pb.NODE_KIND_FILE,
    pb.NODE_KIND_DIR,
    pb.NODE_KIND_SYMLINK,
    pb.NODE_KIND_SPECIAL,
)


class Client:
    """Thin synchronous helper: every call asserts nothing, returns the reply."""

    def __init__(self, address: str, brick: str = "b0") -> None:
        self.channel = insecure_channel(address)
        self.stub: Any = brick_pb2_grpc.BrickStub(self.channel)  # type: ignore[no-untyped-call]
        self.brick = brick

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.stub, name)
        req_type = getattr(pb, _REQUEST[name])

        def invoke(**kw: Any) -> Any:
            kw.setdefault("brick", self.brick)
            return method(req_type(**kw), timeout=10)

        return invoke

    def make(self, parent: bytes, name: bytes, kind: int = FILE, **kw: Any) -> Any:
        kw.setdefault("mode", {FILE: 0o100644, DIR: 0o40755, SYMLINK: 0o120777}.get(kind, 0))
        return self.MakeNode(parent=parent, name=name, gfid=uuid.uuid4().bytes, kind=kind, **kw)


_REQUEST = {
    "Ping": "PingRequest",
    "Lookup": "LookupRequest",
    "GetAttr": "GfidRequest",
    "SetAttr": "SetAttrRequest",
    "MakeNode": "MakeNodeRequest",
    "Unlink": "NameRequest",
    "Rmdir": "NameRequest",
    "Rename": "RenameRequest",
    "Link": "LinkRequest",
    "ReadLink": "GfidRequest",
    "Open": "OpenRequest",
    "Read": "ReadRequest",
    "Write": "WriteRequest",
    "Release": "FhRequest",
    "Fallocate": "FallocateRequest",
    "ReadDir": "ReadDirRequest",
    "Statfs": "StatfsRequest",
    "SetXattr": "XattrRequest",
    "GetXattr": "XattrRequest",
    "ListXattr": "GfidRequest",
    "RemoveXattr": "XattrRequest",
    "Lock": "LockRequest",
}


@pytest.fixture
def c(brickd: BrickDaemon) -> Iterator[Client]:
    cl = Client(brickd.address)
    yield cl
    cl.channel.close()


def tree(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


def test_errors_as_data(c: Client) -> None:
    assert c.Ping(brick="nope").err == errno.ENODEV
    assert c.GetAttr(gfid=uuid.uuid4().bytes).err == errno.ESTALE
    assert c.GetAttr(gfid=b"short").err == errno.EINVAL
    assert c.Read(fh=12345, offset=0, size=10).err == errno.EBADF
    assert c.Lookup(parent=ROOT, name=b"missing").err == errno.ENOENT


@pytest.mark.parametrize(
    ("name", "code"),
    [
        (b"..", errno.EINVAL),
        (b".", errno.EINVAL),
        (b"a/b", errno.EINVAL),
        (b"../../escape", errno.EINVAL),
        (b"x\0y", errno.EINVAL),
        (b"", errno.EINVAL),
        (b"n" * 256, errno.ENAMETOOLONG),
        (b".gfs", errno.EPERM),
    ],
)
def test_bad_names_rejected(c: Client, brickd: BrickDaemon, name: bytes, code: int) -> None:
    brick = brickd.bricks["b0"]
    before = tree(brick.parent)
    assert c.make(ROOT, name).err == code
    assert c.make(ROOT, name, DIR).err == code
    assert tree(brick.parent) == before


def test_meta_folder_is_invisible(c: Client) -> None:
    assert c.Lookup(parent=ROOT, name=b".gfs").err == errno.ENOENT
    names = [e.name for e in c.ReadDir(gfid=ROOT, max_entries=100).entries]
    assert b".gfs" not in names


def test_symlink_cannot_lead_outside(c: Client, brickd: BrickDaemon, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    r = c.make(ROOT, b"esc", SYMLINK, target=os.fsencode(outside))
    assert r.err == 0
    link = r.attr.gfid
    assert c.ReadLink(gfid=link).target == os.fsencode(outside)
    # Using the symlink as a directory must fail, not create anything outside.
    assert c.make(link, b"planted").err in (errno.ESTALE, errno.ENOTDIR)
    assert c.Lookup(parent=link, name=b"x").err in (errno.ESTALE, errno.ENOTDIR)
    # Setting attributes or xattrs on the link never touches its target.
    assert c.SetAttr(gfid=link, set_uid=True, uid=65534).err == 0
    assert outside.stat().st_uid == 0
    assert c.SetAttr(gfid=link, set_size=True, size=0).err == errno.EOPNOTSUPP
    assert c.Open(gfid=link, flags=os.O_RDONLY).err == errno.ELOOP
    assert list(outside.iterdir()) == []


def test_path_of_path_max_minus_one(c: Client, brickd: BrickDaemon) -> None:
    # 15 directories of 255 bytes plus a final name: 4095 bytes below the volume root.
    parent = ROOT
    total = 0
    for i in range(15):
        name = (b"%02d" % i) * 127 + b"d"
        r = c.make(parent, name, DIR)
        assert r.err == 0, i
        parent = r.attr.gfid
        total += len(name) + 1
    last = b"f" * (4095 - total)
    r = c.make(parent, last, FILE, open=True, flags=os.O_RDWR)
    assert r.err == 0 and total + len(last) == 4095
    assert c.Write(fh=r.fh, offset=0, data=b"deep").err == 0
    assert c.Read(fh=r.fh, offset=0, size=10).data == b"deep"
    assert c.Release(fh=r.fh).err == 0
    # A fresh daemon (empty fd cache) resolves the deepest directory by walking the index.
    brickd.stop()
    brickd.start()
    c2 = Client(brickd.address)
    assert c2.Lookup(parent=parent, name=last).attr.size == 4


def test_deep_tree_beyond_symlink_limit(c: Client, brickd: BrickDaemon) -> None:
    parent = ROOT
    for _ in range(100):  # more than the kernel's 40 nested symlinks
        parent = c.make(parent, b"d", DIR).attr.gfid
    brickd.stop()
    brickd.start()
    c2 = Client(brickd.address)
    assert c2.GetAttr(gfid=parent).err == 0
    assert c2.make(parent, b"leaf").err == 0


def test_directory_renames_keep_gfid_reachable(c: Client, brickd: BrickDaemon) -> None:
    a = c.make(ROOT, b"a", DIR).attr.gfid
    b = c.make(a, b"b", DIR).attr.gfid
    f = c.make(b, b"f").attr.gfid
    assert c.Rename(old_parent=ROOT, old_name=b"a", new_parent=ROOT, new_name=b"a2").err == 0
    other = c.make(ROOT, b"other", DIR).attr.gfid
    assert c.Rename(old_parent=a, old_name=b"b", new_parent=other, new_name=b"b2").err == 0
    brickd.stop()
    brickd.start()
    c2 = Client(brickd.address)
    assert c2.GetAttr(gfid=b).err == 0
    assert c2.Lookup(parent=b, name=b"f").attr.gfid == f
    assert c2.Rename(old_parent=ROOT, old_name=b"other", new_parent=b, new_name=b"x").err == (
        errno.EINVAL
    )


def test_make_node_retry_is_idempotent(c: Client) -> None:
    gfid = uuid.uuid4().bytes
    req = {"parent": ROOT, "name": b"once", "gfid": gfid, "kind": FILE, "mode": 0o100600}
    assert c.MakeNode(**req).err == 0
    again = c.MakeNode(**req)
    assert again.err == 0 and again.attr.gfid == gfid
    other = c.make(ROOT, b"once")
    assert other.err == errno.EEXIST


def test_make_node_umask_or_default_acl(c: Client, brickd: BrickDaemon) -> None:
    """The umask is applied unless the parent has a default ACL, which is inherited."""
    root = brickd.bricks["b0"]
    assert c.make(ROOT, b"f", mode=0o100666, umask=0o027).attr.mode == 0o100640
    assert c.make(ROOT, b"d", DIR, mode=0o40777, umask=0o027).attr.mode == 0o40750
    acl = c.make(ROOT, b"acl", DIR, mode=0o40755).attr.gfid
    subprocess.run(["setfacl", "-d", "-m", "u:nobody:rw", root / "acl"], check=True, timeout=30)
    f = c.make(acl, b"f", mode=0o100666, umask=0o077).attr
    assert f.mode == 0o100664  # group class = the inherited mask (rw-), no umask
    sub = c.make(acl, b"sub", DIR, mode=0o40777, umask=0o077).attr
    assert sub.mode == 0o40775
    for p in (root / "acl" / "f", root / "acl" / "sub"):
        assert "system.posix_acl_access" in os.listxattr(p)
    assert "system.posix_acl_default" in os.listxattr(root / "acl" / "sub")


def test_unlink_while_open_then_release(c: Client, brickd: BrickDaemon) -> None:
    r = c.make(ROOT, b"tmp", FILE, open=True, flags=os.O_RDWR)
    c.Write(fh=r.fh, offset=0, data=b"still here")
    assert c.Unlink(parent=ROOT, name=b"tmp").err == 0
    assert c.Lookup(parent=ROOT, name=b"tmp").err == errno.ENOENT
    assert c.Read(fh=r.fh, offset=0, size=100).data == b"still here"
    assert c.GetAttr(gfid=r.attr.gfid).attr.nlink == 0
    assert c.Release(fh=r.fh).err == 0
    assert c.GetAttr(gfid=r.attr.gfid).err == errno.ESTALE
    index = brickd.bricks["b0"] / ".gfs" / "gfid"
    assert not [p for p in index.rglob("*") if p.is_file() and not p.is_symlink()]


def test_orphans_of_a_killed_daemon_are_swept(c: Client, brickd: BrickDaemon) -> None:
    r = c.make(ROOT, b"tmp", FILE, open=True, flags=os.O_RDWR)
    assert c.Unlink(parent=ROOT, name=b"tmp").err == 0
    index = brickd.bricks["b0"] / ".gfs" / "gfid"

    def files() -> list[Path]:
        return [p for p in index.rglob("*") if p.is_file() and not p.is_symlink()]

    assert len(files()) == 1  # kept alive by the open handle
    brickd.stop(signal.SIGKILL)
    brickd.start()
    assert files() == []
    assert Client(brickd.address).GetAttr(gfid=r.attr.gfid).err == errno.ESTALE


def test_hard_links_count_without_index(c: Client) -> None:
    r = c.make(ROOT, b"f")
    assert r.attr.nlink == 1
    d = c.make(ROOT, b"d", DIR).attr.gfid
    assert c.Link(gfid=r.attr.gfid, new_parent=d, new_name=b"g").attr.nlink == 2
    assert c.Link(gfid=d, new_parent=ROOT, new_name=b"dl").err == errno.EISDIR
    assert c.Unlink(parent=ROOT, name=b"f").err == 0
    assert c.GetAttr(gfid=r.attr.gfid).attr.nlink == 1


def test_rename_flags(c: Client) -> None:
    a = c.make(ROOT, b"a").attr.gfid
    b = c.make(ROOT, b"b").attr.gfid
    noreplace = {"old_parent": ROOT, "old_name": b"a", "new_parent": ROOT, "new_name": b"b"}
    assert c.Rename(**noreplace, flags=1).err == errno.EEXIST
    assert c.Rename(**noreplace, flags=2).err == 0
    assert c.Lookup(parent=ROOT, name=b"a").attr.gfid == b
    assert c.Lookup(parent=ROOT, name=b"b").attr.gfid == a
    assert c.Rename(**noreplace, flags=3).err == errno.EINVAL
    assert c.Rename(**noreplace, flags=8).err == errno.EINVAL


@pytest.mark.parametrize(
    ("mode", "size_after", "expect"),
    [
        (0, 8192, b"A" * 4096),
        (0x01, 4096, b"A" * 4096),  # KEEP_SIZE
        (0x03, 4096, b"A" * 1024 + b"\0" * 2048 + b"A" * 1024),  # PUNCH_HOLE|KEEP_SIZE
        (0x10, 4096, b"A" * 1024 + b"\0" * 2048 + b"A" * 1024),  # ZERO_RANGE
    ],
)
def test_fallocate_modes_take_effect(c: Client, mode: int, size_after: int, expect: bytes) -> None:
    r = c.make(ROOT, b"f", FILE, open=True, flags=os.O_RDWR)
    c.Write(fh=r.fh, offset=0, data=b"A" * 4096)
    offset, length = (4096, 4096) if mode in (0, 1) else (1024, 2048)
    assert c.Fallocate(fh=r.fh, mode=mode, offset=offset, length=length).err == 0
    assert c.GetAttr(gfid=r.attr.gfid).attr.size == size_after
    assert c.Read(fh=r.fh, offset=0, size=4096).data == expect


def test_fallocate_unknown_mode_is_eopnotsupp(c: Client) -> None:
    r = c.make(ROOT, b"f", FILE, open=True, flags=os.O_RDWR)
    c.Write(fh=r.fh, offset=0, data=b"A" * 8192)
    for mode in (0x08, 0x20, 0x40):  # COLLAPSE_RANGE, INSERT_RANGE, UNSHARE_RANGE
        assert c.Fallocate(fh=r.fh, mode=mode, offset=0, length=4096).err == errno.EOPNOTSUPP
    assert c.Read(fh=r.fh, offset=0, size=8192).data == b"A" * 8192


def test_readdir_offsets_survive_changes(c: Client) -> None:
    keep = {b"keep%03d" % i for i in range(60)}
    churn = [b"churn%03d" % i for i in range(60)]
    for n in sorted(keep) + churn:
        assert c.make(ROOT, n).err == 0
    seen: list[bytes] = []
    offset = 0
    step = 0
    while True:
        r = c.ReadDir(gfid=ROOT, offset=offset, max_entries=7)
        assert r.err == 0
        seen += [e.name for e in r.entries]
        assert all(e.attr.gfid for e in r.entries)
        if r.eof:
            break
        offset = r.entries[-1].cookie
        # Between pages: remove some churn entries and add new ones.
        c.Unlink(parent=ROOT, name=churn[step])
        c.make(ROOT, b"new%03d" % step)
        step += 1
    kept = [n for n in seen if n in keep]
    assert sorted(kept) == sorted(keep)  # every stable entry exactly once
    assert len(seen) == len(set(seen))


def test_xattrs(c: Client) -> None:
    f = c.make(ROOT, b"f").attr.gfid
    assert c.SetXattr(gfid=f, name=b"user.k", value=b"v").err == 0
    assert c.GetXattr(gfid=f, name=b"user.k").value == b"v"
    assert c.SetXattr(gfid=f, name=b"user.k", value=b"w", flags=1).err == errno.EEXIST
    assert c.SetXattr(gfid=f, name=b"user.n", value=b"w", flags=2).err == errno.ENODATA
    assert c.SetXattr(gfid=f, name=b"trusted.t", value=b"1").err == 0
    names = set(c.ListXattr(gfid=f).names)
    assert names == {b"user.k", b"trusted.t"}  # the GFID xattr stays hidden
    assert c.GetXattr(gfid=f, name=b"trusted.gfs.gfid").err == errno.ENODATA
    assert c.SetXattr(gfid=f, name=b"trusted.gfs.gfid", value=b"x").err == errno.EPERM
    assert c.RemoveXattr(gfid=f, name=b"user.k").err == 0
    assert c.GetXattr(gfid=f, name=b"user.k").err == errno.ENODATA


def test_record_locks_across_owners(c: Client) -> None:
    f = c.make(ROOT, b"f").attr.gfid
    lk = {"gfid": f, "start": 0, "length": 100}
    assert c.Lock(**lk, owner=b"A", type=pb.LOCK_TYPE_WRITE, pid=1).err == 0
    assert c.Lock(**lk, owner=b"B", type=pb.LOCK_TYPE_READ, pid=2).err == errno.EAGAIN
    t = c.Lock(**lk, owner=b"B", type=pb.LOCK_TYPE_READ, test=True)
    assert (t.type, t.start, t.length, t.pid) == (pb.LOCK_TYPE_WRITE, 0, 100, 1)
    # Outside the range there is no conflict.
    assert c.Lock(gfid=f, start=100, length=0, owner=b"B", type=pb.LOCK_TYPE_WRITE).err == 0

    got: list[int] = []

    def waiter() -> None:
        got.append(c.Lock(**lk, owner=b"B", type=pb.LOCK_TYPE_READ, wait=True).err)

    th = threading.Thread(target=waiter)
    th.start()
    th.join(0.3)
    assert th.is_alive() and got == []  # blocked by A's lock
    assert c.Lock(**lk, owner=b"A", type=pb.LOCK_TYPE_UNLOCK).err == 0
    th.join(10)
    assert got == [0]


def test_statfs(c: Client) -> None:
    s = c.Statfs()
    assert s.err == 0 and s.bsize > 0 and s.namemax == 255


def run_brickd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "gfs-brickd"), *args], capture_output=True, text=True, timeout=30
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no address"),
        (["--listen", "127.0.0.1:1"], "no bricks"),
        (["--listen", "nonsense", "--brick", "b=/tmp"], "HOST:PORT"),
        (["--listen", "127.0.0.1:1", "--brick", "b0"], "NAME=PATH"),
        (["--listen", "127.0.0.1:1", "--brick", "b0=/does/not/exist"], "not a directory"),
        (["--listen", "127.0.0.1:1", "--config", "/does/not/exist"], "config"),
    ],
)
def test_brickd_bad_command_lines(args: list[str], message: str) -> None:
    r = run_brickd(*args)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_brickd_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "brickd.toml"
    cfg.write_text('listen = "127.0.0.1:1"\nbogus = 1\n')
    r = run_brickd("--config", str(cfg))
    assert r.returncode == 2 and "unknown setting(s) bogus" in r.stderr
    (tmp_path / "b0").mkdir()
    address = f"127.0.0.1:{free_port()}"
    cfg.write_text(
        f'listen = "{address}"\nworkers = 4\ninsecure = true\n[bricks]\nb0 = "{tmp_path / "b0"}"\n'
    )
    proc = subprocess.Popen([str(BIN / "gfs-brickd"), "--config", str(cfg)])
    try:
        cl = Client(address)

        def up() -> bool:
            try:
                return bool(cl.Ping().err == 0)
            except grpc.RpcError:
                return False

        wait_for(up, 20, "gfs-brickd started from a config file")
        cl.channel.close()
    finally:
        proc.terminate()
        proc.wait(10)
