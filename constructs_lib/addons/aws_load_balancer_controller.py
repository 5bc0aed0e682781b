"""AWS Load Balancer Controller: ALBs/NLBs for Ingress and Service objects.

The policy follows the controller's published iam_policy.json (kubernetes-sigs/
aws-load-balancer-controller, docs/install/iam_policy.json), with every ARN narrowed to this
account and region, and the tag conditions AWS documents kept: the controller may only
modify or delete load balancers, target groups and security groups that carry its own
`elbv2.k8s.aws/cluster` tag. tests/unit/test_addons.py holds the policy to every action of
upstream's file at the chart's appVersion (tests/fixtures/upstream/aws-load-balancer-controller).

The grant is larger than one managed policy may be, so it is two on the same role: the load
balancers' own resources, and everything around them (security groups, WAF, Shield, discovery).
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam

from constructs_lib.addons.base import SYSTEM_NODE_SELECTOR, SYSTEM_NODE_TOLERATION, AddonContext, HelmAddon

NAME = "aws-load-balancer-controller"
VERSION = "3.5.0"
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "aws-load-balancer-controller"
CLUSTER_TAG = "elbv2.k8s.aws/cluster"

_READ_ACTIONS = [
    "ec2:DescribeAccountAttributes",
    "ec2:DescribeAddresses",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeInternetGateways",
    "ec2:DescribeVpcs",
    "ec2:DescribeVpcPeeringConnections",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeInstances",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeTags",
    "ec2:GetCoipPoolUsage",
    "ec2:DescribeCoipPools",
    "ec2:GetSecurityGroupsForVpc",
    "ec2:DescribeIpamPools",
    "ec2:DescribeRouteTables",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeListenerCertificates",
    "elasticloadbalancing:DescribeSSLPolicies",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetGroupAttributes",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeTrustStores",
    "elasticloadbalancing:DescribeListenerAttributes",
    "elasticloadbalancing:DescribeCapacityReservation",
    "acm:ListCertificates",
    "acm:DescribeCertificate",
    "cognito-idp:DescribeUserPoolClient",
    "iam:ListServerCertificates",
    "iam:GetServerCertificate",
    "waf-regional:GetWebACL",
    "waf-regional:GetWebACLForResource",
    "wafv2:GetWebACL",
    "wafv2:GetWebACLForResource",
    "shield:GetSubscriptionState",
    "shield:DescribeProtection",
]


def _elb(ctx: AddonContext, resource: str) -> str:
    return ctx.arn("elasticloadbalancing", resource)


def _lb_and_tg(ctx: AddonContext) -> list[str]:
    return [_elb(ctx, "targetgroup/*/*"), _elb(ctx, "loadbalancer/net/*/*"), _elb(ctx, "loadbalancer/app/*/*")]


_OWNED = {"Null": {f"aws:ResourceTag/{CLUSTER_TAG}": "false"}}


def surroundings_statements(ctx: AddonContext) -> list[iam.PolicyStatement]:
    """Service-linked role, discovery, WAF/Shield and security groups."""
    security_groups = ctx.arn("ec2", "security-group/*")
    return [
        iam.PolicyStatement(
            sid="ElbServiceLinkedRole",
            actions=["iam:CreateServiceLinkedRole"],
            resources=[
                f"arn:{ctx.partition}:iam::{ctx.values.account}:role/aws-service-role/elasticloadbalancing.amazonaws.com/*"
            ],
            conditions={"StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}},
        ),
        # Read-only, on "*" as upstream grants them: most have no resource-level permissions, and the
        # rest read what an Ingress annotation names (certificate, user pool client, web ACL).
        iam.PolicyStatement(sid="Discover", actions=_READ_ACTIONS, resources=["*"]),
        iam.PolicyStatement(
            sid="WebAclAndShield",
            actions=[
                "wafv2:AssociateWebACL",
                "wafv2:DisassociateWebACL",
                "waf-regional:AssociateWebACL",
                "waf-regional:DisassociateWebACL",
                "shield:CreateProtection",
                "shield:DeleteProtection",
            ],
            resources=[
                ctx.arn("wafv2", "regional/webacl/*/*"),
                ctx.arn("waf-regional", "webacl/*"),
                *_lb_and_tg(ctx),
                f"arn:{ctx.partition}:shield::{ctx.values.account}:protection/*",
            ],
        ),
        iam.PolicyStatement(
            sid="CreateSecurityGroupInVpc",
            actions=["ec2:CreateSecurityGroup"],
            resources=[ctx.arn("ec2", f"vpc/{ctx.vpc_id}"), security_groups],
        ),
        iam.PolicyStatement(
            sid="TagNewSecurityGroup",
            actions=["ec2:CreateTags"],
            resources=[security_groups],
            conditions={
                "StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"},
                "Null": {f"aws:RequestTag/{CLUSTER_TAG}": "false"},
            },
        ),
        iam.PolicyStatement(
            sid="RetagOwnedSecurityGroup",
            actions=["ec2:CreateTags", "ec2:DeleteTags"],
            resources=[security_groups],
            conditions={"Null": {f"aws:RequestTag/{CLUSTER_TAG}": "true", f"aws:ResourceTag/{CLUSTER_TAG}": "false"}},
        ),
        iam.PolicyStatement(
            sid="ManageOwnedSecurityGroup",
            actions=["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress", "ec2:DeleteSecurityGroup"],
            resources=[security_groups],
            conditions=_OWNED,
        ),
        # Untagged on purpose: the controller opens the targets' own (node or pod) security groups
        # to its load balancers' backend security group, and those groups are not the controller's.
        iam.PolicyStatement(
            sid="AdmitLoadBalancerToTargets",
            actions=["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"],
            resources=[security_groups],
        ),
    ]


def load_balancer_statements(ctx: AddonContext) -> list[iam.PolicyStatement]:
    """Load balancers, target groups, listeners and rules."""
    elb = lambda resource: _elb(ctx, resource)  # noqa: E731
    lb_and_tg = _lb_and_tg(ctx)
    return [
        iam.PolicyStatement(
            sid="CreateTaggedLoadBalancer",
            actions=["elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup"],
            resources=lb_and_tg,
            conditions={"Null": {f"aws:RequestTag/{CLUSTER_TAG}": "false"}},
        ),
        iam.PolicyStatement(
            sid="ManageListenersAndRules",
            actions=[
                "elasticloadbalancing:CreateListener",
                "elasticloadbalancing:DeleteListener",
                "elasticloadbalancing:CreateRule",
                "elasticloadbalancing:DeleteRule",
            ],
            resources=[
                elb("loadbalancer/net/*/*"),
                elb("loadbalancer/app/*/*"),
                elb("listener/net/*/*/*"),
                elb("listener/app/*/*/*"),
                elb("listener-rule/net/*/*/*"),
                elb("listener-rule/app/*/*/*"),
            ],
        ),
        iam.PolicyStatement(
            sid="RetagOwnedLoadBalancer",
            actions=["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
            resources=lb_and_tg,
            conditions={"Null": {f"aws:RequestTag/{CLUSTER_TAG}": "true", f"aws:ResourceTag/{CLUSTER_TAG}": "false"}},
        ),
        iam.PolicyStatement(
            sid="TagListeners",
            actions=["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
            resources=[
                elb("listener/net/*/*/*"),
                elb("listener/app/*/*/*"),
                elb("listener-rule/net/*/*/*"),
                elb("listener-rule/app/*/*/*"),
            ],
        ),
        iam.PolicyStatement(
            sid="ModifyOwnedLoadBalancer",
            actions=[
                "elasticloadbalancing:ModifyLoadBalancerAttributes",
                "elasticloadbalancing:SetIpAddressType",
                "elasticloadbalancing:SetSecurityGroups",
                "elasticloadbalancing:SetSubnets",
                "elasticloadbalancing:DeleteLoadBalancer",
                "elasticloadbalancing:ModifyTargetGroup",
                "elasticloadbalancing:ModifyTargetGroupAttributes",
                "elasticloadbalancing:DeleteTargetGroup",
                "elasticloadbalancing:ModifyListenerAttributes",
                "elasticloadbalancing:ModifyCapacityReservation",
                "elasticloadbalancing:ModifyIpPools",
            ],
            resources=lb_and_tg,
            conditions=_OWNED,
        ),
        iam.PolicyStatement(
            sid="TagOnCreate",
            actions=["elasticloadbalancing:AddTags"],
            resources=lb_and_tg,
            conditions={
                "StringEquals": {"elasticloadbalancing:CreateAction": ["CreateTargetGroup", "CreateLoadBalancer"]},
                "Null": {f"aws:RequestTag/{CLUSTER_TAG}": "false"},
            },
        ),
        iam.PolicyStatement(
            sid="Targets",
            actions=["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"],
            resources=[elb("targetgroup/*/*")],
        ),
        iam.PolicyStatement(
            sid="ListenersRulesCertificates",
            actions=[
                "elasticloadbalancing:SetWebAcl",
                "elasticloadbalancing:ModifyListener",
                "elasticloadbalancing:AddListenerCertificates",
                "elasticloadbalancing:RemoveListenerCertificates",
                "elasticloadbalancing:ModifyRule",
                "elasticloadbalancing:SetRulePriorities",
            ],
            resources=[
                elb("loadbalancer/net/*/*"),
                elb("loadbalancer/app/*/*"),
                elb("listener/net/*/*/*"),
                elb("listener/app/*/*/*"),
                elb("listener-rule/net/*/*/*"),
                elb("listener-rule/app/*/*/*"),
            ],
        ),
    ]


def build(ctx: AddonContext) -> HelmAddon:
    return HelmAddon(
        name=NAME,
        chart=NAME,
        version=VERSION,
        namespace=NAMESPACE,
        service_account=SERVICE_ACCOUNT,
        statements=load_balancer_statements(ctx),
        extra_policies=[surroundings_statements(ctx)],
        values={
            "clusterName": ctx.cluster_name,
            # Nodes keep the IMDS hop limit at 1, so pods cannot discover these from instance metadata.
            "region": ctx.values.region,
            "vpcId": ctx.vpc_id,
            "replicaCount": 2,
            "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
            "nodeSelector": SYSTEM_NODE_SELECTOR,
            "tolerations": [SYSTEM_NODE_TOLERATION],
            "enableServiceMutatorWebhook": False,
        },
        wildcard_reason=(
            "The controller creates load balancers, target groups, listeners and security groups whose "
            "names it generates; every mutating statement is limited to this account/region and, as AWS documents, to "
            "resources carrying the elbv2.k8s.aws/cluster tag. Describe APIs have no resource-level permissions."
        ),
    )
