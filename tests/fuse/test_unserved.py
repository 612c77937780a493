"""A member whose daemon still answers but no longer serves its brick (issue 10, point
3): it is treated as failed, like a silent one. Its brick is unserved behind gfsd's
back through the Admin API of its own daemon; I/O through a mount goes on within
seconds, heal info shows the truth, and heal / replace-brick repair the set."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from gfs.proto import admin_pb2 as apb
from gfs.proto import admin_pb2_grpc
from gfs.rpc.channel import insecure_channel
from tests.cluster import Cluster
from tests.procs import wait_for
from tests.replicas import all_in_sync, assert_identical, layout, mount

HEAL_DEADLINE = 90
#: the volume's failure detection is 1 s: a few of those, never the ~31 s RPC timeout
GOES_ON_WITHIN = 8.0


def unserve_behind_gfsds_back(address: str, brick: str) -> None:
    with insecure_channel(address) as ch:
        admin: Any = admin_pb2_grpc.AdminStub(ch)  # type: ignore[no-untyped-call]
        assert admin.Unserve(apb.UnserveRequest(name=brick), timeout=10).err == 0


def in_sync(c: Cluster, brick: str) -> bool:
    return next(b for b in layout(c).bricks if b.name == brick).in_sync


def timed_io(root: Path, name: str) -> float:
    """A read, then a write through the mount; how long they took."""
    start = time.monotonic()
    assert "before" in os.listdir(root)
    assert (root / "before").read_text() == "acknowledged before"
    (root / name).write_text(f"written while {name}")
    assert (root / name).read_text() == f"written while {name}"
    return time.monotonic() - start


def test_member_not_serving_leaves_in_sync_then_heal_repairs(demo: Cluster, tmp_path: Path) -> None:
    c = demo
    rs = layout(c)
    mnt = mount(c, tmp_path).start()
    try:
        root = mnt.mountpoint
        (root / "before").write_text("acknowledged before")
        member = next(b for b in rs.bricks if b.id != rs.primary)
        unserve_behind_gfsds_back(member.address, member.name)
        # Without any I/O it leaves in_sync, as a silent member does: its "not served
        # here" answers to the primary's heartbeats count as a failure.
        wait_for(lambda: not in_sync(c, member.name), GOES_ON_WITHIN, "the member to leave")
        assert timed_io(root, "away") < GOES_ON_WITHIN
        with c.client() as api:
            info = api.heal_info("demo").sets[0]
        assert info.in_sync == 2
        gone = next(x for x in info.members if x.brick == member.name)
        # Its daemon answers, but the brick is not served: not online.
        assert gone.state == "out" and not gone.online
        assert all(x.online for x in info.members if x.brick != member.name)
        # `gfs volume heal` serves it again (gfsd's store says it belongs there) and the
        # primary's heal worker makes it identical.
        with c.client() as api:
            api.heal_start("demo", False)
        wait_for(lambda: all_in_sync(c), HEAL_DEADLINE, "the member to be served and healed")
        assert_identical(c)
        assert timed_io(root, "back") < GOES_ON_WITHIN
    finally:
        mnt.stop()


def test_member_not_serving_is_replaced(demo: Cluster, tmp_path: Path) -> None:
    c = demo
    rs = layout(c)
    mnt = mount(c, tmp_path).start()
    try:
        root = mnt.mountpoint
        (root / "before").write_text("acknowledged before")
        member = next(b for b in rs.bricks if b.id != rs.primary)
        unserve_behind_gfsds_back(member.address, member.name)
        assert timed_io(root, "away") < GOES_ON_WITHIN
        node = member.address
        new = f"{node}:{Path(member.path).parent}/replacement"
        with c.client() as api:
            api.volume_replace_brick("demo", member.name, new)
        wait_for(lambda: all_in_sync(c), HEAL_DEADLINE, "the replacement to heal")
        assert member.name not in {b.name for b in layout(c).bricks}
        assert_identical(c)
    finally:
        mnt.stop()


def test_primary_not_serving_fails_over(demo: Cluster, tmp_path: Path) -> None:
    c = demo
    rs = layout(c)
    mnt = mount(c, tmp_path).start()
    try:
        root = mnt.mountpoint
        (root / "before").write_text("acknowledged before")
        primary = next(b for b in rs.bricks if b.id == rs.primary)
        unserve_behind_gfsds_back(primary.address, primary.name)
        assert timed_io(root, "away") < GOES_ON_WITHIN
        after = layout(c)
        assert after.primary != rs.primary and after.epoch > rs.epoch
        assert not next(b for b in after.bricks if b.id == rs.primary).in_sync
    finally:
        mnt.stop()
