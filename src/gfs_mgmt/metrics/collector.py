"""Cluster state as Prometheus metrics, read from the database at scrape time.

Volume capacity comes from the bricks themselves: every brick of a started
volume is asked for its statfs (in parallel, with a short deadline), which also
tells whether the brick is up. A replica set holds one copy of its data, so a
volume's capacity is the sum over its replica sets of the smallest member.
"""

from __future__ import annotations

import errno
import logging
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC

import grpc
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from gfs import __version__
from gfs.proto import brick_pb2, brick_pb2_grpc
from gfs_mgmt.peer.brickd import _channel as peer_channel
from gfs_mgmt.store.db import Database
from gfs_mgmt.store.models import Brick, Peer, ReplicaSet, Transaction, Volume
from gfs_mgmt.volume.replication import min_in_sync

log = logging.getLogger(__name__)

VOLUME_STATES = ("created", "started", "stopped")
TXN_STATES = ("pending", "running", "done", "failed", "rolled_back")


@dataclass
class _Probe:
    address: str
    brick: str
    volume: str
    replica_set: int


@dataclass
class _Space:
    total: int
    free: int
    used: int
    files: int
    ffree: int


def _statfs(p: _Probe, timeout: float) -> _Space | None:
    stub = brick_pb2_grpc.BrickStub(peer_channel(p.address))  # type: ignore[no-untyped-call]
    try:
        r = stub.Statfs(brick_pb2.StatfsRequest(brick=p.brick), timeout=timeout)
    except grpc.RpcError:
        return None
    if r.err:
        if r.err != errno.ENODEV:
            log.debug("statfs brick=%s errno=%d", p.brick, r.err)
        return None
    total = r.blocks * r.frsize
    return _Space(total, r.bavail * r.frsize, total - r.bfree * r.frsize, r.files, r.ffree)


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


