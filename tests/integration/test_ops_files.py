"""The Grafana dashboard and the Prometheus alert rules in ops/ load, and use only metrics `dropq metrics` exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from dropq.config.settings import from_env
from dropq.workers import keys
from dropq.workers.jobs.watchdog import delivery_member
from dropq.workers.metrics import fields
from dropq.workers.metrics.collector import DropqCollector
from tests.support.processes import ROOT

DASHBOARD = ROOT / "ops" / "grafana" / "dropq.json"
ALERTS = ROOT / "ops" / "prometheus" / "alerts.yml"
# A metric name inside a PromQL expression, with its label matchers when it has some.
_METRIC = re.compile(r"\b(dropq_[a-z0-9_]+)(\{[^}]*\})?")
_MATCHER = re.compile(r"([a-z_]+)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def _exported(client: redis.Redis, redis_url: str) -> dict[str, set[str]]:
    """Every sample name the collector exports, with its labels (``le`` for buckets)."""
    settings = from_env({"REDIS_URL": redis_url, "DROPQ_CREDIT_BUDGET_PER_DAY": "1000"})
    names: dict[str, set[str]] = {}
    for family in DropqCollector(client, settings).collect():
        labels = {label for sample in family.samples for label in sample.labels}
        for suffix in _SUFFIXES[family.type]:
            names[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return names


def _expressions() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    found = [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p.get("targets", [])]
    found += [
        ("templating " + v["name"], v["definition"]) for v in dashboard["templating"]["list"] if "definition" in v
    ]
    rules = yaml.safe_load(ALERTS.read_text())
    found += [(r["alert"], r["expr"]) for g in rules["groups"] for r in g["rules"]]
    return found


@pytest.fixture
def exported(redis_client: redis.Redis, redis_url: str) -> dict[str, set[str]]:
    """The collector's sample names on an empty Redis with a budget (every family present, samples or not)."""
    # A balance and a delivery, so that the families whose samples depend on data have their labels.
    redis_client.hset(keys.stats_key(), fields.delivery_field("jsonl", failed=True), 1)
    account = DropqCollector(redis_client, from_env({})).account
    redis_client.hset(keys.credits_key(account), mapping={"balance": 5, "at_ms": 1})
    redis_client.zadd(keys.watchdog_key(), {delivery_member("j/0/0", "jsonl"): 1})
    return _exported(redis_client, redis_url)


def test_the_dashboard_is_valid_grafana_json_with_a_layout_that_does_not_overlap() -> None:
    """Unique panel ids, every panel on the 24-column grid, no two panels on the same cell, a datasource variable."""
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] and dashboard["uid"] and dashboard["schemaVersion"] >= 36
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells: dict[tuple[int, int], str] = {}
    for p in panels:
        grid = p["gridPos"]
        assert p["type"] in {"row", "stat", "timeseries"} and p["title"], p
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, p["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{p['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = p["title"]
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}" and p["description"], p["title"]
            assert p["targets"] and len({t["refId"] for t in p["targets"]}) == len(p["targets"]), p["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"


def test_the_alert_rules_cover_the_operators_questions() -> None:
    """Each rule has an expression, a severity and a summary; the five situations the issue names have one."""
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    assert len({r["alert"] for r in rules}) == len(rules)
    for rule in rules:
        assert rule["expr"] and rule["labels"]["severity"] in {"warning", "critical"} and rule["annotations"]["summary"]
    watched = " ".join(r["expr"] for r in rules)
    for metric in ("dropq_credits_paused", 'outcome="429"', "dropq_batch_oldest_waiting_age_seconds",
                   'dropq_deliveries_total{outcome="failed"}', "dropq_workers_alive"):  # fmt: skip
        assert metric in watched, metric


def test_every_expression_uses_only_exported_metrics_and_their_labels(exported: dict[str, set[str]]) -> None:
    """A renamed metric or label, or a typo in the dashboard or the rules, fails here."""
    problems = []
    for where, expr in _expressions():
        used = _METRIC.findall(expr)
        assert used, f"{where}: no dropq metric in {expr!r}"
        for name, matchers in used:
            if name not in exported:
                problems.append(f"{where}: {name} is not exported")
                continue
            unknown = set(_MATCHER.findall(matchers)) - exported[name]
            if unknown:
                problems.append(f"{where}: {name} has no label {sorted(unknown)}")
        grouped = {label.strip() for group in _GROUPING.findall(expr) for label in group.split(",") if label.strip()}
        available = set().union(*(exported.get(name, set()) for name, _ in used))
        if grouped - available:
            problems.append(f"{where}: grouping by {sorted(grouped - available)} that no metric of it has")
    assert not problems, "\n".join(problems)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_alert_rules_and_every_dashboard_query(tmp_path: Path) -> None:
    """Prometheus's own checker parses every rule, and every panel's query as a recording rule (where installed)."""
    # Grafana's variables, replaced by what Grafana would put there.
    queries = [
        expr.replace("$__rate_interval", "5m").replace("$account", ".*")
        for where, expr in _expressions()
        if not where.startswith("templating") and not where.startswith("Dropq")
    ]
    recording = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:q{i}", "expr": q}
                                                            for i, q in enumerate(queries)]}]}  # fmt: skip
    (tmp_path / "dashboard.yml").write_text(yaml.safe_dump(recording))
    for path in (ALERTS, tmp_path / "dashboard.yml"):
        result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
