"""gfsd's Prometheus metrics, served unauthenticated at `/metrics` on the REST port.

Almost everything is read from the database (and the bricks' statfs) when
Prometheus scrapes (`collector.StoreCollector`), so no code path has to keep a
counter in step with the state; only what happens inside this process
(transaction outcomes and durations, `txn.py`) is counted as it happens.
"""

from __future__ import annotations

from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
)

from gfs_mgmt.metrics import txn
from gfs_mgmt.metrics.collector import StoreCollector
from gfs_mgmt.store.db import Database


def build_registry(db: Database, probe_timeout: float = 2.0) -> CollectorRegistry:
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    registry.register(StoreCollector(db, probe_timeout))
    for metric in txn.METRICS:
        registry.register(metric)
    return registry


def add_route(app: FastAPI, registry: CollectorRegistry) -> None:
    """`GET /metrics` without auth: what Prometheus expects of a service's own port."""

    def metrics() -> Response:  # sync: the collector blocks on SQL and gRPC
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
