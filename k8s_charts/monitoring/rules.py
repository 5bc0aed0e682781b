"""The platform's alerts and the recording rules its SLOs are built on.

Every alert carries severity (critical|warning|info), summary, description and a
runbook_url pointing at its section of docs/runbooks.md. Thresholds live here, next to
the expression, so the README table and the runbooks cite one source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from constructs import Construct

from k8s_charts.monitoring.objects import OBSERVABILITY_NAMESPACE, RELEASE_LABELS, api_object

Severity = Literal["critical", "warning", "info"]
RUNBOOK_BASE = "https://github.com/example-org/supabase-on-aws/blob/main/docs/runbooks.md"

# API SLOs, measured at Kong (every API call crosses it).
AVAILABILITY_OBJECTIVE = 0.999
LATENCY_OBJECTIVE = 0.99
LATENCY_THRESHOLD_MS = 1000  # a Kong histogram bucket boundary, so the ratio is exact
SLO_WINDOWS = ("5m", "30m", "1h", "6h", "3d", "30d")

# Google SRE workbook, multiwindow multi-burn-rate: (long, short, burn rate).
FAST_BURN = ("1h", "5m", 14.4)  # 2% of a 30-day budget in one hour
SLOW_BURN = ("6h", "30m", 6.0)  # 5% of the budget in six hours
ERROR_BUDGET_LOW_FRACTION = 0.75  # share of the 30-day budget spent before risky changes pause

HIGH_CPU_RATIO = 0.9
PGBOUNCER_CLIENT_WAIT_SECONDS = 1
PGBOUNCER_POOL_RATIO = 0.9
RDS_CONNECTIONS_RATIO = 0.8
REPLICA_LAG_SECONDS = 30
CERT_EXPIRY_WARNING_DAYS = 21
CERT_EXPIRY_CRITICAL_DAYS = 7
VOLUME_FREE_RATIO = 0.15
VOLUME_FULL_WITHIN_DAYS = 4
REALTIME_CONNECTIONS_RATIO = 0.8


@dataclass(frozen=True, kw_only=True)
class Alert:
    name: str
    severity: Severity
    expr: str
    for_: str
    summary: str
    description: str

    @property
    def runbook_url(self) -> str:
        return f"{RUNBOOK_BASE}#{self.name.lower()}"

    def rule(self) -> dict[str, Any]:
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.for_,
            "labels": {"severity": self.severity},
            "annotations": {"summary": self.summary, "description": self.description, "runbook_url": self.runbook_url},
        }


def _recording_rules() -> list[dict[str, str]]:
    rules = []
    for w in SLO_WINDOWS:
        rules.append(
            {
                "record": f"slo:kong_request_errors:ratio_rate{w}",
                "expr": (
                    f'sum(rate(kong_http_requests_total{{code=~"5.."}}[{w}]))'
                    f" / sum(rate(kong_http_requests_total[{w}]))"
                ),
            }
        )
        rules.append(
            {
                "record": f"slo:kong_request_slow:ratio_rate{w}",
                "expr": (
                    f'1 - sum(rate(kong_request_latency_ms_bucket{{le="{LATENCY_THRESHOLD_MS}"}}[{w}]))'
                    f" / sum(rate(kong_request_latency_ms_count[{w}]))"
                ),
            }
        )
    return rules


def error_budget(objective: float) -> float:
    return round(1 - objective, 6)


def _burn(kind: str, objective: float, window: tuple[str, str, float]) -> str:
    long_w, short_w, rate = window
    budget = error_budget(objective)
    return (
        f"slo:kong_request_{kind}:ratio_rate{long_w} > ({rate} * {budget})"
        f" and slo:kong_request_{kind}:ratio_rate{short_w} > ({rate} * {budget})"
    )


_NS = 'namespace="supabase"'

ALERTS: tuple[Alert, ...] = (
    Alert(
        name="SupabasePodCrashLooping",
        severity="critical",
        for_="10m",
        expr=f'max_over_time(kube_pod_container_status_waiting_reason{{{_NS},reason="CrashLoopBackOff"}}[5m]) >= 1',
        summary="{{ $labels.pod }} is crash-looping",
        description="Container {{ $labels.container }} of {{ $labels.namespace }}/{{ $labels.pod }} has been in CrashLoopBackOff for 10 minutes.",
    ),
    Alert(
        name="SupabaseHighCpu",
        severity="warning",
        for_="15m",
        expr=(
            f'sum by (namespace, pod, container) (rate(container_cpu_usage_seconds_total{{{_NS},container!=""}}[5m]))'
            f' / sum by (namespace, pod, container) (kube_pod_container_resource_limits{{{_NS},resource="cpu"}})'
            f" > {HIGH_CPU_RATIO}"
        ),
        summary="{{ $labels.pod }} uses over 90% of its CPU limit",
        description="Container {{ $labels.container }} of {{ $labels.namespace }}/{{ $labels.pod }} has run above 90% of its CPU limit for 15 minutes and is being throttled.",
    ),
    Alert(
        name="SupabaseHpaMaxedOut",
        severity="warning",
        for_="15m",
        expr=(
            f"kube_horizontalpodautoscaler_status_current_replicas{{{_NS}}}"
            f" >= on (namespace, horizontalpodautoscaler) kube_horizontalpodautoscaler_spec_max_replicas{{{_NS}}}"
        ),
        summary="HPA {{ $labels.horizontalpodautoscaler }} is at its maximum",
        description="{{ $labels.namespace }}/{{ $labels.horizontalpodautoscaler }} has run at its maximum replica count for 15 minutes; it cannot absorb more load.",
    ),
    Alert(
        name="SupabaseMetricsTargetDown",
        severity="warning",
        for_="10m",
        expr=f"up{{{_NS}}} == 0",
        summary="Prometheus cannot scrape {{ $labels.job }}",
        description="Target {{ $labels.instance }} of job {{ $labels.job }} in {{ $labels.namespace }} has been unreachable for 10 minutes.",
    ),
    Alert(
        name="PgBouncerDown",
        severity="critical",
        for_="2m",
        expr="pgbouncer_up == 0",
        summary="PgBouncer {{ $labels.pod }} is not answering",
        description="The PgBouncer exporter on {{ $labels.pod }} cannot query PgBouncer's admin console; clients on that pod cannot reach the database.",
    ),
    Alert(
        name="PgBouncerClientWaitHigh",
        severity="warning",
        for_="5m",
        expr=f"max by (database, user) (pgbouncer_pools_client_maxwait_seconds) > {PGBOUNCER_CLIENT_WAIT_SECONDS}",
        summary="Clients wait over 1s for a server connection ({{ $labels.database }})",
        description="The oldest waiting client of pool {{ $labels.database }}/{{ $labels.user }} has waited more than a second for 5 minutes: the pool is too small or queries are slow.",
    ),
    Alert(
        name="PgBouncerPoolSaturated",
        severity="warning",
        for_="10m",
        expr=(
            "sum by (database, user) (pgbouncer_pools_server_active_connections)"
            ' / on (database) group_left () label_replace(max by (name) (pgbouncer_databases_pool_size), "database", "$1", "name", "(.*)")'
            f" > {PGBOUNCER_POOL_RATIO}"
        ),
        summary="PgBouncer pool {{ $labels.database }} is over 90% used",
        description="Pool {{ $labels.database }}/{{ $labels.user }} has used more than 90% of its server connections for 10 minutes.",
    ),
    Alert(
        name="PostgresUnreachable",
        severity="critical",
        for_="5m",
        expr="pg_up == 0",
        summary="{{ $labels.job }} cannot connect to PostgreSQL",
        description="The PostgreSQL exporter {{ $labels.job }} has failed to connect to RDS for 5 minutes.",
    ),
    Alert(
        name="RdsConnectionsNearLimit",
        severity="warning",
        for_="10m",
        expr=(
            "sum by (job) (pg_stat_activity_count) / on (job) max by (job) (pg_settings_max_connections)"
            f" > {RDS_CONNECTIONS_RATIO}"
        ),
        summary="RDS connections above 80% of max_connections ({{ $labels.job }})",
        description="PostgreSQL behind {{ $labels.job }} has used more than 80% of max_connections for 10 minutes; new connections will soon be refused.",
    ),
    Alert(
        name="PostgresReplicaLagHigh",
        severity="warning",
        for_="5m",
        expr=f"pg_replication_lag_seconds > {REPLICA_LAG_SECONDS}",
        summary="Read replica lags {{ $labels.job }} by over 30s",
        description="The read replica behind {{ $labels.job }} has been more than 30 seconds behind the primary for 5 minutes; rest-ro serves stale data.",
    ),
    Alert(
        name="RedisDown",
        severity="critical",
        for_="5m",
        expr="redis_up == 0",
        summary="ElastiCache Redis is unreachable",
        description="redis_exporter has failed to connect to ElastiCache ({{ $labels.instance }}) for 5 minutes.",
    ),
    Alert(
        name="ExternalSecretNotReady",
        severity="warning",
        for_="10m",
        expr='externalsecret_status_condition{condition="Ready",status="False"} == 1',
        summary="ExternalSecret {{ $labels.namespace }}/{{ $labels.name }} is not synced",
        description="ExternalSecret {{ $labels.namespace }}/{{ $labels.name }} has reported Ready=False for 10 minutes; its Secret keeps stale or no data.",
    ),
    Alert(
        name="ExternalSecretSyncErrors",
        severity="warning",
        for_="15m",
        expr="sum by (namespace, name) (increase(externalsecret_sync_calls_error[10m])) > 0",
        summary="ExternalSecret {{ $labels.namespace }}/{{ $labels.name }} keeps failing to sync",
        description="Syncs of {{ $labels.namespace }}/{{ $labels.name }} from Secrets Manager have failed continuously for 15 minutes.",
    ),
    Alert(
        name="ApiErrorBudgetFastBurn",
        severity="critical",
        for_="2m",
        expr=_burn("errors", AVAILABILITY_OBJECTIVE, FAST_BURN),
        summary="API errors burn the 99.9% availability budget 14x too fast",
        description="Over both the last hour and 5 minutes the 5xx ratio at Kong exceeded 14.4 x 0.1%: at this rate the 30-day error budget is gone in about two days.",
    ),
    Alert(
        name="ApiErrorBudgetSlowBurn",
        severity="warning",
        for_="15m",
        expr=_burn("errors", AVAILABILITY_OBJECTIVE, SLOW_BURN),
        summary="API errors burn the 99.9% availability budget 6x too fast",
        description="Over both the last 6 hours and 30 minutes the 5xx ratio at Kong exceeded 6 x 0.1%: at this rate the 30-day error budget is gone in five days.",
    ),
    Alert(
        name="ApiLatencyBudgetBurn",
        severity="warning",
        for_="5m",
        expr=_burn("slow", LATENCY_OBJECTIVE, FAST_BURN),
        summary=f"Too many API requests slower than {LATENCY_THRESHOLD_MS}ms",
        description=f"Over both the last hour and 5 minutes more than 14.4 x 1% of requests took longer than {LATENCY_THRESHOLD_MS}ms at Kong (SLO: 99% under {LATENCY_THRESHOLD_MS}ms).",
    ),
    Alert(
        name="ApiErrorBudgetLow",
        severity="info",
        for_="1h",
        expr=f"slo:kong_request_errors:ratio_rate30d > ({ERROR_BUDGET_LOW_FRACTION} * {error_budget(AVAILABILITY_OBJECTIVE)})",
        summary="Less than 25% of the 30-day API error budget is left",
        description="Over the last 30 days errors used more than 75% of the 99.9% availability budget; hold risky changes.",
    ),
    Alert(
        name="EndpointProbeFailed",
        severity="warning",
        for_="5m",
        expr='probe_success{job="blackbox"} == 0',
        summary="{{ $labels.instance }} fails its external probe",
        description="The blackbox exporter has failed to fetch {{ $labels.instance }} over HTTPS for 5 minutes.",
    ),
    Alert(
        name="CertificateExpiringSoon",
        severity="warning",
        for_="1h",
        expr=f"(probe_ssl_earliest_cert_expiry - time()) / 86400 < {CERT_EXPIRY_WARNING_DAYS}",
        summary="TLS certificate of {{ $labels.instance }} expires within 21 days",
        description="ACM normally renews 60 days ahead; a certificate this close to expiry means renewal (DNS validation) is failing.",
    ),
    Alert(
        name="CertificateExpiryCritical",
        severity="critical",
        for_="10m",
        expr=f"(probe_ssl_earliest_cert_expiry - time()) / 86400 < {CERT_EXPIRY_CRITICAL_DAYS}",
        summary="TLS certificate of {{ $labels.instance }} expires within 7 days",
        description="Clients will reject {{ $labels.instance }} within a week unless the certificate is renewed or replaced.",
    ),
    Alert(
        name="NodeNotReady",
        severity="warning",
        for_="10m",
        expr='kube_node_status_condition{condition="Ready",status="true"} == 0',
        summary="Node {{ $labels.node }} is not Ready",
        description="Node {{ $labels.node }} has not been Ready for 10 minutes; its pods are being evicted or are unreachable.",
    ),
    Alert(
        name="PersistentVolumeFillingUp",
        severity="warning",
        for_="1h",
        expr=(
            f"kubelet_volume_stats_available_bytes / kubelet_volume_stats_capacity_bytes < {VOLUME_FREE_RATIO}"
            f" and predict_linear(kubelet_volume_stats_available_bytes[6h], {VOLUME_FULL_WITHIN_DAYS} * 24 * 3600) < 0"
        ),
        summary="Volume {{ $labels.persistentvolumeclaim }} fills up within 4 days",
        description="PVC {{ $labels.namespace }}/{{ $labels.persistentvolumeclaim }} has less than 15% free and at the 6-hour trend will be full within 4 days.",
    ),
    Alert(
        name="RealtimeConnectionSaturation",
        severity="warning",
        for_="10m",
        expr=(
            'sum by (pod) (phoenix_connections_total{job="realtime"})'
            ' / sum by (pod) (phoenix_connections_max{job="realtime"})'
            f" > {REALTIME_CONNECTIONS_RATIO}"
        ),
        summary="Realtime {{ $labels.pod }} is above 80% of its connection limit",
        description="Realtime pod {{ $labels.pod }} holds more than 80% of its Ranch connection limit; new websocket connections will queue and fail.",
    ),
)


def add_prometheus_rules(scope: Construct) -> None:
    api_object(
        scope,
        "supabase-rules",
        api_version="monitoring.coreos.com/v1",
        kind="PrometheusRule",
        name="supabase",
        namespace=OBSERVABILITY_NAMESPACE,
        labels=RELEASE_LABELS,
        body={
            "spec": {
                "groups": [
                    {"name": "supabase-slo.recording", "interval": "30s", "rules": _recording_rules()},
                    {"name": "supabase.alerts", "rules": [a.rule() for a in ALERTS]},
                ],
            }
        },
    )
