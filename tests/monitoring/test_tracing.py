"""The span tree of a volume create, caught by an in-memory exporter.

Everything runs in this process so that one exporter sees every span, but over
real transports: the REST client sends HTTP to gfsd's app (uvicorn on loopback),
and gfsd calls three real brick Admin services over gRPC on loopback; context
crosses both only as `traceparent` (header, then gRPC metadata).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
import uvicorn
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from gfs import tracing
from gfs.api import models as m
from gfs.api.client import Client
from gfs.brick.admin import AdminService
from gfs.brick.service import BrickService
from gfs.proto import admin_pb2_grpc
from gfs.rpc.channel import SERVER_OPTIONS
from gfs.rpc.tracing import ServerTracer
from gfs_mgmt.api import routes
from gfs_mgmt.api.app import create_app
from gfs_mgmt.api.tracing import instrument
from gfs_mgmt.store.db import Database
from gfs_mgmt.volume.service import Manager
from tests.procs import free_port, wait_for

TOKEN = "test-token"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exp = InMemorySpanExporter()
    tracing.use(exp, "test", batch=False)
    try:
        yield exp
    finally:
        tracing.shutdown()


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[str]]:
    """Three brick nodes' Admin services, each on its own gRPC server with the tracer."""
    servers, addresses = [], []
    try:
        for i in range(3):
            root = tmp_path / f"root{i}"
            root.mkdir()
            server = grpc.server(
                ThreadPoolExecutor(4), options=SERVER_OPTIONS, interceptors=[ServerTracer()]
            )
            admin = AdminService(BrickService({}), [root], f"z{i}")
            admin_pb2_grpc.add_AdminServicer_to_server(admin, server)
            address = f"127.0.0.1:{free_port()}"
            assert server.add_insecure_port(address)
            server.start()
            servers.append(server)
            addresses.append(address)
        yield addresses
    finally:
        for s in servers:
            s.stop(0).wait()


def test_tracing_is_off_by_default() -> None:
    assert not tracing.enabled()
    with tracing.span("nothing") as s:
        assert s is None


def test_bad_endpoint_is_one_clear_error() -> None:
    with pytest.raises(tracing.TracingError, match="OTLP"):
        tracing.setup("test", "localhost:4318")


def test_span_tree_of_volume_create(
    exporter: InMemorySpanExporter, nodes: list[str], tmp_path: Path
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'gfsd.db'}")
    app = create_app(TOKEN, [routes.build(Manager(db))])
    instrument(app)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    api = Client(f"127.0.0.1:{port}", TOKEN)
    try:
        wait_for(lambda: server.started, 20, "gfsd's app on uvicorn")
        for a in nodes:
            api.peer_add(a)
        exporter.clear()
        with tracing.span("gfs volume create"):
            api.volume_create(m.VolumeCreate(name="traced", replica=3, size="1MiB"))
    finally:
        api.close()
        server.should_exit = True
        thread.join(20)
        db.close()

    # The last peer add's server span may end after clear(): look at the create's trace.
    (root,) = [s for s in exporter.get_finished_spans() if s.name == "gfs volume create"]
    spans = [
        s for s in exporter.get_finished_spans() if s.context.trace_id == root.context.trace_id
    ]
    by_id = {s.context.span_id: s for s in spans}

    def children(parent: ReadableSpan, name: str | None = None) -> list[ReadableSpan]:
        return [
            s
            for s in spans
            if s.parent is not None
            and s.parent.span_id == parent.context.span_id
            and (name is None or s.name == name)
        ]

    assert [s for s in spans if s.parent is None] == [root]
    (client,) = children(root)
    assert (client.name, client.kind) == ("POST /v1/volumes", SpanKind.CLIENT)
    (server,) = children(client)
    assert (server.name, server.kind) == ("POST /v1/volumes", SpanKind.SERVER)
    assert server.attributes and server.attributes["http.response.status_code"] == 201
    (txn,) = children(server, "txn volume_create")
    assert txn.attributes and txn.attributes["gfs.volume"] == "traced"
    steps = children(txn)
    assert sorted(s.name for s in steps) == ["step db_volume"] + ["step provision"] * 3
    for step in children(txn, "step provision"):
        (call,) = children(step)
        assert (call.name, call.kind) == ("grpc /gfs.admin.v1.Admin/Provision", SpanKind.CLIENT)
        (served,) = children(call)
        assert served.kind == SpanKind.SERVER
        assert served.name == "grpc /gfs.admin.v1.Admin/Provision"
    assert all(s.parent is None or s.parent.span_id in by_id for s in spans)


def test_cli_span_name_leaves_out_option_values() -> None:
    from gfs.cli.main import _command

    argv = ["--server", "h:1", "--token", "secret", "volume", "create", "v", "--size", "1MiB"]
    assert _command(argv) == "gfs volume create"
    assert _command(["version"]) == "gfs version"
