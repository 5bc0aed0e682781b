"""Cluster-wide objects every environment gets, in two charts applied at different times.

- `base-cluster` (applied BEFORE the controllers' Helm releases): the namespaces the
  controllers live in, labelled with their Pod Security Standards level so that a controller's
  pods are admitted under the right profile from their first start, and the default gp3
  StorageClass that Prometheus' volumes claim while its release installs.
- `base-controllers` (applied AFTER them, it uses their CRDs): the ClusterSecretStore every
  ExternalSecret reads through, and Velero's backup Schedules.

Namespaces owned by other charts (`supabase`, created by the Supabase bootstrap chart) are not
declared here: two manifests owning one object would delete it when either is removed.
"""

from __future__ import annotations

from dataclasses import dataclass

import cdk8s
from constructs import Construct

from config import naming
from config.model import OrgConfig
from k8s_charts.aws_values import AwsValues
from k8s_charts.objects import api_object
from k8s_charts.supabase.logs import MERGE_KEY

CLUSTER_CHART_ID = "base-cluster"
CONTROLLERS_CHART_ID = "base-controllers"
CLUSTER_SECRET_STORE = "aws-secrets-manager"
EXTERNAL_SECRETS_NAMESPACE = "external-secrets"
VELERO_NAMESPACE = "velero"
STORAGE_CLASS = "gp3"
# Namespaces whose ExternalSecrets may use the ClusterSecretStore.
SECRET_CONSUMER_NAMESPACES = ("supabase", "observability")
# Velero leaves these out: EKS and the add-ons recreate them, and restoring them over a
# running cluster would fight the managed add-ons.
BACKUP_EXCLUDED_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")


@dataclass(frozen=True, kw_only=True)
class NamespaceSpec:
    name: str
    level: str  # Pod Security Standards level enforced: restricted | baseline | privileged
    reason: str = ""  # why a level below restricted is needed
    extra_labels: tuple[tuple[str, str], ...] = ()


# Every controller namespace; a lower level than restricted must say why.
NAMESPACES: tuple[NamespaceSpec, ...] = (
    NamespaceSpec(name=EXTERNAL_SECRETS_NAMESPACE, level="restricted"),
    NamespaceSpec(name=VELERO_NAMESPACE, level="restricted"),
    NamespaceSpec(name="external-dns", level="restricted"),
    NamespaceSpec(name="vpa", level="restricted"),
    NamespaceSpec(name="argo-rollouts", level="restricted"),
    NamespaceSpec(name="gatekeeper-system", level="restricted"),
    NamespaceSpec(
        name="observability",
        level="privileged",
        reason="node-exporter of kube-prometheus-stack reads host /proc and /sys with hostPID and hostNetwork; "
        "Fluent Bit reads the node's container log files under /var/log (hostPath)",
    ),
    NamespaceSpec(
        name="falco",
        level="privileged",
        reason="Falco's eBPF probe needs BPF/PERFMON capabilities and hostPath mounts on every node",
    ),
    NamespaceSpec(
        name="istio-system",
        level="privileged",
        reason="the istio-cni node agent writes the CNI configuration on the host with privileges",
    ),
)
BATCH_LEVEL = "restricted"

# Fargate's built-in log router reads its configuration from this one ConfigMap, in a namespace
# labelled aws-observability=enabled; it accepts only the keys below, and only some filters and
# outputs (kubernetes and parser filters, cloudwatch_logs among them):
# https://docs.aws.amazon.com/eks/latest/userguide/fargate-logging.html
FARGATE_LOGGING_NAMESPACE = NamespaceSpec(
    name="aws-observability", level="restricted", extra_labels=(("aws-observability", "enabled"),)
)
FARGATE_LOGGING_CONFIGMAP = "aws-logging"
FARGATE_STREAM_PREFIX = "fargate-"


def fargate_logging_data(*, region: str, log_group: str) -> dict[str, str]:
    """The aws-logging ConfigMap: the CRI line parser, Kubernetes metadata with JSON lines merged
    under the same key as on the nodes, and the same containers log group."""
    return {
        # The router's own logs stay out of the group: they are not the workloads'.
        "flb_log_cw": "false",
        "parsers.conf": "\n".join(
            [
                "[PARSER]",
                "    Name        crio",
                "    Format      Regex",
                "    Regex       ^(?<time>[^ ]+) (?<stream>stdout|stderr) (?<logtag>P|F) (?<log>.*)$",
                "    Time_Key    time",
                "    Time_Format %Y-%m-%dT%H:%M:%S.%L%z",
                "",
            ]
        ),
        "filters.conf": "\n".join(
            [
                "[FILTER]",
                "    Name     parser",
                "    Match    *",
                "    Key_name log",
                "    Parser   crio",
                "",
                "[FILTER]",
                "    Name                kubernetes",
                "    Match               kube.*",
                "    Merge_Log           On",
                f"    Merge_Log_Key       {MERGE_KEY}",
                "    Keep_Log            Off",
                "    Buffer_Size         0",
                "    Kube_Meta_Cache_TTL 300s",
                "",
            ]
        ),
        "output.conf": "\n".join(
            [
                "[OUTPUT]",
                "    Name              cloudwatch_logs",
                "    Match             kube.*",
                f"    region            {region}",
                f"    log_group_name    {log_group}",
                f"    log_stream_prefix {FARGATE_STREAM_PREFIX}",
                "    auto_create_group false",
                "",
            ]
        ),
    }


