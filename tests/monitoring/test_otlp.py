"""Real traces from real processes: the `gfs` CLI, gfsd and three gfs-brickd send
OTLP/HTTP to a receiver in this test, and one trace must link them all."""

from __future__ import annotations

import gzip
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as otlp

from tests.cluster import local_cluster
from tests.procs import BIN, free_port, wait_for


@dataclass(frozen=True)
class Got:
    service: str
    name: str
    trace_id: bytes
    span_id: bytes
    parent: bytes


class Receiver(ThreadingHTTPServer):
    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.spans: list[Got] = []
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        req = otlp.ExportTraceServiceRequest.FromString(body)
        got = []
        for rs in req.resource_spans:
            attrs = {a.key: a.value.string_value for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                for s in ss.spans:
                    got.append(
                        Got(attrs["service.name"], s.name, s.trace_id, s.span_id, s.parent_span_id)
                    )
        with self.server.lock:
            self.server.spans += got
        reply = otlp.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(free_port())
    t = threading.Thread(target=r.serve_forever, daemon=True)
    t.start()
    try:
        yield r
    finally:
        r.shutdown()
        r.server_close()
        t.join(10)


def test_one_trace_from_cli_to_bricks(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = f"http://127.0.0.1:{receiver.server_address[1]}"
    # Inherited by every daemon the cluster starts, and by the CLI below.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # ms: export soon, not every 5 s
    with local_cluster(tmp_path) as c:
        r = subprocess.run(
            [
                str(BIN / "gfs"),
                "--server",
                c.gfsd.address,
                "--token",
                c.gfsd.token,
                "volume",
                "create",
                "otel",
                "--replica",
                "3",
                "--size",
                "1MiB",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr

        def roots() -> list[Got]:
            with receiver.lock:
                return [s for s in receiver.spans if s.name == "gfs volume create"]

        wait_for(lambda: len(roots()) == 1, 30, "the CLI's span")
        trace_id = roots()[0].trace_id

        def trace() -> list[Got]:
            with receiver.lock:
                return [s for s in receiver.spans if s.trace_id == trace_id]

        def complete() -> bool:
            provisions = [s for s in trace() if s.service == "gfs-brickd"]
            return len(provisions) == 3 and any(s.name == "txn volume_create" for s in trace())

        wait_for(complete, 30, "spans of gfsd and all three brick daemons")

    spans = trace()
    by_id = {s.span_id: s for s in spans}

    def parent(s: Got) -> Got:
        return by_id[s.parent]

    for served in (s for s in spans if s.service == "gfs-brickd"):
        assert served.name == "grpc /gfs.admin.v1.Admin/Provision"
        call = parent(served)
        assert (call.service, call.name) == ("gfsd", "grpc /gfs.admin.v1.Admin/Provision")
        step = parent(call)
        assert step.name == "step provision"
        txn = parent(step)
        assert txn.name == "txn volume_create"
        server = parent(txn)
        assert (server.service, server.name) == ("gfsd", "POST /v1/volumes")
        client = parent(server)
        assert (client.service, client.name) == ("gfs-cli", "POST /v1/volumes")
        assert parent(client) == roots()[0]
    # Background work (peer checks every second here, scrapes) starts no traces: every
    # trace begins with a request (here also the test's own peer adds).
    with receiver.lock:
        starts = {s.name for s in receiver.spans if not s.parent}
    assert all(n.split()[0] in ("gfs", "GET", "POST", "DELETE") for n in starts), starts
