"""The client's caches on two mounts of one replica-3 volume: xattr names
(gfs.client.capcache, filled by listings) and lookups answered from a listing
(gfs.client.dircache). A change through the same mount must show at once, one
through another mount within the attribute timeout.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gfs.api import models as m
from tests.cluster import local_cluster
from tests.fuse.test_posix_perms import as_nobody
from tests.procs import Mount, wait_for

ATTR_TIMEOUT = 2.0


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    with local_cluster(tmp_path) as c, c.client() as api:
        api.volume_create(m.VolumeCreate(name="demo", replica=3, size="100MiB"))
        api.volume_start("demo")
        opts = (
            f"token-file={c.gfsd.state / 'admin.token'},"
            f"attr-timeout={ATTR_TIMEOUT},entry-timeout={ATTR_TIMEOUT}"
        )
        a = Mount(f"{c.gfsd.address}:/demo", tmp_path / "a", tmp_path / "a.log", opts).start()
        try:
            b = Mount(f"{c.gfsd.address}:/demo", tmp_path / "b", tmp_path / "b.log", opts)
            b.start()
            try:
                yield a.mountpoint, b.mountpoint
            finally:
                b.stop()
        finally:
            a.stop()


def xattr(p: Path, name: str) -> bytes | None:
    try:
        return os.getxattr(p, name)
    except OSError as e:
        if e.errno != errno.ENODATA:
            raise
        return None


def prime(d: Path) -> None:
    """List `d` as `ls -l` does: the cache then knows every entry has no xattrs."""
    for e in os.scandir(d):
        assert xattr(Path(e.path), "user.k") is None
        assert os.listxattr(e.path) == []


def acl(p: Path) -> str:
    return subprocess.run(
        ["getfacl", "-cp", str(p)], capture_output=True, text=True, check=True
    ).stdout


def test_same_mount_sees_its_changes_at_once(mounts: tuple[Path, Path]) -> None:
    a, _ = mounts
    (a / "d").mkdir()
    for i in range(300):  # more entries than one kernel readdir buffer holds
        (a / "d" / f"f{i}").write_bytes(b"")
    f = a / "d" / "f7"
    prime(a / "d")
    os.setxattr(f, "user.k", b"v1")
    assert xattr(f, "user.k") == b"v1"
    assert os.listxattr(f) == ["user.k"]
    prime_names = {e.name: os.listxattr(e.path) for e in os.scandir(a / "d")}
    assert len(prime_names) == 300 and prime_names["f7"] == ["user.k"]
    os.removexattr(f, "user.k")
    assert xattr(f, "user.k") is None
    assert os.listxattr(f) == []
    prime(a / "d")
    subprocess.run(["setfacl", "-m", "u:1234:r", str(f)], check=True)
    assert "user:1234:r--" in acl(f)
    os.chmod(f, 0o600)  # rewrites the ACL's mask entry
    assert "mask::---" in acl(f)


def test_other_mount_sees_changes_within_attr_timeout(mounts: tuple[Path, Path]) -> None:
    a, b = mounts
    (a / "d").mkdir()
    (a / "d" / "f").write_bytes(b"x")
    wait_for(lambda: (b / "d" / "f").exists(), 10 * ATTR_TIMEOUT, "f on the second mount")
    prime(b / "d")
    os.setxattr(a / "d" / "f", "user.k", b"v1")
    subprocess.run(["setfacl", "-m", "u:1234:r", str(a / "d" / "f")], check=True)
    # Generous deadline (a loaded machine); a cache that never expires fails it.
    wait_for(lambda: xattr(b / "d" / "f", "user.k") == b"v1", 10 * ATTR_TIMEOUT, "user.k on b")
    wait_for(lambda: "user:1234:r--" in acl(b / "d" / "f"), 10 * ATTR_TIMEOUT, "the ACL on b")
    assert sorted(os.listxattr(b / "d" / "f")) == ["system.posix_acl_access", "user.k"]
    os.removexattr(a / "d" / "f", "user.k")
    wait_for(lambda: xattr(b / "d" / "f", "user.k") is None, 10 * ATTR_TIMEOUT, "removal on b")


def test_acl_enforcement_follows_setfacl(mounts: tuple[Path, Path]) -> None:
    """The kernel's cached ACL: renewed at once on the mount that changed it, within
    the attribute timeout on another."""
    a, b = mounts
    (a / "f").write_bytes(b"data")
    os.chmod(a / "f", 0o644)
    wait_for(lambda: (b / "f").exists(), 10 * ATTR_TIMEOUT, "f on the second mount")
    read = 'result = err(os.open, "f", os.O_RDONLY)'
    assert as_nobody(a, read) == 0 and as_nobody(b, read) == 0  # both kernels cache it
    subprocess.run(["setfacl", "-m", "u:nobody:---", str(a / "f")], check=True, timeout=30)
    assert as_nobody(a, read) == "EACCES"
    wait_for(lambda: as_nobody(b, read) == "EACCES", 10 * ATTR_TIMEOUT, "the denial on b")
    subprocess.run(["setfacl", "-b", str(b / "f")], check=True, timeout=30)
    assert as_nobody(b, read) == 0
    wait_for(lambda: as_nobody(a, read) == 0, 10 * ATTR_TIMEOUT, "the grant on a")


def test_lookups_from_a_listing_stay_coherent(mounts: tuple[Path, Path]) -> None:
    a, b = mounts
    (a / "d").mkdir()
    for i in range(10):
        (a / "d" / f"f{i}").write_bytes(b"x")
    wait_for(lambda: (b / "d" / "f9").exists(), 10 * ATTR_TIMEOUT, "f9 on the second mount")
    for mnt in (a, b):  # two lookups by RPC start a listing; the rest come from it
        assert [os.stat(mnt / "d" / f"f{i}").st_size for i in range(10)] == [1] * 10
    # Same mount: its own change shows at once, though a listing from before it is cached.
    (b / "d" / "f5").write_bytes(b"xyz")
    (b / "d" / "new").write_bytes(b"n")
    os.unlink(b / "d" / "f6")
    assert os.stat(b / "d" / "f5").st_size == 3
    assert os.stat(b / "d" / "new").st_size == 1
    assert not (b / "d" / "f6").exists()
    # Other mount: a's listing may answer for up to the attribute timeout, not longer.
    wait_for(lambda: os.stat(a / "d" / "f5").st_size == 3, 10 * ATTR_TIMEOUT, "f5's size on a")
    wait_for(lambda: not (a / "d" / "f6").exists(), 10 * ATTR_TIMEOUT, "f6 gone on a")
    assert os.stat(a / "d" / "new").st_size == 1  # a name not listed is asked for
