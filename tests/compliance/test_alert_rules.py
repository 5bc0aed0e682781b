"""The PrometheusRule is valid for Prometheus and every alert behaves at its edges: promtool
checks the extracted rule groups, then runs per alert a scenario just past its threshold that
must fire (with exact labels and rendered annotations) once `for:` has elapsed, the same
scenario one evaluation before `for:` has elapsed, and one just short of the threshold, both
of which must stay silent. Thresholds come from rules.py, so the scenarios follow them."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from config import yamlio
from k8s_charts.monitoring.rules import (
    ALERTS,
    AVAILABILITY_OBJECTIVE,
    CERT_EXPIRY_CRITICAL_DAYS,
    CERT_EXPIRY_WARNING_DAYS,
    ERROR_BUDGET_LOW_FRACTION,
    FAST_BURN,
    HIGH_CPU_RATIO,
    LATENCY_OBJECTIVE,
    LATENCY_THRESHOLD_MS,
    PGBOUNCER_CLIENT_WAIT_SECONDS,
    PGBOUNCER_POOL_RATIO,
    RDS_CONNECTIONS_RATIO,
    REALTIME_CONNECTIONS_RATIO,
    REPLICA_LAG_SECONDS,
    SLOW_BURN,
    VOLUME_FREE_RATIO,
    VOLUME_FULL_WITHIN_DAYS,
    error_budget,
)
from tests.rendered import manifests

# Runs promtool's rule tests over every alert.
pytestmark = pytest.mark.long

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
REPO = Path(__file__).resolve().parents[2]
RUNBOOKS = REPO / "docs" / "runbooks.md"
README = REPO / "README.md"

# 1% either side of a threshold: far finer than any threshold anyone would tune, yet clear
# of float rounding in rate extrapolation and linear regression.
MARGIN = 0.01
SAMPLES = 90  # one a minute; outlasts the longest `for:` (1h) plus the rate warm-up
_DAY = 86400
_RULE = {a.name: a for a in ALERTS}


def _minutes(duration: str) -> int:
    value, unit = int(duration[:-1]), duration[-1]
    return value * {"m": 1, "h": 60}[unit]


@dataclass(frozen=True, kw_only=True)
class Case:
    """`past` holds the alert condition from minute `start` on; `short` misses it at the minute
    the alert would fire."""

    labels: dict[str, str]
    past: dict[str, str]
    short: dict[str, str]
    start: int = 0


def _state(*, labels: dict[str, str], bad: dict[str, str], good: dict[str, str], start: int = 0) -> Case:
    return Case(labels=labels, past=bad, short=good, start=start)


def _threshold(
    name: str,
    threshold: float,
    series: Callable[[float, int], dict[str, str]],
    *,
    labels: dict[str, str],
    fires_below: bool = False,
    start: int = 0,
) -> Case:
    """`series(value, minute)` must put the alerting quantity at `value` at `minute`."""
    step = abs(threshold) * MARGIN
    past, short = (threshold - step, threshold + step) if fires_below else (threshold + step, threshold - step)
    due = start + _minutes(_RULE[name].for_)
    return Case(labels=labels, past=series(past, start), short=series(short, due), start=start)


def _flat(series: str, value: float) -> dict[str, str]:
    return {series: f"{value}x{SAMPLES}"}


_SUPA = 'namespace="supabase"'
_API_HOST = 'job="blackbox",instance="https://api.example.com/"'
_PVC = 'namespace="observability",persistentvolumeclaim="prometheus-db"'
_VOLUME_BYTES = 100_000_000_000
_KONG_PER_MINUTE = 100_000


def _cpu(ratio: float, _: int) -> dict[str, str]:
    return {
        f'container_cpu_usage_seconds_total{{{_SUPA},pod="rest-1",container="rest"}}': f"0+{60 * ratio}x{SAMPLES}",
        f'kube_pod_container_resource_limits{{{_SUPA},pod="rest-1",container="rest",resource="cpu"}}': f"1x{SAMPLES}",
    }


def _pool(ratio: float, _: int) -> dict[str, str]:
    size = 100
    return {
        'pgbouncer_pools_server_active_connections{database="postgres",user="authenticator",pod="pgbouncer-0"}': f"{ratio * size}x{SAMPLES}",
        'pgbouncer_databases_pool_size{name="postgres",database="postgres",host="db.internal",pod="pgbouncer-0"}': f"{size}x{SAMPLES}",
    }


def _rds(ratio: float, _: int) -> dict[str, str]:
    limit = 1000
    # Two states, so the alert must sum connections per job rather than read one series.
    return {
        'pg_stat_activity_count{job="postgres-exporter",datname="postgres",state="active"}': f"{ratio * limit / 2}x{SAMPLES}",
        'pg_stat_activity_count{job="postgres-exporter",datname="postgres",state="idle"}': f"{ratio * limit / 2}x{SAMPLES}",
        'pg_settings_max_connections{job="postgres-exporter"}': f"{limit}x{SAMPLES}",
    }


def _kong_errors(ratio: float, _: int) -> dict[str, str]:
    errors = ratio * _KONG_PER_MINUTE
    return {
        'kong_http_requests_total{service="rest-v1-write",code="200"}': f"0+{_KONG_PER_MINUTE - errors}x{SAMPLES}",
        'kong_http_requests_total{service="rest-v1-write",code="500"}': f"0+{errors}x{SAMPLES}",
    }


def _kong_slow(ratio: float, _: int) -> dict[str, str]:
    return {
        f'kong_request_latency_ms_bucket{{service="auth-v1",le="{LATENCY_THRESHOLD_MS}"}}': f"0+{(1 - ratio) * _KONG_PER_MINUTE}x{SAMPLES}",
        'kong_request_latency_ms_count{service="auth-v1"}': f"0+{_KONG_PER_MINUTE}x{SAMPLES}",
    }


def _cert(days_left: float, minute: int) -> dict[str, str]:
    # time() is the evaluation timestamp, which starts at 0 in promtool.
    return _flat(f"probe_ssl_earliest_cert_expiry{{{_API_HOST}}}", minute * 60 + days_left * _DAY)


def _volume(free_ratio: float, full_in_days: float, minute: int) -> dict[str, str]:
    """A volume draining linearly: `free_ratio` free at `minute`, empty `full_in_days` later.
    Both quantities only shrink as it drains, so once past their thresholds they stay past."""
    free = free_ratio * _VOLUME_BYTES
    per_minute = free / (full_in_days * 24 * 60)
    return {
        f"kubelet_volume_stats_available_bytes{{{_PVC}}}": f"{free + per_minute * minute}-{per_minute}x{SAMPLES}",
        f"kubelet_volume_stats_capacity_bytes{{{_PVC}}}": f"{_VOLUME_BYTES}x{SAMPLES}",
    }


def _realtime(ratio: float, _: int) -> dict[str, str]:
    limit = 10_000
    return {
        'phoenix_connections_total{job="realtime",pod="realtime-0"}': f"{ratio * limit}x{SAMPLES}",
        'phoenix_connections_max{job="realtime",pod="realtime-0"}': f"{limit}x{SAMPLES}",
    }


def _sync_errors(every: int | None) -> dict[str, str]:
    """One failed sync every `every` minutes from minute 1, or none."""
    values = (
        f"0x{SAMPLES}" if every is None else "0 " + " ".join(f"{n}x{every - 1}" for n in range(1, SAMPLES // every + 2))
    )
    return {'externalsecret_sync_calls_error{namespace="supabase",name="jwt"}': values}


def _burn_threshold(objective: float, window: tuple[str, str, float]) -> float:
    return window[2] * error_budget(objective)


_FULL = VOLUME_FULL_WITHIN_DAYS * (1 - MARGIN)
_LOW = VOLUME_FREE_RATIO * (1 - MARGIN)
_CRASHLOOP = (
    f'kube_pod_container_status_waiting_reason{{{_SUPA},pod="auth-1",container="auth",reason="CrashLoopBackOff"}}'
)
_HPA = f'{_SUPA},horizontalpodautoscaler="rest"'
_UP = f'up{{{_SUPA},job="realtime",instance="10.0.0.1:4000"}}'
_ES_READY = 'externalsecret_status_condition{namespace="supabase",name="jwt",condition="Ready",status="False"}'
_NODE_READY = 'kube_node_status_condition{node="ip-10-0-1-1",condition="Ready",status="true"}'
# Counters start at 0 with the first sample: rate() needs a second sample (minute 1), and
# a rate over [5m] reaches its steady value once the window is full.
_FIRST_RATE = 1
_CPU_WINDOW = 5

CASES: dict[str, list[Case]] = {
    "SupabasePodCrashLooping": [
        _state(
            labels={"namespace": "supabase", "pod": "auth-1", "container": "auth", "reason": "CrashLoopBackOff"},
            bad=_flat(_CRASHLOOP, 1),
            good=_flat(_CRASHLOOP, 0),
        )
    ],
    "SupabaseHighCpu": [
        _threshold(
            "SupabaseHighCpu",
            HIGH_CPU_RATIO,
            _cpu,
            labels={"namespace": "supabase", "pod": "rest-1", "container": "rest"},
            start=_CPU_WINDOW,
        )
    ],
    "SupabaseHpaMaxedOut": [
        _state(
            labels={"namespace": "supabase", "horizontalpodautoscaler": "rest"},
            bad={
                f"kube_horizontalpodautoscaler_status_current_replicas{{{_HPA}}}": f"6x{SAMPLES}",
                f"kube_horizontalpodautoscaler_spec_max_replicas{{{_HPA}}}": f"6x{SAMPLES}",
            },
            good={
                f"kube_horizontalpodautoscaler_status_current_replicas{{{_HPA}}}": f"5x{SAMPLES}",
                f"kube_horizontalpodautoscaler_spec_max_replicas{{{_HPA}}}": f"6x{SAMPLES}",
            },
        )
    ],
    "SupabaseMetricsTargetDown": [
        _state(
            labels={"namespace": "supabase", "job": "realtime", "instance": "10.0.0.1:4000"},
            bad=_flat(_UP, 0),
            good=_flat(_UP, 1),
        )
    ],
    "PgBouncerDown": [
        _state(
            labels={"pod": "pgbouncer-0"},
            bad=_flat('pgbouncer_up{pod="pgbouncer-0"}', 0),
            good=_flat('pgbouncer_up{pod="pgbouncer-0"}', 1),
        )
    ],
    "PgBouncerClientWaitHigh": [
        _threshold(
            "PgBouncerClientWaitHigh",
            PGBOUNCER_CLIENT_WAIT_SECONDS,
            lambda seconds, _: _flat(
                'pgbouncer_pools_client_maxwait_seconds{database="postgres",user="authenticator",pod="pgbouncer-0"}',
                seconds,
            ),
            labels={"database": "postgres", "user": "authenticator"},
        )
    ],
    "PgBouncerPoolSaturated": [
        _threshold(
            "PgBouncerPoolSaturated",
            PGBOUNCER_POOL_RATIO,
            _pool,
            labels={"database": "postgres", "user": "authenticator"},
        )
    ],
    "PostgresUnreachable": [
        _state(
            labels={"job": "postgres-exporter"},
            bad=_flat('pg_up{job="postgres-exporter"}', 0),
            good=_flat('pg_up{job="postgres-exporter"}', 1),
        )
    ],
    "RdsConnectionsNearLimit": [
        _threshold("RdsConnectionsNearLimit", RDS_CONNECTIONS_RATIO, _rds, labels={"job": "postgres-exporter"})
    ],
    "PostgresReplicaLagHigh": [
        _threshold(
            "PostgresReplicaLagHigh",
            REPLICA_LAG_SECONDS,
            lambda seconds, _: _flat('pg_replication_lag_seconds{job="postgres-exporter-replica"}', seconds),
            labels={"job": "postgres-exporter-replica"},
        )
    ],
    "RedisDown": [
        _state(
            labels={"instance": "redis-exporter:9121"},
            bad=_flat('redis_up{instance="redis-exporter:9121"}', 0),
            good=_flat('redis_up{instance="redis-exporter:9121"}', 1),
        )
    ],
    "ExternalSecretNotReady": [
        _state(
            labels={"namespace": "supabase", "name": "jwt", "condition": "Ready", "status": "False"},
            bad=_flat(_ES_READY, 1),
            good=_flat(_ES_READY, 0),
        )
    ],
    # The threshold is "any failure in the 10m window": the sparsest failures that keep every
    # window non-empty fire, none at all stays silent.
    "ExternalSecretSyncErrors": [
        _state(
            labels={"namespace": "supabase", "name": "jwt"},
            bad=_sync_errors(10),
            good=_sync_errors(None),
            start=_FIRST_RATE,
        )
    ],
    "ApiErrorBudgetFastBurn": [
        _threshold(
            "ApiErrorBudgetFastBurn",
            _burn_threshold(AVAILABILITY_OBJECTIVE, FAST_BURN),
            _kong_errors,
            labels={},
            start=_FIRST_RATE,
        )
    ],
    "ApiErrorBudgetSlowBurn": [
        _threshold(
            "ApiErrorBudgetSlowBurn",
            _burn_threshold(AVAILABILITY_OBJECTIVE, SLOW_BURN),
            _kong_errors,
            labels={},
            start=_FIRST_RATE,
        )
    ],
    "ApiLatencyBudgetBurn": [
        _threshold(
            "ApiLatencyBudgetBurn",
            _burn_threshold(LATENCY_OBJECTIVE, FAST_BURN),
            _kong_slow,
            labels={},
            start=_FIRST_RATE,
        )
    ],
    "ApiErrorBudgetLow": [
        _threshold(
            "ApiErrorBudgetLow",
            ERROR_BUDGET_LOW_FRACTION * error_budget(AVAILABILITY_OBJECTIVE),
            _kong_errors,
            labels={},
            start=_FIRST_RATE,
        )
    ],
    "EndpointProbeFailed": [
        _state(
            labels={"job": "blackbox", "instance": "https://api.example.com/"},
            bad=_flat(f"probe_success{{{_API_HOST}}}", 0),
            good=_flat(f"probe_success{{{_API_HOST}}}", 1),
        )
    ],
    "CertificateExpiringSoon": [
        _threshold(
            "CertificateExpiringSoon",
            CERT_EXPIRY_WARNING_DAYS,
            _cert,
            labels={"job": "blackbox", "instance": "https://api.example.com/"},
            fires_below=True,
        )
    ],
    "CertificateExpiryCritical": [
        _threshold(
            "CertificateExpiryCritical",
            CERT_EXPIRY_CRITICAL_DAYS,
            _cert,
            labels={"job": "blackbox", "instance": "https://api.example.com/"},
            fires_below=True,
        )
    ],
    "NodeNotReady": [
        _state(
            labels={"node": "ip-10-0-1-1", "condition": "Ready", "status": "true"},
            bad=_flat(_NODE_READY, 0),
            good=_flat(_NODE_READY, 1),
        )
    ],
    # Two thresholds, each bracketed while the other is just past.
    "PersistentVolumeFillingUp": [
        _threshold(
            "PersistentVolumeFillingUp",
            VOLUME_FREE_RATIO,
            lambda ratio, minute: _volume(ratio, _FULL, minute),
            labels={"namespace": "observability", "persistentvolumeclaim": "prometheus-db"},
            fires_below=True,
            start=_FIRST_RATE,
        ),
        _threshold(
            "PersistentVolumeFillingUp",
            VOLUME_FULL_WITHIN_DAYS,
            lambda days, minute: _volume(_LOW, days, minute),
            labels={"namespace": "observability", "persistentvolumeclaim": "prometheus-db"},
            fires_below=True,
            start=_FIRST_RATE,
        ),
    ],
    "RealtimeConnectionSaturation": [
        _threshold("RealtimeConnectionSaturation", REALTIME_CONNECTIONS_RATIO, _realtime, labels={"pod": "realtime-0"})
    ],
}


@pytest.fixture(scope="module")
def rule_groups() -> list[dict]:
    rules = [o for o in manifests("prod")["monitoring"] if o["kind"] == "PrometheusRule"]
    assert rules, "the monitoring chart renders no PrometheusRule"
    return [g for r in rules for g in r["spec"]["groups"]]


@pytest.fixture(scope="module")
def rules_file(rule_groups: list[dict], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rules") / "rules.yaml"
    path.write_text(yamlio.dump({"groups": rule_groups}, sort_keys=False))
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


def test_every_alert_is_bracketed(rule_groups: list[dict]) -> None:
    assert set(CASES) == set(_alerts(rule_groups))


def _render(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{\s*\$labels\.(\w+)\s*\}\}", lambda m: labels[m.group(1)], template)


def _test_block(name: str, series: dict[str, str], *checks: tuple[int, list[dict]]) -> dict:
    """One promtool test group: `series` from minute 0, and at each (minute, expected) the alerts firing.

    promtool evaluates a group's rules once per interval from 0 to its last check and compares at each
    check's minute as it passes (cmd/promtool/unittest.go), so two checks of one scenario give the
    verdicts two groups would, for the price of one timeline."""
    return {
        "name": name,
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in series.items()],
        "alert_rule_test": [
            {"eval_time": f"{minute}m", "alertname": name.split(":")[0], "exp_alerts": expected}
            for minute, expected in checks
        ],
    }


def _due(name: str, case: Case) -> int:
    return case.start + _minutes(_RULE[name].for_)


def _run(rules_file: Path, file_name: str, tests: list[dict]) -> subprocess.CompletedProcess[str]:
    test_file = rules_file.parent / file_name
    groups = [g["name"] for g in yamlio.load(rules_file.read_text())["groups"]]
    # Without an order promtool evaluates groups in random order, so an alert on a recording
    # rule would start one evaluation late in some runs and the just-short-of-for case flake.
    body = {"rule_files": [rules_file.name], "evaluation_interval": "1m", "group_eval_order": groups, "tests": tests}
    test_file.write_text(yamlio.dump(body, sort_keys=False))
    return subprocess.run(
        [PROMTOOL, "test", "rules", test_file.name], capture_output=True, text=True, cwd=rules_file.parent
    )


def test_alerts_fire_just_past_their_thresholds_only(rule_groups: list[dict], rules_file: Path) -> None:
    alerts = _alerts(rule_groups)
    tests = []
    for name, cases in CASES.items():
        rule = alerts[name]
        for i, case in enumerate(cases):
            labels = {**case.labels, "severity": rule["labels"]["severity"]}
            annotations = {k: _render(v, labels) for k, v in rule["annotations"].items()}
            due = _due(name, case)
            fired = [{"exp_labels": labels, "exp_annotations": annotations}]
            # Silent one evaluation before `for:` has elapsed, firing once it has: one timeline.
            tests.append(
                _test_block(f"{name}:{i}:just-short-of-for-then-fires", case.past, (due - 1, []), (due, fired))
            )
            tests.append(_test_block(f"{name}:{i}:just-short-of-threshold", case.short, (due, [])))
    out = _run(rules_file, "alerts_test.yaml", tests)
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_wrong_expectation_is_caught(rules_file: Path) -> None:
    """Guards the harness: a firing scenario asserted as silent must make promtool fail."""
    (case,) = CASES["PgBouncerDown"]
    out = _run(
        rules_file, "inverted_test.yaml", [_test_block("PgBouncerDown", case.past, (_due("PgBouncerDown", case), []))]
    )
    assert out.returncode != 0
