"""kube-prometheus-stack: Prometheus operator CRDs, Prometheus, Alertmanager, Grafana.

The monitoring charts select on the release label `release: kube-prometheus-stack`, so the
release keeps that name. Alertmanager publishes to the environment's alerts SNS topic with its
own Pod Identity; nothing else in the release calls AWS.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

from constructs_lib.addons.base import SYSTEM_NODE_SELECTOR, SYSTEM_NODE_TOLERATION, AddonContext, HelmAddon

NAME = "kube-prometheus-stack"
REPOSITORY = "https://prometheus-community.github.io/helm-charts"
VERSION = "80.13.3"
NAMESPACE = "observability"
SERVICE_ACCOUNT = "kube-prometheus-stack-alertmanager"
STORAGE_CLASS = "gp3"


def build(ctx: AddonContext, *, retention_days: int, storage_gib: int) -> HelmAddon:
    topic = ctx.alerts_topic_arn or ctx.values.alerts_topic_arn
    volume = {"volumeClaimTemplate": {"spec": {
        "storageClassName": STORAGE_CLASS, "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": f"{storage_gib}Gi"}},
    }}}
    return HelmAddon(
        name=NAME, repository=REPOSITORY, chart=NAME, version=VERSION, namespace=NAMESPACE,
        service_account=SERVICE_ACCOUNT,
        statements=[iam.PolicyStatement(sid="PublishAlerts", actions=["sns:Publish"], resources=[topic])],
        values={
            "fullnameOverride": NAME,
            "prometheus": {"prometheusSpec": {
                "retention": f"{retention_days}d",
                "storageSpec": volume,
                "replicas": 2,
                # Select every ServiceMonitor/PodMonitor/Probe/PrometheusRule carrying the release label.
                "ruleSelectorNilUsesHelmValues": True,
                "serviceMonitorSelectorNilUsesHelmValues": True,
            }},
            "alertmanager": {
                "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
                "alertmanagerSpec": {"replicas": 2},
            },
            "grafana": {"sidecar": {"dashboards": {"enabled": True, "label": "grafana_dashboard", "searchNamespace": "ALL"}}},
            "prometheusOperator": {"nodeSelector": SYSTEM_NODE_SELECTOR, "tolerations": [SYSTEM_NODE_TOLERATION]},
        },
        timeout=cdk.Duration.minutes(15),
    )
