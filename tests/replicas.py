"""Helpers for replication tests: the layout gfsd reports, which node holds which
brick, and the comparison of replicas read straight off their bricks."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gfs.api import models as m
from gfs.api.client import Client
from gfs.proto import brick_pb2 as pb
from gfs.proto import brick_pb2_grpc
from gfs.rpc.channel import insecure_channel
from tests.cluster import Cluster, local_cluster
from tests.procs import BrickDaemon, Mount

ROOT = b"\0" * 15 + b"\1"


def start_demo(api: Client, size: str = "200MiB", failure: str | None = "1") -> None:
    """Create and start the replica-3 volume `demo` (fast failure detection by default)."""
    api.volume_create(m.VolumeCreate(name="demo", replica=3, size=size))
    if failure:
        api.volume_set("demo", {"replica.failure-detection-seconds": failure})
    api.volume_start("demo")


@contextmanager
def demo_cluster(tmp: Path, size: str = "200MiB", **kw: Any) -> Iterator[Cluster]:
    """A local cluster (`kw` as for local_cluster) with `demo` started."""
    with local_cluster(tmp, **kw) as c, c.client() as api:
        start_demo(api, size)
        yield c


def make_file(address: str, brick: str, name: bytes, metadata: list[tuple[str, str]]) -> Any:
    """A create sent straight to one brick over gRPC, as a client would send it."""
    with insecure_channel(address) as ch:
        stub: Any = brick_pb2_grpc.BrickStub(ch)  # type: ignore[no-untyped-call]
        return stub.MakeNode(
            pb.MakeNodeRequest(
                brick=brick,
                parent=ROOT,
                name=name,
                gfid=os.urandom(16),
                kind=pb.NODE_KIND_FILE,
                mode=0o100644,
            ),
            timeout=30,
            metadata=metadata,
        )


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


def tree(brick: Path, times: bool = False) -> dict[str, Any]:
    """What must be equal on every replica, read straight off the brick; `times`: the
    mtime (ns) too (the primary's on every replica; ctime and atime stay per-brick)."""
    out: dict[str, Any] = {".": {"mtime_ns": brick.lstat().st_mtime_ns}} if times else {}
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
                if x.startswith(("user.", "trusted.gfs.gfid", "system.posix_acl_"))
            }
            entry: dict[str, Any] = {
                "mode": st.st_mode,
                "uid": st.st_uid,
                "gid": st.st_gid,
                "xattrs": xattrs,
            }
            if times:
                entry["mtime_ns"] = st.st_mtime_ns
            if stat.S_ISREG(st.st_mode):
                entry["sha"] = hashlib.sha256(p.read_bytes()).hexdigest()
                entry["nlink"] = st.st_nlink
            elif stat.S_ISLNK(st.st_mode):
                entry["target"] = os.readlink(p)
            out[os.path.join(rel_dir, name)] = entry
    return out


def assert_identical(c: Cluster, times: bool = False) -> None:
    trees = [tree(Path(b.path), times) for b in layout(c).bricks]
    assert trees[0], "the primary's brick is empty"
    for t in trees[1:]:
        if t != trees[0]:
            diff = {
                k: (trees[0].get(k), t.get(k))
                for k in sorted(set(t) | set(trees[0]))
                if t.get(k) != trees[0].get(k)
            }
            raise AssertionError(f"replicas differ (primary's, member's): {diff}"[:4000])
