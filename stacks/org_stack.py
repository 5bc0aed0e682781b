"""The organization, deployed in the management account: OUs, member accounts, SCPs and the
organization trail. Deploy it first; see README "From nothing"."""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_organizations as orgs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from config.model import OrgConfig
from constructs_lib.checkov import skip
from constructs_lib.compute_optimizer import ComputeOptimizerEnrollment
from constructs_lib.log_keys import admit_cloudwatch_logs
from constructs_lib.nag import acknowledge

# Global services whose API endpoints live in us-east-1 whatever region a user works in:
# the region guardrail must not deny them.
GLOBAL_SERVICE_ACTIONS = [
    "a4b:*",
    "acm:*",
    "aws-marketplace-management:*",
    "aws-marketplace:*",
    "aws-portal:*",
    "budgets:*",
    "ce:*",
    "chime:*",
    "cloudfront:*",
    "config:*",
    "cur:*",
    "directconnect:*",
    "ec2:DescribeRegions",
    "ec2:DescribeTransitGateways",
    "ec2:DescribeVpnGateways",
    "fms:*",
    "globalaccelerator:*",
    "health:*",
    "iam:*",
    "importexport:*",
    "kms:*",
    "mobileanalytics:*",
    "networkmanager:*",
    "organizations:*",
    "pricing:*",
    "route53:*",
    "route53domains:*",
    "route53-recovery-cluster:*",
    "route53-recovery-control-config:*",
    "route53-recovery-readiness:*",
    "s3:GetAccountPublic*",
    "s3:ListAllMyBuckets",
    "s3:ListMultiRegionAccessPoints",
    "s3:PutAccountPublic*",
    "shield:*",
    "sts:*",
    "support:*",
    "trustedadvisor:*",
    "waf-regional:*",
    "waf:*",
    "wafv2:*",
    "wellarchitected:*",
]


def _policy(statements: list[dict]) -> dict:
    return {"Version": "2012-10-17", "Statement": statements}


