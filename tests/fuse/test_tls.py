"""A replica-3 volume on a cluster running mutual TLS everywhere (gfsd, brick daemons,
brick to brick, mount), mounted with a client certificate for that volume only."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gfs import certs
from gfs.api import models as m
from tests.cluster import Cluster, local_cluster
from tests.procs import BIN, Mount


@pytest.fixture(scope="module")
def tls_vol(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Path]]:
    with local_cluster(tmp_path_factory.mktemp("c"), tls=True) as c, c.client() as api:
        assert c.ca is not None
        api.volume_create(m.VolumeCreate(name="demo", replica=3, size="100MiB"))
        api.volume_start("demo")
        yield c, c.ca


def test_mount_write_read_on_a_tls_cluster(tls_vol: tuple[Cluster, Path], tmp_path: Path) -> None:
    c, ca = tls_vol
    ident = certs.issue(ca, "client", "web", volumes=["demo"], hosts=[])
    opts = f"token-file={c.gfsd.state / 'admin.token'},tls-dir={ident},attr-timeout=0"
    mnt = Mount(f"{c.gfsd.address}:/demo", tmp_path / "mnt", tmp_path / "mount.log", opts)
    mnt.start(timeout=60)
    try:
        data = bytes(range(256)) * 1000
        (mnt.mountpoint / "f").write_bytes(data)
        assert (mnt.mountpoint / "f").read_bytes() == data
    finally:
        mnt.stop()
    # The write was forwarded brick to brick over TLS: every copy has it.
    with c.client() as api:
        bricks = [Path(b.path) for b in api.volume("demo").replica_sets[0].bricks]
    assert all((b / "f").read_bytes() == data for b in bricks)


def test_mount_refused_without_the_right_certificate(
    tls_vol: tuple[Cluster, Path], tmp_path: Path
) -> None:
    c, ca = tls_vol
    other = certs.issue(ca, "client", "other", volumes=["elsewhere"], hosts=[])
    (tmp_path / "mp").mkdir()
    # a short deadline: the plaintext case waits for it
    token = f"token-file={c.gfsd.state / 'admin.token'},rpc-timeout=5"
    cases = [
        (f"{token},tls-dir={other}", "refused this client"),
        (token, "cannot reach gfs-brickd"),  # plaintext against TLS bricks
        (f"{token},tls-dir={tmp_path / 'none'}", "tls-dir:"),
    ]
    for opts, text in cases:
        r = subprocess.run(
            [BIN / "mount.fuse.gfs", f"{c.gfsd.address}:/demo", tmp_path / "mp", "-o", opts],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode != 0 and text in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
