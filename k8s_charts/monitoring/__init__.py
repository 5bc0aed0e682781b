"""Project objects for the kube-prometheus-stack, External Secrets, blackbox and ADOT.

`monitoring_charts` is the CHART_FACTORIES entry: the observability chart plus the
Argo Rollouts chart whose analysis reads the same Kong metrics.
"""

from __future__ import annotations

import cdk8s

from config.model import OrgConfig
from k8s_charts.aws_values import AwsValues
from k8s_charts.monitoring.alerting import add_alertmanager_config
from k8s_charts.monitoring.dashboards import add_dashboards
from k8s_charts.monitoring.rules import add_prometheus_rules
from k8s_charts.monitoring.scrape import (
    add_certificate_probe,
    add_controller_pod_monitors,
    add_postgres_exporters,
    add_redis_exporter,
    add_supabase_service_monitors,
)
from k8s_charts.monitoring.tracing import add_otel_collector
from k8s_charts.rollouts.chart import RolloutsChart


class MonitoringChart(cdk8s.Chart):
    def __init__(self, scope: cdk8s.App, id_: str, *, cfg: OrgConfig, env_name: str, values: AwsValues) -> None:
        super().__init__(scope, id_, disable_resource_name_hashes=True)
        env = cfg.environments[env_name]
        add_supabase_service_monitors(self, mesh=env.features.istio)
        add_controller_pod_monitors(self)
        add_postgres_exporters(self, values, read_replicas=env.database.read_replicas)
        add_redis_exporter(self, values)
        add_certificate_probe(self, values)
        add_prometheus_rules(self)
        add_alertmanager_config(self, values, env.observability)
        add_dashboards(self)
        add_otel_collector(self, values, sample_ratio=env.observability.tracing_sample_ratio)


def monitoring_charts(app: cdk8s.App, cfg: OrgConfig, env_name: str, values: AwsValues) -> list[cdk8s.Chart]:
    return [
        MonitoringChart(app, "monitoring", cfg=cfg, env_name=env_name, values=values),
        RolloutsChart(app, "rollouts"),
    ]
