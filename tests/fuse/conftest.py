"""Fixtures for the POSIX suite: the same test runs on a local directory and on a gfs mount.

The `local` run checks the test itself against the kernel's own filesystem; the
`gfs` run checks gfs against the same expectations.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import Cluster
from tests.procs import BrickDaemon, Mount, have_fuse, is_mounted
from tests.replicas import demo_cluster

GFS_OPTIONS = "attr-timeout=0,entry-timeout=0"


@pytest.fixture(params=["local", pytest.param("gfs", marks=pytest.mark.fuse)])
def fsroot(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """An empty directory: a local temp dir (`local`) or the root of a gfs mount (`gfs`)."""
    if request.param == "local":
        root = tmp_path / "local"
        root.mkdir()
        return root
    # Lazily, so `-k local` starts no daemon.
    mnt: Path = request.getfixturevalue("mnt")
    return mnt


def on_gfs(root: Path) -> bool:
    """True when `root` is a gfs mount rather than a local directory."""
    return is_mounted(root)


@pytest.fixture
def two_mounts(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """Two independent mounts (two client processes) of one brick."""
    if not have_fuse():
        pytest.fail("FUSE tests need root, /dev/fuse and fusermount3")
    d = BrickDaemon({"b0": tmp_path / "b0"}, tmp_path / "brickd.log").start()
    mounts: list[Mount] = []
    try:
        for name in ("mA", "mB"):
            m = Mount(f"{d.address}/b0", tmp_path / name, tmp_path / f"{name}.log", GFS_OPTIONS)
            mounts.append(m)
            m.start()
        yield mounts[0].mountpoint, mounts[1].mountpoint
    finally:
        for m in mounts:
            m.stop()
        d.stop()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Cluster]:
    """A local cluster with the replica-3 volume `demo` started (1 s failure detection)."""
    with demo_cluster(tmp_path) as c:
        yield c
