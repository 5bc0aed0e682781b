"""The CloudFormation execution policy `cdk bootstrap` hands to each member account.

Deployed once per account with the member account's admin credentials, BEFORE
`cdk bootstrap --cloudformation-execution-policies <this policy>`: it uses the CLI's own
credentials and an inline template (no bootstrap needed). It grants the services this platform deploys and limits
IAM writes to roles and policies named after the account's stacks, so a compromised pipeline
cannot mint an arbitrary administrator.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from config.naming import EXECUTION_POLICY_NAME
from constructs_lib.checkov import skip
from constructs_lib.nag import acknowledge

SERVICES = [
    "acm",
    "application-autoscaling",
    "autoscaling",
    "backup",
    "backup-storage",
    "budgets",
    "ce",
    "cloudformation",
    "cloudfront",
    "cloudwatch",
    "codebuild",
    "codepipeline",
    "codeconnections",
    "ec2",
    "ecr",
    "eks",
    "elasticache",
    "elasticloadbalancing",
    "events",
    "fis",
    "guardduty",
    "inspector2",
    "kms",
    "lambda",
    "logs",
    "rds",
    "route53",
    "s3",
    "secretsmanager",
    "securityhub",
    "config",
    "sns",
    "sqs",
    "ssm",
    "states",
    "wafv2",
    "xray",
    "appconfig",
    "ses",
    "aps",
    "grafana",
    "pipes",
]


class DeployAccessStack(cdk.Stack):
    def __init__(self, scope: Construct, id_: str, *, stack_prefixes: list[str], **kwargs) -> None:
        # Deployed before `cdk bootstrap` in its account, so the legacy synthesizer: no bootstrap
        # roles, template inline with the CLI's credentials. CliCredentialsStackSynthesizer would
        # still upload it to the bootstrap bucket, BootstraplessSynthesizer name the bootstrap roles.
        super().__init__(scope, id_, synthesizer=cdk.LegacyStackSynthesizer(), **kwargs)
        iam_scoped = [
            f"arn:{self.partition}:iam::{self.account}:{kind}/{prefix}*"
            for prefix in stack_prefixes
            for kind in ("role", "policy", "instance-profile")
        ]
        self.execution_policy = iam.ManagedPolicy(
            self,
            "ExecutionPolicy",
            managed_policy_name=EXECUTION_POLICY_NAME,
            description="What CloudFormation may do when the pipeline deploys this platform",
            statements=[
                iam.PolicyStatement(sid="PlatformServices", actions=[f"{s}:*" for s in SERVICES], resources=["*"]),
                iam.PolicyStatement(
                    sid="StackOwnedIam",
                    actions=["iam:*"],
                    resources=iam_scoped,
                ),
                iam.PolicyStatement(
                    sid="ServiceLinkedRolesAndReads",
                    actions=[
                        "iam:CreateServiceLinkedRole",
                        "iam:Get*",
                        "iam:List*",
                        "iam:CreateOpenIDConnectProvider",
                        "iam:DeleteOpenIDConnectProvider",
                        "iam:TagOpenIDConnectProvider",
                        "iam:UpdateOpenIDConnectProviderThumbprint",
                    ],
                    resources=["*"],
                ),
                iam.PolicyStatement(
                    sid="NoLongLivedCredentials",
                    effect=iam.Effect.DENY,
                    actions=["iam:CreateUser", "iam:CreateAccessKey", "iam:CreateLoginProfile", "organizations:*"],
                    resources=["*"],
                ),
            ],
        )
        self.execution_policy.node.default_child.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
        service_reason = (
            "the CloudFormation execution policy must create and delete every resource type of the services "
            "this platform deploys; IAM writes are limited to stack-prefixed names by StackOwnedIam"
        )
        acknowledge(
            self.execution_policy.node.default_child,
            *[(f"AwsSolutions::AwsSolutions-IAM5[Action::{s}:*]", service_reason) for s in [*SERVICES, "iam"]],
            (
                "AwsSolutions::AwsSolutions-IAM5[Action::iam:Get*]",
                "read-only IAM calls CloudFormation makes while diffing roles",
            ),
            (
                "AwsSolutions::AwsSolutions-IAM5[Action::iam:List*]",
                "read-only IAM calls CloudFormation makes while diffing roles",
            ),
            (
                "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                "service actions target resources whose names CloudFormation generates at deploy time",
            ),
            *[
                (
                    f"AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::{self.account}:{kind}/{prefix}*]",
                    "IAM writes are confined to roles, policies and instance profiles named after this account's stacks",
                )
                for prefix in stack_prefixes
                for kind in ("role", "policy", "instance-profile")
            ],
            ("NIST.800.53.R5::NIST.800.53.R5-IAMPolicyNoStatementsWithFullAccess", service_reason),
        )
        skip(
            self.execution_policy.node.default_child,
            *[
                (check, f"{title}: {service_reason}")
                for check, title in (
                    ("CKV_AWS_107", "credentials exposure"),
                    ("CKV_AWS_108", "data exfiltration"),
                    ("CKV_AWS_109", "permissions management"),
                    ("CKV_AWS_110", "privilege escalation"),
                    ("CKV_AWS_111", "write access"),
                )
            ],
        )
