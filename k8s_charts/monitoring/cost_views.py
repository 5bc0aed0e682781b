"""Chart `cost`: what each namespace costs (OpenCost) and what each workload should request (VPA).

- `Supabase / Cost by namespace` charts OpenCost's allocation metrics (constructs_lib/addons/
  opencost.py), which Prometheus scrapes back from OpenCost with their own namespace labels.
- `Supabase / Right-sizing` compares each container's requests with the VPA recommender's
  target. kube-state-metrics stopped exporting VPA objects in v2.9; `vpa_state_metrics_values`
  is the custom-resource-state configuration (kube-state-metrics docs, "VerticalPodAutoscaler")
  that kube-prometheus-stack passes to it, and the dashboard reads the names that config defines.
- One `updateMode: "Off"` VerticalPodAutoscaler per long-running workload the project's charts
  render (built after them, from the same app), so the recommender learns every workload and
  nothing is ever evicted or resized (the VPA add-on runs the recommender only).
"""

from __future__ import annotations

from typing import Any

import cdk8s

from config.model import OrgConfig
from k8s_charts.aws_values import AwsValues
from k8s_charts.monitoring.dashboards import Dashboard, Panel, add_dashboards
from k8s_charts.monitoring.objects import api_object

VPA_API_VERSION = "autoscaling.k8s.io/v1"
HOURS_PER_MONTH = 730
# Workload kinds with a scale subresource whose pods the recommender can find.
VPA_TARGET_KINDS = {"Deployment": "apps/v1", "StatefulSet": "apps/v1", "Rollout": "argoproj.io/v1alpha1"}

# kube-state-metrics custom-resource-state: metric `<prefix>_<name>`, one series per container
# recommendation and resource, labelled like the removed built-in VPA metrics.
KSM_VPA_PREFIX = "kube"
VPA_BOUNDS = {"target": "target", "lowerbound": "lowerBound", "upperbound": "upperBound"}
_VPA_METRIC = "verticalpodautoscaler_status_recommendation_containerrecommendations_{bound}"
_UNITS = {"cpu": "core", "memory": "byte"}


def vpa_metric(bound: str) -> str:
    return f"{KSM_VPA_PREFIX}_{_VPA_METRIC.format(bound=bound)}"


def vpa_state_metrics_values() -> dict[str, Any]:
    """kube-state-metrics values (kube-prometheus-stack's `kube-state-metrics` key) for VPA recommendations."""
    metrics = [
        {
            "name": _VPA_METRIC.format(bound=bound),
            # One help text per name: both resources are one metric family.
            "help": f"VerticalPodAutoscaler recommendation ({field}) for the container, by resource.",
            "commonLabels": {"resource": resource, "unit": unit},
            "each": {
                "type": "Gauge",
                "gauge": {
                    "path": ["status", "recommendation", "containerRecommendations"],
                    "labelsFromPath": {"container": ["containerName"]},
                    "valueFrom": [field, resource],
                },
            },
        }
        for bound, field in VPA_BOUNDS.items()
        for resource, unit in _UNITS.items()
    ]
    group, _, version = VPA_API_VERSION.partition("/")
    return {
        "customResourceState": {
            "enabled": True,
            "config": {
                "kind": "CustomResourceStateMetrics",
                "spec": {
                    "resources": [
                        {
                            "groupVersionKind": {"group": group, "kind": "VerticalPodAutoscaler", "version": version},
                            "labelsFromPath": {
                                "namespace": ["metadata", "namespace"],
                                "verticalpodautoscaler": ["metadata", "name"],
                                "target_api_version": ["spec", "targetRef", "apiVersion"],
                                "target_kind": ["spec", "targetRef", "kind"],
                                "target_name": ["spec", "targetRef", "name"],
                            },
                            "metricNamePrefix": KSM_VPA_PREFIX,
                            "metrics": metrics,
                        }
                    ]
                },
            },
        },
        "rbac": {
            "extraRules": [{"apiGroups": [group], "resources": ["verticalpodautoscalers"], "verbs": ["list", "watch"]}]
        },
    }


# OpenCost's hourly allocation cost per container: CPU cores and memory GiB allocated (the
# larger of request and usage) at their node's price, and claimed volume GiB at its volume's price.
_GIB = 1024**3
_CPU = "container_cpu_allocation * on (node) group_left () node_cpu_hourly_cost"
_RAM = f"container_memory_allocation_bytes / {_GIB} * on (node) group_left () node_ram_hourly_cost"
_PV = f"pod_pvc_allocation / {_GIB} * on (persistentvolume) group_left () pv_hourly_cost"


def _by_namespace(expr: str) -> str:
    return f"sum by (namespace) ({expr})"


# Every namespace with containers has CPU and memory cost; only some claim volumes.
NAMESPACE_HOURLY = (
    f"{_by_namespace(_CPU)} + {_by_namespace(_RAM)} + ({_by_namespace(_PV)} or 0 * {_by_namespace(_CPU)})"
)


def _requests(resource: str) -> str:
    return f'max by (namespace, container) (kube_pod_container_resource_requests{{resource="{resource}"}})'


