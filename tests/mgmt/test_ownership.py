"""Issue 10, points 1 and 2, against real daemons on SQLite and PostgreSQL: no failed,
rolled back or crashed command deletes a folder gfsd did not make, and no create
takes another volume's brick."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from gfs.api import models as m
from gfs.api.client import ApiError, Client
from gfs_mgmt.txn.engine import CRASH_AFTER_ENV, CRASH_UNRECORDED_ENV
from tests.cluster import Cluster, local_cluster
from tests.procs import Gfsd, Mount, have_fuse


@pytest.fixture
def cluster(db_url: str, tmp_path: Path) -> Iterator[Cluster]:
    with local_cluster(tmp_path, db_url) as c:
        yield c


def refused(api: Client, spec: m.VolumeCreate) -> ApiError:
    with pytest.raises(ApiError) as e:
        api.volume_create(spec)
    return e.value


def brick(c: Cluster, i: int, folder: str) -> str:
    return f"{c.nodes[i].address}:{c.roots[i]}/{folder}"


def precious(c: Cluster, i: int) -> Path:
    p = c.roots[i] / "precious"
    p.mkdir()
    (p / "data.txt").write_text("x\n")
    return p


def test_failed_create_keeps_an_existing_folder(cluster: Cluster) -> None:
    """Point 1: a create over a folder with user data fails; the rollback removes the
    folders this create made and nothing else."""
    keep = precious(cluster, 2)
    with cluster.client() as api:
        spec = m.VolumeCreate(name="pv", replica=1, bricks=[brick(cluster, 2, "precious")])
        err = refused(api, spec)
        assert err.code == "brick_in_use" and "not empty" in err.message
        three = [
            brick(cluster, 0, "fresh"),
            brick(cluster, 1, "fresh"),
            brick(cluster, 2, "precious"),
        ]
        err = refused(api, m.VolumeCreate(name="pv", replica=3, bricks=three))
        assert err.code == "brick_in_use" and "precious" in err.message
        assert api.volumes() == []
    assert (keep / "data.txt").read_text() == "x\n"
    assert not (cluster.roots[0] / "fresh").exists() and not (cluster.roots[1] / "fresh").exists()


def test_recreate_after_delete_keeps_the_old_folders(cluster: Cluster) -> None:
    """Point 1: `volume delete p` (data kept), then `volume create p --size`: the old
    folders and their files stay; the new volume gets fresh folders."""
    with cluster.client() as api:
        old = api.volume_create(m.VolumeCreate(name="p", replica=3, size="10MiB"))
        old_paths = [Path(b.path) for rs in old.replica_sets for b in rs.bricks]
        for p in old_paths:
            (p / "user.txt").write_text("mine\n")
        api.volume_delete("p", False)
        new = api.volume_create(m.VolumeCreate(name="p", replica=3, size="10MiB"))
        new_paths = [Path(b.path) for rs in new.replica_sets for b in rs.bricks]
        assert not set(new_paths) & set(old_paths)
        assert api.volume_start("p").state == "started"
        api.volume_stop("p")
        api.volume_delete("p", True)
    assert all((p / "user.txt").read_text() == "mine\n" for p in old_paths)
    assert not any(p.exists() for p in new_paths)


def test_delete_data_keeps_an_operator_folder(cluster: Cluster) -> None:
    """An explicit brick on an existing empty folder: --delete-data empties it and
    keeps the folder (gfsd did not make it)."""
    mine = cluster.roots[0] / "mine"
    mine.mkdir()
    with cluster.client() as api:
        api.volume_create(m.VolumeCreate(name="ex", replica=1, bricks=[brick(cluster, 0, "mine")]))
        api.volume_start("ex")
        api.volume_stop("ex")
        api.volume_delete("ex", True)
    assert mine.is_dir() and list(mine.iterdir()) == []


def test_create_over_a_live_brick_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    """Point 2: a create naming a started volume's brick is refused; the victim keeps
    serving and its data is intact."""
    with cluster.client() as api:
        v = api.volume_create(m.VolumeCreate(name="victim", replica=3, size="10MiB"))
        api.volume_start("victim")
        bricks = [b for rs in v.replica_sets for b in rs.bricks]
        mnt = None
        if have_fuse():
            opts = f"token-file={cluster.gfsd.state / 'admin.token'},attr-timeout=0"
            mnt = Mount(
                f"{cluster.gfsd.address}:/victim", tmp_path / "mnt", tmp_path / "m.log", opts
            ).start()
            (mnt.mountpoint / "f").write_text("before\n")
        try:
            for b in bricks:
                i = cluster.roots.index(Path(b.path).parent)
                evil = [f"{cluster.nodes[i].address}:{b.path}"]
                err = refused(api, m.VolumeCreate(name="evil", replica=1, bricks=evil))
                assert err.status == 409 and err.code == "brick_in_use"
                assert "victim" in err.message
            assert all(s.online for s in api.volume_status("victim").bricks)
            assert all((Path(b.path) / ".gfs").is_dir() for b in bricks)
            if mnt is not None:
                assert (mnt.mountpoint / "f").read_text() == "before\n"
                (mnt.mountpoint / "g").write_text("after\n")
                assert all((Path(b.path) / "g").read_text() == "after\n" for b in bricks)
        finally:
            if mnt is not None:
                mnt.stop()


def test_paths_inside_or_containing_a_brick_are_refused(db_url: str, tmp_path: Path) -> None:
    """Point 2 with nested roots (node 0 has ROOT and ROOT/outer): a brick may neither
    lie inside nor contain another volume's brick, checked by gfsd and by the daemon."""
    root0 = tmp_path / "n0" / "root"
    inner = root0 / "outer"
    inner.mkdir(parents=True)
    extra = {0: ["--root", str(inner)]}
    with (
        local_cluster(tmp_path, db_url, brickd_args=lambda i: extra.get(i, [])) as c,
        c.client() as api,
    ):
        addr = c.nodes[0].address
        api.volume_create(m.VolumeCreate(name="low", replica=1, bricks=[f"{addr}:{inner}/x"]))
        err = refused(api, m.VolumeCreate(name="big", replica=1, bricks=[f"{addr}:{inner}"]))
        assert err.code == "brick_in_use" and "contains brick low-r0-b0" in err.message
        api.volume_delete("low", True)
        api.volume_create(m.VolumeCreate(name="big", replica=1, bricks=[f"{addr}:{inner}"]))
        err = refused(api, m.VolumeCreate(name="low", replica=1, bricks=[f"{addr}:{inner}/y"]))
        assert err.code == "brick_in_use" and "lies in brick big-r0-b0" in err.message
        assert not (inner / "y").exists()


