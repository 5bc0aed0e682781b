"""Validates each AWS Backup restore test of the database with data (ops/restore_validation).

An EventBridge rule on "Restore Job State Change" (COMPLETED, this environment's restore
testing plan only) invokes a function in the VPC that compares the restore canary on the
restored instance with the source and reports through backup:PutRestoreValidationResult.
https://docs.aws.amazon.com/aws-backup/latest/devguide/restore-testing-validation.html
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_backup as backup
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from constructs_lib.checkov import skip
from constructs_lib.lambda_deps import RESTORE_VALIDATION, dependencies_layer, function_code
from constructs_lib.nag import acknowledge, acknowledge_unreserved_concurrency
from constructs_lib.retention import retention

# AWS Backup names every restore-test instance like this; the function may describe only those.
RESTORED_INSTANCE_PREFIX = "awsbackup-restore-test-"
RESTORE_JOB_EVENT = "Restore Job State Change"
_VPC_POLICY = "arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
_NO_DLQ = (
    "invoked asynchronously by EventBridge, which retries; a validation that never reports leaves the restore "
    "test's validation status unset in the AWS Backup console, where it is visible, and the next weekly test runs anew"
)


class RestoreValidation(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        restore_testing_plan: backup.CfnRestoreTestingPlan,
        vpc: ec2.IVpc,
        database_security_group: ec2.ISecurityGroup,
        source_host: str,
        source_port: int,
        database_name: str,
        read_only_secret: secretsmanager.ISecret,
        encryption_key: kms.IKey,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, id_)
        stack = cdk.Stack.of(self)

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            allow_all_outbound=False,
            description="Restore validation: PostgreSQL on the source and the restored instance, AWS APIs over HTTPS",
        )
        # Backup and RDS have no interface endpoint in this VPC: their APIs go through the NAT gateways.
        self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "AWS APIs (NAT and VPC endpoints)")
        # Restored instances get the database's security group (DataBackup's restore overrides).
        self.security_group.connections.allow_to(
            database_security_group, ec2.Port.tcp(source_port), "read the restore canary"
        )

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            encryption_key=encryption_key,
            retention=retention(log_retention_days),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description="Read the read-only role's secret, describe restore-test instances, report validation results",
            statements=[
                iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=[read_only_secret.secret_arn]),
                iam.PolicyStatement(
                    actions=["kms:Decrypt"],
                    resources=[encryption_key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{stack.region}.amazonaws.com"}},
                ),
                iam.PolicyStatement(
                    actions=["rds:DescribeDBInstances"],
                    resources=[
                        stack.format_arn(
                            service="rds",
                            resource="db",
                            resource_name=f"{RESTORED_INSTANCE_PREFIX}*",
                            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                        )
                    ],
                ),
                iam.PolicyStatement(actions=["backup:PutRestoreValidationResult"], resources=["*"]),
                iam.PolicyStatement(
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[self.log_group.log_group_arn]
                ),
            ],
        )
        acknowledge(
            self.policy,
            (
                f"AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:rds:{stack.region}:{stack.account}:"
                f"db:{RESTORED_INSTANCE_PREFIX}*]",
                "restore-test instances get a generated name with AWS Backup's fixed prefix; the function may only describe those",
            ),
            (
                "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                "backup:PutRestoreValidationResult on the restore job of the event, whose id exists only once the test "
                "runs; the statement grants that one action",
            ),
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            managed_policies=[
                self.policy,
                iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSLambdaVPCAccessExecutionRole"),
            ],
        )
        acknowledge(
            self.role,
            (
                f"AwsSolutions::AwsSolutions-IAM4[Policy::{_VPC_POLICY}]",
                "AWS's policy for the ENIs a VPC function needs; the function must be in the VPC to reach the database",
            ),
        )
        # pg8000 and its pure-Python dependencies, as the same kind of layer as the key minter's.
        self.dependencies = dependencies_layer(
            self,
            "Dependencies",
            dependencies=RESTORE_VALIDATION,
            description="pg8000 for the restore validation function",
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description="Validates AWS Backup restore tests of the database against its restore canary",
            runtime=RESTORE_VALIDATION.runtime,
            architecture=RESTORE_VALIDATION.architecture,
            handler="handler.handler",
            code=function_code(RESTORE_VALIDATION),
            layers=[self.dependencies],
            role=self.role,
            timeout=cdk.Duration.minutes(2),
            memory_size=256,
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            security_groups=[self.security_group],
            log_group=self.log_group,
            environment={
                "RO_SECRET_ARN": read_only_secret.secret_arn,
                "SOURCE_HOST": source_host,
                "SOURCE_PORT": str(source_port),
                "DB_NAME": database_name,
            },
            environment_encryption=encryption_key,
        )
        cfn_function = self.function.node.default_child
        acknowledge(cfn_function, ("NIST.800.53.R5::NIST.800.53.R5-LambdaDLQ", _NO_DLQ))
        skip(cfn_function, ("CKV_AWS_116", _NO_DLQ))
        acknowledge_unreserved_concurrency(
            cfn_function, why_safe="one restore test a week per environment; each invocation reads one canary table"
        )

        self.rule = events.Rule(
            self,
            "OnRestoreTestCompleted",
            description="Validate the restored database when a restore test of this environment completes",
            event_pattern=events.EventPattern(
                source=["aws.backup"],
                detail_type=[RESTORE_JOB_EVENT],
                detail={
                    "status": ["COMPLETED"],
                    "restoreTestingPlanArn": [restore_testing_plan.attr_restore_testing_plan_arn],
                },
            ),
            targets=[targets.LambdaFunction(self.function, retry_attempts=2)],
        )
