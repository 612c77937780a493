"""Prometheus metrics of a brick daemon, served on `--metrics-listen HOST:PORT`.

Two parts, both kept out of the request handlers:
- `RpcMetrics`, a gRPC server interceptor: per-operation latency histograms,
  errors by errno (read from the reply's `err` field: every brick reply carries
  one), bytes read and written.
- `BrickCollector`: capacity and inodes of every served brick, read with statfs at
  scrape time, so nothing has to be kept up to date in between.

Labels are the brick name and the operation: both bounded (no file names).
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gfs import __version__
from gfs.brick.heal import HealWorker
from gfs.brick.replica import REQUESTS as FORWARDED
from gfs.brick.replica import Replica
from gfs.brick.store import Brick

log = logging.getLogger(__name__)

#: Only the data service is measured; the Admin service is gfsd's, rare and slow.
BRICK_SERVICE = "/gfs.brick.v1.Brick/"

#: The brick label of requests for a brick that is not served (names are the caller's).
UNKNOWN = "(unknown)"

#: Latencies from a cached GetAttr (~100 µs) to a slow fsync on a busy disk.
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5)


class _Served(Protocol):
    bricks: dict[str, Brick]


def errno_name(code: int) -> str:
    return errno.errorcode.get(code, str(code))


class RpcMetrics(grpc.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, registry: CollectorRegistry) -> None:
        self.latency = Histogram(
            "gfs_brick_operation_duration_seconds",
            "Time a brick took to serve one operation",
            ["brick", "op"],
            buckets=BUCKETS,
            registry=registry,
        )
        self.errors = Counter(
            "gfs_brick_errors",
            "Operations that a brick answered with an errno",
            ["brick", "op", "errno"],
            registry=registry,
        )
        self.read_bytes = Counter(
            "gfs_brick_read_bytes", "Bytes read from a brick", ["brick"], registry=registry
        )
        self.written_bytes = Counter(
            "gfs_brick_written_bytes", "Bytes written to a brick", ["brick"], registry=registry
        )
        self._wrapped: dict[str, Any] = {}

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        method: str = details.method
        handler = continuation(details)
        if handler is None or not method.startswith(BRICK_SERVICE) or not handler.unary_unary:
            return handler
        wrapped = self._wrapped.get(method)
        if wrapped is None:  # one wrapper per method, built once
            wrapped = self._wrapped[method] = self._wrap(method[len(BRICK_SERVICE) :], handler)
        return wrapped

    def _wrap(self, op: str, handler: Any) -> Any:
        inner = handler.unary_unary

        def measured(req: Any, ctx: grpc.ServicerContext) -> Any:
            t0 = time.perf_counter()
            reply = inner(req, ctx)
            err = getattr(reply, "err", 0)
            # A brick this daemon does not serve: one label, whatever name was asked for.
            brick = UNKNOWN if err == errno.ENODEV else getattr(req, "brick", "")
            # A forward is labelled with the mutation it carries (a bounded set), so the
            # replicated cost of each operation can be counted.
            label = f"Forward/{req.method}" if op == "Forward" and req.method in FORWARDED else op
            self.latency.labels(brick, label).observe(time.perf_counter() - t0)
            if err:
                self.errors.labels(brick, label, errno_name(err)).inc()
            elif op == "Read":
                self.read_bytes.labels(brick).inc(len(reply.data))
            elif op == "Write":
                self.written_bytes.labels(brick).inc(reply.written)
            return reply

        return grpc.unary_unary_rpc_method_handler(
            measured,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class BrickCollector(Collector):
    """Capacity of the bricks being served, at scrape time."""

    def __init__(self, served: _Served, zone: str, node_id: Callable[[], str]) -> None:
        self.served = served
        self.zone = zone
        self.node_id = node_id

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "gfs_brickd_info", "This brick daemon", labels=["version", "zone", "node_id"]
        )
        info.add_metric([__version__, self.zone, self.node_id()], 1)
        yield info
        names = {
            "capacity": ("gfs_brick_capacity_bytes", "Size of a brick (its quota, else its disk)"),
            "free": ("gfs_brick_free_bytes", "Bytes still available on a brick"),
            "used": ("gfs_brick_used_bytes", "Bytes used on a brick"),
            "inodes": ("gfs_brick_inodes", "Inodes of a brick's file system"),
            "inodes_free": ("gfs_brick_inodes_free", "Free inodes of a brick's file system"),
        }
        fams = {k: GaugeMetricFamily(n, h, labels=["brick"]) for k, (n, h) in names.items()}
        served = GaugeMetricFamily("gfs_brickd_bricks", "Bricks this daemon serves")
        bricks = dict(self.served.bricks)  # a copy: gfsd may add or remove bricks meanwhile
        served.add_metric([], len(bricks))
        yield served
        for name, b in sorted(bricks.items()):
            try:
                s = b.statfs()
            except (OSError, ValueError) as e:  # closed meanwhile, or its disk went away
                log.debug("statfs brick=%s failed: %s", name, e)
                continue
            total = s.f_blocks * s.f_frsize
            fams["capacity"].add_metric([name], total)
            fams["free"].add_metric([name], s.f_bavail * s.f_frsize)
            fams["used"].add_metric([name], total - s.f_bfree * s.f_frsize)
            fams["inodes"].add_metric([name], s.f_files)
            fams["inodes_free"].add_metric([name], s.f_ffree)
        yield from fams.values()


class ReplicationCollector(Collector):
    """What replication is doing on this daemon, at scrape time: the epoch each brick
    knows, which it leads and under a valid lease, the primary's change-index backlog
    per member being healed, and heal and epoch-change totals."""

    def __init__(self, replicas: dict[str, Replica], healer: HealWorker) -> None:
        self.replicas = replicas
        self.healer = healer

    def collect(self) -> Iterator[Metric]:
        b_ = ["brick"]
        epoch = GaugeMetricFamily(
            "gfs_replica_epoch", "Epoch of the configuration a brick has", labels=b_
        )
        primary = GaugeMetricFamily(
            "gfs_replica_primary", "1 when the brick is its set's confirmed primary", labels=b_
        )
        lease = GaugeMetricFamily(
            "gfs_replica_lease_valid",
            "1 when a primary holds the read lease of every member",
            labels=b_,
        )
        changes = CounterMetricFamily(
            "gfs_replica_epoch_changes", "Newer configurations a brick took", labels=b_
        )
        pending = GaugeMetricFamily(
            "gfs_heal_pending_objects",
            "Objects a primary's change index holds for a member outside in_sync",
            labels=["brick", "member"],
        )
        healed = CounterMetricFamily(
            "gfs_heal_copied_bytes", "Bytes heal copied from a primary to its members", labels=b_
        )
        checked = CounterMetricFamily(
            "gfs_heal_checked_files", "Files heal compared from a primary to its members", labels=b_
        )
        for name, rep in sorted(dict(self.replicas).items()):
            cfg = rep.cfg
            leads = rep.confirmed and cfg.primary == name
            epoch.add_metric([name], cfg.epoch)
            primary.add_metric([name], 1 if leads else 0)
            changes.add_metric([name], rep.epoch_changes)
            if leads:
                lease.add_metric([name], 1 if rep.lease_valid() else 0)
                for member, objs in list(rep.changes.items()):
                    pending.add_metric([name, member], len(objs))
            files, nbytes = self.healer.totals(name)
            healed.add_metric([name], nbytes)
            checked.add_metric([name], files)
        yield from (epoch, primary, lease, changes, pending, healed, checked)


def serve_metrics(listen: str, registry: CollectorRegistry) -> None:
    """Serve `/metrics` over HTTP on `listen` (HOST:PORT) in a daemon thread."""
    from prometheus_client import start_http_server

    from gfs.rpc.channel import parse_address

    host, port = parse_address(listen)
    try:
        start_http_server(port, host.strip("[]"), registry=registry)
    except OSError as e:
        raise OSError(e.errno, f"cannot serve metrics on {listen}: {e.strerror}") from e
    log.info("metrics listen=%s", listen)