def crash_then_recover(c: Cluster, env: dict[str, str], spec: m.VolumeCreate) -> None:
    g = c.gfsd
    g.stop()
    crashing = Gfsd(g.state, g.log, g.db, env)
    crashing.port, crashing.address = g.port, g.address
    try:
        crashing.start()
        with pytest.raises(ApiError) as e, c.client() as api:
            api.volume_create(spec)
        assert e.value.code == "unreachable"
        assert crashing.proc is not None and crashing.proc.wait(10) == -signal.SIGKILL
    finally:
        crashing.stop()  # when it did not die as planned
    g.start()  # recovery runs before serving
    with c.client() as api:
        assert api.volumes() == []


def test_recovery_does_not_delete_a_folder_the_crashed_step_never_made(cluster: Cluster) -> None:
    """gfsd killed after step 1 of a create whose step 2 names a folder with user data:
    recovery undoes step 1 and leaves that folder alone (it used to delete it)."""
    keep = precious(cluster, 1)
    bricks = [brick(cluster, 0, "fresh"), brick(cluster, 1, "precious"), brick(cluster, 2, "f2")]
    spec = m.VolumeCreate(name="cr", replica=3, bricks=bricks)
    crash_then_recover(cluster, {CRASH_AFTER_ENV: "1"}, spec)
    assert (keep / "data.txt").read_text() == "x\n"
    assert not (cluster.roots[0] / "fresh").exists()


def test_recovery_removes_only_its_own_marker(cluster: Cluster) -> None:
    """gfsd killed right after step 2 (an operator's empty folder taken) returned but
    before it was recorded: recovery removes that step's marker, keeps the folder, and
    removes the folder step 1 made."""
    mine = cluster.roots[1] / "mine"
    mine.mkdir()
    bricks = [brick(cluster, 0, "fresh"), brick(cluster, 1, "mine"), brick(cluster, 2, "f2")]
    spec = m.VolumeCreate(name="cr", replica=3, bricks=bricks)
    crash_then_recover(cluster, {CRASH_UNRECORDED_ENV: "2"}, spec)
    assert mine.is_dir() and list(mine.iterdir()) == []
    assert not (cluster.roots[0] / "fresh").exists() and not (cluster.roots[2] / "f2").exists()


def test_delete_with_data_and_a_daemon_down_deletes_nothing(cluster: Cluster) -> None:
    """Every daemon must answer and prove ownership before the first byte goes: with
    the last brick's daemon down, `delete --delete-data` fails and no brick lost a file;
    once it is back the same delete finishes."""
    with cluster.client() as api:
        v = api.volume_create(m.VolumeCreate(name="dd", replica=3, size="10MiB"))
        paths = [Path(b.path) for rs in v.replica_sets for b in rs.bricks]
        for p in paths:
            (p / "user.txt").write_text("mine\n")
        down = cluster.roots.index(paths[-1].parent)
        cluster.nodes[down].stop()
        with pytest.raises(ApiError) as e:
            api.volume_delete("dd", True)
        assert e.value.code == "peer_error" and e.value.status == 503
        assert all((p / "user.txt").read_text() == "mine\n" for p in paths)
        assert api.volume("dd").state == "created"
        cluster.nodes[down].start()
        api.volume_delete("dd", True)
    assert not any(p.exists() for p in paths)
