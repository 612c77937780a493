"""Mounting with a volume credential (`gfs volume credential create`), not the admin
token: the credential reads only its volumes' layout, its certificate names only them,
and revoking it cuts a mounted client off (EACCES) within a bounded wait."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gfs.api import models as m
from tests.cluster import Cluster, local_cluster
from tests.procs import BIN, Mount, is_mounted, wait_for

DEADLINE = 30
OPTS = "attr-timeout=0,entry-timeout=0,rpc-timeout=10"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with local_cluster(tmp_path_factory.mktemp("c"), tls=True) as c, c.client() as api:
        for name in ("demo", "other"):
            api.volume_create(m.VolumeCreate(name=name, replica=3, size="50MiB"))
            api.volume_start(name)
        yield c


def credential(c: Cluster, name: str, volume: str, out: Path) -> Path:
    """Issued with the CLI, as an operator would; the admin token stays on this side."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GFS_")}
    env |= {"GFS_SERVER": c.gfsd.address, "GFS_TOKEN": c.gfsd.token}
    r = subprocess.run(
        [BIN / "gfs", "volume", "credential", "create", volume, "--name", name, "--out", out],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return out


def mount_cmd(c: Cluster, volume: str, opts: str, mnt: Path) -> subprocess.CompletedProcess[str]:
    mnt.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GFS_")}
    return subprocess.run(
        [BIN / "mount.fuse.gfs", f"{c.gfsd.address}:/{volume}", mnt, "-o", opts],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_a_credential_mounts_its_volume_without_the_admin_token(
    cluster: Cluster, tmp_path: Path
) -> None:
    cred = credential(cluster, "web", "demo", tmp_path / "cred")
    assert cluster.gfsd.token not in "".join(p.read_text() for p in cred.iterdir())
    mnt = Mount(
        f"{cluster.gfsd.address}:/demo",
        tmp_path / "mnt",
        tmp_path / "mount.log",
        f"credential={cred},{OPTS}",
    ).start(timeout=60)
    try:
        (mnt.mountpoint / "f").write_bytes(b"hello")
        assert (mnt.mountpoint / "f").read_bytes() == b"hello"
    finally:
        mnt.stop()


def test_a_credential_for_one_volume_cannot_mount_another(cluster: Cluster, tmp_path: Path) -> None:
    cred = credential(cluster, "only-demo", "demo", tmp_path / "cred")
    r = mount_cmd(cluster, "other", f"credential={cred},{OPTS}", tmp_path / "mp")
    assert r.returncode == 1, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "this credential is not for volume other (it is for demo)" in r.stderr
    assert not is_mounted(tmp_path / "mp")
    # Giving both the credential and an admin token is a usage error, not a guess.
    r = mount_cmd(cluster, "demo", f"credential={cred},token-file=/x", tmp_path / "mp")
    assert r.returncode == 2 and "credential=" in r.stderr, r.stderr


def revoke(c: Cluster, name: str) -> None:
    with c.client() as api:
        api.credential_revoke(name)


def test_revoke_cuts_off_a_mounted_client(cluster: Cluster, tmp_path: Path) -> None:
    cred = credential(cluster, "doomed", "demo", tmp_path / "cred")
    mnt = Mount(
        f"{cluster.gfsd.address}:/demo",
        tmp_path / "mnt",
        tmp_path / "mount.log",
        f"credential={cred},{OPTS}",
    ).start(timeout=60)
    try:
        (mnt.mountpoint / "before").write_bytes(b"x")  # the connections are up
        revoke(cluster, "doomed")
        attempts = iter(range(10**6))

        def refused() -> bool:
            try:
                (mnt.mountpoint / f"after{next(attempts)}").write_bytes(b"y")
            except PermissionError:
                return True
            return False

        wait_for(refused, DEADLINE, "EACCES after revoke")
        with pytest.raises(PermissionError):
            (mnt.mountpoint / "before").read_bytes()
        with pytest.raises(PermissionError):
            os.listdir(mnt.mountpoint)
    finally:
        mnt.stop()
    # ... and it cannot mount again: one line saying why.
    r = mount_cmd(cluster, "demo", f"credential={cred},{OPTS}", tmp_path / "mp")
    assert r.returncode == 1 and "credential doomed is revoked" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
