"""EKS managed add-ons, pinned.

Versions are the EKS 1.35 defaults reported by `aws eks describe-addon-versions
--kubernetes-version 1.35` (Oct 2026). Bump them together with the cluster version; EKS rejects a
version that is not offered for the cluster's minor, so a stale pin fails the deploy loudly.
"""

from __future__ import annotations

from dataclasses import dataclass

VPC_CNI = "vpc-cni"
COREDNS = "coredns"
KUBE_PROXY = "kube-proxy"
EBS_CSI = "aws-ebs-csi-driver"
POD_IDENTITY_AGENT = "eks-pod-identity-agent"
METRICS_SERVER = "metrics-server"

VERSIONS: dict[str, dict[str, str]] = {
    "1.35": {
        VPC_CNI: "v1.22.4-eksbuild.3",
        COREDNS: "v1.13.2-eksbuild.31",
        KUBE_PROXY: "v1.35.3-eksbuild.29",
        EBS_CSI: "v1.64.0-eksbuild.1",
        POD_IDENTITY_AGENT: "v1.3.10-eksbuild.3",
        METRICS_SERVER: "v0.9.0-eksbuild.6",
    },
}

# Service accounts the add-ons run as, for their Pod Identity associations.
VPC_CNI_SERVICE_ACCOUNT = "aws-node"
EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"


@dataclass(frozen=True, kw_only=True)
class ManagedAddon:
    name: str
    version: str
    # DaemonSets that must exist before nodes join; the others need nodes to become ACTIVE.
    before_nodes: bool


def managed_addons(kubernetes_version: str) -> list[ManagedAddon]:
    try:
        versions = VERSIONS[kubernetes_version]
    except KeyError:
        raise ValueError(
            f"no pinned EKS add-on versions for Kubernetes {kubernetes_version}; add them to VERSIONS"
        ) from None
    before = {VPC_CNI, KUBE_PROXY, POD_IDENTITY_AGENT}
    return [ManagedAddon(name=name, version=version, before_nodes=name in before) for name, version in versions.items()]


def vpc_cni_configuration() -> dict:
    """Network policy enforcement on, with the node agent's policy decisions sent to CloudWatch Logs."""
    return {
        "enableNetworkPolicy": "true",
        "nodeAgent": {"enablePolicyEventLogs": "true", "enableCloudWatchLogs": "true"},
    }
