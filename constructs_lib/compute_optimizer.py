"""Organization-wide AWS Compute Optimizer enrollment, from the management account (org stack).

CloudFormation has no enrollment type (AWS::ComputeOptimizer offers only AutomationRule), and
CDK's AwsCustomResource ships its handler as an asset, which the org stack cannot carry: it
deploys before any account is bootstrapped (README "From nothing", rehearsal rule order). So the
handler (ops/compute_optimizer/handler.py) is inlined into a function whose role may do exactly
what opting in needs (https://docs.aws.amazon.com/compute-optimizer/latest/ug/security-iam.html):
UpdateEnrollmentStatus, create Compute Optimizer's service-linked role, and enable its trusted
access in Organizations.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from constructs_lib.checkov import skip
from constructs_lib.nag import acknowledge, acknowledge_unreserved_concurrency
from constructs_lib.retention import retention

HANDLER = Path(__file__).resolve().parents[1] / "ops" / "compute_optimizer" / "handler.py"
SERVICE = "compute-optimizer.amazonaws.com"
SERVICE_LINKED_ROLE = f"aws-service-role/{SERVICE}/AWSServiceRoleForComputeOptimizer"
# CloudFormation's ZipFile limit for inline function code.
INLINE_CODE_LIMIT = 4096
LOG_RETENTION_DAYS = 90
_DEPLOY_TIME = "runs only while CloudFormation deploys the org stack, once per create or update"


class ComputeOptimizerEnrollment(Construct):
    def __init__(self, scope: Construct, id_: str, *, log_key: kms.IKey) -> None:
        super().__init__(scope, id_)
        stack = cdk.Stack.of(self)
        source = HANDLER.read_text()
        if len(source.encode()) > INLINE_CODE_LIMIT:
            raise ValueError(f"{HANDLER} is over CloudFormation's {INLINE_CODE_LIMIT}-byte inline code limit")
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=retention(LOG_RETENTION_DAYS),
            encryption_key=log_key,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            statements=[
                # UpdateEnrollmentStatus acts on the calling account and its organization; the
                # Service Authorization Reference lists no resource type for it.
                iam.PolicyStatement(
                    sid="Enroll", actions=["compute-optimizer:UpdateEnrollmentStatus"], resources=["*"]
                ),
                iam.PolicyStatement(
                    sid="ServiceLinkedRole",
                    actions=["iam:CreateServiceLinkedRole"],
                    resources=[f"arn:{stack.partition}:iam::{stack.account}:role/{SERVICE_LINKED_ROLE}"],
                    conditions={"StringEquals": {"iam:AWSServiceName": SERVICE}},
                ),
                iam.PolicyStatement(
                    sid="TrustedAccess",
                    actions=["organizations:EnableAWSServiceAccess"],
                    resources=["*"],
                    conditions={"StringEquals": {"organizations:ServicePrincipal": SERVICE}},
                ),
                iam.PolicyStatement(
                    sid="ReadOrganization", actions=["organizations:DescribeOrganization"], resources=["*"]
                ),
                iam.PolicyStatement(
                    sid="Logs",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[f"{self.log_group.log_group_arn}:*"],
                ),
            ],
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            managed_policies=[self.policy],
            description="Opts the organization in to Compute Optimizer (org stack custom resource)",
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime.PYTHON_3_14,
            architecture=lambda_.Architecture.ARM_64,
            handler="index.handler",
            code=lambda_.Code.from_inline(source),
            role=self.role,
            timeout=cdk.Duration.minutes(1),
            log_group=self.log_group,
        )
        self.function.node.add_dependency(self.policy)
        self.enrollment = cdk.CustomResource(self, "Enrollment", service_token=self.function.function_arn)
        self._acknowledge()

    def _acknowledge(self) -> None:
        acknowledge(
            self.policy.node.default_child,
            (
                "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                "compute-optimizer:UpdateEnrollmentStatus and organizations:DescribeOrganization support no "
                "resource-level permissions; organizations:EnableAWSServiceAccess is held to Compute Optimizer's "
                "service principal by condition",
            ),
            (
                f"AwsSolutions::AwsSolutions-IAM5[Resource::<{cdk.Stack.of(self).get_logical_id(self.log_group.node.default_child)}.Arn>:*]",
                "log streams of this function's own log group, whose names Lambda chooses",
            ),
        )
        function = self.function.node.default_child
        acknowledge_unreserved_concurrency(function, why_safe=_DEPLOY_TIME)
        acknowledge(
            function,
            (
                "NIST.800.53.R5::NIST.800.53.R5-LambdaDLQ",
                f"{_DEPLOY_TIME}; invoked synchronously by CloudFormation, so a failure fails the deploy",
            ),
            (
                "NIST.800.53.R5::NIST.800.53.R5-LambdaInsideVPC",
                "the management account has no VPC; the function calls only the Compute Optimizer API",
            ),
        )
        skip(
            function,
            ("CKV_AWS_116", f"{_DEPLOY_TIME}; invoked synchronously by CloudFormation, a DLQ never receives events"),
            ("CKV_AWS_117", "the management account has no VPC; the function calls only the Compute Optimizer API"),
            ("CKV_AWS_272", "inline code written by this stack's template; there is no package to sign"),
        )
