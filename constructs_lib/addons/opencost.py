"""OpenCost: what each namespace, workload and node costs, for the Grafana Cost dashboards.

OpenCost reads usage and requests from the kube-prometheus-stack Prometheus (cAdvisor,
kube-state-metrics, node-exporter) and node prices from AWS's public price list
(https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonEC2/current/<region>/index.json,
https://opencost.io/docs/configuration/aws): an unauthenticated HTTPS endpoint, reached through
the NAT gateways, so the release has no Pod Identity role and calls no AWS API. Spot nodes are
priced at their On-Demand rate (an upper bound) until a Spot data feed bucket is configured,
which would need that role. Prometheus scrapes OpenCost's allocation metrics back
(`node_total_hourly_cost`, `container_cpu_allocation`, ...) through the chart's ServiceMonitor,
and k8s_charts/monitoring/cost_dashboards.py charts them per namespace.

Only the exporter runs: the bundled web UI and the MCP (AI agent) server are off, because the
Grafana dashboard is the view and neither would sit behind the platform's authentication.
"""

from __future__ import annotations

from constructs_lib.addons import kube_prometheus_stack
from constructs_lib.addons.base import (
    SYSTEM_NODE_SELECTOR,
    SYSTEM_NODE_TOLERATION,
    AddonContext,
    HelmAddon,
    restricted_container_security_context,
)
from k8s_charts.monitoring.objects import RELEASE_LABELS

NAME = "opencost"
VERSION = "2.5.17"  # OpenCost v1.120.1
NAMESPACE = kube_prometheus_stack.NAMESPACE
# The Service kube-prometheus-stack creates for its Prometheus (fullnameOverride + "-prometheus").
PROMETHEUS_SERVICE = f"{kube_prometheus_stack.NAME}-prometheus"
PROMETHEUS_PORT = 9090
# The image's non-root user (USER 1001 in opencost's Dockerfile).
RUN_AS_USER = 1001
# OpenCost copies its pricing models to CONFIG_PATH (/var/configs) at start-up; with a read-only
# root file system that directory is an emptyDir.
CONFIG_VOLUME = {"name": "configs", "emptyDir": {}}
CONFIG_MOUNT = {"name": "configs", "mountPath": "/var/configs"}


def build(ctx: AddonContext) -> HelmAddon:
    return HelmAddon(
        name=NAME,
        chart=NAME,
        version=VERSION,
        namespace=NAMESPACE,
        values={
            "fullnameOverride": NAME,
            "podSecurityContext": {
                "runAsNonRoot": True,
                "runAsUser": RUN_AS_USER,
                "runAsGroup": RUN_AS_USER,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "extraVolumes": [CONFIG_VOLUME],
            "opencost": {
                "exporter": {
                    "defaultClusterId": ctx.cluster_name,
                    "resources": {
                        "requests": {"cpu": "50m", "memory": "256Mi"},
                        "limits": {"cpu": "1", "memory": "1Gi"},
                    },
                    "securityContext": restricted_container_security_context(),
                    "extraVolumeMounts": [CONFIG_MOUNT],
                },
                "prometheus": {
                    "internal": {
                        "enabled": True,
                        "serviceName": PROMETHEUS_SERVICE,
                        "namespaceName": NAMESPACE,
                        "port": PROMETHEUS_PORT,
                    }
                },
                "metrics": {"serviceMonitor": {"enabled": True, "additionalLabels": dict(RELEASE_LABELS)}},
                "ui": {"enabled": False},
                "mcp": {"enabled": False},
                "nodeSelector": SYSTEM_NODE_SELECTOR,
                "tolerations": [SYSTEM_NODE_TOLERATION],
            },
        },
        # Its ServiceMonitor is a Prometheus operator kind, served once kube-prometheus-stack is installed.
        depends_on=(kube_prometheus_stack.NAME,),
    )
