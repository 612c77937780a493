"""grafana/ checked without a cluster: promtool on the rules and their unit tests,
and the dashboard's structure."""

from __future__ import annotations

import re
import shutil
import subprocess

import yaml

from tests.monitoring import exprs


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool missing: scripts/install.sh --test installs Debian's prometheus"
    return subprocess.run(
        [tool, *args], capture_output=True, text=True, cwd=exprs.RULES.parent, timeout=120
    )


def test_promtool_check_rules() -> None:
    r = promtool("check", "rules", exprs.RULES.name)
    assert r.returncode == 0, r.stdout + r.stderr


def test_promtool_unit_tests() -> None:
    r = promtool("test", "rules", exprs.RULE_TESTS.name)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_alert_has_a_firing_unit_test() -> None:
    tests = yaml.safe_load(exprs.RULE_TESTS.read_text())["tests"]
    firing = {
        case["alertname"]
        for t in tests
        for case in t.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    names = {a["alert"] for a in exprs.alerts()}
    assert names - firing == set(), "alerts without a unit test that makes them fire"
    assert firing - names == set(), "unit tests of alerts that do not exist"


def test_alerts_have_severity_and_summary() -> None:
    for a in exprs.alerts():
        assert a["labels"]["severity"] in ("warning", "critical"), a["alert"]
        assert a["annotations"]["summary"], a["alert"]
        assert a["alert"].startswith("Gfs"), a["alert"]


def test_dashboard_structure() -> None:
    assert exprs.DASHBOARDS, "no dashboard in grafana/dashboards"
    for path in exprs.DASHBOARDS:
        d = exprs.dashboard(path)
        assert d["uid"] and d["title"]
        names = {v["name"] for v in d["templating"]["list"]}
        assert {"datasource", "volume", "brick"} <= names
        ids = [p["id"] for p in exprs.panels(d)]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        for p in exprs.panels(d):
            g = p["gridPos"]
            assert g["x"] >= 0 and g["x"] + g["w"] <= 24, f"{path.name}: {p['title']} too wide"
            if p["type"] == "row":
                continue
            assert p["datasource"]["uid"] == "${datasource}", p["title"]
            assert p["targets"], f"{path.name}: panel {p['title']!r} has no query"
            for t in p["targets"]:
                used = set(re.findall(r"\$(\w+)", t["expr"]))
                assert used <= names | {"__rate_interval"}, f"{p['title']}: unknown {used}"
                assert t["datasource"]["uid"] == "${datasource}", p["title"]


def test_metric_name_extraction() -> None:
    expr = 'max by (volume) (gfs_brick_up{job="gfs-brickd"}) == 0 and on (volume) gfs:x_y'
    assert exprs.metric_names(expr) == {"gfs_brick_up", "gfs:x_y"}
    assert exprs.metric_names('up{job="gfsd"} == 0 or absent(up{job="gfsd"})') == {"up"}


def test_example_prometheus_config() -> None:
    r = promtool("check", "config", "prometheus.example.yml")
    assert r.returncode == 0, r.stdout + r.stderr


def test_docs_list_every_alert_and_recording_rule() -> None:
    doc = (exprs.GRAFANA.parent / "docs" / "monitoring.md").read_text()
    for r in exprs.rules():
        name = r.get("alert") or r["record"]
        assert f"`{name}`" in doc, f"docs/monitoring.md does not list {name}"
