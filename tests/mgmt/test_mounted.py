"""Stop and delete of a mounted volume through gfsd's REST API, on SQLite and PostgreSQL
(issue 10, point 4). The mount is played by its session announcements, sent to the
real brick daemons over the real Brick API, as mount.fuse.gfs sends them (the FUSE
side is tests/fuse/test_sessions.py)."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gfs.api import models as m
from gfs.proto import brick_pb2 as pb
from gfs.proto import brick_pb2_grpc
from gfs.rpc.channel import insecure_channel
from tests.cluster import Cluster, local_cluster


@pytest.fixture
def cluster(db_url: str, tmp_path: Path) -> Iterator[Cluster]:
    with local_cluster(tmp_path, db_url) as c:
        yield c


def announce(v: m.Volume, sid: str, mountpoint: str, end: bool = False) -> list[int]:
    """What a mount of `v` sends each of its bricks; their answers."""
    out = []
    for b in (b for rs in v.replica_sets for b in rs.bricks):
        with insecure_channel(b.address) as ch:
            stub: Any = brick_pb2_grpc.BrickStub(ch)  # type: ignore[no-untyped-call]
            req = pb.SessionRequest(
                brick=b.name,
                session=sid,
                hostname="client-1",
                mountpoint=mountpoint,
                pid=4242,
                interval=60,
                end=end,
            )
            out.append(stub.Session(req, timeout=10).err)
    return out


def test_stop_and_delete_refused_while_mounted(cluster: Cluster) -> None:
    base = f"http://{cluster.gfsd.address}/v1"
    h = {"Authorization": f"Bearer {cluster.gfsd.token}"}
    with cluster.client() as api:
        api.volume_create(m.VolumeCreate(name="demo", replica=3, size="10MiB"))
        v = api.volume_start("demo")
        assert api.volume_clients("demo") == []
        assert announce(v, "s1", "/mnt/demo") == [0, 0, 0]

        (c,) = api.volume_clients("demo")
        assert (c.hostname, c.mountpoint, c.pid, c.address) == (
            "client-1",
            "/mnt/demo",
            4242,
            "127.0.0.1",
        )
        assert sorted(c.bricks) == sorted(b.name for b in v.replica_sets[0].bricks)

        r = httpx.post(f"{base}/volumes/demo/stop", headers=h, timeout=30)
        assert r.status_code == 409
        body = r.json()
        assert body["code"] == "volume_in_use"
        assert "client-1:/mnt/demo (pid 4242)" in body["message"]
        assert [x["mountpoint"] for x in body["details"]["clients"]] == ["/mnt/demo"]
        assert api.volume("demo").state == "started"
        assert announce(v, "s1", "/mnt/demo") == [0, 0, 0]  # its bricks still serve it

        r = httpx.post(f"{base}/volumes/demo/stop", params={"force": "true"}, headers=h)
        assert r.status_code == 200 and r.json()["state"] == "stopped"
        # The bricks know gfsd stopped them: a clear answer for the mount, not ENODEV.
        assert announce(v, "s1", "/mnt/demo") == [errno.ESHUTDOWN] * 3

        r = httpx.delete(f"{base}/volumes/demo", headers=h, timeout=30)
        assert r.status_code == 409 and r.json()["code"] == "volume_in_use"
        assert api.volume("demo").state == "stopped"
        # Once unmounted (the session ends), delete needs no force.
        announce(v, "s1", "/mnt/demo", end=True)
        assert api.volume_clients("demo") == []
        api.volume_delete("demo", True)
        assert api.volumes() == []


def test_forced_delete_of_a_mounted_volume(cluster: Cluster) -> None:
    with cluster.client() as api:
        api.volume_create(m.VolumeCreate(name="gone", replica=3, size="10MiB"))
        v = api.volume_start("gone")
        announce(v, "s1", "/mnt/a")
        announce(v, "s2", "/mnt/b")
        assert [c.mountpoint for c in api.volume_clients("gone")] == ["/mnt/a", "/mnt/b"]
        api.volume_stop("gone", force=True)
        api.volume_delete("gone", True, force=True)
        assert api.volumes() == []
        assert not any(Path(b.path).exists() for rs in v.replica_sets for b in rs.bricks)
        # A mount of the deleted volume still gets the clear answer.
        assert announce(v, "s1", "/mnt/a") == [errno.ESHUTDOWN] * 3