def _recommended(resource: str, bound: str = "target") -> str:
    return f'max by (namespace, container) ({vpa_metric(bound)}{{resource="{resource}"}})'


DASHBOARDS: tuple[Dashboard, ...] = (
    Dashboard(
        uid="supabase-namespace-cost",
        title="Supabase / Cost by namespace",
        panels=(
            Panel(
                title="Monthly cost rate by namespace (OpenCost)",
                unit="currencyUSD",
                exprs=((f"({NAMESPACE_HOURLY}) * {HOURS_PER_MONTH}", "{{namespace}}"),),
            ),
            Panel(
                title="Cost by namespace, last 24h",
                unit="currencyUSD",
                kind="table",
                exprs=((f"avg_over_time(({NAMESPACE_HOURLY})[24h:5m]) * 24", "{{namespace}}"),),
            ),
            Panel(
                title="CPU and memory cost by namespace (per hour)",
                unit="currencyUSD",
                exprs=(
                    (_by_namespace(_CPU), "{{namespace}} CPU"),
                    (_by_namespace(_RAM), "{{namespace}} memory"),
                ),
            ),
            Panel(
                title="Node cost per hour by instance type",
                unit="currencyUSD",
                exprs=(("sum by (instance_type) (node_total_hourly_cost)", "{{instance_type}}"),),
            ),
            Panel(
                title="Idle node cost per hour (nodes minus what containers are allocated)",
                unit="currencyUSD",
                width=24,
                exprs=((f"sum(node_total_hourly_cost) - sum({_CPU}) - sum({_RAM})", "idle"),),
            ),
        ),
    ),
    Dashboard(
        uid="supabase-rightsizing",
        title="Supabase / Right-sizing (VPA recommendations)",
        panels=(
            Panel(
                title="CPU: requested vs VPA target (cores)",
                kind="table",
                exprs=(
                    (_requests("cpu"), "{{namespace}}/{{container}} requested"),
                    (_recommended("cpu"), "{{namespace}}/{{container}} target"),
                ),
            ),
            Panel(
                title="Memory: requested vs VPA target",
                unit="bytes",
                kind="table",
                exprs=(
                    (_requests("memory"), "{{namespace}}/{{container}} requested"),
                    (_recommended("memory"), "{{namespace}}/{{container}} target"),
                ),
            ),
            Panel(
                title="CPU over-request (requested / VPA target; above 1 asks for more than it uses)",
                exprs=((f"{_requests('cpu')} / {_recommended('cpu')}", "{{namespace}}/{{container}}"),),
            ),
            Panel(
                title="Memory over-request (requested / VPA target)",
                exprs=((f"{_requests('memory')} / {_recommended('memory')}", "{{namespace}}/{{container}}"),),
            ),
            Panel(
                title="Containers requesting less memory than the VPA lower bound (OOM risk)",
                unit="bytes",
                kind="table",
                width=24,
                exprs=(
                    (
                        f"{_recommended('memory', 'lowerbound')} - {_requests('memory')} > 0",
                        "{{namespace}}/{{container}}",
                    ),
                ),
            ),
        ),
    ),
)


def vpa_targets(app: cdk8s.App) -> list[tuple[str, str, str, str]]:
    """(namespace, api version, kind, name) of every long-running workload the app's charts render.

    A Deployment a Rollout takes over through `workloadRef` is left out: Argo scales it to zero
    and the Rollout's pods are the ones to learn from.
    """
    objects = [o for chart in app.charts for o in chart.api_objects]
    taken_over = set()
    for o in objects:
        if o.kind == "Rollout":
            ref = o.to_json()["spec"].get("workloadRef")
            if ref:
                taken_over.add((o.metadata.namespace, ref["name"]))
    return sorted(
        (o.metadata.namespace, o.api_version, o.kind, o.name)
        for o in objects
        if VPA_TARGET_KINDS.get(o.kind) == o.api_version
        and not (o.kind == "Deployment" and (o.metadata.namespace, o.name) in taken_over)
    )


class CostChart(cdk8s.Chart):
    def __init__(self, scope: cdk8s.App, id_: str, *, targets: list[tuple[str, str, str, str]]) -> None:
        super().__init__(scope, id_, disable_resource_name_hashes=True)
        for namespace, api_version, kind, name in targets:
            api_object(
                self,
                f"vpa-{namespace}-{kind}-{name}",
                api_version=VPA_API_VERSION,
                kind="VerticalPodAutoscaler",
                name=f"{name}-{kind.lower()}",
                namespace=namespace,
                body={
                    "spec": {
                        "targetRef": {"apiVersion": api_version, "kind": kind, "name": name},
                        # Recommend only: the updater and admission controller are not installed.
                        "updatePolicy": {"updateMode": "Off"},
                    }
                },
            )
        add_dashboards(self, DASHBOARDS)


def cost_charts(app: cdk8s.App, cfg: OrgConfig, env_name: str, values: AwsValues) -> list[cdk8s.Chart]:
    """The CHART_FACTORIES entry; it runs last, so every other chart is already in `app`."""
    del cfg, env_name, values
    return [CostChart(app, "cost", targets=vpa_targets(app))]
