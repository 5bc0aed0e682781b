"""The add-on contract: what one cluster controller needs from the CDK.

An add-on is a pinned Helm release plus, when it calls AWS, exactly one IAM role that EKS
Pod Identity hands to its service account. Modules in this package each return one
`HelmAddon` from a `build(ctx)` function; `AddonRegistry` installs them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from k8s_charts.aws_values import AwsValues

# Upstream charts vendored unmodified, one directory per pinned version (charts/SOURCES.yaml says
# where each came from). The CDK uploads the directory as an asset, so a deploy never depends on
# a public chart repository being up or still serving that version.
CHARTS_DIR = Path(__file__).resolve().parents[2] / "charts"


@dataclass(frozen=True, kw_only=True)
class AddonContext:
    """Everything an add-on may read: config-derived values plus the AWS resources it is scoped to.

    `values` is the same AwsValues the cdk8s charts receive, with the ARNs only CloudFormation
    knows (alerts topic, certificate, web ACL) already replaced by tokens: an add-on's IAM
    statements and its Helm values read them from there, so the two cannot disagree.
    """

    cluster_name: str
    vpc_id: str
    values: AwsValues
    partition: str
    velero_bucket: s3.IBucket
    # The same bucket's name as a literal: a policy built on it needs no cross-stack export.
    velero_bucket_name: str
    data_key: kms.IKey

    def arn(self, service: str, resource: str, *, region: bool = True) -> str:
        region_part = self.values.region if region else ""
        return f"arn:{self.partition}:{service}:{region_part}:{self.values.account}:{resource}"


@dataclass(frozen=True, kw_only=True)
class HelmAddon:
    """One pinned Helm release; `service_account` + `statements` make its Pod Identity role.

    `chart` and `version` name the vendored chart directory (`chart_dir`); the version is the
    only place a pin lives.
    """

    name: str
    chart: str
    version: str
    namespace: str
    values: Mapping[str, Any] = field(default_factory=dict)
    service_account: str | None = None
    statements: Sequence[iam.PolicyStatement] = ()
    # More managed policies on the same role, when the statements exceed one policy's size.
    extra_policies: Sequence[Sequence[iam.PolicyStatement]] = ()
    depends_on: Sequence[str] = ()
    # Helm waits for the release's Deployments to be ready: CRD-using charts after it can rely on webhooks.
    # The wait runs inside the kubectl provider Lambda (900 s at most), and with atomic a failed
    # install is rolled back under the same timeout, so 2 x 6 min plus the handler's start-up fits
    # (rehearsal rule helm-rollback-within-lambda). What Helm waits on here is the charts' own
    # controllers and hook Jobs on nodes that already run: minutes of image pulls, not volume or
    # node provisioning (Prometheus' StatefulSet and its volumes belong to the operator, not the release).
    timeout: cdk.Duration = field(default_factory=lambda: cdk.Duration.minutes(6))
    # Why the policy's wildcard resources cannot be narrower (required when it has any).
    wildcard_reason: str | None = None

    def __post_init__(self) -> None:
        if not self.version or self.version in ("latest", "*"):
            raise ValueError(f"add-on {self.name} must pin a chart version")
        if bool(self.service_account) != bool(self.statements):
            raise ValueError(f"add-on {self.name}: a service account with AWS access needs statements, and vice versa")

    @property
    def chart_dir(self) -> Path:
        return CHARTS_DIR / f"{self.chart}-{self.version}"


def merge_values(ours: Mapping[str, Any], theirs: Mapping[str, Any], *, path: str = "") -> dict[str, Any]:
    """Deep merge of Helm values; a leaf both sides set differently raises.

    Chart owners publish the values their objects depend on (gatekeeper_helm_values,
    istiod_helm_values); the add-on adds placement. A silent override either way would break one of them unnoticed.
    """
    merged = dict(ours)
    for key, value in theirs.items():
        where = f"{path}.{key}" if path else key
        if key not in merged:
            merged[key] = value
        elif isinstance(merged[key], Mapping) and isinstance(value, Mapping):
            merged[key] = merge_values(merged[key], value, path=where)
        elif merged[key] != value:
            raise ValueError(f"Helm value {where} set to both {merged[key]!r} and {value!r}")
    return merged


def restricted_container_security_context() -> dict[str, Any]:
    """Values fragment for charts that expose a container securityContext."""
    return {
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


SYSTEM_NODE_TOLERATION = {"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"}
SYSTEM_NODE_SELECTOR = {"node-role": "system"}
