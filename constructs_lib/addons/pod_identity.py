"""One IAM role handed to one Kubernetes service account by EKS Pod Identity."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from constructs import Construct

from constructs_lib.nag import acknowledge, nag_label

POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"


class PodIdentity(Construct):
    """Role + customer managed policy + CfnPodIdentityAssociation for namespace/service_account.

    `extra_policies` are further managed policies on the same role, for a grant larger than one
    managed policy may be (6,144 characters, rehearsal rule iam-managed-policy-size).

    `associate=False` leaves the association to an EKS managed add-on, which declares its own
    (CfnAddon.PodIdentityAssociations) and would conflict with a second one.

    The trust policy admits only the EKS Pod Identity service acting for this account and this
    cluster (aws:SourceAccount / aws:SourceArn), so a role ARN leaked to another cluster is useless.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cluster_name: str,
        cluster_arn: str,
        namespace: str,
        service_account: str,
        statements: Sequence[iam.PolicyStatement] = (),
        extra_policies: Sequence[Sequence[iam.PolicyStatement]] = (),
        managed_policies: Sequence[iam.IManagedPolicy] = (),
        description: str,
        wildcard_reason: str | None = None,
        associate: bool = True,
    ) -> None:
        super().__init__(scope, id_)
        stack = cdk.Stack.of(self)
        principal = iam.ServicePrincipal(POD_IDENTITY_PRINCIPAL).with_conditions(
            {
                "StringEquals": {"aws:SourceAccount": stack.account},
                "ArnEquals": {"aws:SourceArn": cluster_arn},
            }
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=principal,
            description=description,
            managed_policies=list(managed_policies),
        )
        # Pod Identity passes session tags (namespace, service account, cluster) with AssumeRole.
        self.role.assume_role_policy.add_statements(
            iam.PolicyStatement(
                actions=["sts:TagSession"],
                principals=[principal],
            )
        )
        if extra_policies and not statements:
            raise ValueError(f"{description}: extra_policies continue `statements`, which is empty")
        # The first policy keeps the id "Policy" whether or not more follow, so splitting a grown
        # policy replaces no existing one.
        self.policies: list[iam.ManagedPolicy] = []
        for index, group in enumerate((statements, *extra_policies) if statements else ()):
            policy = iam.ManagedPolicy(
                self,
                "Policy" if index == 0 else f"Policy{index + 1}",
                statements=list(group),
                roles=[self.role],
                description=f"{description} (Pod Identity {namespace}/{service_account})"
                + (f", part {index + 1}" if extra_policies else ""),
            )
            findings = wildcard_findings(self, group, wildcard_reason or "")
            if findings:
                if not wildcard_reason:
                    raise ValueError(f"{description}: wildcard resources need a wildcard_reason")
                acknowledge(policy.node.default_child, *findings)
            self.policies.append(policy)
        self.policy: iam.ManagedPolicy | None = self.policies[0] if self.policies else None
        self.association = (
            eks.CfnPodIdentityAssociation(
                self,
                "Association",
                cluster_name=cluster_name,
                namespace=namespace,
                service_account=service_account,
                role_arn=self.role.role_arn,
            )
            if associate
            else None
        )
        self.namespace = namespace
        self.service_account = service_account


def wildcard_findings(
    scope: Construct, statements: Sequence[iam.PolicyStatement], reason: str
) -> list[tuple[str, str]]:
    """One AwsSolutions-IAM5 acknowledgement per wildcard resource, all with the same checkable reason."""
    stack = cdk.Stack.of(scope)
    texts = {nag_label(stack.resolve(r)) for s in statements for r in s.resources}
    return [(f"AwsSolutions::AwsSolutions-IAM5[Resource::{t}]", reason) for t in sorted(texts) if "*" in t]


def managed_policy_finding(name: str, reason: str) -> tuple[str, str]:
    return (f"AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{name}]", reason)