class StoreCollector(Collector):
    def __init__(self, db: Database, probe_timeout: float = 2.0) -> None:
        self.db = db
        self.probe_timeout = probe_timeout
        self._pool = ThreadPoolExecutor(16, thread_name_prefix="metrics-probe")

    def collect(self) -> Iterator[Metric]:
        info = _gauge("gfs_gfsd_info", "This gfsd", ["version", "database"])
        info.add_metric([__version__, self.db.dialect], 1)
        yield info
        with self.db.session() as s:
            peers = list(s.scalars(select(Peer).options(selectinload(Peer.roots))))
            volumes = list(
                s.scalars(
                    select(Volume).options(
                        selectinload(Volume.options),
                        selectinload(Volume.replica_sets)
                        .selectinload(ReplicaSet.bricks)
                        .selectinload(Brick.peer),
                    )
                )
            )
            txns = dict(
                s.execute(select(Transaction.state, func.count()).group_by(Transaction.state))
                .tuples()
                .all()
            )
        yield from self._peers(peers)
        yield from self._volumes(volumes)
        t = _gauge("gfs_transactions", "Transactions in the database, by state", ["state"])
        for state in TXN_STATES:
            t.add_metric([state], txns.get(state, 0))
        yield t

    def _peers(self, peers: list[Peer]) -> Iterator[Metric]:
        up = _gauge(
            "gfs_peer_up",
            "1 when gfsd reached the peer's brick daemon at its last check",
            ["peer", "address", "zone", "node_id"],
        )
        seen = _gauge(
            "gfs_peer_last_seen_timestamp_seconds", "When the peer last answered", ["peer"]
        )
        root_labels = ["peer", "root"]
        cap = _gauge("gfs_peer_root_capacity_bytes", "Size of a brick root's disk", root_labels)
        free = _gauge("gfs_peer_root_free_bytes", "Free bytes of a brick root's disk", root_labels)
        used = _gauge("gfs_peer_root_used_bytes", "Used bytes of a brick root's disk", root_labels)
        for p in peers:
            up.add_metric([p.name, p.address, p.zone, p.node_id], 1 if p.online else 0)
            if p.last_seen is not None:
                # The store keeps naive UTC.
                seen.add_metric([p.name], p.last_seen.replace(tzinfo=UTC).timestamp())
            for r in p.roots:
                cap.add_metric([p.name, r.path], r.total_bytes)
                free.add_metric([p.name, r.path], r.free_bytes)
                used.add_metric([p.name, r.path], r.used_bytes)
        yield from (up, seen, cap, free, used)

    def _volumes(self, volumes: list[Volume]) -> Iterator[Metric]:
        v_ = ["volume"]
        state = _gauge("gfs_volume_state", "1 for the volume's current state", ["volume", "state"])
        replica = _gauge("gfs_volume_replica_count", "Copies the volume keeps of each file", v_)
        sets = _gauge("gfs_volume_replica_sets", "Replica sets (distribute count)", v_)
        bricks_n = _gauge("gfs_volume_bricks", "Bricks of the volume", v_)
        size = _gauge("gfs_volume_size_bytes", "Size the volume was created with", v_)
        ro = _gauge(
            "gfs_volume_read_only",
            "1 when a replica set has fewer in-sync members than min_in_sync (writes get EROFS)",
            v_,
        )
        rs_ = ["volume", "replica_set"]
        epoch = _gauge("gfs_replica_set_epoch", "Membership epoch of a replica set", rs_)
        members = _gauge("gfs_replica_set_members", "Bricks of a replica set", rs_)
        in_sync = _gauge("gfs_replica_set_in_sync_members", "In-sync bricks of a replica set", rs_)
        need_sync = _gauge(
            "gfs_replica_set_min_in_sync", "In-sync bricks a replica set needs for writes", rs_
        )
        b_ = ["volume", "replica_set", "brick", "peer"]
        binfo = _gauge("gfs_brick_info", "Where a brick is: volume, replica set, peer", b_)
        bsync = _gauge("gfs_brick_in_sync", "1 when the brick is in its set's in-sync set", b_)
        bprimary = _gauge("gfs_brick_primary", "1 when the brick is its set's primary", b_)
        bup = _gauge(
            "gfs_brick_up", "1 when the brick of a started volume answered gfsd's statfs", b_
        )
        backlog = _gauge(
            "gfs_heal_backlog_entries",
            "1 while a brick is outside its set's in-sync members and owes a heal, else 0",
            b_,
        )
        probes: list[tuple[_Probe, list[str]]] = []
        for v in volumes:
            for st in (*VOLUME_STATES, *({v.state} - set(VOLUME_STATES))):
                state.add_metric([v.name, st], 1 if v.state == st else 0)
            replica.add_metric([v.name], v.replica_count)
            sets.add_metric([v.name], len(v.replica_sets))
            bricks_n.add_metric([v.name], sum(len(rs.bricks) for rs in v.replica_sets))
            if v.size_bytes is not None:
                size.add_metric([v.name], v.size_bytes)
            read_only = False
            for rs in v.replica_sets:
                labels = [v.name, str(rs.index)]
                n_sync = sum(1 for b in rs.bricks if b.in_sync)
                need = min_in_sync(v.replica_count, {o.key: o.value for o in v.options})
                read_only |= n_sync < need
                epoch.add_metric(labels, rs.epoch)
                members.add_metric(labels, len(rs.bricks))
                in_sync.add_metric(labels, n_sync)
                need_sync.add_metric(labels, need)
                for b in rs.bricks:
                    bl = [v.name, str(rs.index), b.name, b.peer.name]
                    binfo.add_metric(bl, 1)
                    bsync.add_metric(bl, 1 if b.in_sync else 0)
                    bprimary.add_metric(bl, 1 if b.id == rs.primary_brick_id else 0)
                    # Out of in_sync means heal is owed; the primary's daemon exports the
                    # size of its change index (gfs_heal_pending_objects).
                    backlog.add_metric(bl, 0 if b.in_sync else 1)
                    if v.state == "started":
                        probes.append((_Probe(b.peer.address, b.name, v.name, rs.index), bl))
                    else:
                        bup.add_metric(bl, 0)
            ro.add_metric([v.name], 1 if read_only else 0)
        yield from (state, replica, sets, bricks_n, size, ro)
        yield from (epoch, members, in_sync, need_sync)
        yield from (binfo, bsync, bprimary, backlog)
        yield from self._capacity(probes, bup)

    def _capacity(
        self, probes: list[tuple[_Probe, list[str]]], bup: GaugeMetricFamily
    ) -> Iterator[Metric]:
        answers = list(self._pool.map(lambda p: _statfs(p[0], self.probe_timeout), probes))
        # volume -> replica set -> answers of its members that are up
        by_set: dict[str, dict[int, list[_Space]]] = defaultdict(lambda: defaultdict(list))
        for (p, labels), space in zip(probes, answers, strict=True):
            bup.add_metric(labels, 0 if space is None else 1)
            if space is not None:
                by_set[p.volume][p.replica_set].append(space)
        v_ = ["volume"]
        fams = {
            "total": _gauge("gfs_volume_capacity_bytes", "Usable size of a started volume", v_),
            "free": _gauge("gfs_volume_free_bytes", "Bytes still available on a volume", v_),
            "used": _gauge("gfs_volume_used_bytes", "Bytes used on a volume", v_),
            "files": _gauge("gfs_volume_inodes", "Inodes of a volume", v_),
            "ffree": _gauge("gfs_volume_inodes_free", "Free inodes of a volume", v_),
        }
        for volume, rsets in sorted(by_set.items()):
            sums = dict.fromkeys(fams, 0)
            for spaces in rsets.values():
                sums["total"] += min(s.total for s in spaces)
                sums["free"] += min(s.free for s in spaces)
                sums["used"] += max(s.used for s in spaces)
                sums["files"] += min(s.files for s in spaces)
                sums["ffree"] += min(s.ffree for s in spaces)
            for k, fam in fams.items():
                fam.add_metric([volume], sums[k])
        yield bup
        yield from fams.values()
