"""Node autoscaling: Cluster Autoscaler over the managed node groups.

Cluster Autoscaler rather than Karpenter: capacity here is described by config as managed
node groups (system, app, spot) with their own min/max and instance types, and Cluster
Autoscaler scales exactly those groups, so config stays the single statement of capacity.
Karpenter would provision instances outside the node groups, needing a second description of
capacity (NodePools) and broad EC2 launch permissions. Scale-from-zero of the spot group works
because Cluster Autoscaler reads a managed node group's labels and taints with
eks:DescribeNodegroup.

IAM is the minimal policy of the Cluster Autoscaler AWS docs: reads on `*` (no resource-level
permissions), writes only on Auto Scaling groups tagged as owned by this cluster (EKS tags the
groups of managed node groups with k8s.io/cluster-autoscaler/<cluster>).
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam

from constructs_lib.addons.base import (
    SYSTEM_NODE_SELECTOR,
    SYSTEM_NODE_TOLERATION,
    AddonContext,
    HelmAddon,
    restricted_container_security_context,
)

NAME = "cluster-autoscaler"
VERSION = "9.59.0"  # Cluster Autoscaler 1.35.x, the minor matching the cluster
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "cluster-autoscaler"


def statements(ctx: AddonContext) -> list[iam.PolicyStatement]:
    return [
        iam.PolicyStatement(
            sid="Discover",
            actions=[
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeLaunchConfigurations",
                "autoscaling:DescribeScalingActivities",
                "autoscaling:DescribeTags",
                "ec2:DescribeImages",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplateVersions",
                "ec2:GetInstanceTypesFromInstanceRequirements",
            ],
            resources=["*"],
        ),
        iam.PolicyStatement(
            sid="ReadNodegroups",
            actions=["eks:DescribeNodegroup"],
            resources=[ctx.arn("eks", f"nodegroup/{ctx.cluster_name}/*/*")],
        ),
        iam.PolicyStatement(
            sid="ScaleOwnedGroups",
            actions=["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
            resources=[ctx.arn("autoscaling", "autoScalingGroup:*:autoScalingGroupName/*")],
            conditions={"StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{ctx.cluster_name}": "owned"}},
        ),
    ]


def build(ctx: AddonContext) -> HelmAddon:
    return HelmAddon(
        name=NAME,
        chart=NAME,
        version=VERSION,
        namespace=NAMESPACE,
        service_account=SERVICE_ACCOUNT,
        statements=statements(ctx),
        values={
            "cloudProvider": "aws",
            "awsRegion": ctx.values.region,
            "autoDiscovery": {"clusterName": ctx.cluster_name},
            "rbac": {"serviceAccount": {"create": True, "name": SERVICE_ACCOUNT}},
            "extraArgs": {
                "balance-similar-node-groups": True,
                "expander": "least-waste",
                "skip-nodes-with-system-pods": False,
            },
            "nodeSelector": SYSTEM_NODE_SELECTOR,
            "tolerations": [SYSTEM_NODE_TOLERATION],
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65534,
                "fsGroup": 65534,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containerSecurityContext": restricted_container_security_context(),
            "resources": {"requests": {"cpu": "100m", "memory": "300Mi"}, "limits": {"cpu": "500m", "memory": "600Mi"}},
        },
        wildcard_reason=(
            "Auto Scaling and EC2 Describe APIs have no resource-level permissions; the two scaling "
            "actions are limited by condition to groups tagged k8s.io/cluster-autoscaler/<cluster>=owned."
        ),
    )
