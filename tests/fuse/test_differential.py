"""Differential test: random operations on a gfs mount and on a local directory agree.

Each step applies one operation to both trees and requires the same result
(return value or exact errno); at the end of every example the whole trees
(types, modes, link counts, sizes, contents, symlink targets, user xattrs) must
match. The `local` param runs the machine against two local directories, which
checks the machine itself.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    rule,
    run_state_machine_as_test,
)

from tests.fuse.conftest import GFS_OPTIONS
from tests.procs import BrickDaemon, Mount, have_fuse

MiB = 1 << 20
NAMES = ["a", "b", "c", "d"]
# Half top-level names, so that most operations find what they act on.
paths = st.one_of(
    st.sampled_from(NAMES), st.sampled_from([f"{x}/{y}" for x in NAMES for y in NAMES])
)
dirs = st.sampled_from([".", *NAMES])
# Relative targets that never leave the tree, whatever directory the link is in.
targets = st.sampled_from(["a", "b", "c/d", "missing", ".", "a/b"])
offsets = st.one_of(st.integers(0, 9000), st.sampled_from([MiB - 3, MiB, 2 * MiB + 1]))
sizes = st.one_of(st.integers(0, 9000), st.sampled_from([MiB + 5]))
modes = st.sampled_from([0o644, 0o600, 0o755, 0o700, 0o4755, 0o1777, 0o000])
xattr_names = st.sampled_from(["user.x", "user.y"])
xattr_flags = st.sampled_from([0, os.XATTR_CREATE, os.XATTR_REPLACE])

Outcome = tuple[str, object]
Tree = dict[str, tuple[object, ...]]


def outcome(fn: Callable[[], object]) -> Outcome:
    try:
        return ("ok", fn())
    except OSError as e:
        return ("err", errno.errorcode.get(e.errno or 0, str(e.errno)))


def snapshot(root: Path) -> Tree:
    tree: Tree = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st_ = os.lstat(p)
            entry: list[object] = [stat.S_IFMT(st_.st_mode), oct(stat.S_IMODE(st_.st_mode))]
            entry.append(st_.st_nlink)
            if stat.S_ISREG(st_.st_mode):
                entry += [st_.st_size, hashlib.sha256(p.read_bytes()).hexdigest()]
            if stat.S_ISLNK(st_.st_mode):
                entry.append(os.readlink(p))
            else:
                xattrs = sorted(x for x in os.listxattr(p) if x.startswith("user."))
                entry.append([(x, os.getxattr(p, x)) for x in xattrs])
            tree[str(p.relative_to(root))] = tuple(entry)
    return tree


def clear(root: Path) -> None:
    for entry in os.scandir(root):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


def pwrite(p: Path, data: bytes, offset: int) -> int:
    fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        return os.pwrite(fd, data, offset)
    finally:
        os.close(fd)


def pread(p: Path, size: int, offset: int) -> bytes:
    fd = os.open(p, os.O_RDONLY)
    try:
        return os.pread(fd, size, offset)
    finally:
        os.close(fd)


def lstat_view(p: Path) -> tuple[int, int, int, int]:
    s = os.lstat(p)
    size = 0 if stat.S_ISDIR(s.st_mode) else s.st_size  # directory sizes are the fs's own
    return (stat.S_IFMT(s.st_mode), stat.S_IMODE(s.st_mode), s.st_nlink, size)


class Differential(RuleBasedStateMachine):
    def __init__(self, roots: tuple[Path, Path]) -> None:
        super().__init__()
        self.subject, self.reference = roots

    def both(self, op: Callable[[Path], object]) -> None:
        got = outcome(lambda: op(self.subject))
        want = outcome(lambda: op(self.reference))
        assert got == want

    @initialize()
    def populate(self) -> None:
        """A small starting tree: a directory with a file, a file, a symlink."""
        self.both(lambda r: os.mkdir(r / "a"))
        self.both(lambda r: pwrite(r / "a" / "b", b"inner", 0))
        self.both(lambda r: pwrite(r / "c", b"top", 0))
        self.both(lambda r: os.symlink("a", r / "d"))

    @rule(p=paths, data=st.binary(max_size=300), off=offsets)
    def write(self, p: str, data: bytes, off: int) -> None:
        self.both(lambda r: pwrite(r / p, data, off))

    @rule(p=paths, size=st.integers(0, 5000), off=offsets)
    def read(self, p: str, size: int, off: int) -> None:
        self.both(lambda r: pread(r / p, size, off))

    @rule(p=paths, size=sizes)
    def truncate(self, p: str, size: int) -> None:
        self.both(lambda r: os.truncate(r / p, size))

    @rule(p=paths)
    def mkdir(self, p: str) -> None:
        self.both(lambda r: os.mkdir(r / p))

    @rule(p=paths)
    def rmdir(self, p: str) -> None:
        self.both(lambda r: os.rmdir(r / p))

    @rule(p=paths)
    def unlink(self, p: str) -> None:
        self.both(lambda r: os.unlink(r / p))

    @rule(src=paths, dst=paths)
    def rename(self, src: str, dst: str) -> None:
        self.both(lambda r: os.rename(r / src, r / dst))

    @rule(src=paths, dst=paths)
    def link(self, src: str, dst: str) -> None:
        self.both(lambda r: os.link(r / src, r / dst, follow_symlinks=False))

    @rule(dest=targets, p=paths)
    def symlink(self, dest: str, p: str) -> None:
        self.both(lambda r: os.symlink(dest, r / p))

    @rule(p=paths)
    def readlink(self, p: str) -> None:
        self.both(lambda r: os.readlink(r / p))

    @rule(p=paths, mode=modes)
    def chmod(self, p: str, mode: int) -> None:
        self.both(lambda r: os.chmod(r / p, mode))

    @rule(p=paths, name=xattr_names, value=st.binary(max_size=40), flags=xattr_flags)
    def setxattr(self, p: str, name: str, value: bytes, flags: int) -> None:
        self.both(lambda r: os.setxattr(r / p, name, value, flags))

    @rule(p=paths, name=xattr_names)
    def getxattr(self, p: str, name: str) -> None:
        self.both(lambda r: os.getxattr(r / p, name))

    @rule(p=paths, name=xattr_names)
    def removexattr(self, p: str, name: str) -> None:
        self.both(lambda r: os.removexattr(r / p, name))

    @rule(d=dirs)
    def listdir(self, d: str) -> None:
        self.both(lambda r: sorted(os.listdir(r / d)))

    @rule(p=paths)
    def lstat(self, p: str) -> None:
        self.both(lambda r: lstat_view(r / p))

    def teardown(self) -> None:
        try:
            assert snapshot(self.subject) == snapshot(self.reference)
        finally:
            clear(self.subject)
            clear(self.reference)
        assert os.listdir(self.subject) == []


@pytest.fixture(scope="module", params=["local", pytest.param("gfs", marks=pytest.mark.fuse)])
def diff_roots(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, Path]]:
    """(subject, reference): a gfs mount (or, for `local`, a second local dir) and a local dir."""
    base = tmp_path_factory.mktemp(f"diff-{request.param}")
    reference = base / "reference"
    reference.mkdir()
    if request.param == "local":
        subject = base / "subject"
        subject.mkdir()
        yield subject, reference
        return
    if not have_fuse():
        pytest.fail("FUSE tests need root, /dev/fuse and fusermount3")
    d = BrickDaemon({"b0": base / "b0"}, base / "brickd.log").start()
    m = Mount(f"{d.address}/b0", base / "mnt", base / "mount.log", GFS_OPTIONS)
    try:
        m.start()
        yield m.mountpoint, reference
    finally:
        m.stop()
        d.stop()


def test_differential(diff_roots: tuple[Path, Path]) -> None:
    class OnTheseRoots(Differential):
        def __init__(self) -> None:
            super().__init__(diff_roots)

    run_state_machine_as_test(
        OnTheseRoots,
        settings=settings(
            max_examples=40,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture],
        ),
    )
