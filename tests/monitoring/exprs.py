"""The PromQL that grafana/ ships: every dashboard query, variable and rule."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

GRAFANA = Path(__file__).resolve().parents[2] / "grafana"
RULES = GRAFANA / "prometheus" / "gfs-rules.yml"
RULE_TESTS = GRAFANA / "prometheus" / "gfs-rules.test.yml"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))

#: What the dashboard's template variables become for a check: every value.
VARIABLES = {"$volume": ".*", "$brick": ".*", "$__rate_interval": "30s"}


@dataclass(frozen=True)
class Query:
    where: str  # for messages: dashboard/panel or rule name
    expr: str


def rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES.read_text())
    return [r for g in data["groups"] for r in g["rules"]]


def alerts() -> list[dict[str, Any]]:
    return [r for r in rules() if "alert" in r]


def dashboard(path: Path) -> dict[str, Any]:
    d: dict[str, Any] = json.loads(path.read_text())
    return d


def panels(d: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in d["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))  # collapsed rows hold their panels
    return out


def substitute(expr: str) -> str:
    for k, v in VARIABLES.items():
        expr = expr.replace(k, v)
    return expr


def panel_queries() -> list[Query]:
    out = []
    for path in DASHBOARDS:
        for p in panels(dashboard(path)):
            for t in p.get("targets", []):
                out.append(Query(f"{path.name}: panel {p['title']!r} {t['refId']}", t["expr"]))
    return out


def variable_queries() -> list[tuple[str, str, str]]:
    """(where, selector, label) of every `label_values(SELECTOR, LABEL)` variable."""
    out = []
    for path in DASHBOARDS:
        for v in dashboard(path)["templating"]["list"]:
            if v["type"] != "query":
                continue
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", q)
            assert m, f"{path.name}: variable {v['name']}: only label_values(...) is supported"
            out.append((f"{path.name}: variable {v['name']}", m.group(1), m.group(2)))
    return out


_METRIC = re.compile(r"\b(gfs[_:][A-Za-z0-9_:]*|process_[a-z_]+|up)\b")


def metric_names(expr: str) -> set[str]:
    """The metrics an expression reads (ours all start with gfs_/gfs:, plus process_* and up)."""
    return set(_METRIC.findall(re.sub(r'"[^"]*"', '""', expr)))
