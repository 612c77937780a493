from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.procs import BrickDaemon, Mount, have_fuse

_BIG = 64


def pytest_assertrepr_compare(op: str, left: object, right: object) -> list[str] | None:
    """Long byte strings that differ: say where, not the whole diff.

    On CI pytest does not truncate, and a full diff of megabytes of file data hides the
    failing test's name from the summary.
    """
    if op != "==" or not isinstance(left, bytes | bytearray | memoryview):
        return None
    if not isinstance(right, bytes | bytearray | memoryview):
        return None
    a, b = bytes(left), bytes(right)
    if max(len(a), len(b)) <= _BIG:
        return None
    at = next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )
    same_tail = next(
        (i for i, (x, y) in enumerate(zip(reversed(a), reversed(b), strict=False)) if x != y),
        min(len(a), len(b)),
    )
    return [
        f"{len(a)} bytes == {len(b)} bytes",
        f"first difference at offset {at}; the last {same_tail} bytes are the same",
        f"left  [{at}:{at + 16}]: {a[at : at + 16]!r}",
        f"right [{at}:{at + 16}]: {b[at : at + 16]!r}",
    ]


@pytest.fixture
def brickd(tmp_path: Path) -> Iterator[BrickDaemon]:
    """A real gfs-brickd on loopback serving brick `b0` at tmp_path/b0."""
    d = BrickDaemon({"b0": tmp_path / "b0"}, tmp_path / "brickd.log").start()
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture
def mnt(brickd: BrickDaemon, tmp_path: Path) -> Iterator[Path]:
    """A real FUSE mount of brick b0 (kernel caching off so tests see every op)."""
    if not have_fuse():
        pytest.fail("FUSE tests need root, /dev/fuse and fusermount3")
    m = Mount(
        f"{brickd.address}/b0",
        tmp_path / "mnt",
        tmp_path / "mount.log",
        "attr-timeout=0,entry-timeout=0",
    )
    m.start()
    try:
        yield m.mountpoint
    finally:
        m.stop()
