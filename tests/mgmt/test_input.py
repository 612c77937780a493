"""Input and start-up of gfsd against real daemons on SQLite and PostgreSQL: strict
request types and sizes, brick references, peer names, one replica set, refused
creates that leave no transaction, and a gfsd that answers what it is asked while it
starts."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from gfs.api import models as m
from gfs.api.client import ApiError
from gfs_mgmt.store.db import Database
from gfs_mgmt.store.models import Brick, ReplicaSet, Transaction, Volume
from gfs_mgmt.txn.engine import CRASH_AFTER_ENV
from gfs_mgmt.volume.service import BRICKD_PORT
from tests.cluster import Cluster, local_cluster
from tests.netns import network
from tests.procs import BrickDaemon, Gfsd, wait_for


@pytest.fixture
def cluster(db_url: str, tmp_path: Path) -> Iterator[Cluster]:
    with local_cluster(tmp_path, db_url) as c:
        yield c


def post(c: Cluster, path: str, body: Any) -> httpx.Response:
    h = {"Authorization": f"Bearer {c.gfsd.token}"}
    return httpx.post(f"http://{c.gfsd.address}/v1{path}", json=body, headers=h, timeout=30)


def txn_count(db_url: str) -> int:
    db = Database(db_url)
    try:
        with db.session() as s:
            return int(s.scalar(select(func.count()).select_from(Transaction)) or 0)
    finally:
        db.close()


def bricks_of(c: Cluster, folder: str, ports: bool = True) -> list[str]:
    """One brick per node under its root: HOST:PORT:/root/folder (or HOST:/…)."""
    return [
        f"{d.address if ports else d.address.rpartition(':')[0]}:{root}/{folder}"
        for d, root in zip(c.nodes, c.roots, strict=True)
    ]


def test_sizes_and_types_are_strict(cluster: Cluster) -> None:
    """An absurd size is a 400, not a 500; `true` is no size and "3" no replica;
    decimal sizes are exact."""
    huge = "9" * 400
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("/volumes", {"name": "v", "size": huge}, "limit"),
        ("/volumes", {"name": "v", "size": huge + "GiB"}, "limit"),
        ("/volumes", {"name": "v", "size": 2**63}, "limit"),
        ("/volumes", {"name": "v", "size": "8192PiB"}, "limit"),
        ("/volumes", {"name": "v", "size": True}, "size"),
        ("/volumes", {"name": "v", "size": 1.5}, "size"),
        ("/volumes", {"name": "v", "size": "1MiB", "replica": "3"}, "replica"),
        ("/volumes", {"name": "v", "size": "1MiB", "replica": True}, "replica"),
        ("/volumes", {"name": "v", "size": "1MiB", "replica": 3.0}, "replica"),
        ("/volumes", {"name": "v", "size": "1MiB", "options": {"client.writeback": True}}, ""),
        ("/peers", {"address": 24101}, "address"),
        ("/volumes/v/heal", {"full": "yes"}, "full"),
        ("/volumes/v/replica-sets/0/shrink", {"epoch": "1", "bricks": ["b"], "reporter": "r"}, ""),
        ("/volumes/v/replica-sets/0/reconcile", {"epoch": True}, "epoch"),
    ]
    for path, body, word in cases:
        r = post(cluster, path, body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["code"] == "invalid_request" and word in r.json()["message"], r.text
    r = post(cluster, "/volumes", {"name": "exact", "size": "4.1MB"})
    assert r.status_code == 201, r.text
    assert r.json()["size_bytes"] == 4_100_000  # float arithmetic gave 4099999
    for size in (huge, True, 1.5, 2**63):
        r = post(cluster, "/volumes/exact/expand", {"size": size})
        assert r.status_code == 400 and r.json()["code"] == "invalid_request", (size, r.text)
    with cluster.client() as api:
        assert [v.name for v in api.volumes()] == ["exact"]
        assert api.volume("exact").size_bytes == 4_100_000


def test_two_replica_sets_are_refused(cluster: Cluster, db_url: str) -> None:
    """Until scale-out, a volume is one replica set: refused at create, and at start for
    a volume an older gfsd stored with two."""
    six = bricks_of(cluster, "a") + bricks_of(cluster, "b")
    before = txn_count(db_url)
    r = post(cluster, "/volumes", {"name": "wide", "replica": 3, "bricks": six})
    assert r.status_code == 400 and r.json()["code"] == "scale_out_unsupported", r.text
    assert "more than one replica set is not supported yet" in r.json()["message"]
    assert not any((root / f).exists() for root in cluster.roots for f in ("a", "b"))
    assert txn_count(db_url) == before

    with cluster.client() as api:
        api.volume_create(m.VolumeCreate(name="old", replica=3, bricks=bricks_of(cluster, "o")))
    db = Database(db_url)
    try:
        with db.session() as s:  # a second set, as an older gfsd would have stored it
            v = s.scalar(select(Volume).where(Volume.name == "old"))
            assert v is not None
            rs = ReplicaSet(index=1, min_in_sync=2)
            v.replica_sets.append(rs)
            for pos, b in enumerate(v.replica_sets[0].bricks):
                rs.bricks.append(
                    Brick(
                        volume_id=v.id,
                        position=pos,
                        peer_id=b.peer_id,
                        root=b.root,
                        path=b.path + "-s1",
                        name=f"old-r1-b{pos}",
                    )
                )
    finally:
        db.close()
    r = post(cluster, "/volumes/old/start", None)
    assert r.status_code == 400 and r.json()["code"] == "scale_out_unsupported", r.text
    with cluster.client() as api:
        assert api.volume("old").state == "created"
        assert not any(b.online for b in api.volume_status("old").bricks)


def test_brick_host_without_port_is_refused_when_ambiguous(cluster: Cluster) -> None:
    """Three peers on 127.0.0.1: HOST:/path could mean any of them."""
    with cluster.client() as api:
        peers = api.peers()
    r = post(
        cluster,
        "/volumes",
        {"name": "amb", "replica": 3, "bricks": bricks_of(cluster, "x", ports=False)},
    )
    assert r.status_code == 400 and r.json()["code"] == "ambiguous_brick_host", r.text
    msg = r.json()["message"]
    assert "HOST:PORT:/PATH" in msg and all(p.address in msg and p.name in msg for p in peers)
    assert not any((root / "x").exists() for root in cluster.roots)
    # The peer name picks one, as HOST:PORT does.
    by_address = {p.address: p.name for p in peers}
    named = [
        f"{by_address[d.address]}:{root}/x"
        for d, root in zip(cluster.nodes, cluster.roots, strict=True)
    ]
    r = post(cluster, "/volumes", {"name": "named", "replica": 3, "bricks": named})
    assert r.status_code == 201, r.text
    assert all((root / "x").is_dir() for root in cluster.roots)


def uts_host(hostname: str) -> list[str]:
    """A command prefix that runs the rest in a UTS namespace with `hostname`."""
    return ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', hostname]


def have_unshare() -> bool:
    return subprocess.run([*uts_host("probe"), "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not have_unshare(), reason="needs unshare --uts (root)")
def test_peer_names_are_unique_and_consistent(cluster: Cluster, tmp_path: Path) -> None:
    """A peer is named by its hostname on the standard port, else HOSTNAME:PORT; the
    hostname alone or an address host with several peers is ambiguous."""
    me = socket.gethostname()
    with cluster.client() as api:
        assert sorted(p.name for p in api.peers()) == sorted(
            f"{me}:{d.port}" for d in cluster.nodes
        )
    r = post(cluster, "/volumes", {"name": "h", "replica": 1, "bricks": [f"{me}:/x/y"]})
    assert r.status_code == 400 and r.json()["code"] == "ambiguous_brick_host", r.text
    extra: list[BrickDaemon] = []
    # Two hosts of their own (network namespaces), both with the hostname gfs-lone:
    # the standard port is free there whatever runs on this machine.
    with network(2, prefix="10.231.47") as net:
        try:
            for i in range(2):
                root = tmp_path / f"lone{i}" / "root"
                root.mkdir(parents=True)
                d = BrickDaemon(
                    {f"lb{i}": tmp_path / f"lone{i}" / "boot"},
                    tmp_path / f"lone{i}.log",
                    ["--root", str(root), "--zone", "zl"],
                    host=net.node_ip(i),
                    wrap=net.wrap(i) + uts_host("gfs-lone"),
                )
                if i == 0:
                    d.port, d.address = BRICKD_PORT, f"{net.node_ip(i)}:{BRICKD_PORT}"
                extra.append(d.start())
            check_lone_peers(cluster, tmp_path, extra)
        finally:
            for d in extra:
                d.stop()


def check_lone_peers(cluster: Cluster, tmp_path: Path, extra: list[BrickDaemon]) -> None:
    with cluster.client() as api:
        assert api.peer_add(extra[0].address).name == "gfs-lone"
        assert api.peer_add(extra[1].address).name == f"gfs-lone:{extra[1].port}"
        names = [p.name for p in api.peers()]
        assert len(set(names)) == len(names) == 5 and "gfs-lone" in names  # never renamed
        # HOST:/path with one peer on HOST works, and so does a peer name.
        bricks = [
            f"{extra[0].address.rpartition(':')[0]}:{tmp_path}/lone0/root/a",
            f"gfs-lone:{extra[1].port}:{tmp_path}/lone1/root/a",
            bricks_of(cluster, "a")[0],
        ]
        v = api.volume_create(m.VolumeCreate(name="lone", replica=3, bricks=bricks))
        assert {b.peer_name for b in v.replica_sets[0].bricks} >= {
            "gfs-lone",
            f"gfs-lone:{extra[1].port}",
        }
        assert (tmp_path / "lone1" / "root" / "a").is_dir()


BAD_FOLDERS = [".hidden", "x" * 300, "a\0b"]


def test_bad_brick_folder_records_no_transaction(cluster: Cluster, db_url: str) -> None:
    before = txn_count(db_url)
    for folder in BAD_FOLDERS:
        r = post(
            cluster, "/volumes", {"name": "bad", "replica": 3, "bricks": bricks_of(cluster, folder)}
        )
        assert r.status_code == 400 and r.json()["code"] == "bad_brick", (folder, r.text)
        assert "folder name" in r.json()["message"]
    # ROOT/.. is normalized first: the root's parent, which is no brick root.
    r = post(cluster, "/volumes", {"name": "bad", "replica": 3, "bricks": bricks_of(cluster, "..")})
    assert r.status_code == 400 and r.json()["code"] == "brick_outside_roots", r.text
    assert txn_count(db_url) == before
    assert " ERROR " not in cluster.gfsd.log.read_text()


def test_refused_creates_left_by_older_gfsd_roll_back_at_start(
    cluster: Cluster, db_url: str
) -> None:
    """What an older gfsd left for creates the brick refused (bad folder names): the
    undo of a folder that could never be made failed, so they stayed `failed` and
    logged ERROR at every start. Recovery now finishes them."""
    with cluster.client() as api:
        peers = api.peers()
    db = Database(db_url)
    ids = []
    try:
        with db.session() as s:
            for i, folder in enumerate([".hidden", "x" * 300, "..", ".gfs", "y" * 256]):
                steps: list[dict[str, Any]] = [
                    {
                        "kind": "provision",
                        "params": {
                            "peer_id": p.id,
                            "address": p.address,
                            "root": p.roots[0].path,
                            "name": f"bad{i}-r0-b{pos}",
                            "folder": folder,
                            "path": f"{p.roots[0].path}/{folder}",
                            "set": 0,
                            "pos": pos,
                        },
                    }
                    for pos, p in enumerate(peers)
                ]
                steps.append({"kind": "db_volume", "params": {"spec": {}, "bricks": []}})
                t = Transaction(kind="volume_create", volume=f"bad{i}", steps=steps, owner="x")
                t.state, t.error = "failed", "Provision: Invalid argument; undo failed: …"
                s.add(t)
                s.flush()
                ids.append(t.id)
    finally:
        db.close()
    g = cluster.gfsd
    g.stop()
    mark = g.log.stat().st_size
    g.start()
    with cluster.client() as api:
        assert {api.transaction(i).state for i in ids} == {"rolled_back"}
    g.stop()
    again = g.log.stat().st_size
    g.start()
    assert " ERROR " not in g.log.read_text()[mark:], g.log.read_text()[mark:]
    assert "recovered transactions" not in g.log.read_text()[again:]  # nothing left to retry


def test_requests_made_while_gfsd_starts_wait_for_it(cluster: Cluster, db_url: str) -> None:
    """gfsd listens before migrations and recovery: a client connecting meanwhile is
    answered once it is ready, not refused. Recovery is held up for real: it has to
    undo a provision on a brick daemon that is stopped (SIGSTOP) until the client is in."""
    g = cluster.gfsd
    g.stop()
    crashing = Gfsd(g.state, g.log, g.db, {CRASH_AFTER_ENV: "1"})
    crashing.port, crashing.address = g.port, g.address
    try:
        crashing.start(timeout=90)
        with cluster.client() as api, pytest.raises(ApiError):
            api.volume_create(m.VolumeCreate(name="half", replica=3, size="1MiB"))
        assert crashing.proc is not None and crashing.proc.wait(10) == -signal.SIGKILL
    finally:
        crashing.stop()
    db = Database(db_url)
    try:
        with db.session() as s:
            t = s.scalar(select(Transaction).where(Transaction.volume == "half"))
            assert t is not None and t.state == "running" and t.done == 1
            # Step 0 made its folder: recovery must remove it on that node.
            txn_id, made_on = t.id, t.steps[0]["params"]["address"]
    finally:
        db.close()
    node = next(d for d in cluster.nodes if d.address == made_on)
    assert node.proc is not None
    node.proc.send_signal(signal.SIGSTOP)
    try:
        g.start(wait=False)

        def connects() -> bool:
            assert g.proc is not None and g.proc.poll() is None, g.log.read_text()
            try:
                socket.create_connection((g.host, g.port), timeout=1).close()
                return True
            except OSError:
                return False

        wait_for(connects, 90, "gfsd accepting connections")
        db = Database(db_url)
        try:
            with db.session() as s:
                t = s.get(Transaction, txn_id)
                assert t is not None and t.state == "running"  # recovery is still blocked
        finally:
            db.close()
        answer: list[httpx.Response] = []
        asker = threading.Thread(
            target=lambda: answer.append(httpx.get(f"http://{g.address}/v1/health", timeout=60))
        )
        asker.start()
    finally:
        node.proc.send_signal(signal.SIGCONT)
    asker.join(60)
    assert answer and answer[0].status_code == 200
    with cluster.client() as api:
        assert api.transaction(txn_id).state == "rolled_back"
