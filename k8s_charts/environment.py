"""Every chart an environment applies, built from one place.

The cluster stack and the tests both call `build_charts`, so what the tests validate is
what the cluster receives. Each entry of CHART_FACTORIES adds its charts to the app.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cdk8s

from config.model import OrgConfig
from k8s_charts.aws_values import AwsValues, from_config
from k8s_charts.base import base_charts
from k8s_charts.monitoring import monitoring_charts
from k8s_charts.monitoring.cost_views import cost_charts
from k8s_charts.policies import security_charts
from k8s_charts.supabase.chart import supabase_charts

ChartFactory = Callable[[cdk8s.App, OrgConfig, str, AwsValues], list[cdk8s.Chart]]

# cost_charts comes last: it reads the workloads every other chart renders.
CHART_FACTORIES: list[ChartFactory] = [base_charts, monitoring_charts, supabase_charts, security_charts, cost_charts]


def build_charts(app: cdk8s.App, *, cfg: OrgConfig, env_name: str, values: AwsValues) -> list[cdk8s.Chart]:
    return [chart for factory in CHART_FACTORIES for chart in factory(app, cfg, env_name, values)]


def render_manifests(cfg: OrgConfig, env_name: str) -> dict[str, list[dict[str, Any]]]:
    """Chart id -> its Kubernetes objects, rendered from config alone (no AWS)."""
    app = cdk8s.App()
    charts = build_charts(app, cfg=cfg, env_name=env_name, values=from_config(cfg, env_name))
    return {chart.node.id: chart.to_json() for chart in charts}
