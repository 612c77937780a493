"""A real Prometheus scraping a real local cluster: every dashboard query, every
variable and every rule of grafana/ must find series; no panel may read a metric
that gfs does not export."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml

from gfs.api import models as m
from gfs.brick.store import ROOT_GFID
from gfs.proto import brick_pb2 as pb
from gfs.proto import brick_pb2_grpc
from gfs.rpc.channel import insecure_channel
from tests.cluster import Cluster, local_cluster
from tests.monitoring import exprs
from tests.procs import free_port, stop_process, wait_for


@dataclass
class Prometheus:
    url: str
    http: httpx.Client

    def query(self, expr: str) -> list[dict[str, Any]]:
        r = self.http.get(f"{self.url}/api/v1/query", params={"query": expr})
        body = r.json()
        assert body.get("status") == "success", f"{expr}: {body.get('error', r.text)}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result


def brick_traffic(c: Cluster) -> None:
    """Reads, writes and an error on the primary brick of the volume, over gRPC, tagged
    as a client tags them (epoch, request ids)."""
    with c.client() as api:
        rs = api.volume("mon").replica_sets[0]
    primary = next(b for b in rs.bricks if b.id == rs.primary)
    brick = primary.name
    seq = iter(range(1, 100))

    def tags(mutation: bool = False) -> list[tuple[str, str]]:
        out = [("gfs-epoch", str(rs.epoch))]
        return [*out, ("gfs-req", f"mon:{next(seq)}")] if mutation else out

    with insecure_channel(primary.address) as ch:
        stub = brick_pb2_grpc.BrickStub(ch)
        missing = stub.Lookup(
            pb.LookupRequest(brick=brick, parent=ROOT_GFID, name=b"nope"), metadata=tags()
        )
        assert missing.err != 0
        made = stub.MakeNode(
            pb.MakeNodeRequest(
                brick=brick,
                parent=ROOT_GFID,
                name=b"f",
                gfid=uuid.uuid4().bytes,
                kind=pb.NODE_KIND_FILE,
                mode=0o100644,
                open=True,
                flags=2,  # O_RDWR
            ),
            metadata=tags(True),
        )
        assert made.err == 0, made.err
        w = stub.Write(
            pb.WriteRequest(brick=brick, fh=made.fh, offset=0, data=b"x" * 4096),
            metadata=tags(True),
        )
        assert w.err == 0 and w.written == 4096
        r = stub.Read(pb.ReadRequest(brick=brick, fh=made.fh, offset=0, size=4096), metadata=tags())
        assert r.err == 0 and len(r.data) == 4096
        assert stub.Release(pb.FhRequest(brick=brick, fh=made.fh), metadata=tags(True)).err == 0
        assert stub.Ping(pb.PingRequest(brick="not-served-here")).err != 0


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    binary = shutil.which("prometheus")
    assert binary, "prometheus missing: scripts/install.sh --test installs it"
    tmp = tmp_path_factory.mktemp("mon")
    metrics_ports = [free_port() for _ in range(3)]
    with local_cluster(
        tmp, brickd_args=lambda i: ["--metrics-listen", f"127.0.0.1:{metrics_ports[i]}"]
    ) as c:
        with c.client() as api:
            api.volume_create(m.VolumeCreate(name="mon", replica=3, size="64MiB"))
            api.volume_start("mon")
        brick_traffic(c)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(exprs.RULES)],
            "scrape_configs": [
                {"job_name": "gfsd", "static_configs": [{"targets": [c.gfsd.address]}]},
                {
                    "job_name": "gfs-brickd",
                    "static_configs": [{"targets": [f"127.0.0.1:{p}" for p in metrics_ports]}],
                },
            ],
        }
        cfg = tmp / "prometheus.yml"
        cfg.write_text(yaml.safe_dump(config))
        port = free_port()
        log = tmp / "prometheus.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={cfg}",
                    f"--storage.tsdb.path={tmp / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            with httpx.Client(timeout=10) as http:
                p = Prometheus(f"http://127.0.0.1:{port}", http)

                def ready() -> bool:
                    if proc.poll() is not None:
                        raise RuntimeError(f"prometheus exited: {log.read_text()}")
                    try:
                        return http.get(f"{p.url}/-/ready").status_code == 200
                    except httpx.HTTPError:
                        return False

                wait_for(ready, 30, f"prometheus on port {port}")
                # All four targets up, and rate() windows with at least two samples.
                wait_for(
                    lambda: (
                        len(p.query("up == 1")) == 4
                        and len(p.query("count_over_time(up[30s]) >= 3")) == 4
                    ),
                    60,
                    "every target scraped a few times",
                )
                yield p
        finally:
            stop_process(proc)


def _eventually_nonempty(p: Prometheus, queries: list[exprs.Query]) -> None:
    """Rules evaluate every second; wait (bounded) until each query has found series."""
    pending = list(queries)
    deadline = time.monotonic() + 30
    while pending:
        pending = [q for q in pending if not p.query(exprs.substitute(q.expr))]
        if not pending:
            return
        if time.monotonic() > deadline:
            lines = "\n".join(f"  {q.where}: {q.expr}" for q in pending)
            raise AssertionError(f"queries without series:\n{lines}")
        time.sleep(0.5)


def test_every_dashboard_query_has_series(prom: Prometheus) -> None:
    queries = exprs.panel_queries()
    assert len(queries) > 20
    _eventually_nonempty(prom, queries)


def test_every_dashboard_variable_has_values(prom: Prometheus) -> None:
    for where, selector, label in exprs.variable_queries():
        series = prom.query(exprs.substitute(selector))
        assert any(label in s["metric"] for s in series), f"{where}: no {label} in {selector}"


def test_every_recording_rule_has_series(prom: Prometheus) -> None:
    rules = [r for r in exprs.rules() if "record" in r]
    _eventually_nonempty(prom, [exprs.Query(r["record"], r["expr"]) for r in rules])
    _eventually_nonempty(prom, [exprs.Query(r["record"], r["record"]) for r in rules])


def test_every_alert_reads_existing_metrics(prom: Prometheus) -> None:
    # A healthy cluster fires nothing, so check what each alert reads instead.
    queries = []
    for a in exprs.alerts():
        prom.query(a["expr"])  # valid for this server
        names = exprs.metric_names(a["expr"])
        assert names, a["alert"]
        queries += [exprs.Query(f"alert {a['alert']}", n) for n in sorted(names)]
    _eventually_nonempty(prom, queries)


def test_healthy_cluster_fires_no_alert(prom: Prometheus) -> None:
    firing = prom.query('ALERTS{alertname=~"Gfs.*"}')
    assert firing == [], [s["metric"] for s in firing]


def test_metric_names_follow_conventions(prom: Prometheus) -> None:
    names = prom.http.get(f"{prom.url}/api/v1/label/__name__/values").json()["data"]
    ours = [n for n in names if n.startswith("gfs_")]
    assert len(ours) > 30
    for n in ours:
        assert n == n.lower(), n
    # Label values must never be file names: only bounded labels on brick metrics.
    for s in prom.query("gfs_brick_operation_duration_seconds_count"):
        assert set(s["metric"]) <= {"__name__", "brick", "op", "instance", "job"}


def test_docs_list_every_metric(prom: Prometheus) -> None:
    doc = (exprs.GRAFANA.parent / "docs" / "monitoring.md").read_text()
    names = prom.http.get(f"{prom.url}/api/v1/label/__name__/values").json()["data"]
    for n in names:
        if not n.startswith("gfs_"):
            continue
        # A histogram's or counter's series, or a gauge whose name ends alike.
        family = re.sub(r"_(bucket|sum|count|created)$", "", n)
        candidates = {n, family, family + "_total", family.removesuffix("_total")}
        assert any(f"`{c}`" in doc for c in candidates), f"docs do not list {n}"


def test_volume_metrics_match_the_volume(prom: Prometheus) -> None:
    cap = prom.query('gfs_volume_capacity_bytes{volume="mon"}')
    assert [float(s["value"][1]) for s in cap] == [64 * 2**20]
    assert [s["value"][1] for s in prom.query('gfs_replica_set_in_sync_members{volume="mon"}')] == [
        "3"
    ]
    up = prom.query('gfs_brick_up{volume="mon"}')
    assert sorted(float(s["value"][1]) for s in up) == [1, 1, 1]
    written = prom.query('gfs_brick_written_bytes_total{brick="mon-r0-b0"}')
    assert [float(s["value"][1]) for s in written] == [4096]
    errors = prom.query('gfs_brick_errors_total{brick="mon-r0-b0", op="Lookup", errno="ENOENT"}')
    assert [float(s["value"][1]) for s in errors] == [1]
    # Names of bricks that are not served never become label values.
    unknown = prom.query('gfs_brick_errors_total{op="Ping", errno="ENODEV"}')
    assert [s["metric"]["brick"] for s in unknown] == ["(unknown)"]
