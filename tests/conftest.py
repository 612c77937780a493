from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.procs import BrickDaemon, Mount, have_fuse


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
