"""prometheus-adapter: serves custom.metrics.k8s.io from the kube-prometheus-stack Prometheus.

The Realtime HPA scales on a Pods metric besides CPU; without an adapter registered for
custom.metrics.k8s.io the HPA reports that metric as unavailable and scales on CPU alone.
The adapter serves exactly the rule below (the chart's catch-all default rules are off: they
would publish every series in the cluster and make each relist query Prometheus for all of them).

It calls no AWS API, so it has no Pod Identity role. The APIService the chart registers talks
to the adapter over its self-signed serving certificate (`insecureSkipTLSVerify`, the chart's
default without cert-manager: the cluster runs none); the adapter still authenticates the API
server's proxied requests (front-proxy client CA, read through the chart's auth-reader binding).
"""

from __future__ import annotations

from typing import Any

from constructs_lib.addons import kube_prometheus_stack
from constructs_lib.addons.base import (
    SYSTEM_NODE_SELECTOR,
    SYSTEM_NODE_TOLERATION,
    AddonContext,
    HelmAddon,
    restricted_container_security_context,
)
from k8s_charts.supabase.contract import REALTIME_CONNECTIONS_METRIC

NAME = "prometheus-adapter"
VERSION = "5.3.0"  # prometheus-adapter v0.12.0
NAMESPACE = kube_prometheus_stack.NAMESPACE
# The Service kube-prometheus-stack creates for its Prometheus (fullnameOverride + "-prometheus").
PROMETHEUS_URL = f"http://{kube_prometheus_stack.NAME}-prometheus.{NAMESPACE}.svc"
PROMETHEUS_PORT = 9090
# The pods' labels (the chart's selector labels with release = chart name).
POD_LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/instance": NAME}
LISTEN_PORT = 6443


def custom_rules() -> list[dict[str, Any]]:
    """One Pods-metric rule per custom metric an HPA requests.

    Realtime reports the gauge per node without a tenant label; the scrape adds `namespace`
    and `pod`, which map the series onto the pod the HPA asks about. Summing by pod leaves one
    sample per pod whatever other target labels (service, endpoint, instance) the scrape adds.
    """
    return [
        {
            "seriesQuery": f'{REALTIME_CONNECTIONS_METRIC}{{namespace!="",pod!=""}}',
            "resources": {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}},
            "name": {"matches": f"^{REALTIME_CONNECTIONS_METRIC}$", "as": REALTIME_CONNECTIONS_METRIC},
            "metricsQuery": "sum by (<<.GroupBy>>) (<<.Series>>{<<.LabelMatchers>>})",
        }
    ]


def build(ctx: AddonContext) -> HelmAddon:
    del ctx
    return HelmAddon(
        name=NAME,
        chart=NAME,
        version=VERSION,
        namespace=NAMESPACE,
        values={
            "prometheus": {"url": PROMETHEUS_URL, "port": PROMETHEUS_PORT},
            "listenPort": LISTEN_PORT,
            "rules": {"default": False, "custom": custom_rules()},
            # Two replicas: while no adapter answers, the aggregated API is unavailable and every
            # HPA using a custom metric stops scaling on it.
            "replicas": 2,
            "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1},
            "topologySpreadConstraints": [
                {
                    "maxSkew": 1,
                    "topologyKey": "kubernetes.io/hostname",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": POD_LABELS},
                }
            ],
            "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
            "securityContext": restricted_container_security_context(),
            "nodeSelector": SYSTEM_NODE_SELECTOR,
            "tolerations": [SYSTEM_NODE_TOLERATION],
        },
        depends_on=(kube_prometheus_stack.NAME,),
    )
