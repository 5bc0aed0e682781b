"""Small builders shared by the monitoring and rollouts charts.

Raw `ApiObject`s are used because most objects here are custom resources that
cdk8s-plus does not model; the workload builder puts every pod of these charts on the
platform's one restricted profile (`k8s_charts/hardening.py`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import cdk8s
import cdk8s_plus_35 as kplus
from constructs import Construct

from k8s_charts import objects
from k8s_charts.hardening import (
    SKIP_DIGEST,
    Probe,
    checkov_annotations,
    container_security_context,
    pod_security_context,
    zone_spread,
)

OBSERVABILITY_NAMESPACE = "observability"
SUPABASE_NAMESPACE = "supabase"
# kube-prometheus-stack's operator selects ServiceMonitors, PodMonitors, Probes and
# PrometheusRules carrying the Helm release label; the release is named after the chart.
RELEASE_LABELS = {"release": "kube-prometheus-stack"}
PART_OF = {"app.kubernetes.io/part-of": "supabase-observability"}
# Written by the cluster stack's External Secrets installation; every ExternalSecret of
# the platform reads Secrets Manager through it.
CLUSTER_SECRET_STORE = "aws-secrets-manager"
NON_ROOT_UID = 65534


def api_object(
    scope: Construct,
    id_: str,
    *,
    api_version: str,
    kind: str,
    name: str,
    namespace: str | None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    body: Mapping[str, Any],
) -> cdk8s.ApiObject:
    return objects.api_object(
        scope,
        id_,
        api_version=api_version,
        kind=kind,
        metadata=cdk8s.ApiObjectMetadata(
            name=name,
            namespace=namespace,
            labels=dict(labels or {}),
            annotations=dict(annotations) if annotations else None,
        ),
        body=body,
    )


def external_secret(
    scope: Construct, id_: str, *, name: str, namespace: str, data: Sequence[tuple[str, str, str | None]]
) -> cdk8s.ApiObject:
    """ExternalSecret producing Secret `name`; data rows are (secret key, remote key, property)."""
    return api_object(
        scope,
        id_,
        api_version="external-secrets.io/v1",
        kind="ExternalSecret",
        name=name,
        namespace=namespace,
        labels=PART_OF,
        body={
            "spec": {
                "refreshInterval": "1h",
                "secretStoreRef": {"kind": "ClusterSecretStore", "name": CLUSTER_SECRET_STORE},
                "target": {"name": name, "creationPolicy": "Owner"},
                "data": [
                    {"secretKey": key, "remoteRef": {"key": remote, **({"property": prop} if prop else {})}}
                    for key, remote, prop in data
                ],
            }
        },
    )


@dataclass(frozen=True, kw_only=True)
class Workload:
    """A hardened single-container Deployment with its Service and ServiceAccount."""

    name: str
    namespace: str
    image: str
    ports: Mapping[str, int]
    probe: Probe
    args: Sequence[str] = ()
    env: Sequence[Mapping[str, Any]] = ()
    env_from_secret: str | None = None
    secret_files: str | None = None  # Secret mounted read-only at /etc/secrets
    config_map: str | None = None
    config_mount: str = "/etc/config"
    replicas: int = 1
    cpu_request: str = "50m"
    cpu_limit: str = "500m"
    memory_request: str = "64Mi"
    memory_limit: str = "256Mi"
    run_as_user: int = NON_ROOT_UID
    extra_labels: Mapping[str, str] = field(default_factory=dict)
    checkov_skips: Sequence[tuple[str, str]] = (SKIP_DIGEST,)

    @property
    def selector(self) -> dict[str, str]:
        return {"app.kubernetes.io/name": self.name, "app.kubernetes.io/instance": self.name}

    @property
    def labels(self) -> dict[str, str]:
        return {**self.selector, **PART_OF, **self.extra_labels}


def add_workload(scope: Construct, w: Workload) -> None:
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    if w.config_map:
        volumes.append({"name": "config", "configMap": {"name": w.config_map}})
        mounts.append({"name": "config", "mountPath": w.config_mount, "readOnly": True})
    if w.secret_files:
        volumes.append({"name": "secrets", "secret": {"secretName": w.secret_files, "defaultMode": 0o440}})
        mounts.append({"name": "secrets", "mountPath": "/etc/secrets", "readOnly": True})
    container: dict[str, Any] = {
        "name": w.name,
        "image": w.image,
        "imagePullPolicy": "Always",
        "args": list(w.args),
        "ports": [{"name": n, "containerPort": p, "protocol": "TCP"} for n, p in w.ports.items()],
        "env": [dict(e) for e in w.env],
        "resources": {
            "requests": {"cpu": w.cpu_request, "memory": w.memory_request},
            "limits": {"cpu": w.cpu_limit, "memory": w.memory_limit},
        },
        "livenessProbe": replace(w.probe, initial_delay=10, period=20, timeout=5).render(),
        "readinessProbe": replace(w.probe, initial_delay=5, period=10, timeout=5).render(),
        "securityContext": container_security_context(w.run_as_user),
        "volumeMounts": mounts,
    }
    if w.env_from_secret:
        container["envFrom"] = [{"secretRef": {"name": w.env_from_secret}}]
    objects.service_account(scope, f"{w.name}-sa", name=w.name, namespace=w.namespace, labels=w.labels)
    api_object(
        scope,
        f"{w.name}-deployment",
        api_version="apps/v1",
        kind="Deployment",
        name=w.name,
        namespace=w.namespace,
        labels=w.labels,
        annotations=checkov_annotations(w.checkov_skips),
        body={
            "spec": {
                "replicas": w.replicas,
                "revisionHistoryLimit": 5,
                "selector": {"matchLabels": w.selector},
                "template": {
                    "metadata": {"labels": w.labels},
                    "spec": {
                        "serviceAccountName": w.name,
                        "automountServiceAccountToken": False,
                        "securityContext": pod_security_context(w.run_as_user),
                        "nodeSelector": {"kubernetes.io/os": "linux"},
                        "topologySpreadConstraints": [zone_spread(w.selector, when_unsatisfiable="ScheduleAnyway")],
                        "containers": [container],
                        "volumes": volumes,
                    },
                },
            }
        },
    )
    service = kplus.Service(
        scope,
        f"{w.name}-service",
        metadata=cdk8s.ApiObjectMetadata(name=w.name, namespace=w.namespace, labels=dict(w.labels)),
        ports=[
            kplus.ServicePort(name=n, port=p, target_port=p, protocol=kplus.Protocol.TCP) for n, p in w.ports.items()
        ],
    )
    for key, value in w.selector.items():
        service.select_label(key, value)
    if w.replicas > 1:
        api_object(
            scope,
            f"{w.name}-pdb",
            api_version="policy/v1",
            kind="PodDisruptionBudget",
            name=w.name,
            namespace=w.namespace,
            labels=w.labels,
            body={"spec": {"maxUnavailable": 1, "selector": {"matchLabels": w.selector}}},
        )


def network_policy(
    scope: Construct,
    id_: str,
    *,
    name: str,
    namespace: str,
    pod_selector: Mapping[str, str],
    ingress: Sequence[Mapping[str, Any]],
    egress: Sequence[Mapping[str, Any]],
) -> None:
    """Isolates only the selected pods: the Helm-installed stack in the same namespace keeps its own rules."""
    api_object(
        scope,
        id_,
        api_version="networking.k8s.io/v1",
        kind="NetworkPolicy",
        name=name,
        namespace=namespace,
        labels=PART_OF,
        body={
            "spec": {
                "podSelector": {"matchLabels": dict(pod_selector)},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [dict(r) for r in ingress],
                "egress": [dict(r) for r in egress],
            }
        },
    )


def from_prometheus(port: int) -> dict[str, Any]:
    """Ingress from the kube-prometheus-stack Prometheus pods only."""
    return {
        "from": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": OBSERVABILITY_NAMESPACE}},
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
            }
        ],
        "ports": [{"protocol": "TCP", "port": port}],
    }
