"""The Grafana dashboard and the Prometheus alert rules in deploy/ against a live service.

Every query of the dashboard and every alert expression must name metrics (and labels) that a
running ``churnscale serve`` exports after some traffic; the rules must pass ``promtool check
rules`` (from Debian's ``prometheus`` package) and a schema check of their own.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from live_server import Server, start_server, stop_server
from prometheus_client.parser import text_string_to_metric_families

from churnscale.data.synthetic import generate_table
from churnscale.model.lightgbm import LightGBMModel
from churnscale.monitoring import build_reference

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "churnscale-dashboard.json"
ALERTS = DEPLOY / "prometheus" / "churnscale-alerts.yaml"
#: Labels Prometheus adds to every scraped series (not the service's own).
TARGET_LABELS = {"job", "instance"}
_SELECTOR = re.compile(r"(churnscale_\w+)(?:\{([^}]*)\})?")
_MATCHER = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)")
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}


def dashboard_queries() -> list[str]:
    document = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for p in document["panels"] for t in p["targets"]]
    for variable in document["templating"]["list"]:
        if variable["type"] == "query":
            queries.append(variable["query"]["query"])
    return queries


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


@pytest.fixture(scope="module")
def exported(
    model: LightGBMModel, customers: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, set[str]]]:
    """Series name → its label names, scraped from a live server after predictions and errors
    (the model with a drift reference, so the drift gauges have samples)."""
    reference = build_reference(model, generate_table(2_000, 5).to_batches())
    copy = LightGBMModel(model.preprocessor, model.booster, model.metadata, reference=reference)
    bundle = copy.save(tmp_path_factory.mktemp("observed") / "model")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHURNSCALE_DRIFT_MIN_ROWS", "20")
        running: Server = start_server(bundle)
    try:
        with httpx.Client(base_url=running.url) as client:
            for x in customers[:40]:
                assert client.post("/v1/predict", json=x).status_code == 200
            assert client.post("/v1/predict/batch", json=customers[:10]).status_code == 200
            assert client.post("/v1/predict", json={"x": 1}).status_code == 422
            text = client.get("/metrics").text
    finally:
        stop_server(running)
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for suffix in _SUFFIXES.get(family.type, ("",)):
            series.setdefault(family.name + suffix, set())
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    yield series


def _unknown(expression: str, series: dict[str, set[str]]) -> list[str]:
    problems = []
    names = _SELECTOR.findall(expression)
    if not names:
        problems.append(f"names no churnscale metric: {expression}")
    for name, matchers in names:
        if name not in series:
            problems.append(f"{name} is not exported")
            continue
        for label in set(_MATCHER.findall(matchers)) - TARGET_LABELS:
            if series[name] and label not in series[name]:
                problems.append(f"{name} has no label {label!r} (has {sorted(series[name])})")
    return problems


def test_every_dashboard_query_names_exported_metrics(exported: dict[str, set[str]]) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 15
    problems = [p for q in queries for p in _unknown(q, exported)]
    assert problems == []
    panels = " ".join(queries)
    for topic in ("ready", "request_seconds", "errors", "arm_requests", "arm_score", "drift_psi"):
        assert f"churnscale_{topic}" in panels, topic
    assert "overloaded" in panels  # load shedding


def test_every_alert_names_exported_metrics(exported: dict[str, set[str]]) -> None:
    rules = alert_rules()
    assert {r["alert"] for r in rules} >= {
        "ChurnscaleNotReady",
        "ChurnscaleHighErrorRate",
        "ChurnscaleHighP99Latency",
        "ChurnscaleFeatureDrift",
    }
    assert [p for r in rules for p in _unknown(r["expr"], exported)] == []
    assert exported["churnscale_ready"] == set()  # a plain gauge, value 1 once ready
    assert exported["churnscale_drift_psi"] >= {"feature", "version"}  # samples, not only TYPE


def test_the_check_catches_a_metric_that_does_not_exist(exported: dict[str, set[str]]) -> None:
    assert _unknown("rate(churnscale_requests_totl[5m])", exported) == [
        "churnscale_requests_totl is not exported"
    ]
    assert _unknown('churnscale_errors_total{kinds="x"}', exported)[0].startswith(
        "churnscale_errors_total has no label 'kinds'"
    )


def test_alert_rules_schema() -> None:
    document = yaml.safe_load(ALERTS.read_text())
    assert set(document) == {"groups"}
    for group in document["groups"]:
        assert set(group) <= {"name", "interval", "rules"} and group["name"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule["alert"])
            assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s")), rule["alert"]
            assert rule["labels"]["severity"] in {"warning", "critical"}
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    document_ids = [p["id"] for p in json.loads(DASHBOARD.read_text())["panels"]]
    assert len(document_ids) == len(set(document_ids))


def test_alert_rules_pass_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian: apt-get install prometheus)")
    checked = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True)
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
    broken = tmp_path / "broken.yaml"
    broken.write_text(ALERTS.read_text().replace("> 0.05", "> > 0.05"))
    refused = subprocess.run([promtool, "check", "rules", str(broken)], capture_output=True)
    assert refused.returncode != 0
