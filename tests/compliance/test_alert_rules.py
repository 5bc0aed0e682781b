"""The PrometheusRule is valid for Prometheus and every alert behaves: promtool checks the
extracted rule groups, then runs per alert one scenario where it must fire (with exact
labels and rendered annotations) and one where it must stay silent."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import cdk8s
import pytest
import yaml

from config import load_config
from k8s_charts.aws_values import from_config
from k8s_charts.monitoring import MonitoringChart
from k8s_charts.monitoring.rules import ALERTS

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
REPO = Path(__file__).resolve().parents[2]
RUNBOOKS = REPO / "docs" / "runbooks.md"
README = REPO / "README.md"


@dataclass(frozen=True, kw_only=True)
class Scenario:
    series: dict[str, str]
    eval_time: str


@dataclass(frozen=True, kw_only=True)
class Case:
    fire: Scenario
    labels: dict[str, str]
    quiet: Scenario
    extra: dict[str, str] = field(default_factory=dict)


_SUPA = 'namespace="supabase"'
_API_HOST = 'job="blackbox",instance="https://api.example.com/"'
_HEALTHY_KONG = {
    'kong_http_requests_total{service="rest-v1-write",code="200"}': "0+1000x120",
    'kong_http_requests_total{service="rest-v1-write",code="500"}': "0+1x120",
}
_FAILING_KONG = {
    'kong_http_requests_total{service="rest-v1-write",code="200"}': "0+1000x120",
    'kong_http_requests_total{service="rest-v1-write",code="500"}': "0+20x120",
}
_DAY = 86400
_T90 = 90 * 60  # time() at eval_time 90m

CASES: dict[str, Case] = {
    "SupabasePodCrashLooping": Case(
        fire=Scenario(
            series={
                f'kube_pod_container_status_waiting_reason{{{_SUPA},pod="auth-1",container="auth",reason="CrashLoopBackOff"}}': "1x30"
            },
            eval_time="20m",
        ),
        labels={"namespace": "supabase", "pod": "auth-1", "container": "auth", "reason": "CrashLoopBackOff"},
        quiet=Scenario(
            series={
                f'kube_pod_container_status_waiting_reason{{{_SUPA},pod="auth-1",container="auth",reason="CrashLoopBackOff"}}': "0x30"
            },
            eval_time="20m",
        ),
    ),
    "SupabaseHighCpu": Case(
        fire=Scenario(
            series={
                f'container_cpu_usage_seconds_total{{{_SUPA},pod="rest-1",container="rest"}}': "0+57x60",
                f'kube_pod_container_resource_limits{{{_SUPA},pod="rest-1",container="rest",resource="cpu"}}': "1x60",
            },
            eval_time="30m",
        ),
        labels={"namespace": "supabase", "pod": "rest-1", "container": "rest"},
        quiet=Scenario(
            series={
                f'container_cpu_usage_seconds_total{{{_SUPA},pod="rest-1",container="rest"}}': "0+30x60",
                f'kube_pod_container_resource_limits{{{_SUPA},pod="rest-1",container="rest",resource="cpu"}}': "1x60",
            },
            eval_time="30m",
        ),
    ),
    "SupabaseHpaMaxedOut": Case(
        fire=Scenario(
            series={
                f'kube_horizontalpodautoscaler_status_current_replicas{{{_SUPA},horizontalpodautoscaler="rest"}}': "6x40",
                f'kube_horizontalpodautoscaler_spec_max_replicas{{{_SUPA},horizontalpodautoscaler="rest"}}': "6x40",
            },
            eval_time="30m",
        ),
        labels={"namespace": "supabase", "horizontalpodautoscaler": "rest"},
        quiet=Scenario(
            series={
                f'kube_horizontalpodautoscaler_status_current_replicas{{{_SUPA},horizontalpodautoscaler="rest"}}': "4x40",
                f'kube_horizontalpodautoscaler_spec_max_replicas{{{_SUPA},horizontalpodautoscaler="rest"}}': "6x40",
            },
            eval_time="30m",
        ),
    ),
    "SupabaseMetricsTargetDown": Case(
        fire=Scenario(series={f'up{{{_SUPA},job="realtime",instance="10.0.0.1:4000"}}': "0x30"}, eval_time="20m"),
        labels={"namespace": "supabase", "job": "realtime", "instance": "10.0.0.1:4000"},
        quiet=Scenario(series={f'up{{{_SUPA},job="realtime",instance="10.0.0.1:4000"}}': "1x30"}, eval_time="20m"),
    ),
    "PgBouncerDown": Case(
        fire=Scenario(series={'pgbouncer_up{pod="pgbouncer-0"}': "0x10"}, eval_time="5m"),
        labels={"pod": "pgbouncer-0"},
        quiet=Scenario(series={'pgbouncer_up{pod="pgbouncer-0"}': "1x10"}, eval_time="5m"),
    ),
    "PgBouncerClientWaitHigh": Case(
        fire=Scenario(
            series={
                'pgbouncer_pools_client_maxwait_seconds{database="postgres",user="authenticator",pod="pgbouncer-0"}': "3x20"
            },
            eval_time="10m",
        ),
        labels={"database": "postgres", "user": "authenticator"},
        quiet=Scenario(
            series={
                'pgbouncer_pools_client_maxwait_seconds{database="postgres",user="authenticator",pod="pgbouncer-0"}': "0x20"
            },
            eval_time="10m",
        ),
    ),
    "PgBouncerPoolSaturated": Case(
        fire=Scenario(
            series={
                'pgbouncer_pools_server_active_connections{database="postgres",user="authenticator",pod="pgbouncer-0"}': "19x30",
                'pgbouncer_databases_pool_size{name="postgres",database="postgres",host="db.internal",pod="pgbouncer-0"}': "20x30",
            },
            eval_time="20m",
        ),
        labels={"database": "postgres", "user": "authenticator"},
        quiet=Scenario(
            series={
                'pgbouncer_pools_server_active_connections{database="postgres",user="authenticator",pod="pgbouncer-0"}': "5x30",
                'pgbouncer_databases_pool_size{name="postgres",database="postgres",host="db.internal",pod="pgbouncer-0"}': "20x30",
            },
            eval_time="20m",
        ),
    ),
    "PostgresUnreachable": Case(
        fire=Scenario(series={'pg_up{job="postgres-exporter"}': "0x10"}, eval_time="8m"),
        labels={"job": "postgres-exporter"},
        quiet=Scenario(series={'pg_up{job="postgres-exporter"}': "1x10"}, eval_time="8m"),
    ),
    "RdsConnectionsNearLimit": Case(
        fire=Scenario(
            series={
                'pg_stat_activity_count{job="postgres-exporter",datname="postgres",state="active"}': "400x30",
                'pg_stat_activity_count{job="postgres-exporter",datname="postgres",state="idle"}': "450x30",
                'pg_settings_max_connections{job="postgres-exporter"}': "1000x30",
            },
            eval_time="20m",
        ),
        labels={"job": "postgres-exporter"},
        quiet=Scenario(
            series={
                'pg_stat_activity_count{job="postgres-exporter",datname="postgres",state="active"}': "100x30",
                'pg_settings_max_connections{job="postgres-exporter"}': "1000x30",
            },
            eval_time="20m",
        ),
    ),
    "PostgresReplicaLagHigh": Case(
        fire=Scenario(series={'pg_replication_lag_seconds{job="postgres-exporter-replica"}': "60x20"}, eval_time="10m"),
        labels={"job": "postgres-exporter-replica"},
        quiet=Scenario(series={'pg_replication_lag_seconds{job="postgres-exporter-replica"}': "2x20"}, eval_time="10m"),
    ),
    "RedisDown": Case(
        fire=Scenario(series={'redis_up{instance="redis-exporter:9121"}': "0x10"}, eval_time="8m"),
        labels={"instance": "redis-exporter:9121"},
        quiet=Scenario(series={'redis_up{instance="redis-exporter:9121"}': "1x10"}, eval_time="8m"),
    ),
    "ExternalSecretNotReady": Case(
        fire=Scenario(
            series={
                'externalsecret_status_condition{namespace="supabase",name="jwt",condition="Ready",status="False"}': "1x20"
            },
            eval_time="15m",
        ),
        labels={"namespace": "supabase", "name": "jwt", "condition": "Ready", "status": "False"},
        quiet=Scenario(
            series={
                'externalsecret_status_condition{namespace="supabase",name="jwt",condition="Ready",status="False"}': "0x20"
            },
            eval_time="15m",
        ),
    ),
    "ExternalSecretSyncErrors": Case(
        fire=Scenario(
            series={'externalsecret_sync_calls_error{namespace="supabase",name="jwt"}': "0+1x40"}, eval_time="30m"
        ),
        labels={"namespace": "supabase", "name": "jwt"},
        quiet=Scenario(
            series={'externalsecret_sync_calls_error{namespace="supabase",name="jwt"}': "3x40"}, eval_time="30m"
        ),
    ),
    "ApiErrorBudgetFastBurn": Case(
        fire=Scenario(series=_FAILING_KONG, eval_time="90m"),
        labels={},
        quiet=Scenario(series=_HEALTHY_KONG, eval_time="90m"),
    ),
    "ApiErrorBudgetSlowBurn": Case(
        fire=Scenario(series=_FAILING_KONG, eval_time="90m"),
        labels={},
        quiet=Scenario(series=_HEALTHY_KONG, eval_time="90m"),
    ),
    "ApiLatencyBudgetBurn": Case(
        fire=Scenario(
            series={
                'kong_request_latency_ms_bucket{service="auth-v1",le="1000"}': "0+800x120",
                'kong_request_latency_ms_count{service="auth-v1"}': "0+1000x120",
            },
            eval_time="90m",
        ),
        labels={},
        quiet=Scenario(
            series={
                'kong_request_latency_ms_bucket{service="auth-v1",le="1000"}': "0+995x120",
                'kong_request_latency_ms_count{service="auth-v1"}': "0+1000x120",
            },
            eval_time="90m",
        ),
    ),
    "ApiErrorBudgetLow": Case(
        fire=Scenario(series=_FAILING_KONG, eval_time="90m"),
        labels={},
        quiet=Scenario(
            series={'kong_http_requests_total{service="rest-v1-write",code="200"}': "0+1000x120"}, eval_time="90m"
        ),
    ),
    "EndpointProbeFailed": Case(
        fire=Scenario(series={f"probe_success{{{_API_HOST}}}": "0x10"}, eval_time="8m"),
        labels={"job": "blackbox", "instance": "https://api.example.com/"},
        quiet=Scenario(series={f"probe_success{{{_API_HOST}}}": "1x10"}, eval_time="8m"),
    ),
    "CertificateExpiringSoon": Case(
        fire=Scenario(
            series={f"probe_ssl_earliest_cert_expiry{{{_API_HOST}}}": f"{_T90 + 10 * _DAY}x100"}, eval_time="90m"
        ),
        labels={"job": "blackbox", "instance": "https://api.example.com/"},
        quiet=Scenario(
            series={f"probe_ssl_earliest_cert_expiry{{{_API_HOST}}}": f"{_T90 + 40 * _DAY}x100"}, eval_time="90m"
        ),
    ),
    "CertificateExpiryCritical": Case(
        fire=Scenario(
            series={f"probe_ssl_earliest_cert_expiry{{{_API_HOST}}}": f"{_T90 + 3 * _DAY}x100"}, eval_time="90m"
        ),
        labels={"job": "blackbox", "instance": "https://api.example.com/"},
        quiet=Scenario(
            series={f"probe_ssl_earliest_cert_expiry{{{_API_HOST}}}": f"{_T90 + 10 * _DAY}x100"}, eval_time="90m"
        ),
    ),
    "NodeNotReady": Case(
        fire=Scenario(
            series={'kube_node_status_condition{node="ip-10-0-1-1",condition="Ready",status="true"}': "0x20"},
            eval_time="15m",
        ),
        labels={"node": "ip-10-0-1-1", "condition": "Ready", "status": "true"},
        quiet=Scenario(
            series={'kube_node_status_condition{node="ip-10-0-1-1",condition="Ready",status="true"}': "1x20"},
            eval_time="15m",
        ),
    ),
    "PersistentVolumeFillingUp": Case(
        fire=Scenario(
            series={
                'kubelet_volume_stats_available_bytes{namespace="observability",persistentvolumeclaim="prometheus-db"}': "14000-20x420",
                'kubelet_volume_stats_capacity_bytes{namespace="observability",persistentvolumeclaim="prometheus-db"}': "100000x420",
            },
            eval_time="420m",
        ),
        labels={"namespace": "observability", "persistentvolumeclaim": "prometheus-db"},
        # Nearly full but not shrinking: predict_linear keeps it quiet.
        quiet=Scenario(
            series={
                'kubelet_volume_stats_available_bytes{namespace="observability",persistentvolumeclaim="prometheus-db"}': "14000x420",
                'kubelet_volume_stats_capacity_bytes{namespace="observability",persistentvolumeclaim="prometheus-db"}': "100000x420",
            },
            eval_time="420m",
        ),
    ),
    "RealtimeConnectionSaturation": Case(
        fire=Scenario(
            series={
                'phoenix_connections_total{job="realtime",pod="realtime-0"}': "9000x30",
                'phoenix_connections_max{job="realtime",pod="realtime-0"}': "10000x30",
            },
            eval_time="20m",
        ),
        labels={"pod": "realtime-0"},
        quiet=Scenario(
            series={
                'phoenix_connections_total{job="realtime",pod="realtime-0"}': "1000x30",
                'phoenix_connections_max{job="realtime",pod="realtime-0"}': "10000x30",
            },
            eval_time="20m",
        ),
    ),
}


@pytest.fixture(scope="module")
def rule_groups() -> list[dict]:
    cfg = load_config()
    chart = MonitoringChart(cdk8s.App(), "monitoring", cfg=cfg, env_name="prod", values=from_config(cfg, "prod"))
    rules = [o for o in chart.to_json() if o["kind"] == "PrometheusRule"]
    assert rules, "the monitoring chart renders no PrometheusRule"
    return [g for r in rules for g in r["spec"]["groups"]]


@pytest.fixture(scope="module")
def rules_file(rule_groups: list[dict], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rules") / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule_groups}, sort_keys=False))
    return path


def _alerts(rule_groups: list[dict]) -> dict[str, dict]:
    return {r["alert"]: r for g in rule_groups for r in g["rules"] if "alert" in r}


def test_promtool_check_rules(rules_file: Path) -> None:
    out = subprocess.run([PROMTOOL, "check", "rules", str(rules_file)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_has_labels_annotations_and_runbook(rule_groups: list[dict]) -> None:
    alerts = _alerts(rule_groups)
    assert set(alerts) == {a.name for a in ALERTS}
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        ann = rule["annotations"]
        assert ann["summary"] and ann["description"], name
        assert ann["runbook_url"] == (
            f"https://github.com/example-org/supabase-on-aws/blob/main/docs/runbooks.md#{name.lower()}"
        )


def test_every_alert_has_a_runbook_section_and_readme_row(rule_groups: list[dict]) -> None:
    headings = {line[3:].strip().lower() for line in RUNBOOKS.read_text().splitlines() if line.startswith("## ")}
    readme = README.read_text()
    for name in _alerts(rule_groups):
        # GitHub anchors are the lower-cased heading text.
        assert name.lower() in headings, f"docs/runbooks.md lacks a '## {name}' section"
        assert f"| {name} |" in readme, f"README alert table lacks {name}"


def test_every_alert_has_a_firing_and_a_silent_case(rule_groups: list[dict]) -> None:
    assert set(CASES) == set(_alerts(rule_groups))


def _render(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{\s*\$labels\.(\w+)\s*\}\}", lambda m: labels[m.group(1)], template)


def _test_block(name: str, scenario: Scenario, expected: list[dict]) -> dict:
    return {
        "name": name,
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in scenario.series.items()],
        "alert_rule_test": [{"eval_time": scenario.eval_time, "alertname": name.split(":")[0], "exp_alerts": expected}],
    }


def test_alerts_fire_and_stay_silent(rule_groups: list[dict], rules_file: Path) -> None:
    alerts = _alerts(rule_groups)
    tests = []
    for name, case in CASES.items():
        rule = alerts[name]
        labels = {**case.labels, "severity": rule["labels"]["severity"]}
        annotations = {k: _render(v, labels) for k, v in rule["annotations"].items()}
        tests.append(_test_block(f"{name}:fires", case.fire, [{"exp_labels": labels, "exp_annotations": annotations}]))
        tests.append(_test_block(f"{name}:silent", case.quiet, []))
    test_file = rules_file.parent / "alerts_test.yaml"
    test_file.write_text(
        yaml.safe_dump({"rule_files": [rules_file.name], "evaluation_interval": "1m", "tests": tests}, sort_keys=False)
    )
    out = subprocess.run(
        [PROMTOOL, "test", "rules", test_file.name], capture_output=True, text=True, cwd=rules_file.parent
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_wrong_expectation_is_caught(rule_groups: list[dict], rules_file: Path) -> None:
    """Guards the harness: a firing scenario asserted as silent must make promtool fail."""
    case = CASES["PgBouncerDown"]
    test_file = rules_file.parent / "inverted_test.yaml"
    test_file.write_text(
        yaml.safe_dump(
            {
                "rule_files": [rules_file.name],
                "evaluation_interval": "1m",
                "tests": [_test_block("PgBouncerDown", case.fire, [])],
            }
        )
    )
    out = subprocess.run(
        [PROMTOOL, "test", "rules", test_file.name], capture_output=True, text=True, cwd=rules_file.parent
    )
    assert out.returncode != 0
