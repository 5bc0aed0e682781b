"""kube-prometheus-stack: Prometheus operator CRDs, Prometheus, Alertmanager, Grafana.

The release is named `kube-prometheus-stack`: the monitoring chart's ServiceMonitors,
PodMonitors, Probes and PrometheusRules carry `release: kube-prometheus-stack`
(k8s_charts.monitoring.objects.RELEASE_LABELS), and Prometheus selects exactly that label in
every namespace. Alertmanager takes its whole routing tree from the monitoring chart's
AlertmanagerConfig and publishes to the environment's alerts SNS topic with its own Pod
Identity; nothing else in the release calls AWS.

Grafana's admin password is the one the Grafana chart generates (40 random characters) into
the `kube-prometheus-stack-grafana` Secret on first install and keeps on upgrades (it looks the
Secret up): no password is ever written into these values.

With Istio on, Prometheus runs an istio-proxy that captures no traffic and only writes its
workload certificate to a shared in-memory volume (docs/security.md, "Prometheus must scrape
with its Istio workload certificate"); ServiceMonitors of meshed pods scrape over https with
the `istio-mtls` scrape class, whose tls_config presents that certificate.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import aws_iam as iam

from config import yamlio
from constructs_lib.addons import istio
from constructs_lib.addons.base import (
    SYSTEM_NODE_SELECTOR,
    SYSTEM_NODE_TOLERATION,
    AddonContext,
    HelmAddon,
    restricted_container_security_context,
)
from k8s_charts.base import STORAGE_CLASS
from k8s_charts.monitoring.alerting import ALERTMANAGER_CONFIG_NAME
from k8s_charts.monitoring.cost_views import vpa_state_metrics_values
from k8s_charts.monitoring.objects import OBSERVABILITY_NAMESPACE, RELEASE_LABELS
from k8s_charts.monitoring.scrape import ISTIO_SCRAPE_CLASS

NAME = "kube-prometheus-stack"
VERSION = "80.13.3"
NAMESPACE = OBSERVABILITY_NAMESPACE
SERVICE_ACCOUNT = "kube-prometheus-stack-alertmanager"
# The principal the mesh's AuthorizationPolicies admit to /metrics (k8s_charts.mesh.PROMETHEUS_PRINCIPAL).
PROMETHEUS_SERVICE_ACCOUNT = "kube-prometheus-stack-prometheus"
# Two Prometheus replicas, each with its own volume (the cost estimate, scripts/cost, counts them).
PROMETHEUS_REPLICAS = 2
# Node labels the Cost dashboard groups node hours by (kube_node_labels).
NODE_LABELS_ALLOWLIST = "nodes=[eks.amazonaws.com/capacityType,kubernetes.io/arch]"

ISTIO_CERTS_VOLUME = "istio-certs"
# Where istio-proxy writes the certificates (OUTPUT_CERTS) and where Prometheus reads them.
PROXY_CERTS_DIR = "/etc/istio-output-certs"
PROMETHEUS_CERTS_DIR = "/etc/prom-certs"


def _selectors() -> dict[str, Any]:
    release = {"matchLabels": dict(RELEASE_LABELS)}
    # Namespace selectors stay unset: the chart renders `{}`, i.e. every namespace.
    return {f"{kind}Selector": release for kind in ("serviceMonitor", "podMonitor", "probe", "rule")}


def istio_scrape_values() -> dict[str, Any]:
    """prometheusSpec fragment: an istio-proxy that only provisions certificates, and the scrape class using them.

    The proxy intercepts no inbound port and no outbound range, so Prometheus' own API and its
    scrapes of non-meshed targets are untouched; targets in the mesh are reached over https with
    the workload certificate (Istio's documented Prometheus integration). `insecureSkipVerify`
    because Prometheus cannot check Istio's SPIFFE server identities; the client certificate is
    what the targets' AuthorizationPolicies authenticate.
    """
    return {
        "podMetadata": {
            "labels": {"sidecar.istio.io/inject": "true"},
            "annotations": {
                "traffic.sidecar.istio.io/includeInboundPorts": "",
                "traffic.sidecar.istio.io/includeOutboundIPRanges": "",
                "proxy.istio.io/config": yamlio.dump({"proxyMetadata": {"OUTPUT_CERTS": PROXY_CERTS_DIR}}),
                "sidecar.istio.io/userVolumeMount": json.dumps(
                    [{"name": ISTIO_CERTS_VOLUME, "mountPath": PROXY_CERTS_DIR}]
                ),
            },
        },
        "volumes": [{"name": ISTIO_CERTS_VOLUME, "emptyDir": {"medium": "Memory"}}],
        "volumeMounts": [{"name": ISTIO_CERTS_VOLUME, "mountPath": PROMETHEUS_CERTS_DIR, "readOnly": True}],
        "scrapeClasses": [
            {
                "name": ISTIO_SCRAPE_CLASS,
                "tlsConfig": {
                    "caFile": f"{PROMETHEUS_CERTS_DIR}/root-cert.pem",
                    "certFile": f"{PROMETHEUS_CERTS_DIR}/cert-chain.pem",
                    "keyFile": f"{PROMETHEUS_CERTS_DIR}/key.pem",
                    "insecureSkipVerify": True,
                },
            }
        ],
    }


def build(ctx: AddonContext, *, retention_days: int, storage_gib: int, mesh: bool) -> HelmAddon:
    volume = {
        "volumeClaimTemplate": {
            "spec": {
                "storageClassName": STORAGE_CLASS,
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": f"{storage_gib}Gi"}},
            }
        }
    }
    prometheus_spec: dict[str, Any] = {
        "retention": f"{retention_days}d",
        "storageSpec": volume,
        "replicas": PROMETHEUS_REPLICAS,
        **_selectors(),
    }
    if mesh:
        prometheus_spec.update(istio_scrape_values())
    return HelmAddon(
        name=NAME,
        chart=NAME,
        version=VERSION,
        namespace=NAMESPACE,
        service_account=SERVICE_ACCOUNT,
        # The topic's KMS key policy admits this account's principals through SNS
        # (constructs_lib.alarms.AlertsTopic), so sns:Publish is the whole grant.
        statements=[
            iam.PolicyStatement(sid="PublishAlerts", actions=["sns:Publish"], resources=[ctx.values.alerts_topic_arn])
        ],
        values={
            "fullnameOverride": NAME,
            "prometheus": {
                "serviceAccount": {"create": True, "name": PROMETHEUS_SERVICE_ACCOUNT},
                "prometheusSpec": prometheus_spec,
            },
            "alertmanager": {
                "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
                "alertmanagerSpec": {
                    "replicas": 2,
                    # The monitoring chart's AlertmanagerConfig is the whole routing tree (no
                    # namespace matcher is forced on its routes, unlike a selected one).
                    "alertmanagerConfiguration": {"name": ALERTMANAGER_CONFIG_NAME},
                },
            },
            # VPA recommendations as metrics for the Right-sizing dashboard (k8s_charts.monitoring.cost_views).
            "kube-state-metrics": {"metricLabelsAllowlist": [NODE_LABELS_ALLOWLIST], **vpa_state_metrics_values()},
            # node-exporter keeps the host namespaces and hostPath it needs (a named Gatekeeper
            # exemption, k8s_charts.policies.NODE_EXPORTER); its container gives up everything else.
            "prometheus-node-exporter": {"containerSecurityContext": restricted_container_security_context()},
            "grafana": {
                "sidecar": {"dashboards": {"enabled": True, "label": "grafana_dashboard", "searchNamespace": "ALL"}}
            },
            "prometheusOperator": {"nodeSelector": SYSTEM_NODE_SELECTOR, "tolerations": [SYSTEM_NODE_TOLERATION]},
        },
        # Prometheus pods must be created after the sidecar injector serves, or they run without
        # the proxy that provisions their scrape certificate.
        depends_on=(istio.ISTIOD,) if mesh else (),
    )
