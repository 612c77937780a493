"""POSIX behaviour, asserted identically on a local directory and on a gfs mount.

Every test takes `fsroot` (see conftest): the `local` run proves the expectation
against the kernel's own filesystem, the `gfs` run holds gfs to it.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import mmap
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.fuse.conftest import on_gfs
from tests.procs import wait_for

GiB = 1 << 30
MiB = 1 << 20

libc = ctypes.CDLL(None, use_errno=True)
libc.renameat2.argtypes = [
    ctypes.c_int,
    ctypes.c_char_p,
    ctypes.c_int,
    ctypes.c_char_p,
    ctypes.c_uint,
]
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
FALLOC_FL_KEEP_SIZE = 1
FALLOC_FL_PUNCH_HOLE = 2
FALLOC_FL_ZERO_RANGE = 0x10


def raises_errno(expected: int | tuple[int, ...], fn: Callable[..., Any], *args: Any) -> None:
    """Call fn(*args) and require an OSError with exactly this errno (or one of these)."""
    allowed = expected if isinstance(expected, tuple) else (expected,)
    with pytest.raises(OSError) as ei:
        fn(*args)
    got = ei.value.errno
    assert got in allowed, f"errno {errno.errorcode.get(got or 0, got)}, expected " + "/".join(
        errno.errorcode[e] for e in allowed
    )


def check(ret: int) -> None:
    """Raise OSError for a failed libc call made through ctypes."""
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def renameat2(src: Path, dst: Path, flags: int) -> None:
    check(libc.renameat2(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), flags))


def fallocate(fd: int, mode: int, offset: int, length: int) -> None:
    """The raw fallocate(2): unlike posix_fallocate(3), glibc does not emulate it."""
    check(libc.fallocate(fd, mode, offset, length))


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def utimensat(path: Path, atime: tuple[int, int], mtime: tuple[int, int]) -> None:
    times = (Timespec * 2)(Timespec(*atime), Timespec(*mtime))
    check(libc.utimensat(AT_FDCWD, os.fsencode(path), times, 0))


@contextmanager
def opened(path: Path, flags: int, mode: int = 0o644) -> Iterator[int]:
    fd = os.open(path, flags, mode)
    try:
        yield fd
    finally:
        os.close(fd)


def write_file(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def run_py(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a Python snippet in another process (record locks belong to a process)."""
    return subprocess.run(
        [sys.executable, "-I", "-c", code, *args], capture_output=True, text=True, timeout=30
    )


# --- create / open -----------------------------------------------------------------------


