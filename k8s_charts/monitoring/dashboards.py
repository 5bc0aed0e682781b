"""Grafana dashboards as code: each is built here and shipped as a ConfigMap that the
kube-prometheus-stack Grafana sidecar loads (label grafana_dashboard: "1")."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from constructs import Construct

from k8s_charts.monitoring.objects import OBSERVABILITY_NAMESPACE, api_object
from k8s_charts.monitoring.rules import AVAILABILITY_OBJECTIVE, LATENCY_OBJECTIVE, LATENCY_THRESHOLD_MS

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@dataclass(frozen=True, kw_only=True)
class Panel:
    title: str
    exprs: tuple[tuple[str, str], ...]  # (PromQL, legend)
    unit: str = "short"
    kind: str = "timeseries"
    width: int = 12


@dataclass(frozen=True, kw_only=True)
class Dashboard:
    uid: str
    title: str
    panels: tuple[Panel, ...]

    def to_json(self) -> dict[str, Any]:
        rendered, x, y = [], 0, 0
        for i, p in enumerate(self.panels, start=1):
            if x + p.width > 24:
                x, y = 0, y + 8
            rendered.append(
                {
                    "id": i,
                    "type": p.kind,
                    "title": p.title,
                    "datasource": DATASOURCE,
                    "gridPos": {"h": 8, "w": p.width, "x": x, "y": y},
                    "fieldConfig": {"defaults": {"unit": p.unit}, "overrides": []},
                    "targets": [
                        {"refId": chr(ord("A") + j), "expr": expr, "legendFormat": legend, "datasource": DATASOURCE}
                        for j, (expr, legend) in enumerate(p.exprs)
                    ],
                }
            )
            x += p.width
        return {
            "uid": self.uid,
            "title": self.title,
            "tags": ["supabase"],
            "timezone": "utc",
            "schemaVersion": 39,
            "version": 1,
            "refresh": "1m",
            "editable": False,
            "time": {"from": "now-6h", "to": "now"},
            "templating": {
                "list": [
                    {
                        "name": "datasource",
                        "type": "datasource",
                        "query": "prometheus",
                        "label": "Data source",
                        "current": {},
                        "hide": 0,
                    }
                ]
            },
            "panels": rendered,
        }

    def exprs(self) -> list[str]:
        return [e for p in self.panels for e, _ in p.exprs]


_ERR = 'code=~"5.."'
_BUDGET = round(1 - AVAILABILITY_OBJECTIVE, 6)
_LAT_BUDGET = round(1 - LATENCY_OBJECTIVE, 6)
# Managed node groups label their nodes eks.amazonaws.com/capacityType (SPOT|ON_DEMAND);
# kube-state-metrics exports it once it is on its metricLabelsAllowlist.
_NODES = (
    'label_replace(label_replace(kube_node_labels, "capacity_type", "$1", '
    '"label_eks_amazonaws_com_capacity_type", "(.+)"), "arch", "$1", "label_kubernetes_io_arch", "(.*)")'
)

DASHBOARDS: tuple[Dashboard, ...] = (
    Dashboard(
        uid="supabase-overview",
        title="Supabase / Overview",
        panels=(
            Panel(
                title="Requests per second by service",
                unit="reqps",
                exprs=(("sum by (service) (rate(kong_http_requests_total[5m]))", "{{service}}"),),
            ),
            Panel(
                title="Responses by status code",
                unit="reqps",
                exprs=(("sum by (code) (rate(kong_http_requests_total[5m]))", "{{code}}"),),
            ),
            Panel(
                title="5xx ratio by service and route",
                unit="percentunit",
                exprs=(
                    (
                        f"sum by (service, route) (rate(kong_http_requests_total{{{_ERR}}}[5m]))"
                        " / sum by (service, route) (rate(kong_http_requests_total[5m]))",
                        "{{service}} {{route}}",
                    ),
                ),
            ),
            Panel(
                title="Latency p50 / p95 / p99 by service",
                unit="ms",
                exprs=tuple(
                    (
                        f"histogram_quantile({q}, sum by (le, service) (rate(kong_request_latency_ms_bucket[5m])))",
                        f"p{int(q * 100)} {{{{service}}}}",
                    )
                    for q in (0.5, 0.95, 0.99)
                ),
            ),
            Panel(
                title="p95 latency by route",
                unit="ms",
                exprs=(
                    (
                        "histogram_quantile(0.95, sum by (le, service, route) (rate(kong_request_latency_ms_bucket[5m])))",
                        "{{service}} {{route}}",
                    ),
                ),
            ),
            Panel(
                title="Upstream vs Kong latency p95",
                unit="ms",
                exprs=(
                    ("histogram_quantile(0.95, sum by (le) (rate(kong_upstream_latency_ms_bucket[5m])))", "upstream"),
                    ("histogram_quantile(0.95, sum by (le) (rate(kong_kong_latency_ms_bucket[5m])))", "kong"),
                ),
            ),
        ),
    ),
    Dashboard(
        uid="supabase-database",
        title="Supabase / Database",
        panels=(
            Panel(
                title="RDS connections vs max_connections",
                exprs=(
                    ("sum by (job) (pg_stat_activity_count)", "{{job}} in use"),
                    ("max by (job) (pg_settings_max_connections)", "{{job}} max"),
                ),
            ),
            Panel(
                title="Connections by state",
                exprs=(('sum by (state) (pg_stat_activity_count{job="postgres-exporter"})', "{{state}}"),),
            ),
            Panel(
                title="PgBouncer clients (active / waiting)",
                exprs=(
                    ("sum by (database) (pgbouncer_pools_client_active_connections)", "{{database}} active"),
                    ("sum by (database) (pgbouncer_pools_client_waiting_connections)", "{{database}} waiting"),
                ),
            ),
            Panel(
                title="PgBouncer pool saturation",
                unit="percentunit",
                exprs=(
                    (
                        "sum by (database, user) (pgbouncer_pools_server_active_connections) / on (database) group_left () "
                        'label_replace(max by (name) (pgbouncer_databases_pool_size), "database", "$1", "name", "(.*)")',
                        "{{database}}/{{user}}",
                    ),
                ),
            ),
            Panel(
                title="PgBouncer longest client wait",
                unit="s",
                exprs=(("max by (database) (pgbouncer_pools_client_maxwait_seconds)", "{{database}}"),),
            ),
            Panel(title="Replica lag", unit="s", exprs=(("max by (job) (pg_replication_lag_seconds)", "{{job}}"),)),
            Panel(
                title="Locks held by mode",
                exprs=(('sum by (mode) (pg_locks_count{job="postgres-exporter"}) > 0', "{{mode}}"),),
            ),
            Panel(
                title="Slowest statements (mean seconds per call)",
                unit="s",
                kind="table",
                width=24,
                exprs=(
                    (
                        "topk(10, sum by (queryid, datname, user) (rate(pg_stat_statements_seconds_total[5m]))"
                        " / sum by (queryid, datname, user) (rate(pg_stat_statements_calls_total[5m])) > 0)",
                        "{{queryid}}",
                    ),
                ),
            ),
            Panel(
                title="Statement time by database",
                unit="s",
                exprs=(("sum by (datname) (rate(pg_stat_statements_seconds_total[5m]))", "{{datname}}"),),
            ),
            Panel(
                title="Redis memory / clients",
                exprs=(("redis_memory_used_bytes", "used bytes"), ("redis_connected_clients", "clients")),
            ),
        ),
    ),
    Dashboard(
        uid="supabase-realtime",
        title="Supabase / Realtime",
        panels=(
            Panel(
                title="Websocket connections", exprs=(("sum(realtime_connections_global_connected)", "connections"),)
            ),
            Panel(title="Connected tenants by pod", exprs=(("sum by (pod) (realtime_tenants_connected)", "{{pod}}"),)),
            Panel(
                title="Channel joins per second",
                unit="ops",
                exprs=(("sum(rate(realtime_channel_global_joins[5m]))", "joins"),),
            ),
            Panel(
                title="Channel events per second",
                unit="ops",
                exprs=(
                    ("sum(rate(realtime_channel_global_events[5m]))", "broadcast"),
                    ("sum(rate(realtime_channel_global_presence_events[5m]))", "presence"),
                    ("sum(rate(realtime_channel_global_db_events[5m]))", "postgres changes"),
                ),
            ),
            Panel(
                title="Connection saturation by pod",
                unit="percentunit",
                exprs=(
                    (
                        'sum by (pod) (phoenix_connections_total{job="realtime"})'
                        ' / sum by (pod) (phoenix_connections_max{job="realtime"})',
                        "{{pod}}",
                    ),
                ),
            ),
            Panel(
                title="Channel errors per second",
                unit="ops",
                exprs=(("sum(rate(realtime_channel_global_error[5m]))", "errors"),),
            ),
        ),
    ),
    Dashboard(
        uid="supabase-sla",
        title="Supabase / SLA",
        panels=(
            Panel(
                title=f"Availability, 30 days (SLO {AVAILABILITY_OBJECTIVE:.1%})",
                unit="percentunit",
                kind="stat",
                width=6,
                exprs=(("1 - slo:kong_request_errors:ratio_rate30d", "availability"),),
            ),
            Panel(
                title="Availability error budget remaining",
                unit="percentunit",
                kind="stat",
                width=6,
                exprs=((f"1 - slo:kong_request_errors:ratio_rate30d / {_BUDGET}", "budget left"),),
            ),
            Panel(
                title=f"Requests under {LATENCY_THRESHOLD_MS}ms, 30 days (SLO {LATENCY_OBJECTIVE:.0%})",
                unit="percentunit",
                kind="stat",
                width=6,
                exprs=(("1 - slo:kong_request_slow:ratio_rate30d", "fast enough"),),
            ),
            Panel(
                title="Latency error budget remaining",
                unit="percentunit",
                kind="stat",
                width=6,
                exprs=((f"1 - slo:kong_request_slow:ratio_rate30d / {_LAT_BUDGET}", "budget left"),),
            ),
            Panel(
                title="Availability burn rate (1h / 6h)",
                width=24,
                exprs=(
                    (f"slo:kong_request_errors:ratio_rate1h / {_BUDGET}", "1h"),
                    (f"slo:kong_request_errors:ratio_rate6h / {_BUDGET}", "6h"),
                ),
            ),
        ),
    ),
    Dashboard(
        uid="supabase-cost",
        title="Supabase / Cost",
        panels=(
            Panel(
                title="Nodes by capacity type and architecture",
                exprs=((f"sum by (capacity_type, arch) ({_NODES})", "{{capacity_type}} {{arch}}"),),
            ),
            Panel(
                title="Node hours, last 24h, by capacity type and architecture",
                kind="table",
                exprs=(
                    (
                        f"sum by (capacity_type, arch) (count_over_time({_NODES}[24h:5m])) / 12",
                        "{{capacity_type}} {{arch}}",
                    ),
                ),
            ),
            Panel(
                title="Requested vs allocatable CPU",
                unit="short",
                exprs=(
                    ('sum(kube_pod_container_resource_requests{resource="cpu"})', "requested"),
                    ('sum(kube_node_status_allocatable{resource="cpu"})', "allocatable"),
                ),
            ),
            Panel(
                title="CPU requested by namespace",
                exprs=(('sum by (namespace) (kube_pod_container_resource_requests{resource="cpu"})', "{{namespace}}"),),
            ),
        ),
    ),
)


def add_dashboards(scope: Construct, dashboards: tuple[Dashboard, ...] = DASHBOARDS) -> None:
    for d in dashboards:
        api_object(
            scope,
            f"dashboard-{d.uid}",
            api_version="v1",
            kind="ConfigMap",
            name=f"dashboard-{d.uid}",
            namespace=OBSERVABILITY_NAMESPACE,
            labels={"grafana_dashboard": "1"},
            body={"data": {f"{d.uid}.json": json.dumps(d.to_json(), indent=1, sort_keys=True)}},
        )
