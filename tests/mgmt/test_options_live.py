"""Options that apply live (issue 10, point 5): `volume set` on a started volume
reaches the bricks before it returns, the bricks enforce it at once and heal info
agrees; a brick that does not take it fails the call and leaves the old value in
force; options whose effect is not built are refused. Real gfsd (SQLite and
PostgreSQL), real brick daemons, a real FUSE mount."""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gfs.api.client import ApiError
from tests.cluster import Cluster, local_cluster
from tests.procs import have_fuse
from tests.replicas import layout, mount, node_of, start_demo


@pytest.fixture
def demo(db_url: str, tmp_path: Path) -> Iterator[Cluster]:
    with local_cluster(tmp_path, db_url) as c, c.client() as api:
        start_demo(api)
        yield c


def brick_config(path: str) -> dict[str, Any]:
    """The configuration a brick daemon took, as it keeps it with the brick."""
    data: dict[str, Any] = json.loads((Path(path) / ".gfs" / "replica.json").read_text())
    return data


def test_min_in_sync_all_is_enforced_at_once(demo: Cluster, tmp_path: Path) -> None:
    if not have_fuse():
        pytest.fail("this test needs root, /dev/fuse and fusermount3")
    c = demo
    before = layout(c)
    mnt = mount(c, tmp_path).start()
    try:
        (mnt.mountpoint / "f").write_text("before")
        with c.client() as api:
            values = api.volume_set("demo", {"replica.min-in-sync": "all"})
            assert values["replica.min-in-sync"] == "all"
            heal = api.heal_info("demo").sets[0]
        assert heal.min_in_sync == 3 and heal.epoch == before.epoch + 1
        for b in before.bricks:  # every brick took it before the call returned
            cfg = brick_config(b.path)
            assert cfg["min_in_sync"] == 3 and cfg["epoch"] == heal.epoch
        (mnt.mountpoint / "g").write_text("the mount moved to the new epoch")

        victim = next(b for b in before.bricks if b.id != before.primary)
        node_of(c, before, victim.id).stop(signal.SIGKILL)
        with pytest.raises(OSError) as e:
            (mnt.mountpoint / "h").write_text("needs all three")
            (mnt.mountpoint / "i").write_text("needs all three")
        assert e.value.errno == errno.EROFS
        with c.client() as api:
            heal = api.heal_info("demo").sets[0]
            assert heal.min_in_sync == 3 and heal.in_sync == 2  # the bricks and gfsd agree

            # Back to the default: the two in-sync bricks take it, writes go on.
            api.volume_reset("demo", "replica.min-in-sync")
            heal = api.heal_info("demo").sets[0]
        assert heal.min_in_sync == 2
        for b in before.bricks:
            if b.id != victim.id:
                assert brick_config(b.path)["min_in_sync"] == 2
        (mnt.mountpoint / "j").write_text("majority again")
        assert (mnt.mountpoint / "f").read_text() == "before"
    finally:
        mnt.stop()


def test_failure_detection_reaches_the_bricks(demo: Cluster) -> None:
    c = demo
    before = layout(c)
    with c.client() as api:
        api.volume_set("demo", {"replica.failure-detection-seconds": "7.5"})
        assert api.heal_info("demo").sets[0].epoch == before.epoch + 1
    for b in before.bricks:
        assert brick_config(b.path)["failure_timeout"] == 7.5
    with c.client() as api:
        api.volume_set("demo", {"replica.failure-detection-seconds": "2"})  # shorter
        api.volume_set("demo", {"client.attr-timeout": "3"})  # next mount: no push
        assert api.heal_info("demo").sets[0].epoch == before.epoch + 2
    for b in before.bricks:
        assert brick_config(b.path)["failure_timeout"] == 2.0


def test_privileged_nodes_off_reaches_the_bricks(demo: Cluster, tmp_path: Path) -> None:
    """server.allow-privileged-nodes=off: not even root on a mount makes a device node."""
    if not have_fuse():
        pytest.fail("this test needs root, /dev/fuse and fusermount3")
    c = demo
    before = layout(c)
    mnt = mount(c, tmp_path).start()
    try:
        os.mknod(mnt.mountpoint / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))  # default on
        with c.client() as api:
            api.volume_set("demo", {"server.allow-privileged-nodes": "off"})
        for b in before.bricks:
            assert brick_config(b.path)["deny_privileged"] is True
        with pytest.raises(PermissionError):
            os.mknod(mnt.mountpoint / "zero", stat.S_IFCHR | 0o600, os.makedev(1, 5))
        (mnt.mountpoint / "tool").write_text("#!/bin/sh\n")
        with pytest.raises(PermissionError):
            os.chmod(mnt.mountpoint / "tool", 0o4755)
        assert not (mnt.mountpoint / "zero").exists()
        with c.client() as api:
            api.volume_reset("demo", "server.allow-privileged-nodes")
        os.chmod(mnt.mountpoint / "tool", 0o4755)
        assert os.stat(mnt.mountpoint / "tool").st_mode & stat.S_ISUID
    finally:
        mnt.stop()


def test_a_brick_that_does_not_take_it_fails_the_call(demo: Cluster) -> None:
    c = demo
    with c.client() as api:
        # A long failure time keeps the killed member in sync while we set.
        api.volume_set("demo", {"replica.failure-detection-seconds": "60"})
    rs = layout(c)
    victim = next(b for b in rs.bricks if b.id != rs.primary)
    node_of(c, rs, victim.id).stop(signal.SIGKILL)
    with c.client() as api:
        with pytest.raises(ApiError) as e:
            api.volume_set("demo", {"replica.min-in-sync": "all"})
        assert e.value.code == "configure_failed" and victim.name in e.value.message
        assert api.volume_options("demo")["replica.min-in-sync"] == "majority"
        heal = api.heal_info("demo").sets[0]
        assert heal.min_in_sync == 2 and heal.in_sync == 3
    for b in rs.bricks:
        if b.id != victim.id:  # the bricks that took `all` were given `majority` again
            cfg = brick_config(b.path)
            assert cfg["min_in_sync"] == 2 and cfg["epoch"] == heal.epoch


def test_options_without_effect_are_refused(demo: Cluster) -> None:
    with demo.client() as api:
        for key, value in [("heal.throttle-mbps", "10")]:
            with pytest.raises(ApiError) as e:
                api.volume_set("demo", {key: value})
            assert e.value.code == "unknown_option" and "not supported" in e.value.message
            assert key not in api.volume_options("demo")
        table = {o.name: o.applies for o in api.options_table()}
    assert table["replica.min-in-sync"] == "live"
    assert table["client.writeback"] == "next mount"
    assert "heal.throttle-mbps" not in table
    assert table["auth.allow"] == "live"
