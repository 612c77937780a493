"""Helpers for replication tests: the layout gfsd reports, which node holds which
brick, and the comparison of replicas read straight off their bricks."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

from gfs.api import models as m
from tests.cluster import Cluster
from tests.procs import BrickDaemon, Mount


def mount(c: Cluster, tmp_path: Path, name: str = "mnt") -> Mount:
    opts = f"token-file={c.gfsd.state / 'admin.token'},attr-timeout=0,entry-timeout=0"
    return Mount(f"{c.gfsd.address}:/demo", tmp_path / name, tmp_path / f"{name}.log", opts)


def layout(c: Cluster) -> m.ReplicaSet:
    with c.client() as api:
        return api.volume("demo").replica_sets[0]


def node_of(c: Cluster, rs: m.ReplicaSet, brick_id: str | None) -> BrickDaemon:
    address = next(b.address for b in rs.bricks if b.id == brick_id)
    return next(d for d in c.nodes if d.address == address)


def all_in_sync(c: Cluster) -> bool:
    return all(b.in_sync for b in layout(c).bricks)


def tree(brick: Path) -> dict[str, Any]:
    """What must be equal on every replica, read straight off the brick."""
    out: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(brick):
        rel_dir = os.path.relpath(dirpath, brick)
        if rel_dir == ".":
            dirnames[:] = [d for d in dirnames if d != ".gfs"]
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            st = p.lstat()
            xattrs = {
                x: os.getxattr(p, x, follow_symlinks=False)
                for x in os.listxattr(p, follow_symlinks=False)
                if x.startswith(("user.", "trusted.gfs.gfid"))
            }
            entry: dict[str, Any] = {
                "mode": st.st_mode,
                "uid": st.st_uid,
                "gid": st.st_gid,
                "xattrs": xattrs,
            }
            if stat.S_ISREG(st.st_mode):
                entry["sha"] = hashlib.sha256(p.read_bytes()).hexdigest()
                entry["nlink"] = st.st_nlink
            elif stat.S_ISLNK(st.st_mode):
                entry["target"] = os.readlink(p)
            out[os.path.join(rel_dir, name)] = entry
    return out


def assert_identical(c: Cluster) -> None:
    trees = [tree(Path(b.path)) for b in layout(c).bricks]
    assert trees[0], "the primary's brick is empty"
    for t in trees[1:]:
        assert t == trees[0]
