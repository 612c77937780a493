"""Mounting a replica-3 volume by name (`HOST:PORT:/VOLUME`) from a real cluster."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gfs.api import models as m
from tests.cluster import Cluster, local_cluster
from tests.procs import BIN, Mount, free_port, wait_for


@pytest.fixture
def vol(tmp_path: Path) -> Iterator[tuple[Cluster, m.Volume]]:
    with local_cluster(tmp_path) as c, c.client() as api:
        api.volume_create(m.VolumeCreate(name="demo", replica=3, size="100MiB"))
        yield c, api.volume_start("demo")


def mount(c: Cluster, tmp_path: Path, extra: str = "") -> Mount:
    opts = f"token-file={c.gfsd.state / 'admin.token'},attr-timeout=0,entry-timeout=0{extra}"
    return Mount(f"{c.gfsd.address}:/demo", tmp_path / "mnt", tmp_path / "mount.log", opts)


def test_replica_3_copies_agree(vol: tuple[Cluster, m.Volume], tmp_path: Path) -> None:
    c, v = vol
    mnt = mount(c, tmp_path).start()
    try:
        root = mnt.mountpoint
        (root / "d").mkdir()
        (root / "d" / "f").write_bytes(b"x" * 100_000)
        os.link(root / "d" / "f", root / "g")
        os.symlink("d/f", root / "s")
        os.setxattr(root / "g", "user.k", b"v")
        os.rename(root / "d" / "f", root / "d" / "f2")
        bricks = [Path(b.path) for b in v.replica_sets[0].bricks]
        for b in bricks:
            assert (b / "d" / "f2").read_bytes() == b"x" * 100_000
            assert os.stat(b / "g").st_ino == os.stat(b / "d" / "f2").st_ino
            assert os.readlink(b / "s") == "d/f"
            assert os.getxattr(b / "g", "user.k") == b"v"
        gfids = {os.getxattr(b / "d", "trusted.gfs.gfid") for b in bricks}
        assert len(gfids) == 1  # all copies name the object alike
    finally:
        mnt.stop()


def test_volume_mount_errors(vol: tuple[Cluster, m.Volume], tmp_path: Path) -> None:
    c, _ = vol
    (tmp_path / "mp").mkdir()
    token = f"token-file={c.gfsd.state / 'admin.token'}"
    cases = [
        (f"{c.gfsd.address}:/nope", token, "no volume 'nope'"),
        (f"{c.gfsd.address}:/demo", "token-file=/nonexistent", "cannot read the gfsd token"),
        (f"{c.gfsd.address}:/bad name", token, "bad volume name"),
    ]
    for source, opts, text in cases:
        r = subprocess.run(
            [str(BIN / "mount.fuse.gfs"), source, str(tmp_path / "mp"), "-o", opts],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert r.returncode != 0 and text in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    with c.client() as api:
        api.volume_stop("demo")
    r = subprocess.run(
        [str(BIN / "mount.fuse.gfs"), f"{c.gfsd.address}:/demo", str(tmp_path / "mp"), "-o", token],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 1 and "is stopped, not started" in r.stderr


def test_backup_servers(vol: tuple[Cluster, m.Volume], tmp_path: Path) -> None:
    c, _ = vol
    dead = f"127.0.0.1:{free_port()}"
    opts = f"token-file={c.gfsd.state / 'admin.token'},backup-servers={c.gfsd.address}"
    mnt = Mount(f"{dead}:/demo", tmp_path / "mnt", tmp_path / "mount.log", opts).start()
    try:
        (mnt.mountpoint / "f").write_text("via the backup")
    finally:
        mnt.stop()
    r = subprocess.run(
        [
            str(BIN / "mount.fuse.gfs"),
            f"{dead}:/demo",
            str(tmp_path / "mnt"),
            "-o",
            f"token-file={c.gfsd.state / 'admin.token'}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 1 and "cannot reach gfsd" in r.stderr


@pytest.fixture
def mount_helper_installed() -> Iterator[None]:
    """/sbin/mount.fuse.gfs for mount(8), as `gfs install-mount-helper` makes it."""
    target = Path("/sbin/mount.fuse.gfs")
    made = not target.exists()
    if made:
        r = subprocess.run(
            [str(BIN / "gfs"), "install-mount-helper"], capture_output=True, text=True, timeout=30
        )
        assert r.returncode == 0, r.stderr
    try:
        yield
    finally:
        if made:
            target.unlink()


def test_mount_t_fuse_gfs_and_fstab(
    vol: tuple[Cluster, m.Volume], tmp_path: Path, mount_helper_installed: None
) -> None:
    c, _ = vol
    mp = tmp_path / "mnt"
    mp.mkdir()
    token = f"token-file={c.gfsd.state / 'admin.token'}"
    src = f"{c.gfsd.address}:/demo"
    try:
        r = subprocess.run(
            ["mount", "-t", "fuse.gfs", "-o", token, src, str(mp)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
        (mp / "via-mount").write_text("1")
        assert subprocess.run(["umount", str(mp)], timeout=30).returncode == 0
        # The same through an fstab line, as a user would write it.
        fstab = tmp_path / "fstab"
        fstab.write_text(f"{src} {mp} fuse.gfs defaults,_netdev,{token} 0 0\n")
        r = subprocess.run(
            ["mount", "-T", str(fstab), str(mp)], capture_output=True, text=True, timeout=60
        )
        assert r.returncode == 0, r.stderr
        assert (mp / "via-mount").read_text() == "1"
    finally:
        subprocess.run(["umount", str(mp)], capture_output=True, timeout=30)


def test_size_is_enforced_and_expand_grows_it(
    vol: tuple[Cluster, m.Volume], tmp_path: Path
) -> None:
    c, _ = vol
    mnt = mount(c, tmp_path).start()
    MiB = 1 << 20
    try:
        s = os.statvfs(mnt.mountpoint)
        assert s.f_blocks * s.f_frsize == 100 * MiB  # df shows the volume's size
        chunk = b"z" * MiB
        with pytest.raises(OSError) as e, open(mnt.mountpoint / "big", "wb") as f:
            for _ in range(150):
                f.write(chunk)
                f.flush()
        assert e.value.errno == errno.ENOSPC
        with c.client() as api:
            api.volume_expand("demo", "300MiB")
        s = os.statvfs(mnt.mountpoint)
        assert s.f_blocks * s.f_frsize == 300 * MiB
        with open(mnt.mountpoint / "big", "ab") as f:
            f.write(chunk * 20)  # room again
        # Blocks count, not apparent size (like ext4 and GlusterFS quota): a sparse file
        # past the volume's size still takes a byte, its hole is free.
        with open(mnt.mountpoint / "sparse", "wb") as f:
            f.seek(2 * 1024 * MiB + 1)
            f.write(b"a")
        assert (mnt.mountpoint / "sparse").stat().st_size == 2 * 1024 * MiB + 2
        with open(mnt.mountpoint / "sparse", "rb") as f:
            f.seek(2 * 1024 * MiB)
            assert f.read() == b"\0a"
    finally:
        mnt.stop()


@pytest.mark.parametrize(("extra", "expect"), [("", "512"), (",read-ahead=256", "256")])
def test_volume_client_options_apply(
    vol: tuple[Cluster, m.Volume], tmp_path: Path, extra: str, expect: str
) -> None:
    c, _ = vol
    with c.client() as api:
        api.volume_set("demo", {"client.read-ahead-kib": "512"})
    mnt = mount(c, tmp_path, extra).start()  # the command line wins over the volume
    try:
        dev = os.stat(mnt.mountpoint).st_dev
        knob = Path(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb")
        wait_for(lambda: knob.read_text().strip() == expect, 10, f"read-ahead {expect}")
    finally:
        mnt.stop()
