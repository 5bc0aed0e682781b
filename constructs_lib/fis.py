"""Failover drills: AWS FIS experiment templates for one environment.

Three drills, each with its own least-privilege role, the environment's critical alarms as
stop conditions (FIS stops the experiment when any of them goes to ALARM) and its log in
CloudWatch Logs. The procedure and how recovery time is measured: docs/failover-drills.md.

Action ids, target resource types and parameters follow the FIS actions reference,
https://docs.aws.amazon.com/fis/latest/userguide/fis-actions-reference.html, and its
permissions per action; tests/deploy/test_fis_templates.py rehearses them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_fis as fis
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from constructs import Construct

from constructs_lib.nag import acknowledge
from constructs_lib.retention import retention

# FIS allows at most 5 stop conditions per template (FIS quotas).
MAX_STOP_CONDITIONS = 5
# How long one AZ's node subnets lose connectivity, and how much warning spot nodes get
# (EC2 gives two minutes for real interruptions).
AZ_OUTAGE = "PT10M"
SPOT_WARNING = "PT2M"
LOG_SCHEMA_VERSION = 2
# EKS tags every instance of a managed node group with its name.
NODEGROUP_TAG = "eks:nodegroup-name"
FIS_TAG = "managedByFIS"


@dataclass(frozen=True)
class Drill:
    key: str
    description: str
    template: fis.CfnExperimentTemplate
    role: iam.Role


class FailoverDrills(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name_prefix: str,
        database: rds.IDatabaseInstance,
        multi_az: bool,
        vpc: ec2.IVpc,
        zone_subnets: Sequence[ec2.ISubnet],
        spot_nodegroup_name: str,
        stop_alarm_arns: Mapping[str, str],
        log_key: kms.IKey,
        log_retention_days: int,
    ) -> None:
        """`zone_subnets`: the node subnets of the one zone the AZ drill takes away."""
        super().__init__(scope, id_)
        if not 0 < len(stop_alarm_arns) <= MAX_STOP_CONDITIONS:
            raise ValueError(f"{len(stop_alarm_arns)} stop alarms; FIS takes 1 to {MAX_STOP_CONDITIONS}")
        stack = cdk.Stack.of(self)
        self.name_prefix = name_prefix
        self.stop_conditions = [
            fis.CfnExperimentTemplate.ExperimentTemplateStopConditionProperty(source="aws:cloudwatch:alarm", value=arn)
            for arn in stop_alarm_arns.values()
        ]
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/fis/{name_prefix}",
            encryption_key=log_key,
            retention=retention(log_retention_days),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.drills: dict[str, Drill] = {}

        self._drill(
            "rds-failover",
            description=(
                "Reboot the primary database with failover to its Multi-AZ standby"
                if multi_az
                else "Reboot the primary database (single-AZ: no standby to fail over to)"
            ),
            action_id="aws:rds:reboot-db-instances",
            target_key="DBInstances",
            target=fis.CfnExperimentTemplate.ExperimentTemplateTargetProperty(
                resource_type="aws:rds:db", resource_arns=[database.instance_arn], selection_mode="ALL"
            ),
            parameters={"forceFailover": "true" if multi_az else "false"},
            statements=[
                iam.PolicyStatement(
                    actions=["rds:RebootDBInstance", "rds:DescribeDBInstances"], resources=[database.instance_arn]
                ),
                iam.PolicyStatement(actions=["tag:GetResources"], resources=["*"]),
            ],
        )

        network_acls = stack.format_arn(service="ec2", resource="network-acl", resource_name="*")
        vpc_arn = stack.format_arn(service="ec2", resource="vpc", resource_name=vpc.vpc_id)
        subnet_arns = [
            stack.format_arn(service="ec2", resource="subnet", resource_name=s.subnet_id) for s in zone_subnets
        ]
        self._drill(
            "az-node-loss",
            description=f"Cut every connection of the node subnets in {zone_subnets[0].availability_zone} for {AZ_OUTAGE}",
            action_id="aws:network:disrupt-connectivity",
            target_key="Subnets",
            target=fis.CfnExperimentTemplate.ExperimentTemplateTargetProperty(
                resource_type="aws:ec2:subnet", resource_arns=subnet_arns, selection_mode="ALL"
            ),
            parameters={"duration": AZ_OUTAGE, "scope": "all"},
            statements=[
                # FIS swaps the subnets' network ACL for a deny-all one it creates and tags,
                # then restores the original association and deletes its own.
                iam.PolicyStatement(
                    actions=["ec2:CreateNetworkAcl"],
                    resources=[network_acls],
                    conditions={"StringEquals": {f"aws:RequestTag/{FIS_TAG}": "true"}},
                ),
                iam.PolicyStatement(actions=["ec2:CreateNetworkAcl"], resources=[vpc_arn]),
                iam.PolicyStatement(
                    actions=["ec2:CreateTags"],
                    resources=[network_acls],
                    conditions={
                        "StringEquals": {"ec2:CreateAction": "CreateNetworkAcl", f"aws:RequestTag/{FIS_TAG}": "true"}
                    },
                ),
                iam.PolicyStatement(
                    actions=["ec2:CreateNetworkAclEntry", "ec2:DeleteNetworkAcl"],
                    resources=[network_acls],
                    conditions={"StringEquals": {f"ec2:ResourceTag/{FIS_TAG}": "true"}},
                ),
                iam.PolicyStatement(
                    actions=["ec2:ReplaceNetworkAclAssociation"], resources=[*subnet_arns, network_acls]
                ),
                iam.PolicyStatement(
                    actions=[
                        "ec2:DescribeManagedPrefixLists",
                        "ec2:DescribeNetworkAcls",
                        "ec2:DescribeSubnets",
                        "ec2:DescribeVpcs",
                        "ec2:GetManagedPrefixListEntries",
                    ],
                    resources=["*"],
                ),
            ],
            wildcards=(
                (
                    f"arn:<AWS::Partition>:ec2:{stack.region}:{stack.account}:network-acl/*",
                    "the network ACL FIS creates has no id before the experiment; every write to one is conditioned "
                    f"on its {FIS_TAG}=true tag",
                ),
            ),
        )

        self._drill(
            "spot-interruption",
            description=f"Send a spot interruption notice ({SPOT_WARNING} warning) to half of the spot nodes",
            action_id="aws:ec2:send-spot-instance-interruptions",
            target_key="SpotInstances",
            target=fis.CfnExperimentTemplate.ExperimentTemplateTargetProperty(
                resource_type="aws:ec2:spot-instance",
                resource_tags={NODEGROUP_TAG: spot_nodegroup_name},
                filters=[
                    fis.CfnExperimentTemplate.ExperimentTemplateTargetFilterProperty(
                        path="State.Name", values=["running"]
                    )
                ],
                selection_mode="PERCENT(50)",
            ),
            parameters={"durationBeforeInterruption": SPOT_WARNING},
            statements=[
                iam.PolicyStatement(
                    actions=["ec2:SendSpotInstanceInterruptions"],
                    resources=[stack.format_arn(service="ec2", resource="instance", resource_name="*")],
                    conditions={"StringEquals": {f"aws:ResourceTag/{NODEGROUP_TAG}": spot_nodegroup_name}},
                ),
                iam.PolicyStatement(actions=["ec2:DescribeInstances"], resources=["*"]),
            ],
            wildcards=(
                (
                    f"arn:<AWS::Partition>:ec2:{stack.region}:{stack.account}:instance/*",
                    f"spot nodes come and go; the action is conditioned on the spot node group's {NODEGROUP_TAG} tag",
                ),
            ),
        )

    def _drill(
        self,
        key: str,
        *,
        description: str,
        action_id: str,
        target_key: str,
        target: fis.CfnExperimentTemplate.ExperimentTemplateTargetProperty,
        parameters: dict[str, str],
        statements: list[iam.PolicyStatement],
        wildcards: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """`wildcards`: (resource ARN pattern as cdk-nag prints it, why) for each wildcard resource."""
        policy = iam.ManagedPolicy(
            self,
            f"{key}-policy",
            description=f"FIS drill {key}: {action_id} on its target only, and delivery of the experiment log",
            statements=[
                *statements,
                # FIS delivers the experiment log as vended logs on the role's behalf.
                # https://docs.aws.amazon.com/fis/latest/userguide/monitoring-logging.html
                iam.PolicyStatement(
                    actions=[
                        "logs:CreateLogDelivery",
                        "logs:PutResourcePolicy",
                        "logs:DescribeResourcePolicies",
                        "logs:DescribeLogGroups",
                    ],
                    resources=["*"],
                ),
            ],
        )
        acknowledge(
            policy,
            (
                "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                "describe/list calls and the log-delivery calls FIS makes support no resource-level permissions",
            ),
            *((f"AwsSolutions::AwsSolutions-IAM5[Resource::{arn}]", reason) for arn, reason in wildcards),
        )
        role = iam.Role(
            self,
            f"{key}-role",
            assumed_by=iam.ServicePrincipal("fis.amazonaws.com").with_conditions(
                {"StringEquals": {"aws:SourceAccount": cdk.Stack.of(self).account}}
            ),
            managed_policies=[policy],
            description=f"FIS experiment role for the {key} drill",
        )
        template = fis.CfnExperimentTemplate(
            self,
            key,
            description=description,
            role_arn=role.role_arn,
            stop_conditions=self.stop_conditions,
            targets={"target": target},
            actions={
                key: fis.CfnExperimentTemplate.ExperimentTemplateActionProperty(
                    action_id=action_id, parameters=parameters, targets={target_key: "target"}
                )
            },
            log_configuration=fis.CfnExperimentTemplate.ExperimentTemplateLogConfigurationProperty(
                log_schema_version=LOG_SCHEMA_VERSION,
                cloud_watch_logs_configuration={"LogGroupArn": f"{self.log_group.log_group_arn}"},
            ),
            experiment_options=fis.CfnExperimentTemplate.ExperimentTemplateExperimentOptionsProperty(
                account_targeting="single-account", empty_target_resolution_mode="fail"
            ),
            tags={"Name": f"{self.name_prefix}-{key}"},
        )
        self.drills[key] = Drill(key=key, description=description, template=template, role=role)
