"""A network partition between test hosts in namespaces made here: the primary is cut
off from gfsd and from one secondary while a client still reaches it. The cut-off
primary acknowledges nothing, another member takes over, and after the partition
heals nothing diverges (docs/replication.md, third row of the failure table)."""

from __future__ import annotations

import errno
import time
from pathlib import Path
from typing import Any

import grpc

from tests.cluster import Cluster
from tests.netns import demo_on, network
from tests.procs import wait_for
from tests.replicas import all_in_sync, assert_identical, layout, make_file, mount

ROOT = b"\0" * 15 + b"\1"


def test_primary_cut_off_from_gfsd_and_a_secondary(tmp_path: Path) -> None:
    with network(3) as net, demo_on(net, tmp_path, in_namespaces=True) as c:
        run_partition(c, net, tmp_path)


def run_partition(c: Cluster, net: Any, tmp_path: Path) -> None:
    rs = layout(c)
    p = next(b for b in rs.bricks if b.id == rs.primary)
    s1 = next(b for b in rs.bricks if b.id != rs.primary)
    pi = next(i for i, d in enumerate(c.nodes) if d.address == p.address)
    cut = [net.bridge_ip, s1.address.rpartition(":")[0]]
    mnt = mount(c, tmp_path).start()
    try:
        (mnt.mountpoint / "f").write_text("before")
        net.cut(pi, cut)
        # A client that still reaches the old primary gets no acknowledgement from it.
        try:
            tags = [("gfs-epoch", str(rs.epoch)), ("gfs-req", "cut:1")]
            r = make_file(p.address, p.name, b"cut-off", tags)
            assert r.err in (errno.EIO, errno.EREMCHG, errno.EROFS), r.err
        except grpc.RpcError:
            pass  # no answer is no acknowledgement either
        # Through the mount, writes go on once gfsd has promoted another member.
        deadline = time.monotonic() + 90
        while True:
            try:
                (mnt.mountpoint / "f").write_text("during")
                break
            except OSError as e:
                assert e.errno in (errno.EIO, errno.EROFS, errno.ETIMEDOUT), e
                assert time.monotonic() < deadline, "writes never resumed"
        after = layout(c)
        assert after.primary != rs.primary and after.epoch > rs.epoch
        assert (mnt.mountpoint / "f").read_text() == "during"
        assert not (mnt.mountpoint / "cut-off").exists()
        net.mend(pi, cut)
        wait_for(lambda: all_in_sync(c), 120, "the old primary to heal after the partition")
        assert (mnt.mountpoint / "f").read_text() == "during"
        assert_identical(c)
    finally:
        mnt.stop()