def test_create_excl(fsroot: Path) -> None:
    p = fsroot / "f"
    with opened(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY):
        pass
    assert stat.S_ISREG(os.stat(p).st_mode)
    raises_errno(errno.EEXIST, os.open, p, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    os.mkdir(fsroot / "d")
    raises_errno(errno.EEXIST, os.open, fsroot / "d", os.O_CREAT | os.O_EXCL | os.O_WRONLY)


def test_o_trunc(fsroot: Path) -> None:
    p = fsroot / "f"
    write_file(p, b"hello world")
    with opened(p, os.O_WRONLY | os.O_TRUNC) as fd:
        assert os.fstat(fd).st_size == 0
        os.write(fd, b"hi")
    assert p.read_bytes() == b"hi"


def test_o_append_two_fds(fsroot: Path) -> None:
    p = fsroot / "f"
    write_file(p, b"0")
    with opened(p, os.O_WRONLY | os.O_APPEND) as a, opened(p, os.O_WRONLY | os.O_APPEND) as b:
        expected = b"0"
        for i in range(10):
            for fd, tag in ((a, b"A"), (b, b"B")):
                chunk = tag * (i + 1)
                os.lseek(fd, 0, os.SEEK_SET)  # O_APPEND ignores the offset
                assert os.write(fd, chunk) == len(chunk)
                expected += chunk
    assert p.read_bytes() == expected


def test_open_missing(fsroot: Path) -> None:
    raises_errno(errno.ENOENT, os.open, fsroot / "nope", os.O_RDONLY)
    raises_errno(errno.ENOENT, os.open, fsroot / "nodir" / "f", os.O_CREAT | os.O_WRONLY)
    raises_errno(errno.ENOENT, os.stat, fsroot / "nope")


def test_mkdir_existing(fsroot: Path) -> None:
    os.mkdir(fsroot / "d")
    raises_errno(errno.EEXIST, os.mkdir, fsroot / "d")
    write_file(fsroot / "f", b"")
    raises_errno(errno.EEXIST, os.mkdir, fsroot / "f")


def test_rmdir_nonempty(fsroot: Path) -> None:
    os.mkdir(fsroot / "d")
    write_file(fsroot / "d" / "f", b"x")
    raises_errno(errno.ENOTEMPTY, os.rmdir, fsroot / "d")
    os.unlink(fsroot / "d" / "f")
    os.rmdir(fsroot / "d")
    assert not (fsroot / "d").exists()


def test_rmdir_file(fsroot: Path) -> None:
    write_file(fsroot / "f", b"x")
    raises_errno(errno.ENOTDIR, os.rmdir, fsroot / "f")
    raises_errno(errno.ENOENT, os.rmdir, fsroot / "missing")


def test_unlink_dir(fsroot: Path) -> None:
    os.mkdir(fsroot / "d")
    raises_errno(errno.EISDIR, os.unlink, fsroot / "d")
    assert (fsroot / "d").is_dir()


def test_lookup_through_file(fsroot: Path) -> None:
    write_file(fsroot / "f", b"x")
    raises_errno(errno.ENOTDIR, os.stat, fsroot / "f" / "x")
    raises_errno(errno.ENOTDIR, os.open, fsroot / "f" / "x", os.O_CREAT | os.O_WRONLY)
    raises_errno(errno.ENOTDIR, os.mkdir, fsroot / "f" / "x")


def test_name_too_long(fsroot: Path) -> None:
    ok = "n" * 255
    with opened(fsroot / ok, os.O_CREAT | os.O_WRONLY):
        pass
    assert ok in os.listdir(fsroot)
    long = "n" * 256
    raises_errno(errno.ENAMETOOLONG, os.open, fsroot / long, os.O_CREAT | os.O_WRONLY)
    raises_errno(errno.ENAMETOOLONG, os.mkdir, fsroot / long)
    raises_errno(errno.ENAMETOOLONG, os.stat, fsroot / long)
    raises_errno(errno.ENAMETOOLONG, os.rename, fsroot / ok, fsroot / long)
    # 255 bytes, not characters: 128 two-byte characters are 256 bytes.
    raises_errno(errno.ENAMETOOLONG, os.mkdir, fsroot / ("é" * 128))


def test_path_near_path_max(fsroot: Path) -> None:
    """A 4095-byte path inside the filesystem: 15 directories of 255 bytes and a file."""
    names = [bytes([ord("a") + i]) * 255 for i in range(15)]
    rootfd = os.open(fsroot, os.O_DIRECTORY)
    try:
        fd = os.dup(rootfd)
        for n in names:
            os.mkdir(n, dir_fd=fd)
            nfd = os.open(n, os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        os.close(fd)
        rel = b"/".join([*names, b"f" * 255])
        assert len(rel) == 4095
        data = os.urandom(10000)
        fd = os.open(rel, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644, dir_fd=rootfd)
        try:
            assert os.write(fd, data) == len(data)
        finally:
            os.close(fd)
        fd = os.open(rel, os.O_RDONLY, dir_fd=rootfd)
        try:
            assert os.read(fd, 20000) == data
        finally:
            os.close(fd)
        assert os.stat(rel, dir_fd=rootfd).st_size == len(data)
        # One byte more than PATH_MAX allows (with the NUL) is refused by the kernel.
        too_long = b"./" + rel[:-1]
        assert len(too_long) == 4096
        raises_errno(errno.ENAMETOOLONG, lambda: os.stat(too_long, dir_fd=rootfd))
    finally:
        os.close(rootfd)


# --- symlinks and hard links -------------------------------------------------------------


def test_symlink_readlink(fsroot: Path) -> None:
    os.mkdir(fsroot / "a")
    write_file(fsroot / "target", b"content")
    os.symlink("../target", fsroot / "a" / "rel")
    assert os.readlink(fsroot / "a" / "rel") == "../target"
    assert stat.S_ISLNK(os.lstat(fsroot / "a" / "rel").st_mode)
    assert os.lstat(fsroot / "a" / "rel").st_size == len("../target")
    assert (fsroot / "a" / "rel").read_bytes() == b"content"
    # Stored verbatim: the target is never interpreted by gfs.
    escape = b"../../../../../../etc/passwd"
    os.symlink(escape, os.fsencode(fsroot / "a" / "esc"))
    assert os.readlink(os.fsencode(fsroot / "a" / "esc")) == escape
    odd = b"\xff\xfe/ spaces /./..//x"
    os.symlink(odd, os.fsencode(fsroot / "odd"))
    assert os.readlink(os.fsencode(fsroot / "odd")) == odd
    long_target = b"t/" * 2000
    os.symlink(long_target, os.fsencode(fsroot / "long"))
    assert os.readlink(os.fsencode(fsroot / "long")) == long_target
    raises_errno(errno.EEXIST, os.symlink, "x", fsroot / "target")
    raises_errno(errno.EINVAL, os.readlink, fsroot / "target")
    os.symlink("missing", fsroot / "dangling")
    raises_errno(errno.ENOENT, os.stat, fsroot / "dangling")
    assert os.readlink(fsroot / "dangling") == "missing"


def test_hard_links_nlink(fsroot: Path) -> None:
    p, q = fsroot / "f", fsroot / "g"
    write_file(p, b"data")
    assert os.stat(p).st_nlink == 1
    os.link(p, q)
    assert os.stat(p).st_nlink == 2
    assert os.stat(q).st_ino == os.stat(p).st_ino
    with open(q, "ab") as f:
        f.write(b"+more")
    assert p.read_bytes() == b"data+more"
    os.unlink(p)
    assert os.stat(q).st_nlink == 1
    assert q.read_bytes() == b"data+more"
    raises_errno(errno.EEXIST, os.link, q, q)
    raises_errno(errno.ENOENT, os.link, fsroot / "missing", fsroot / "h")


def test_dir_nlink(fsroot: Path) -> None:
    d = fsroot / "d"
    os.mkdir(d)
    assert os.stat(d).st_nlink == 2
    os.mkdir(d / "a")
    os.mkdir(d / "b")
    write_file(d / "file", b"")
    assert os.stat(d).st_nlink == 4
    os.rmdir(d / "a")
    assert os.stat(d).st_nlink == 3
    os.rename(d / "b", fsroot / "b")
    assert os.stat(d).st_nlink == 2
    raises_errno(errno.EPERM, os.link, d, fsroot / "dlink")


def test_root_nlink(fsroot: Path) -> None:
    """The root's link count is 2 + its visible subdirectories (gfs's hidden `.gfs` excluded)."""
    assert os.stat(fsroot).st_nlink == 2
    os.mkdir(fsroot / "a")
    os.mkdir(fsroot / "b")
    assert os.stat(fsroot).st_nlink == 4


# --- rename ------------------------------------------------------------------------------


def test_rename_file_over_file(fsroot: Path) -> None:
    a, b = fsroot / "a", fsroot / "b"
    write_file(a, b"source")
    write_file(b, b"victim")
    ino = os.stat(a).st_ino
    os.rename(a, b)
    assert not a.exists()
    assert b.read_bytes() == b"source"
    assert os.stat(b).st_ino == ino
    assert sorted(os.listdir(fsroot)) == ["b"]


def test_rename_across_dirs(fsroot: Path) -> None:
    os.mkdir(fsroot / "x")
    os.mkdir(fsroot / "y")
    write_file(fsroot / "x" / "f", b"1")
    os.mkdir(fsroot / "x" / "sub")
    os.rename(fsroot / "x" / "f", fsroot / "y" / "f")
    os.rename(fsroot / "x" / "sub", fsroot / "y" / "sub")
    assert os.listdir(fsroot / "x") == []
    assert sorted(os.listdir(fsroot / "y")) == ["f", "sub"]
    assert os.stat(fsroot / "x").st_nlink == 2
    assert os.stat(fsroot / "y").st_nlink == 3
    assert os.stat(fsroot / "y" / "sub" / "..").st_ino == os.stat(fsroot / "y").st_ino


def test_rename_file_over_dir(fsroot: Path) -> None:
    write_file(fsroot / "f", b"x")
    os.mkdir(fsroot / "d")
    write_file(fsroot / "d" / "inner", b"")
    raises_errno(errno.EISDIR, os.rename, fsroot / "f", fsroot / "d")
    os.mkdir(fsroot / "empty")
    raises_errno(errno.EISDIR, os.rename, fsroot / "f", fsroot / "empty")


def test_rename_dir_over_file(fsroot: Path) -> None:
    write_file(fsroot / "f", b"x")
    os.mkdir(fsroot / "d")
    raises_errno(errno.ENOTDIR, os.rename, fsroot / "d", fsroot / "f")


def test_rename_dir_over_nonempty_dir(fsroot: Path) -> None:
    os.mkdir(fsroot / "a")
    os.mkdir(fsroot / "b")
    write_file(fsroot / "b" / "f", b"")
    raises_errno(errno.ENOTEMPTY, os.rename, fsroot / "a", fsroot / "b")
    assert os.listdir(fsroot / "b") == ["f"]


def test_rename_dir_over_empty_dir(fsroot: Path) -> None:
    os.mkdir(fsroot / "a")
    write_file(fsroot / "a" / "f", b"moved")
    os.mkdir(fsroot / "b")
    ino = os.stat(fsroot / "a").st_ino
    os.rename(fsroot / "a", fsroot / "b")
    assert sorted(os.listdir(fsroot)) == ["b"]
    assert os.stat(fsroot / "b").st_ino == ino
    assert (fsroot / "b" / "f").read_bytes() == b"moved"


def test_rename_dir_into_own_child(fsroot: Path) -> None:
    os.makedirs(fsroot / "a" / "b")
    raises_errno(errno.EINVAL, os.rename, fsroot / "a", fsroot / "a" / "b" / "c")
    raises_errno(errno.EINVAL, os.rename, fsroot / "a", fsroot / "a" / "c")
    assert os.listdir(fsroot / "a") == ["b"]


def test_rename_same_name(fsroot: Path) -> None:
    write_file(fsroot / "f", b"x")
    os.rename(fsroot / "f", fsroot / "f")
    assert (fsroot / "f").read_bytes() == b"x"
    # Two links to one inode: rename is a no-op and both names stay.
    os.link(fsroot / "f", fsroot / "g")
    os.rename(fsroot / "f", fsroot / "g")
    assert sorted(os.listdir(fsroot)) == ["f", "g"]
    assert os.stat(fsroot / "f").st_nlink == 2
    raises_errno(errno.ENOENT, os.rename, fsroot / "missing", fsroot / "other")


def test_renameat2_noreplace(fsroot: Path) -> None:
    write_file(fsroot / "a", b"a")
    write_file(fsroot / "b", b"b")
    raises_errno(errno.EEXIST, renameat2, fsroot / "a", fsroot / "b", RENAME_NOREPLACE)
    assert (fsroot / "b").read_bytes() == b"b"
    renameat2(fsroot / "a", fsroot / "c", RENAME_NOREPLACE)
    assert sorted(os.listdir(fsroot)) == ["b", "c"]


def test_renameat2_exchange(fsroot: Path) -> None:
    write_file(fsroot / "a", b"file a")
    os.mkdir(fsroot / "d")
    write_file(fsroot / "d" / "inner", b"")
    ino_a, ino_d = os.stat(fsroot / "a").st_ino, os.stat(fsroot / "d").st_ino
    renameat2(fsroot / "a", fsroot / "d", RENAME_EXCHANGE)
    assert (fsroot / "d").read_bytes() == b"file a"
    assert os.listdir(fsroot / "a") == ["inner"]
    assert os.stat(fsroot / "d").st_ino == ino_a
    assert os.stat(fsroot / "a").st_ino == ino_d
    raises_errno(errno.ENOENT, renameat2, fsroot / "a", fsroot / "missing", RENAME_EXCHANGE)
    raises_errno(
        errno.EINVAL, renameat2, fsroot / "a", fsroot / "d", RENAME_EXCHANGE | RENAME_NOREPLACE
    )


# --- file data ---------------------------------------------------------------------------


def test_sparse_file(fsroot: Path) -> None:
    p = fsroot / "sparse"
    with opened(p, os.O_CREAT | os.O_RDWR) as fd:
        assert os.pwrite(fd, b"end", GiB) == 3
        st = os.fstat(fd)
        assert st.st_size == GiB + 3
        assert os.pread(fd, 4096, 0) == bytes(4096)
        assert os.pread(fd, 100, GiB // 2) == bytes(100)
        assert os.pread(fd, 10, GiB - 2) == b"\0\0end"
        assert os.pread(fd, 10, GiB + 3) == b""
    assert os.stat(p).st_blocks * 512 < MiB


def test_write_past_4gib(fsroot: Path) -> None:
    p = fsroot / "big"
    off = 5 * GiB + 12345
    data = os.urandom(200_000)
    with opened(p, os.O_CREAT | os.O_RDWR) as fd:
        assert os.pwrite(fd, data, off) == len(data)
        assert os.fstat(fd).st_size == off + len(data)
    with opened(p, os.O_RDONLY) as fd:
        assert os.pread(fd, len(data), off) == data
        assert os.pread(fd, 10, 4 * GiB) == bytes(10)
        assert os.lseek(fd, 0, os.SEEK_END) == off + len(data)


def test_truncate(fsroot: Path) -> None:
    p = fsroot / "f"
    data = bytes(range(100))
    write_file(p, data)
    os.truncate(p, 10)
    assert p.read_bytes() == data[:10]
    os.truncate(p, 5000)
    assert os.stat(p).st_size == 5000
    assert p.read_bytes() == data[:10] + bytes(4990)
    with opened(p, os.O_RDWR) as fd:
        os.ftruncate(fd, 3)
        assert os.fstat(fd).st_size == 3
        os.ftruncate(fd, 3 * GiB)
        assert os.pread(fd, 4, 3 * GiB - 2) == b"\0\0"
        os.ftruncate(fd, 0)
        assert os.pread(fd, 10, 0) == b""
    raises_errno(errno.EINVAL, os.truncate, p, -1)
    os.mkdir(fsroot / "d")
    raises_errno(errno.EISDIR, os.truncate, fsroot / "d", 0)


def test_unlink_while_open(fsroot: Path) -> None:
    p = fsroot / "f"
    write_file(p, b"still here")
    fd = os.open(p, os.O_RDWR)
    try:
        os.unlink(p)
        assert os.listdir(fsroot) == []
        raises_errno(errno.ENOENT, os.stat, p)
        assert os.fstat(fd).st_nlink == 0
        assert os.pread(fd, 100, 0) == b"still here"
        assert os.pwrite(fd, b"!", 10) == 1
        assert os.pread(fd, 100, 0) == b"still here!"
        os.ftruncate(fd, 5)
        assert os.fstat(fd).st_size == 5
        # A new file with the same name is a different object.
        write_file(p, b"new")
        assert os.pread(fd, 100, 0) == b"still"
    finally:
        os.close(fd)
    assert p.read_bytes() == b"new"


def test_rename_over_open_file(fsroot: Path) -> None:
    write_file(fsroot / "victim", b"old data")
    write_file(fsroot / "new", b"new data")
    with opened(fsroot / "victim", os.O_RDWR) as fd:
        os.rename(fsroot / "new", fsroot / "victim")
        assert os.fstat(fd).st_nlink == 0
        assert os.pread(fd, 100, 0) == b"old data"
        os.pwrite(fd, b"OLD", 0)
    assert (fsroot / "victim").read_bytes() == b"new data"
    assert os.listdir(fsroot) == ["victim"]


def test_mmap_shared(fsroot: Path) -> None:
    p = fsroot / "f"
    write_file(p, bytes(3 * 4096))
    with open(p, "r+b") as f, mmap.mmap(f.fileno(), 0) as m:
        m[4090:4100] = b"0123456789"
        m.flush()
    data = p.read_bytes()
    assert data[4090:4100] == b"0123456789"
    assert len(data) == 3 * 4096


def test_create_through_dangling_symlink(fsroot: Path) -> None:
    os.mkdir(fsroot / "d")
    os.symlink("d/target", fsroot / "link")
    with opened(fsroot / "link", os.O_CREAT | os.O_WRONLY) as fd:
        os.write(fd, b"via link")
    assert (fsroot / "d" / "target").read_bytes() == b"via link"
    raises_errno(errno.EEXIST, os.open, fsroot / "link", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    raises_errno(errno.ELOOP, os.open, fsroot / "link", os.O_RDONLY | os.O_NOFOLLOW)


def test_symlink_own_attributes(fsroot: Path) -> None:
    write_file(fsroot / "f", b"")
    os.symlink("f", fsroot / "l")
    os.utime(fsroot / "l", ns=(1_000_000_000, 2_000_000_000), follow_symlinks=False)
    st = os.lstat(fsroot / "l")
    assert (st.st_atime_ns, st.st_mtime_ns) == (1_000_000_000, 2_000_000_000)
    assert os.stat(fsroot / "f").st_mtime_ns != 2_000_000_000
    # user.* xattrs are not allowed on symlinks.
    raises_errno(
        errno.EPERM, lambda: os.setxattr(fsroot / "l", "user.a", b"1", follow_symlinks=False)
    )


def test_mknod_regular(fsroot: Path) -> None:
    os.mknod(fsroot / "r", stat.S_IFREG | 0o640)
    st = os.stat(fsroot / "r")
    assert stat.S_ISREG(st.st_mode)
    assert (stat.S_IMODE(st.st_mode), st.st_size) == (0o640, 0)


def test_large_copy(fsroot: Path, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    data = os.urandom(20 * MiB)
    src.write_bytes(data)
    want = hashlib.sha256(data).hexdigest()
    shutil.copyfile(src, fsroot / "copy1")
    shutil.copyfile(fsroot / "copy1", fsroot / "copy2")  # in-filesystem copy (sendfile)
    for name in ("copy1", "copy2"):
        h = hashlib.sha256()
        with open(fsroot / name, "rb") as f:
            while chunk := f.read(MiB + 7):  # unaligned reads
                h.update(chunk)
        assert h.hexdigest() == want
        assert os.stat(fsroot / name).st_size == len(data)


def test_fsync(fsroot: Path) -> None:
    with opened(fsroot / "f", os.O_CREAT | os.O_WRONLY) as fd:
        os.write(fd, b"data")
        os.fsync(fd)
        os.fdatasync(fd)
    with opened(fsroot, os.O_RDONLY | os.O_DIRECTORY) as dfd:
        os.fsync(dfd)
    assert (fsroot / "f").read_bytes() == b"data"


def test_posix_fallocate(fsroot: Path) -> None:
    """posix_fallocate(3) works on both: glibc emulates it when the filesystem says EOPNOTSUPP."""
    with opened(fsroot / "f", os.O_CREAT | os.O_RDWR) as fd:
        os.write(fd, b"abc")
        os.posix_fallocate(fd, 0, MiB)
        assert os.fstat(fd).st_size == MiB
        assert os.pread(fd, 5, 0) == b"abc\0\0"


def test_fallocate(fsroot: Path) -> None:
    """fallocate(2) in every mode, with its effect on size, bytes and blocks (same on both)."""
    with opened(fsroot / "f", os.O_CREAT | os.O_RDWR) as fd:
        os.write(fd, b"x" * 8192)
        fallocate(fd, 0, 0, MiB)
        st = os.fstat(fd)
        assert st.st_size == MiB
        assert st.st_blocks * 512 >= MiB
        assert os.pread(fd, 8193, 0) == b"x" * 8192 + b"\0"
        # KEEP_SIZE: blocks past the end, the size stays
        fallocate(fd, FALLOC_FL_KEEP_SIZE, MiB, MiB)
        st = os.fstat(fd)
        assert st.st_size == MiB
        assert st.st_blocks * 512 >= 2 * MiB
        # PUNCH_HOLE: zeros and fewer blocks
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096)
        assert os.pread(fd, 8192, 0) == bytes(4096) + b"x" * 4096
        after = os.fstat(fd)
        assert after.st_size == MiB
        assert after.st_blocks < st.st_blocks
        # ZERO_RANGE: zeros in place; without KEEP_SIZE it may extend the file
        fallocate(fd, FALLOC_FL_ZERO_RANGE, 4096, 2048)
        assert os.pread(fd, 8192, 0) == bytes(6144) + b"x" * 2048
        fallocate(fd, FALLOC_FL_ZERO_RANGE, MiB, 4096)
        assert os.fstat(fd).st_size == MiB + 4096
        raises_errno(errno.EOPNOTSUPP, fallocate, fd, FALLOC_FL_PUNCH_HOLE, 0, 4096)
        raises_errno(errno.EINVAL, fallocate, fd, 0, 0, 0)


def test_copy_file_range(fsroot: Path) -> None:
    data = os.urandom(3 * MiB + 123)
    write_file(fsroot / "src", data)
    with (
        opened(fsroot / "src", os.O_RDONLY) as src,
        opened(fsroot / "dst", os.O_CREAT | os.O_RDWR) as dst,
    ):
        done = 0
        while done < len(data):
            n = os.copy_file_range(src, dst, len(data) - done, done, done + 10)
            assert n > 0
            done += n
        assert os.fstat(dst).st_size == len(data) + 10
        assert os.pread(dst, len(data) + 10, 0) == bytes(10) + data
        # short at the source's end, 0 past it
        assert os.copy_file_range(src, dst, 1000, len(data) - 100, 0) == 100
        assert os.copy_file_range(src, dst, 1000, len(data), 0) == 0
        assert os.pread(dst, 100, 0) == data[-100:]
        # within one file
        assert os.copy_file_range(dst, dst, 50, 1000, 5 * MiB) == 50
        assert os.pread(dst, 50, 5 * MiB) == os.pread(dst, 50, 1000)
    raises_errno(errno.EBADF, os.copy_file_range, -1, 0, 1)


def test_seek_data_hole(fsroot: Path) -> None:
    """SEEK_DATA/SEEK_HOLE see the holes of a sparse file."""
    with opened(fsroot / "f", os.O_CREAT | os.O_RDWR) as fd:
        os.pwrite(fd, b"a" * 4096, 0)
        os.pwrite(fd, b"b" * 4096, MiB)
        os.fsync(fd)
        assert os.lseek(fd, 0, os.SEEK_DATA) == 0
        assert os.lseek(fd, 0, os.SEEK_HOLE) == 4096
        assert os.lseek(fd, 4096, os.SEEK_DATA) == MiB
        assert os.lseek(fd, MiB, os.SEEK_HOLE) == MiB + 4096  # the end counts as a hole
        raises_errno(errno.ENXIO, os.lseek, fd, MiB + 4096, os.SEEK_DATA)
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096)
        assert os.lseek(fd, 0, os.SEEK_DATA) == MiB


# --- directories -------------------------------------------------------------------------


def test_listdir_no_dot_entries(fsroot: Path) -> None:
    d = fsroot / "d"
    os.mkdir(d)
    assert os.listdir(d) == []
    names = {"a", "b.txt", "c d", "\u00e9t\u00e9", "-x"}
    for n in names:
        write_file(d / n, b"")
    os.mkdir(d / "sub")
    assert set(os.listdir(d)) == names | {"sub"}
    assert os.stat(d / ".").st_ino == os.stat(d).st_ino
    assert os.stat(d / "sub" / "..").st_ino == os.stat(d).st_ino
    kinds = {e.name: e.is_dir() for e in os.scandir(d)}
    assert kinds == {**dict.fromkeys(names, False), "sub": True}


def test_readdir_while_changing(fsroot: Path) -> None:
    """Entries present throughout a readdir are returned exactly once.

    Long names make the listing span several getdents() calls, so the directory
    really changes between them.
    """
    d = fsroot / "d"
    os.mkdir(d)
    pad = "p" * 150

    def name(kind: str, i: int) -> str:
        return f"{kind}{i:03d}{pad}"

    for i in range(200):
        write_file(d / name("f", i), b"")
    stable = {name("f", i) for i in range(0, 200, 2)}
    seen: Counter[str] = Counter()
    with os.scandir(d) as it:
        for n, entry in enumerate(it):
            seen[entry.name] += 1
            if n == 20:
                for i in range(1, 200, 2):
                    os.unlink(d / name("f", i))
                for i in range(100):
                    write_file(d / name("n", i), b"")
    assert {k for k in stable if seen[k] != 1} == set()
    assert [k for k, v in seen.items() if v > 1] == []
    assert sum(seen.values()) > 20
    assert set(os.listdir(d)) == stable | {name("n", i) for i in range(100)}


# --- attributes --------------------------------------------------------------------------


def test_utime_ns(fsroot: Path) -> None:
    p = fsroot / "f"
    write_file(p, b"x")
    a, m = 1_500_000_000_123_456_789, 1_600_000_000_987_654_321
    os.utime(p, ns=(a, m))
    st = os.stat(p)
    assert (st.st_atime_ns, st.st_mtime_ns) == (a, m)
    # Only mtime: atime passed back unchanged.
    os.utime(p, ns=(st.st_atime_ns, m + 5))
    st = os.stat(p)
    assert (st.st_atime_ns, st.st_mtime_ns) == (a, m + 5)
    # Real UTIME_OMIT: setattr with mtime only.
    utimensat(p, (0, UTIME_OMIT), (1_000_000_000, 7))
    st = os.stat(p)
    assert (st.st_atime_ns, st.st_mtime_ns) == (a, 1_000_000_000_000_000_007)
    before = time.time_ns()
    utimensat(p, (0, UTIME_OMIT), (0, UTIME_NOW))
    st = os.stat(p)
    assert st.st_atime_ns == a
    assert st.st_mtime_ns >= before - 50_000_000  # the kernel clock is coarse
    # Times before 1970 and after 2038.
    os.utime(p, ns=(-1_000_000_000, 4_200_000_000_000_000_000))
    st = os.stat(p)
    assert (st.st_atime_ns, st.st_mtime_ns) == (-1_000_000_000, 4_200_000_000_000_000_000)


def test_mtime_changes_on_write(fsroot: Path) -> None:
    p = fsroot / "f"
    write_file(p, b"x")
    old = 1_000_000_000_000_000_000
    os.utime(p, ns=(old, old))
    with opened(p, os.O_WRONLY) as fd:
        os.write(fd, b"y")
    st = os.stat(p)
    assert st.st_mtime_ns > old
    assert st.st_ctime_ns > old
    assert st.st_atime_ns == old
    os.utime(p, ns=(old, old))
    os.truncate(p, 0)
    assert os.stat(p).st_mtime_ns > old
    d = fsroot / "d"
    os.mkdir(d)
    os.utime(d, ns=(old, old))
    write_file(d / "new", b"")
    assert os.stat(d).st_mtime_ns > old


def test_ctime_changes_on_chmod(fsroot: Path) -> None:
    p = fsroot / "f"
    write_file(p, b"x")
    c0 = os.stat(p).st_ctime_ns
    # Let the clock move past the old ctime (coarse kernel clock), else no change is visible.
    wait_for(lambda: time.time_ns() > c0 + 20_000_000, 5, "clock to advance")
    os.chmod(p, 0o600)
    st = os.stat(p)
    assert st.st_ctime_ns > c0
    assert stat.S_IMODE(st.st_mode) == 0o600


def test_chmod_chown(fsroot: Path) -> None:
    p = fsroot / "f"
    write_file(p, b"x")
    for mode in (0o640, 0o000, 0o777, 0o4755, 0o2755, 0o1644):
        os.chmod(p, mode)
        assert stat.S_IMODE(os.stat(p).st_mode) == mode
    os.chmod(p, 0o644)
    os.chown(p, 65534, 65534)
    st = os.stat(p)
    assert (st.st_uid, st.st_gid) == (65534, 65534)
    os.chown(p, -1, 0)
    st = os.stat(p)
    assert (st.st_uid, st.st_gid) == (65534, 0)
    os.symlink("f", fsroot / "l")
    os.lchown(fsroot / "l", 65534, 100)
    assert (os.lstat(fsroot / "l").st_uid, os.lstat(fsroot / "l").st_gid) == (65534, 100)
    assert os.stat(p).st_gid == 0
    os.mkdir(fsroot / "d", 0o700)
    os.chmod(fsroot / "d", 0o3755)
    assert stat.S_IMODE(os.stat(fsroot / "d").st_mode) == 0o3755


def test_chown_clears_setuid(fsroot: Path) -> None:
    p = fsroot / "f"
    write_file(p, b"x")
    os.chmod(p, 0o6755)
    os.chown(p, 65534, 65534)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o755


def test_mkfifo(fsroot: Path) -> None:
    os.mkfifo(fsroot / "fifo", 0o640)
    st = os.stat(fsroot / "fifo")
    assert stat.S_ISFIFO(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o640
    os.mknod(fsroot / "fifo2", stat.S_IFIFO | 0o600)
    assert stat.S_ISFIFO(os.stat(fsroot / "fifo2").st_mode)
    raises_errno(errno.EEXIST, os.mkfifo, fsroot / "fifo")
    # A FIFO on the filesystem carries data between two opens.
    r = os.open(fsroot / "fifo", os.O_RDONLY | os.O_NONBLOCK)
    try:
        with opened(fsroot / "fifo", os.O_WRONLY) as w:
            os.write(w, b"ping")
        assert os.read(r, 10) == b"ping"
    finally:
        os.close(r)


def test_mknod_chardev(fsroot: Path) -> None:
    dev = os.makedev(1, 3)
    os.mknod(fsroot / "null", stat.S_IFCHR | 0o600, dev)
    st = os.stat(fsroot / "null")
    assert stat.S_ISCHR(st.st_mode)
    assert st.st_rdev == dev
    assert stat.S_IMODE(st.st_mode) == 0o600
    os.mknod(fsroot / "blk", stat.S_IFBLK | 0o600, os.makedev(7, 200))
    st = os.stat(fsroot / "blk")
    assert stat.S_ISBLK(st.st_mode)
    assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (7, 200)


def test_unix_socket(fsroot: Path) -> None:
    path = fsroot / "sock"
    # sun_path holds 108 bytes; a path through an open directory fd is always short.
    dfd = os.open(fsroot, os.O_RDONLY | os.O_DIRECTORY)
    short = f"/proc/self/fd/{dfd}/sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        srv.bind(short)
        srv.listen(1)
        assert stat.S_ISSOCK(os.stat(path).st_mode)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as cli:
            cli.connect(short)
            conn, _ = srv.accept()
            with conn:
                cli.sendall(b"hello")
                assert conn.recv(10) == b"hello"
    finally:
        srv.close()
        os.close(dfd)
    os.unlink(path)
    assert os.listdir(fsroot) == []


def test_xattr_user(fsroot: Path) -> None:
    p = fsroot / "f"
    write_file(p, b"")
    os.setxattr(p, "user.a", b"1")
    os.setxattr(p, "user.empty", b"")
    big = os.urandom(2000)  # gfs keeps its own xattr too: stay well inside one ext4 block
    os.setxattr(p, "user.big", big)
    os.setxattr(p, "user.nul", b"a\0b\0")
    assert os.getxattr(p, "user.a") == b"1"
    assert os.getxattr(p, "user.empty") == b""
    assert os.getxattr(p, "user.big") == big
    assert os.getxattr(p, "user.nul") == b"a\0b\0"
    names = set(os.listxattr(p))
    assert {"user.a", "user.empty", "user.big", "user.nul"} <= names
    assert not any(n.startswith("trusted.gfs") for n in names)
    raises_errno(errno.EEXIST, os.setxattr, p, "user.a", b"2", os.XATTR_CREATE)
    raises_errno(errno.ENODATA, os.setxattr, p, "user.missing", b"2", os.XATTR_REPLACE)
    os.setxattr(p, "user.a", b"replaced", os.XATTR_REPLACE)
    assert os.getxattr(p, "user.a") == b"replaced"
    os.setxattr(p, "user.created", b"c", os.XATTR_CREATE)
    raises_errno(errno.ENODATA, os.getxattr, p, "user.missing")
    os.removexattr(p, "user.a")
    raises_errno(errno.ENODATA, os.getxattr, p, "user.a")
    raises_errno(errno.ENODATA, os.removexattr, p, "user.a")
    assert "user.a" not in os.listxattr(p)
    # Directories carry xattrs too.
    os.mkdir(fsroot / "d")
    os.setxattr(fsroot / "d", "user.dir", b"yes")
    assert os.getxattr(fsroot / "d", "user.dir") == b"yes"
    raises_errno(errno.ENOENT, os.getxattr, fsroot / "missing", "user.a")


def test_xattr_trusted(fsroot: Path) -> None:
    p = fsroot / "f"
    write_file(p, b"")
    os.setxattr(p, "trusted.t", b"root only")
    assert os.getxattr(p, "trusted.t") == b"root only"
    assert "trusted.t" in os.listxattr(p)
    # gfs's own bookkeeping xattr is invisible through the mount.
    raises_errno(errno.ENODATA, os.getxattr, p, "trusted.gfs.gfid")
    raises_errno(errno.ENODATA, os.getxattr, fsroot, "trusted.gfs.gfid")
    os.removexattr(p, "trusted.t")
    raises_errno(errno.ENODATA, os.getxattr, p, "trusted.t")


def test_statvfs(fsroot: Path) -> None:
    sv = os.statvfs(fsroot)
    assert sv.f_bsize > 0
    assert sv.f_frsize > 0
    assert sv.f_blocks > 0
    assert 0 <= sv.f_bavail <= sv.f_bfree <= sv.f_blocks
    assert 0 <= sv.f_ffree <= sv.f_files
    assert sv.f_namemax == 255


def test_gfs_dir_reserved(fsroot: Path) -> None:
    """`.gfs` is an ordinary name locally; in the root of a gfs volume it is reserved."""
    if not on_gfs(fsroot):
        os.mkdir(fsroot / ".gfs")
        assert ".gfs" in os.listdir(fsroot)
        return
    raises_errno(errno.ENOENT, os.stat, fsroot / ".gfs")
    raises_errno(errno.EPERM, os.mkdir, fsroot / ".gfs")
    raises_errno(errno.EPERM, os.open, fsroot / ".gfs", os.O_CREAT | os.O_WRONLY)
    assert ".gfs" not in os.listdir(fsroot)
    # Only in the root.
    os.mkdir(fsroot / "d")
    os.mkdir(fsroot / "d" / ".gfs")
    assert os.listdir(fsroot / "d") == [".gfs"]


# --- locks -------------------------------------------------------------------------------

TRY_LOCK = """
import errno, fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
length, start = int(sys.argv[2]), int(sys.argv[3])
try:
    if sys.argv[4] == "flock":
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    else:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, length, start)
    print(0)
except OSError as e:
    print(e.errno)
"""


def try_lock_elsewhere(path: Path, length: int = 0, start: int = 0, kind: str = "lockf") -> int:
    """Try a non-blocking exclusive lock from another process; 0 or the errno."""
    r = run_py(TRY_LOCK, str(path), str(length), str(start), kind)
    assert r.returncode == 0, r.stderr
    return int(r.stdout)


LOCK_CONFLICT = (errno.EAGAIN, errno.EACCES)


def test_record_locks_same_mount(fsroot: Path) -> None:
    p = fsroot / "f"
    write_file(p, b"x" * 100)
    with opened(p, os.O_RDWR) as fd:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
        assert try_lock_elsewhere(p, 10, 0) in LOCK_CONFLICT
        assert try_lock_elsewhere(p, 0, 0) in LOCK_CONFLICT
        assert try_lock_elsewhere(p, 10, 10) == 0  # a disjoint range is free
        fcntl.lockf(fd, fcntl.LOCK_UN, 10, 0)
        assert try_lock_elsewhere(p, 0, 0) == 0


def test_flock_same_mount(fsroot: Path) -> None:
    p = fsroot / "f"
    write_file(p, b"x")
    with opened(p, os.O_RDWR) as fd:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert try_lock_elsewhere(p, kind="flock") in LOCK_CONFLICT
        fcntl.flock(fd, fcntl.LOCK_UN)
        assert try_lock_elsewhere(p, kind="flock") == 0


@pytest.mark.fuse
def test_record_locks_across_mounts(two_mounts: tuple[Path, Path]) -> None:
    a, b = two_mounts
    write_file(a / "f", b"x")
    assert (b / "f").read_bytes() == b"x"
    with opened(a / "f", os.O_RDWR) as fd:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert try_lock_elsewhere(b / "f") in LOCK_CONFLICT
    # close() drops the lock everywhere
    assert try_lock_elsewhere(b / "f") == 0
    with opened(b / "f", os.O_RDWR) as fd:
        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 10, 0)
        assert try_lock_elsewhere(a / "f", 10, 0) in LOCK_CONFLICT
        assert try_lock_elsewhere(a / "f", 10, 10) == 0  # a disjoint range is free
        # F_GETLK on A reports B's read lock
        r = run_py(GET_LOCK, str(a / "f"))
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == [str(fcntl.F_RDLCK), "0", "10"]


GET_LOCK = """
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR)
# struct flock: l_type, l_whence, l_start, l_len, l_pid
arg = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
t, _, start, length, _ = struct.unpack("hhqqi4x", fcntl.fcntl(fd, fcntl.F_GETLK, arg))
print(t, start, length)
"""

#: Blocks in F_SETLKW (or flock) until granted; SIGUSR1 interrupts it. Then waits for a line
#: on stdin before it exits (so a lock it holds stays held meanwhile).
WAIT_LOCK = """
import fcntl, os, signal, sys
class Interrupted(Exception): pass
def on_usr1(signum, frame): raise Interrupted
signal.signal(signal.SIGUSR1, on_usr1)
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    if sys.argv[2] == "flock":
        fcntl.flock(fd, fcntl.LOCK_EX)
    else:
        fcntl.lockf(fd, fcntl.LOCK_EX)
    print("locked", flush=True)
except Interrupted:
    print("interrupted", flush=True)
sys.stdin.readline()
"""
SYS_FCNTL, SYS_FLOCK = 72, 73  # x86_64


def blocked_in(pid: int, nr: int) -> bool:
    """The process sleeps in system call `nr` (/proc/PID/syscall)."""
    try:
        return Path(f"/proc/{pid}/syscall").read_text().split()[0] == str(nr)
    except (FileNotFoundError, IndexError):
        return False


@pytest.mark.fuse
@pytest.mark.parametrize("kind", ["lockf", "flock"])
def test_blocking_lock_woken_across_mounts(two_mounts: tuple[Path, Path], kind: str) -> None:
    a, b = two_mounts
    write_file(a / "f", b"x")
    nr = SYS_FLOCK if kind == "flock" else SYS_FCNTL
    with opened(a / "f", os.O_RDWR) as fd:
        if kind == "flock":
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert try_lock_elsewhere(b / "f", kind=kind) in LOCK_CONFLICT
        waiter = subprocess.Popen(
            [sys.executable, "-I", "-c", WAIT_LOCK, str(b / "f"), kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(lambda: blocked_in(waiter.pid, nr), 30, f"the waiter blocked in {kind}")
            if kind == "flock":
                fcntl.flock(fd, fcntl.LOCK_UN)
            else:
                fcntl.lockf(fd, fcntl.LOCK_UN)
            assert waiter.stdout is not None
            assert waiter.stdout.readline().strip() == "locked"
            # the waiter on B holds it now: A is refused
            assert try_lock_elsewhere(a / "f", kind=kind) in LOCK_CONFLICT
        finally:
            waiter.communicate("\n", timeout=30)
    assert try_lock_elsewhere(a / "f", kind=kind) == 0  # the waiter exited: released


@pytest.mark.fuse
def test_blocking_lock_interrupted_by_signal(two_mounts: tuple[Path, Path]) -> None:
    a, b = two_mounts
    write_file(a / "f", b"x")
    with opened(a / "f", os.O_RDWR) as fd:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        waiter = subprocess.Popen(
            [sys.executable, "-I", "-c", WAIT_LOCK, str(b / "f"), "lockf"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(lambda: blocked_in(waiter.pid, SYS_FCNTL), 30, "the waiter blocked in fcntl")
            waiter.send_signal(signal.SIGUSR1)
            assert waiter.stdout is not None
            assert waiter.stdout.readline().strip() == "interrupted"
            fcntl.lockf(fd, fcntl.LOCK_UN)
            # the interrupted request was withdrawn at the brick: the lock is free
            assert try_lock_elsewhere(a / "f") == 0
        finally:
            waiter.communicate("\n", timeout=30)