class OrganizationStack(cdk.Stack):
    def __init__(self, scope: Construct, id_: str, *, cfg: OrgConfig, **kwargs) -> None:
        super().__init__(scope, id_, **kwargs)
        org = cfg.organization
        root = org.root_id

        def ou(name: str, parent: str) -> orgs.CfnOrganizationalUnit:
            return orgs.CfnOrganizationalUnit(self, f"{name}Ou", name=name, parent_id=parent)

        self.security_ou = ou("Security", root)
        self.infrastructure_ou = ou("Infrastructure", root)
        self.workloads_ou = ou("Workloads", root)
        self.nonprod_ou = ou("NonProd", self.workloads_ou.attr_id)
        self.prod_ou = ou("Prod", self.workloads_ou.attr_id)

        self.accounts: dict[str, orgs.CfnAccount] = {}
        if not org.adopt_existing_accounts:
            members = [("tooling", org.tooling, self.infrastructure_ou)] + [
                (name, env.account, self.prod_ou if env.production else self.nonprod_ou)
                for name, env in cfg.environments.items()
            ]
            for name, account, parent in members:
                created = orgs.CfnAccount(
                    self,
                    f"{name.capitalize()}Account",
                    account_name=account.name,
                    email=account.email,
                    parent_ids=[parent.attr_id],
                    role_name="OrganizationAccountAccessRole",
                )
                # Closing an account is a human decision: deleting the stack must not do it.
                created.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
                # CloudFormation must create the accounts of one template one after another.
                if self.accounts:
                    created.add_resource_dependency(list(self.accounts.values())[-1])
                self.accounts[name] = created
                cdk.CfnOutput(self, f"{name.capitalize()}AccountId", value=created.attr_account_id)

        guarded_ous = [self.security_ou, self.infrastructure_ou, self.workloads_ou]
        self.service_control_policies = {
            "DenyLeaveOrganization": _policy(
                [
                    {
                        "Sid": "DenyLeave",
                        "Effect": "Deny",
                        "Action": "organizations:LeaveOrganization",
                        "Resource": "*",
                    },
                ]
            ),
            "ProtectSecurityServices": _policy(
                [
                    {
                        "Sid": "DenyDisablingAudit",
                        "Effect": "Deny",
                        "Action": [
                            "cloudtrail:StopLogging",
                            "cloudtrail:DeleteTrail",
                            "cloudtrail:UpdateTrail",
                            "cloudtrail:PutEventSelectors",
                            "guardduty:DeleteDetector",
                            "guardduty:DisassociateFromMasterAccount",
                            "guardduty:DisassociateFromAdministratorAccount",
                            "guardduty:UpdateDetector",
                            "guardduty:DeleteMembers",
                            "guardduty:StopMonitoringMembers",
                            "config:StopConfigurationRecorder",
                            "config:DeleteConfigurationRecorder",
                            "config:DeleteDeliveryChannel",
                            "config:DeleteConfigRule",
                        ],
                        "Resource": "*",
                        # CloudFormation updates, rolls back and deletes the security stack's detector and
                        # recorder through the bootstrap execution role, which only CloudFormation can assume.
                        "Condition": {
                            "ArnNotLike": {
                                "aws:PrincipalArn": [
                                    "arn:aws:iam::*:role/OrganizationAccountAccessRole",
                                    f"arn:aws:iam::*:role/cdk-{cdk.DefaultStackSynthesizer.DEFAULT_QUALIFIER}-cfn-exec-role-*",
                                ]
                            }
                        },
                    },
                ]
            ),
            "DenyOutsideRegions": _policy(
                [
                    {
                        "Sid": "DenyOutsideConfiguredRegions",
                        "Effect": "Deny",
                        "NotAction": GLOBAL_SERVICE_ACTIONS,
                        "Resource": "*",
                        "Condition": {"StringNotEquals": {"aws:RequestedRegion": cfg.regions}},
                    },
                ]
            ),
            "DenyRootUser": _policy(
                [
                    {
                        "Sid": "DenyRootUser",
                        "Effect": "Deny",
                        "Action": "*",
                        "Resource": "*",
                        "Condition": {"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:root"}},
                    },
                ]
            ),
        }
        self.policies = [
            orgs.CfnPolicy(
                self,
                name,
                name=f"{cfg.project}-{name}",
                type="SERVICE_CONTROL_POLICY",
                content=content,
                target_ids=[target.attr_id for target in guarded_ous],
                description=f"{cfg.project} guardrail: {name}",
            )
            for name, content in self.service_control_policies.items()
        ]

        self.trail_key = kms.Key(
            self,
            "TrailKey",
            description="Organization CloudTrail log encryption",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        trail_name = f"{cfg.project}-organization-trail"
        trail_arn = f"arn:{self.partition}:cloudtrail:{self.region}:{self.account}:trail/{trail_name}"
        self.trail_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailEncrypt",
                principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
                actions=["kms:GenerateDataKey*", "kms:DescribeKey"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceArn": trail_arn}},
            )
        )
        # The trail's CloudWatch log group is encrypted with this key too.
        admit_cloudwatch_logs(self.trail_key)

        self.access_log_bucket = s3.Bucket(
            self,
            "TrailAccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            removal_policy=cdk.RemovalPolicy.RETAIN,
            lifecycle_rules=[s3.LifecycleRule(expiration=cdk.Duration.days(org.cloudtrail_retention_days))],
        )
        self.trail_bucket = s3.Bucket(
            self,
            "TrailBucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.trail_key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_lock_enabled=True,
            # Governance mode: tamper-evident for everyone but a deliberate break-glass role.
            object_lock_default_retention=s3.ObjectLockRetention.governance(
                cdk.Duration.days(org.cloudtrail_retention_days)
            ),
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix="trail-bucket/",
            removal_policy=cdk.RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                            transition_after=cdk.Duration.days(90),
                        )
                    ],
                    expiration=cdk.Duration.days(org.cloudtrail_retention_days),
                )
            ],
        )
        self.trail = cloudtrail.Trail(
            self,
            "OrganizationTrail",
            trail_name=trail_name,
            bucket=self.trail_bucket,
            encryption_key=self.trail_key,
            is_organization_trail=True,
            org_id=org.id,
            is_multi_region_trail=True,
            include_global_service_events=True,
            enable_file_validation=True,
            send_to_cloud_watch_logs=True,
            cloud_watch_log_group=logs.LogGroup(
                self,
                "TrailLogGroup",
                encryption_key=self.trail_key,
                retention=logs.RetentionDays.ONE_YEAR,
                removal_policy=cdk.RemovalPolicy.RETAIN,
            ),
            management_events=cloudtrail.ReadWriteType.ALL,
        )
        acknowledge(
            self.trail.node.find_child("LogsRole").node.find_child("DefaultPolicy").node.default_child,
            (
                "NIST.800.53.R5::NIST.800.53.R5-IAMNoInlinePolicy",
                "CDK-generated policy of the CloudTrail delivery role: logs:CreateLogStream/PutLogEvents on the trail's log group only",
            ),
        )
        acknowledge(
            self.access_log_bucket.node.default_child,
            (
                "NIST.800.53.R5::NIST.800.53.R5-S3DefaultEncryptionKMS",
                "S3 server access log delivery supports only SSE-S3 on the target bucket, not SSE-KMS",
            ),
            (
                "NIST.800.53.R5::NIST.800.53.R5-S3BucketReplicationEnabled",
                "holds access logs of the trail bucket only; the audit record itself is the object-locked trail bucket",
            ),
        )
        skip(
            self.access_log_bucket.node.default_child,
            (
                "CKV_AWS_18",
                "this is the access-log target of the trail bucket; logging it would need another bucket without end",
            ),
        )
        acknowledge(
            self.trail_bucket.node.default_child,
            (
                "NIST.800.53.R5::NIST.800.53.R5-S3BucketReplicationEnabled",
                "multi-region organization trail with Object Lock in governance mode; a second-region copy is left to the "
                "log-archive account design (see README, Organization)",
            ),
        )
        # Right-sizing recommendations for every account's nodes, volumes and functions.
        self.compute_optimizer = ComputeOptimizerEnrollment(self, "ComputeOptimizer", log_key=self.trail_key)
        cdk.CfnOutput(self, "ServiceControlPolicies", value=json.dumps(sorted(self.service_control_policies)))
