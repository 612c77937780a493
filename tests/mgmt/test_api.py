"""gfsd's REST API against real daemons (gfsd + three gfs-brickd) on SQLite and
PostgreSQL: auth, errors, peers, volume lifecycle, parallel creates, and a gfsd
killed between two steps of a volume create."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from gfs.api import models as m
from gfs.api.client import ApiError
from gfs_mgmt.txn.engine import CRASH_AFTER_ENV
from tests.cluster import Cluster, local_cluster
from tests.procs import Gfsd, free_port


@pytest.fixture
def cluster(db_url: str, tmp_path: Path) -> Iterator[Cluster]:
    with local_cluster(tmp_path, db_url) as c:
        yield c


def api_error(fn: object, *args: object) -> ApiError:
    with pytest.raises(ApiError) as e:
        fn(*args)  # type: ignore[operator]
    return e.value


def test_auth(cluster: Cluster) -> None:
    base = f"http://{cluster.gfsd.address}"
    assert httpx.get(f"{base}/v1/health").status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        r = httpx.get(f"{base}/v1/volumes", headers=headers)
        assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    assert (cluster.gfsd.state / "admin.token").stat().st_mode & 0o777 == 0o600


def test_errors_are_json_4xx(cluster: Cluster) -> None:
    base = f"http://{cluster.gfsd.address}"
    h = {"Authorization": f"Bearer {cluster.gfsd.token}"}
    cases = [
        ("POST", "/v1/volumes", {"name": "bad name!", "size": "1GiB"}, 400),
        ("POST", "/v1/volumes", {"name": "v", "size": "lots"}, 400),
        ("POST", "/v1/volumes", {"name": "v", "replica": 0, "size": "1GiB"}, 400),
        ("POST", "/v1/volumes", {"name": "v"}, 400),
        ("POST", "/v1/volumes", {"name": "v", "size": "1GiB", "unknown": 1}, 400),
        ("POST", "/v1/volumes", {"name": "v", "size": "1PiB"}, 409),
        ("POST", "/v1/volumes", {"name": "v", "replica": 4, "size": "1GiB"}, 409),
        ("POST", "/v1/volumes", {"name": "v", "replica": 2, "bricks": ["nohost:/x/y"]}, 400),
        ("GET", "/v1/volumes/nope", None, 404),
        ("POST", "/v1/peers", {"address": "not an address"}, 400),
        ("POST", "/v1/peers", {"address": f"127.0.0.1:{free_port()}"}, 503),
        ("DELETE", "/v1/peers/nope", None, 404),
        ("GET", "/v1/nothing", None, 404),
        ("GET", "/v1/transactions/nope", None, 404),
    ]
    for method, path, body, status in cases:
        r = httpx.request(method, base + path, json=body, headers=h, timeout=30)
        assert r.status_code == status, (path, body, r.text)
        err = r.json()
        assert set(err) == {"code", "message", "details"} and err["message"]


def test_volume_lifecycle(cluster: Cluster) -> None:
    with cluster.client() as api:
        assert len(api.peers()) == 3
        v = api.volume_create(m.VolumeCreate(name="demo", replica=3, size="1GiB"))
        bricks = [b for rs in v.replica_sets for b in rs.bricks]
        assert v.state == "created" and len({b.peer_id for b in bricks}) == 3
        assert all(Path(b.path).is_dir() for b in bricks)
        assert api.volume_start("demo").state == "started"
        assert all(b.online for b in api.volume_status("demo").bricks)
        err = api_error(api.volume_delete, "demo", True)
        assert err.status == 409 and err.code == "volume_started"
        err = api_error(api.peer_remove, bricks[0].peer_id)
        assert err.status == 409 and err.code == "peer_has_bricks"
        assert api.volume_stop("demo").state == "stopped"
        assert not any(b.online for b in api.volume_status("demo").bricks)
        api.volume_delete("demo", True)
        assert not any(Path(b.path).exists() for b in bricks)
        assert api.volumes() == []


def test_explicit_bricks(cluster: Cluster) -> None:
    with cluster.client() as api:
        peers = api.peers()
        spec = [f"{p.address}:{r.path}/mine" for p in peers for r in p.roots]
        v = api.volume_create(m.VolumeCreate(name="ex", replica=3, bricks=spec))
        assert sorted(b.path for b in v.replica_sets[0].bricks) == sorted(
            f"{r}/mine" for r in cluster.roots
        )
        assert all((r / "mine").is_dir() for r in cluster.roots)
        bad = m.VolumeCreate(name="ex2", replica=3, bricks=[f"{peers[0].address}:/etc/x"] * 3)
        assert api_error(api.volume_create, bad).code == "brick_outside_roots"


def test_hundred_parallel_creates(cluster: Cluster) -> None:
    with cluster.client() as api:

        def create(i: int) -> str:
            return api.volume_create(m.VolumeCreate(name=f"p{i}", replica=3, size="1MiB")).name

        with ThreadPoolExecutor(20) as pool:
            names = list(pool.map(create, range(100)))
        assert sorted(names) == sorted(f"p{i}" for i in range(100))
        assert len(api.volumes()) == 100


def test_gfsd_killed_mid_create_leaves_nothing(cluster: Cluster) -> None:
    g = cluster.gfsd
    g.stop()
    # A real SIGKILL of gfsd right after step 2 of 4 (two bricks provisioned).
    crashing = Gfsd(g.state, g.log, g.db, {CRASH_AFTER_ENV: "2"})
    crashing.port, crashing.address = g.port, g.address
    crashing.start()
    with pytest.raises(ApiError) as e, cluster.client() as api:
        api.volume_create(m.VolumeCreate(name="half", replica=3, size="1GiB"))
    assert e.value.code == "unreachable"
    assert crashing.proc is not None and crashing.proc.wait(10) == -signal.SIGKILL
    made = [p for root in cluster.roots for p in root.iterdir() if p.name.startswith("half")]
    assert len(made) == 2  # the crash really happened half-way
    g.start()  # recovery runs before serving
    with cluster.client() as api:
        assert api_error(api.volume, "half").status == 404
    assert [p for root in cluster.roots for p in root.iterdir() if p.name.startswith("half")] == []


def test_options_templates_expand_events(cluster: Cluster) -> None:
    base = f"http://{cluster.gfsd.address}/v1"
    h = {"Authorization": f"Bearer {cluster.gfsd.token}"}
    with cluster.client() as api:
        api.volume_create(
            m.VolumeCreate(
                name="o",
                replica=3,
                size="1MiB",
                template="small-files",
                options={"client.writeback": "yes"},
            )
        )
    opts = httpx.get(f"{base}/volumes/o/options", headers=h).json()
    assert opts["client.attr-timeout"] == "5.0"  # from the template
    assert opts["client.writeback"] == "on"  # normalized
    assert opts["replica.min-in-sync"] == "majority"  # default
    r = httpx.post(
        f"{base}/volumes/o/options",
        headers=h,
        json={"options": {"client.entry-timeout": "2", "client.attr-timeout": "x"}},
    )
    assert r.status_code == 400 and r.json()["code"] == "bad_option_value"
    assert httpx.get(f"{base}/volumes/o/options", headers=h).json()["client.entry-timeout"] == (
        "5.0"  # nothing applied from a rejected batch
    )
    r = httpx.post(f"{base}/volumes/o/options", headers=h, json={"options": {"nope": "1"}})
    assert r.status_code == 400 and r.json()["code"] == "unknown_option"
    r = httpx.delete(f"{base}/volumes/o/options/client.attr-timeout", headers=h)
    assert r.status_code == 200 and r.json()["client.attr-timeout"] == "1"
    names = {t["name"] for t in httpx.get(f"{base}/templates", headers=h).json()}
    assert {"default", "small-files", "fast-failover"} <= names
    assert httpx.get(f"{base}/templates/nope", headers=h).status_code == 404
    table = httpx.get(f"{base}/options", headers=h).json()
    assert any(o["name"] == "replica.failure-detection-seconds" for o in table)
    r = httpx.post(f"{base}/volumes/o/expand", headers=h, json={"size": "2MiB"})
    assert r.status_code == 200 and r.json()["size_bytes"] == 2 << 20
    r = httpx.post(f"{base}/volumes/o/expand", headers=h, json={"size": "1MiB"})
    assert r.status_code == 400 and r.json()["code"] == "not_larger"
    r = httpx.post(f"{base}/volumes/o/expand", headers=h, json={"size": "1PiB"})
    assert r.status_code == 409 and r.json()["code"] == "expand_no_space"
    kinds = [e["kind"] for e in httpx.get(f"{base}/events?volume=o", headers=h).json()]
    assert kinds[:3] == ["volume_expanded", "volume_option_reset", "volume_created"]
