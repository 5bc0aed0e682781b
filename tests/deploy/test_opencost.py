"""OpenCost and the kube-state-metrics VPA metrics as helm renders them, wired to the kube-prometheus-stack
that the same environment renders."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import pytest

from config import yamlio
from constructs_lib.addons import kube_prometheus_stack, opencost
from k8s_charts.monitoring.cost_views import DASHBOARDS, VPA_BOUNDS, vpa_metric
from k8s_charts.policies import ALLOWED_REPOSITORIES
from tests.deploy import helm

CASES = helm.environments()


def _one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    [found] = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    return found


@pytest.mark.parametrize("case", CASES, ids="-".join)
def test_opencost_queries_the_environments_prometheus(case: tuple[str, str]) -> None:
    rendered = helm.render_environment(*case)
    [container] = _one(rendered[opencost.NAME], "Deployment")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    endpoint = urlparse(env["PROMETHEUS_SERVER_ENDPOINT"])
    service, namespace = endpoint.hostname.split(".")[:2]
    # The Service kube-prometheus-stack renders for its Prometheus, on the port OpenCost dials.
    prometheus = _one(rendered[kube_prometheus_stack.NAME], "Service", service)
    assert prometheus["metadata"]["namespace"] == namespace == kube_prometheus_stack.NAMESPACE
    assert endpoint.port in {p["port"] for p in prometheus["spec"]["ports"]}
    assert (
        env["CLUSTER_ID"]
        == next(a for a in helm.addons(*case) if a.name == opencost.NAME).values["opencost"]["exporter"][
            "defaultClusterId"
        ]
    )
    # The exporter only: no web UI, no MCP server listening.
    assert env["MCP_SERVER_ENABLED"] == "false"
    assert [p["name"] for p in container["ports"]] == ["http"]


@pytest.mark.parametrize("case", CASES, ids="-".join)
def test_prometheus_scrapes_opencost(case: tuple[str, str]) -> None:
    """The chart's ServiceMonitor is selected by the rendered Prometheus and names a port of the Service."""
    rendered = helm.render_environment(*case)
    monitor = _one(rendered[opencost.NAME], "ServiceMonitor")
    selector = _one(rendered[kube_prometheus_stack.NAME], "Prometheus")["spec"]["serviceMonitorSelector"]
    assert selector["matchLabels"].items() <= monitor["metadata"]["labels"].items()
    service = _one(rendered[opencost.NAME], "Service")
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()


def test_opencost_needs_no_aws_role_and_follows_prometheus() -> None:
    addon = next(a for a in helm.addons(*CASES[0]) if a.name == opencost.NAME)
    # On-Demand prices come from the public, unauthenticated price list: no Pod Identity role.
    assert addon.service_account is None and not addon.statements
    assert addon.depends_on == (kube_prometheus_stack.NAME,)
    [image] = {
        c["image"]
        for c in _one(helm.render(addon, kube_version="1.35"), "Deployment")["spec"]["template"]["spec"]["containers"]
    }
    assert image.split(":")[0] in ALLOWED_REPOSITORIES and "@sha256:" in image


@pytest.mark.parametrize("case", CASES[:1], ids="-".join)
def test_kube_state_metrics_exports_the_vpa_metrics_the_dashboard_reads(case: tuple[str, str]) -> None:
    """The rendered kube-state-metrics reads the custom-resource-state config, may list/watch VPAs,
    and the metric names that config yields (prefix_name) are the ones the Right-sizing dashboard queries."""
    objects = helm.render_environment(*case)[kube_prometheus_stack.NAME]
    [config_map] = [o for o in objects if o["kind"] == "ConfigMap" and "config.yaml" in o.get("data", {})]
    config = yamlio.load(config_map["data"]["config.yaml"])
    [resource] = config["spec"]["resources"]
    names = {f"{resource['metricNamePrefix']}_{m['name']}" for m in resource["metrics"]}
    assert names == {vpa_metric(bound) for bound in VPA_BOUNDS}
    dashboard = " ".join(e for d in DASHBOARDS for e in d.exprs())
    assert vpa_metric("target") in dashboard and vpa_metric("lowerbound") in dashboard
    [deployment] = [
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("kube-state-metrics")
    ]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    mounted = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    flag = next(a for a in container["args"] if a.startswith("--custom-resource-state-config-file="))
    volume = next(
        v
        for v in deployment["spec"]["template"]["spec"]["volumes"]
        if v.get("configMap", {}).get("name") == config_map["metadata"]["name"]
    )
    assert flag.split("=", 1)[1] == f"{mounted[volume['name']]}/config.yaml"
    [role] = [o for o in objects if o["kind"] == "ClusterRole" and o["metadata"]["name"].endswith("kube-state-metrics")]
    assert any(
        "autoscaling.k8s.io" in r["apiGroups"]
        and "verticalpodautoscalers" in r["resources"]
        and {"list", "watch"} <= set(r["verbs"])
        for r in role["rules"]
    )
