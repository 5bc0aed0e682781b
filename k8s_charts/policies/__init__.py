"""Admission policies: Gatekeeper ConstraintTemplates (Rego v1) and their Constraints.

The Rego lives in `rego/`, one file per template plus `_workload.rego`, the shared helper
that finds the Pod spec inside each workload kind. Every template is evaluated on Pods at
admission and on the workloads that create them, so a bad Deployment is refused before a
single Pod is scheduled.

`features.gatekeeper_enforce` picks `deny` (refuse) or `dryrun` (report in the audit only).
Exemptions are namespaces with a written reason: `SYSTEM_EXEMPTIONS` for every constraint,
`Policy.exemptions` for one; docs/security.md says how to add one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import cdk8s
from constructs import Construct

from config.model import OrgConfig
from k8s_charts.aws_values import AwsValues
from k8s_charts.mesh import MeshChart, MeshProps
from k8s_charts.objects import from_manifest

TEMPLATE_API_VERSION = "templates.gatekeeper.sh/v1"
CONSTRAINT_API_VERSION = "constraints.gatekeeper.sh/v1beta1"
ADMISSION_TARGET = "admission.k8s.gatekeeper.sh"

# Helm release the CDK installs from the vendored chart (charts/gatekeeper-<version>, charts/SOURCES.yaml).
# 3.19 is the first release that reads `source.version: "v1"`; 3.23.0 is the newest stable.
GATEKEEPER_CHART_VERSION = "3.23.0"
GATEKEEPER_NAMESPACE = "gatekeeper-system"

APP_NAMESPACES = ("supabase",)


@dataclass(frozen=True, kw_only=True)
class Exemption:
    namespace: str
    reason: str
    # One workload of the namespace (its Pods' app.kubernetes.io/name label) instead of all of it.
    workload: str | None = None


# Namespaces whose workloads no constraint judges. Each holds components that cannot run
# under the restricted profile by design, installed from upstream charts the CDK pins.
SYSTEM_EXEMPTIONS = (
    Exemption(
        namespace="kube-system",
        reason="EKS-managed add-ons (VPC CNI aws-node, kube-proxy, EBS CSI node) need host "
        "networking, hostPath and privileged containers; AWS owns their manifests.",
    ),
    Exemption(
        namespace=GATEKEEPER_NAMESPACE,
        reason="Gatekeeper must never be able to block its own webhook and audit pods, or a "
        "bad constraint locks the cluster out of repairing it.",
    ),
    Exemption(
        namespace="falco",
        reason="Falco's modern eBPF probe needs BPF/PERFMON/SYS_ADMIN capabilities and hostPath "
        "mounts of /proc, /etc and the container runtime socket to watch every node.",
    ),
    Exemption(
        namespace="amazon-guardduty",
        reason="GuardDuty Runtime Monitoring installs and upgrades its security agent DaemonSet here as an "
        "EKS add-on (EKS_ADDON_MANAGEMENT in constructs_lib/security_baseline.py); its eBPF sensor needs host "
        "access and its image comes from AWS's regional ECR account, and AWS owns the manifest.",
    ),
    Exemption(
        namespace="istio-system",
        reason="The istio-cni node agent writes the CNI configuration on each node (privileged, "
        "hostPath), which is what lets injected Pods run without NET_ADMIN.",
    ),
)

POD_KINDS = ({"apiGroups": [""], "kinds": ["Pod"]},)
LONG_RUNNING_KINDS = (
    {"apiGroups": ["apps"], "kinds": ["Deployment", "StatefulSet", "DaemonSet"]},
    {"apiGroups": ["argoproj.io"], "kinds": ["Rollout"]},
)
BATCH_KINDS = ({"apiGroups": ["batch"], "kinds": ["Job", "CronJob"]},)
ALL_POD_KINDS = POD_KINDS + LONG_RUNNING_KINDS + BATCH_KINDS

# Canonical repositories (registry/org/name). An entry ending in "/" admits an organization's
# repositories, any other entry exactly one repository. Keep each with the reason it is here.
ALLOWED_REPOSITORIES: dict[str, str] = {
    # Images the project's charts render (test_gatekeeper proves each rendered one is listed).
    "docker.io/supabase/": "Supabase components (auth, realtime, storage, meta, studio, edge runtime)",
    "docker.io/kong/": "Kong API gateway",
    "docker.io/postgrest/": "PostgREST (rest, rest-ro)",
    "docker.io/darthsim/imgproxy": "imgproxy, used by Storage image transformation",
    "ghcr.io/cloudnative-pg/pgbouncer": "PgBouncer image maintained by CloudNativePG",
    "docker.io/prometheuscommunity/pgbouncer-exporter": "PgBouncer Prometheus exporter",
    "docker.io/library/postgres": "psql client for the database bootstrap job (official image)",
    "docker.io/library/node": "Node.js for the application migrations job (official image)",
    "quay.io/prometheuscommunity/postgres-exporter": "RDS metrics exporter (monitoring chart)",
    "docker.io/oliver006/redis_exporter": "ElastiCache metrics exporter (monitoring chart)",
    "public.ecr.aws/aws-observability/aws-otel-collector": "ADOT collector for traces (monitoring chart)",
    # Added to Pods at admission by istiod (sidecar injection).
    "docker.io/istio/proxyv2": "Istio sidecar and its CNI validation init container",
    # Helm releases the CDK installs outside the exempted namespaces.
    "ghcr.io/jkroepke/kube-webhook-certgen": "certificate jobs of the Prometheus operator's admission webhook",
    "registry.k8s.io/prometheus-adapter/prometheus-adapter": "prometheus-adapter (custom metrics API)",
    "ghcr.io/opencost/opencost": "OpenCost exporter (per-namespace cost)",
    "quay.io/prometheus/": "Prometheus, Alertmanager, node exporter (kube-prometheus-stack)",
    "quay.io/prometheus-operator/": "Prometheus operator and its config reloader",
    "docker.io/grafana/": "Grafana",
    "quay.io/kiwigrid/": "Grafana dashboard/datasource sidecar (kube-prometheus-stack)",
    "registry.k8s.io/kube-state-metrics/": "kube-state-metrics (kube-prometheus-stack)",
    "registry.k8s.io/autoscaling/": "Vertical Pod Autoscaler",
    "quay.io/argoproj/": "Argo Rollouts controller",
    "ghcr.io/external-secrets/": "External Secrets operator",
    "docker.io/velero/": "Velero and its AWS plugin",
    "public.ecr.aws/eks/": "AWS Load Balancer Controller",
    "public.ecr.aws/aws-observability/aws-for-fluent-bit": "AWS for Fluent Bit (container logs to CloudWatch Logs)",
    "registry.k8s.io/external-dns/external-dns": "ExternalDNS (Route 53 records of the public Ingress hosts)",
}

RESTRICTED_VOLUME_TYPES = (
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
)


def _string_list() -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string"}}


@dataclass(frozen=True, kw_only=True)
class Policy:
    kind: str
    description: str
    match_kinds: tuple[dict[str, Any], ...]
    parameters: dict[str, Any] = field(default_factory=dict)
    # None applies the constraint in every namespace not exempted.
    namespaces: tuple[str, ...] | None = None
    exemptions: tuple[Exemption, ...] = ()

    @property
    def template_name(self) -> str:
        return self.kind.lower()

    @property
    def constraint_name(self) -> str:
        return self.template_name.removeprefix("k8s").replace("pss", "pss-")

    @property
    def constraint_parameters(self) -> dict[str, Any]:
        workloads = [f"{e.namespace}/{e.workload}" for e in self.exemptions if e.workload]
        return {**self.parameters, **({"exemptWorkloads": workloads} if workloads else {})}

    def parameters_schema(self) -> dict[str, Any]:
        return {"type": "object", "properties": {key: _string_list() for key in self.constraint_parameters}}


NODE_EXPORTER = Exemption(
    namespace="observability",
    workload="prometheus-node-exporter",
    reason="node-exporter reports the node's own CPU, memory, disk and network: it reads /proc, /sys and "
    "the root filesystem through hostPath and shares the host's network and PID namespaces.",
)

# Imported by name, not from constructs_lib: charts never import the CDK side.
FLUENT_BIT = Exemption(
    namespace="observability",
    workload="aws-for-fluent-bit",
    reason="Fluent Bit ships every container's log to CloudWatch Logs: it reads the kubelet's log files "
    "under the node's /var/log (hostPath), which only root may read, as root without any capability.",
)

POLICIES = (
    Policy(
        kind="K8sPssHostIsolation",
        description="Pod Security restricted: no privileged containers, host namespaces or host ports.",
        match_kinds=ALL_POD_KINDS,
        exemptions=(NODE_EXPORTER,),
    ),
    Policy(
        kind="K8sPssVolumeTypes",
        description="Pod Security restricted: only the volume types the profile allows (no hostPath).",
        match_kinds=ALL_POD_KINDS,
        parameters={"allowedTypes": list(RESTRICTED_VOLUME_TYPES)},
        exemptions=(NODE_EXPORTER, FLUENT_BIT),
    ),
    Policy(
        kind="K8sPssPrivilegeEscalation",
        description="Pod Security restricted: allowPrivilegeEscalation must be false.",
        match_kinds=ALL_POD_KINDS,
    ),
    Policy(
        kind="K8sPssCapabilities",
        description="Pod Security restricted: drop ALL capabilities, add back at most NET_BIND_SERVICE.",
        match_kinds=ALL_POD_KINDS,
        parameters={"allowedAdd": ["NET_BIND_SERVICE"]},
    ),
    Policy(
        kind="K8sPssRunAsNonRoot",
        description="Pod Security restricted: runAsNonRoot true and never runAsUser 0.",
        match_kinds=ALL_POD_KINDS,
        exemptions=(FLUENT_BIT,),
    ),
    Policy(
        kind="K8sPssSeccomp",
        description="Pod Security restricted: seccomp profile RuntimeDefault or Localhost.",
        match_kinds=ALL_POD_KINDS,
    ),
    Policy(
        kind="K8sAllowedImages",
        description="Images come only from the repositories the platform reviewed.",
        match_kinds=ALL_POD_KINDS,
        parameters={"repositories": sorted(ALLOWED_REPOSITORIES)},
    ),
    Policy(
        kind="K8sImageTagPinned",
        description="Every image names a version tag or a digest; never latest or untagged.",
        match_kinds=ALL_POD_KINDS,
    ),
    Policy(
        kind="K8sContainerResources",
        description="Every container requests and caps CPU and memory.",
        match_kinds=ALL_POD_KINDS,
        parameters={"requests": ["cpu", "memory"], "limits": ["cpu", "memory"]},
        namespaces=APP_NAMESPACES,
    ),
    Policy(
        # Long-running kinds only: run-to-completion Pods are never Service endpoints, and the
        # injected istio-proxy container is health-checked by its own agent (readiness only).
        kind="K8sContainerProbes",
        description="Every long-running container has liveness and readiness probes.",
        match_kinds=LONG_RUNNING_KINDS,
        parameters={"probes": ["livenessProbe", "readinessProbe"]},
        namespaces=APP_NAMESPACES,
    ),
    Policy(
        kind="K8sRequiredLabels",
        description="Workloads and their Pods carry the recommended app.kubernetes.io labels.",
        match_kinds=ALL_POD_KINDS,
        parameters={"labels": ["app.kubernetes.io/name", "app.kubernetes.io/part-of"]},
        namespaces=APP_NAMESPACES,
    ),
)


def _rego(name: str) -> str:
    return resources.files(__package__).joinpath("rego", name).read_text(encoding="utf-8")


def rego_module(policy: Policy) -> str:
    """The Rego v1 module Gatekeeper compiles for `policy`: its package, the helper, its rules."""
    return "\n".join(
        (f"package {policy.template_name}\n", _rego("_workload.rego"), _rego(f"{policy.template_name}.rego"))
    )


def constraint_template(policy: Policy) -> dict[str, Any]:
    return {
        "apiVersion": TEMPLATE_API_VERSION,
        "kind": "ConstraintTemplate",
        "metadata": {
            "name": policy.template_name,
            "annotations": {"description": policy.description},
        },
        "spec": {
            "crd": {
                "spec": {"names": {"kind": policy.kind}, "validation": {"openAPIV3Schema": policy.parameters_schema()}}
            },
            "targets": [
                {
                    "target": ADMISSION_TARGET,
                    "code": [{"engine": "Rego", "source": {"version": "v1", "rego": rego_module(policy)}}],
                }
            ],
        },
    }


def constraint(policy: Policy, *, enforce: bool) -> dict[str, Any]:
    match: dict[str, Any] = {
        "kinds": [dict(k) for k in policy.match_kinds],
        "excludedNamespaces": [e.namespace for e in SYSTEM_EXEMPTIONS + policy.exemptions if not e.workload],
    }
    if policy.namespaces is not None:
        match["namespaces"] = list(policy.namespaces)
    spec: dict[str, Any] = {"enforcementAction": "deny" if enforce else "dryrun", "match": match}
    if policy.constraint_parameters:
        spec["parameters"] = policy.constraint_parameters
    return {
        "apiVersion": CONSTRAINT_API_VERSION,
        "kind": policy.kind,
        "metadata": {"name": policy.constraint_name},
        "spec": spec,
    }


def gatekeeper_helm_values() -> dict[str, Any]:
    """Values for the gatekeeper chart (GATEKEEPER_CHART_VERSION), passed by the CDK."""
    return {
        "replicas": 3,
        "auditInterval": 60,
        # Denials are logged so a refused rollout can be traced from the controller logs.
        "logDenies": True,
        "emitAdmissionEvents": True,
        "emitAuditEvents": True,
        # Fail open: an unavailable webhook must not stop node add-ons from healing the
        # cluster; the audit (every 60 s) reports anything admitted meanwhile.
        "validatingWebhookFailurePolicy": "Ignore",
    }


@dataclass(frozen=True, kw_only=True)
class PoliciesProps:
    enforce: bool


class PoliciesChart(cdk8s.Chart):
    """ConstraintTemplates and Constraints, cluster-scoped.

    Constraints depend on the CRDs Gatekeeper creates asynchronously from the templates: the
    platform stack applies the templates first and waits until each CRD is Established.
    """

    def __init__(self, scope: Construct, id_: str, *, props: PoliciesProps) -> None:
        super().__init__(scope, id_, disable_resource_name_hashes=True)
        self.templates = [from_manifest(self, constraint_template(p)) for p in POLICIES]
        self.constraints = [from_manifest(self, constraint(p, enforce=props.enforce)) for p in POLICIES]


def security_charts(app: cdk8s.App, cfg: OrgConfig, env_name: str, values: AwsValues) -> list[cdk8s.Chart]:
    """CHART_FACTORIES entry: admission policies always, mesh policy when Istio is on."""
    features = cfg.environments[env_name].features
    charts: list[cdk8s.Chart] = [
        PoliciesChart(app, "policies", props=PoliciesProps(enforce=features.gatekeeper_enforce))
    ]
    if features.istio:
        charts.append(MeshChart(app, "mesh", props=MeshProps(vpc_cidr=values.vpc_cidr)))
    return charts
