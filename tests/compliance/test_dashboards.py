"""Dashboards are loadable by Grafana's sidecar and every query in them is valid PromQL."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from config import yamlio
from k8s_charts.monitoring.dashboards import DASHBOARDS
from tests.rendered import manifests

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
EXPECTED = {"supabase-overview", "supabase-database", "supabase-realtime", "supabase-sla", "supabase-cost"}


@pytest.fixture(scope="module")
def dashboards() -> dict[str, dict]:
    found = {}
    for obj in manifests("staging")["monitoring"]:
        if obj["kind"] == "ConfigMap" and obj["metadata"].get("labels", {}).get("grafana_dashboard") == "1":
            assert obj["metadata"]["namespace"] == "observability"
            ((key, body),) = obj["data"].items()
            assert key.endswith(".json")
            found[key[:-5]] = json.loads(body)
    return found


def _exprs(dashboard: dict) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


def test_all_dashboards_shipped(dashboards: dict[str, dict]) -> None:
    assert set(dashboards) == EXPECTED
    for uid, d in dashboards.items():
        assert d["uid"] == uid
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids)), f"{uid}: duplicate panel ids"
        for p in d["panels"]:
            assert p["targets"], f"{uid}/{p['title']} has no query"
            g = p["gridPos"]
            assert g["x"] + g["w"] <= 24, f"{uid}/{p['title']} overflows the grid"
            assert p["datasource"]["uid"] == "${datasource}"


def test_dashboards_cover_the_required_signals(dashboards: dict[str, dict]) -> None:
    joined = {uid: " ".join(_exprs(d)) for uid, d in dashboards.items()}
    for metric in ("kong_http_requests_total", "kong_request_latency_ms_bucket"):
        assert metric in joined["supabase-overview"]
    assert "by (service, route)" in joined["supabase-overview"]
    for metric in (
        "pg_stat_activity_count",
        "pgbouncer_pools_server_active_connections",
        "pg_replication_lag_seconds",
        "pg_stat_statements_seconds_total",
        "pg_locks_count",
    ):
        assert metric in joined["supabase-database"]
    for metric in ("realtime_connections_global_connected", "realtime_channel_global_joins"):
        assert metric in joined["supabase-realtime"]
    assert "slo:kong_request_errors:ratio_rate30d" in joined["supabase-sla"]
    for label in (
        "label_eks_amazonaws_com_capacity_type",
        "label_kubernetes_io_arch",
    ):
        assert label in joined["supabase-cost"]


def test_every_dashboard_query_parses(dashboards: dict[str, dict], tmp_path: Path) -> None:
    exprs = [e for d in dashboards.values() for e in _exprs(d)]
    assert len(exprs) == sum(len(d.exprs()) for d in DASHBOARDS)
    rules = [{"record": f"dashboard:query_{i}:check", "expr": e} for i, e in enumerate(exprs)]
    path = tmp_path / "dashboards.yaml"
    path.write_text(yamlio.dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    out = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_broken_query_would_be_caught(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        yamlio.dump(
            {
                "groups": [
                    {"name": "bad", "rules": [{"record": "dashboard:bad:check", "expr": "sum by (le (rate(x[5m]))"}]}
                ]
            }
        )
    )
    assert subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True).returncode != 0


def test_cost_query_counts_node_hours(dashboards: dict[str, dict], tmp_path: Path) -> None:
    """Two arm64 spot nodes and one on-demand node for 24h: 48 and 24 node hours."""
    expr = next(
        t["expr"] for p in dashboards["supabase-cost"]["panels"] if "Node hours" in p["title"] for t in p["targets"]
    )
    (tmp_path / "rules.yaml").write_text(
        yamlio.dump({"groups": [{"name": "cost", "rules": [{"record": "cost:node_hours", "expr": expr}]}]})
    )
    labels = 'label_kubernetes_io_arch="arm64"'
    test = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "5m",
        "tests": [
            {
                "interval": "5m",
                "input_series": [
                    {
                        "series": f'kube_node_labels{{node="a",label_eks_amazonaws_com_capacity_type="SPOT",{labels}}}',
                        "values": "1x300",
                    },
                    {
                        "series": f'kube_node_labels{{node="b",label_eks_amazonaws_com_capacity_type="SPOT",{labels}}}',
                        "values": "1x300",
                    },
                    {
                        "series": f'kube_node_labels{{node="c",label_eks_amazonaws_com_capacity_type="ON_DEMAND",{labels}}}',
                        "values": "1x300",
                    },
                ],
                # round(): Debian's promtool 2.x closes subquery ranges at both ends (289 samples a
                # day), Prometheus 3 does not (288): 24.08 vs 24 node hours.
                "promql_expr_test": [
                    {
                        "expr": "round(cost:node_hours)",
                        "eval_time": "1440m",
                        "exp_samples": [
                            {"labels": '{arch="arm64",capacity_type="SPOT"}', "value": 48},
                            {"labels": '{arch="arm64",capacity_type="ON_DEMAND"}', "value": 24},
                        ],
                    }
                ],
            }
        ],
    }
    (tmp_path / "test.yaml").write_text(yamlio.dump(test))
    out = subprocess.run([PROMTOOL, "test", "rules", "test.yaml"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