def _namespace(scope: Construct, spec: NamespaceSpec, *, version: str) -> cdk8s.ApiObject:
    labels = {
        **dict(spec.extra_labels),
        "pod-security.kubernetes.io/enforce": spec.level,
        "pod-security.kubernetes.io/enforce-version": version,
        # Warn and audit at restricted everywhere, so a privileged namespace still reports every exception.
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/warn-version": version,
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/audit-version": version,
    }
    annotations = {"platform/pod-security-reason": spec.reason} if spec.reason else None
    return cdk8s.ApiObject(
        scope,
        f"ns-{spec.name}",
        api_version="v1",
        kind="Namespace",
        metadata=cdk8s.ApiObjectMetadata(name=spec.name, labels=labels, annotations=annotations),
    )


class BaseClusterChart(cdk8s.Chart):
    """Namespaces with Pod Security labels and the default StorageClass."""

    apply_before_controllers = True

    def __init__(self, scope: Construct, id_: str, *, cfg: OrgConfig, env_name: str, values: AwsValues) -> None:
        super().__init__(scope, id_, disable_resource_name_hashes=True)
        env = cfg.environments[env_name]
        version = f"v{values.kubernetes_version}"
        specs = [*NAMESPACES, *(NamespaceSpec(name=ns, level=BATCH_LEVEL) for ns in env.cluster.fargate_namespaces)]
        if env.cluster.fargate_namespaces:
            specs.append(FARGATE_LOGGING_NAMESPACE)
        self.namespaces = [spec.name for spec in specs]
        for spec in specs:
            _namespace(self, spec, version=version)
        if env.cluster.fargate_namespaces:
            api_object(
                self,
                "fargate-logging",
                api_version="v1",
                kind="ConfigMap",
                metadata=cdk8s.ApiObjectMetadata(
                    name=FARGATE_LOGGING_CONFIGMAP, namespace=FARGATE_LOGGING_NAMESPACE.name
                ),
                body={
                    "data": fargate_logging_data(
                        region=values.region, log_group=naming.container_log_group(values.cluster_name)
                    )
                },
            )
        api_object(
            self,
            "storage-class",
            api_version="storage.k8s.io/v1",
            kind="StorageClass",
            metadata=cdk8s.ApiObjectMetadata(
                name=STORAGE_CLASS, annotations={"storageclass.kubernetes.io/is-default-class": "true"}
            ),
            body={
                "provisioner": "ebs.csi.aws.com",
                "parameters": {"type": "gp3", "encrypted": "true", "csi.storage.k8s.io/fstype": "ext4"},
                # A production volume outlives its claim: deleting a PVC by mistake must not delete data.
                "reclaimPolicy": "Retain" if env.production else "Delete",
                "volumeBindingMode": "WaitForFirstConsumer",
                "allowVolumeExpansion": True,
            },
        )


def _schedule(scope: Construct, name: str, *, cron: str, ttl_hours: int) -> cdk8s.ApiObject:
    return api_object(
        scope,
        f"schedule-{name}",
        api_version="velero.io/v1",
        kind="Schedule",
        metadata=cdk8s.ApiObjectMetadata(name=name, namespace=VELERO_NAMESPACE),
        body={
            "spec": {
                "schedule": cron,
                "useOwnerReferencesInBackup": False,
                "template": {
                    "includedNamespaces": ["*"],
                    "excludedNamespaces": list(BACKUP_EXCLUDED_NAMESPACES),
                    "includeClusterResources": True,
                    "snapshotVolumes": True,
                    "storageLocation": "default",
                    "volumeSnapshotLocations": ["default"],
                    "ttl": f"{ttl_hours}h0m0s",
                },
            }
        },
    )


class BaseControllersChart(cdk8s.Chart):
    """Objects of the controllers' CRDs: the ClusterSecretStore and Velero Schedules."""

    def __init__(self, scope: Construct, id_: str, *, cfg: OrgConfig, env_name: str, values: AwsValues) -> None:
        super().__init__(scope, id_, disable_resource_name_hashes=True)
        cluster = cfg.environments[env_name].cluster
        api_object(
            self,
            "cluster-secret-store",
            api_version="external-secrets.io/v1",
            kind="ClusterSecretStore",
            metadata=cdk8s.ApiObjectMetadata(name=CLUSTER_SECRET_STORE),
            body={
                "spec": {
                    # No `auth`: the operator uses its own credentials, which EKS Pod Identity gives the
                    # external-secrets service account (its role reads only this environment's prefix).
                    "provider": {"aws": {"service": "SecretsManager", "region": values.region}},
                    "conditions": [{"namespaces": list(SECRET_CONSUMER_NAMESPACES)}],
                    "refreshInterval": 300,
                }
            },
        )
        _schedule(self, "daily", cron="0 3 * * *", ttl_hours=24 * cluster.velero_daily_retention_days)
        if cluster.velero_hourly:
            _schedule(self, "hourly", cron="0 * * * *", ttl_hours=48)


def base_charts(app: cdk8s.App, cfg: OrgConfig, env_name: str, values: AwsValues) -> list[cdk8s.Chart]:
    """CHART_FACTORIES entry."""
    return [
        BaseClusterChart(app, CLUSTER_CHART_ID, cfg=cfg, env_name=env_name, values=values),
        BaseControllersChart(app, CONTROLLERS_CHART_ID, cfg=cfg, env_name=env_name, values=values),
    ]
