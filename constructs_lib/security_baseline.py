"""Account security baseline for one environment account and region.

GuardDuty (EKS audit logs and runtime monitoring, RDS logins, S3 data events, EBS malware
scans), Security Hub with AWS Foundational Security Best Practices, AWS Config recording
into a hardened bucket, and Amazon Inspector for ECR images and EC2 nodes.

Each of these is a singleton per account and region. If the organization already manages
one centrally (a GuardDuty/Security Hub delegated administrator with auto-enable, Control
Tower's Config recorder), creating it here fails the deploy with "already exists": leave
this stack out of `stage.py` for such accounts.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_config as config
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_guardduty as guardduty
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_securityhub as securityhub
from aws_cdk import custom_resources as cr
from constructs import Construct

from constructs_lib.checkov import FRAMEWORK_FUNCTION_SKIPS, skip
from constructs_lib.log_keys import admit_cloudwatch_logs
from constructs_lib.nag import acknowledge
from constructs_lib.retention import retention

GUARDDUTY_FEATURES: dict[str, tuple[str, ...]] = {
    "EKS_AUDIT_LOGS": (),
    # GuardDuty installs and upgrades its runtime agent as an EKS add-on.
    "EKS_RUNTIME_MONITORING": ("EKS_ADDON_MANAGEMENT",),
    "RDS_LOGIN_EVENTS": (),
    "S3_DATA_EVENTS": (),
    "EBS_MALWARE_PROTECTION": (),
}
FSBP_STANDARD = "standards/aws-foundational-security-best-practices/v/1.0.0"
INSPECTOR_RESOURCE_TYPES = ("ECR", "EC2")
INSPECTOR_SERVICE_ROLE = "aws-service-role/inspector2.amazonaws.com/AWSServiceRoleForAmazonInspector2"
CONFIG_ROLE_POLICY = "service-role/AWS_ConfigRole"
CONFIG_SNAPSHOT_FREQUENCY = "TwentyFour_Hours"
NONCURRENT_VERSION_DAYS = 30
SDK_FUNCTION_ID = "AWS679f53fac002430cb0da5b7982bd2287"
_BASIC_POLICY = "arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"

_LOG_BUCKET_REASON = (
    "S3 server access log target bucket: S3 delivers access logs only to buckets with SSE-S3, and logging the "
    "log bucket into itself would loop"
)
_NO_REPLICATION_REASON = (
    "AWS Config history: Config keeps the configuration items itself and re-delivers snapshots daily, so a "
    "replica bucket would duplicate data the service already holds"
)


def fsbp_standard_arn(partition: str, region: str) -> str:
    return f"arn:{partition}:securityhub:{region}::{FSBP_STANDARD}"


class SecurityBaseline(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        include_global_resources: bool,
        audit_retention_days: int,
        log_retention_days: int,
        production: bool,
    ) -> None:
        """`include_global_resources` records IAM and other global types: true in one region only."""
        super().__init__(scope, id_)
        stack = cdk.Stack.of(self)
        removal = cdk.RemovalPolicy.RETAIN if production else cdk.RemovalPolicy.DESTROY

        self.detector = guardduty.CfnDetector(
            self,
            "GuardDuty",
            enable=True,
            finding_publishing_frequency="FIFTEEN_MINUTES",
            features=[
                guardduty.CfnDetector.CFNFeatureConfigurationProperty(
                    name=feature,
                    status="ENABLED",
                    additional_configuration=[
                        guardduty.CfnDetector.CFNFeatureAdditionalConfigurationProperty(name=extra, status="ENABLED")
                        for extra in extras
                    ]
                    or None,
                )
                for feature, extras in GUARDDUTY_FEATURES.items()
            ],
        )

        self.hub = securityhub.CfnHub(
            self,
            "SecurityHub",
            enable_default_standards=False,
            auto_enable_controls=True,
            control_finding_generator="SECURITY_CONTROL",
        )
        self.fsbp = securityhub.CfnStandard(
            self,
            "FoundationalBestPractices",
            standards_arn=fsbp_standard_arn(stack.partition, stack.region),
        )
        self.fsbp.add_resource_dependency(self.hub)

        self._config(name, include_global_resources, audit_retention_days, removal)
        self._inspector(log_retention_days)

    def _config(
        self, name: str, include_global_resources: bool, audit_retention_days: int, removal: cdk.RemovalPolicy
    ) -> None:
        stack = cdk.Stack.of(self)
        self.config_key = kms.Key(
            self,
            "ConfigKey",
            description=f"{name}: AWS Config history, baseline function logs",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        admit_cloudwatch_logs(self.config_key)
        self.access_log_bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            removal_policy=removal,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=cdk.Duration.days(audit_retention_days),
                    noncurrent_version_expiration=cdk.Duration.days(NONCURRENT_VERSION_DAYS),
                )
            ],
        )
        acknowledge(
            self.access_log_bucket.node.default_child,
            ("AwsSolutions::AwsSolutions-S1", _LOG_BUCKET_REASON),
            ("NIST.800.53.R5::NIST.800.53.R5-S3BucketLoggingEnabled", _LOG_BUCKET_REASON),
            ("NIST.800.53.R5::NIST.800.53.R5-S3DefaultEncryptionKMS", _LOG_BUCKET_REASON),
            (
                "NIST.800.53.R5::NIST.800.53.R5-S3BucketReplicationEnabled",
                "access logs of the Config bucket in the same account; losing them loses no configuration history",
            ),
        )
        skip(self.access_log_bucket.node.default_child, ("CKV_AWS_18", _LOG_BUCKET_REASON))

        self.config_bucket = s3.Bucket(
            self,
            "ConfigBucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.config_key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,
            removal_policy=removal,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix="config-bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=cdk.Duration.days(audit_retention_days),
                    noncurrent_version_expiration=cdk.Duration.days(NONCURRENT_VERSION_DAYS),
                )
            ],
        )
        acknowledge(
            self.config_bucket.node.default_child,
            ("NIST.800.53.R5::NIST.800.53.R5-S3BucketReplicationEnabled", _NO_REPLICATION_REASON),
        )

        self.config_role = iam.Role(
            self,
            "ConfigRole",
            assumed_by=iam.ServicePrincipal("config.amazonaws.com"),
            description=f"{name}: AWS Config recorder: read resource configurations, deliver to the Config bucket",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(CONFIG_ROLE_POLICY)],
        )
        acknowledge(
            self.config_role,
            (
                f"AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{CONFIG_ROLE_POLICY}]",
                "AWS_ConfigRole is AWS's maintained read-only policy for the recorder; it follows every new resource "
                "type Config records, which a hand-written policy would not",
            ),
        )
        delivery_prefix = f"AWSLogs/{stack.account}/Config/*"
        self.config_policy = iam.ManagedPolicy(
            self,
            "ConfigDeliveryPolicy",
            roles=[self.config_role],
            description="Deliver configuration history and snapshots to the Config bucket only",
            statements=[
                iam.PolicyStatement(
                    sid="CheckBucket",
                    actions=["s3:GetBucketAcl", "s3:ListBucket"],
                    resources=[self.config_bucket.bucket_arn],
                ),
                iam.PolicyStatement(
                    sid="Deliver",
                    actions=["s3:PutObject"],
                    resources=[self.config_bucket.arn_for_objects(delivery_prefix)],
                ),
                iam.PolicyStatement(
                    sid="Encrypt", actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[self.config_key.key_arn]
                ),
            ],
        )
        bucket_id = stack.resolve(stack.get_logical_id(self.config_bucket.node.default_child))
        acknowledge(
            self.config_policy,
            (
                f"AwsSolutions::AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/AWSLogs/{stack.account}/Config/*]",
                "Config names its objects by date and delivery id under AWSLogs/<account>/Config/: the wildcard is that key suffix",
            ),
        )

        self.recorder = config.CfnConfigurationRecorder(
            self,
            "Recorder",
            role_arn=self.config_role.role_arn,
            recording_group=config.CfnConfigurationRecorder.RecordingGroupProperty(
                all_supported=True,
                include_global_resource_types=include_global_resources,
            ),
        )
        self.delivery_channel = config.CfnDeliveryChannel(
            self,
            "DeliveryChannel",
            s3_bucket_name=self.config_bucket.bucket_name,
            s3_kms_key_arn=self.config_key.key_arn,
            config_snapshot_delivery_properties=config.CfnDeliveryChannel.ConfigSnapshotDeliveryPropertiesProperty(
                delivery_frequency=CONFIG_SNAPSHOT_FREQUENCY
            ),
        )
        # Config checks on creation that it can write to the bucket with the recorder's role.
        self.delivery_channel.add_resource_dependency(self.recorder)
        self.delivery_channel.node.add_dependency(self.config_policy, self.config_bucket)

    def _inspector(self, log_retention_days: int) -> None:
        """No CloudFormation type turns Inspector on: an SDK call does, and turns it off on delete."""
        stack = cdk.Stack.of(self)
        call = {"service": "Inspector2", "parameters": {"resourceTypes": list(INSPECTOR_RESOURCE_TYPES)}}
        enable = cr.AwsSdkCall(action="Enable", physical_resource_id=cr.PhysicalResourceId.of("inspector2"), **call)
        self.inspector = cr.AwsCustomResource(
            self,
            "Inspector",
            on_create=enable,
            on_update=enable,
            on_delete=cr.AwsSdkCall(action="Disable", **call),
            install_latest_aws_sdk=False,
            log_group=logs.LogGroup(
                self,
                "InspectorLogs",
                retention=retention(log_retention_days),
                encryption_key=self.config_key,
                removal_policy=cdk.RemovalPolicy.DESTROY,
            ),
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [
                    iam.PolicyStatement(
                        sid="EnableInspector", actions=["inspector2:Enable", "inspector2:Disable"], resources=["*"]
                    ),
                    iam.PolicyStatement(
                        sid="InspectorServiceRole",
                        actions=["iam:CreateServiceLinkedRole"],
                        resources=[f"arn:{stack.partition}:iam::{stack.account}:role/{INSPECTOR_SERVICE_ROLE}"],
                        conditions={"StringEquals": {"iam:AWSServiceName": "inspector2.amazonaws.com"}},
                    ),
                ]
            ),
        )
        self._acknowledge_sdk_function()
        # With Inspector on, ECR's enhanced scanning is Inspector: scan on push and whenever a
        # new CVE affects an image already pushed.
        self.registry_scanning = ecr.CfnRegistryScanningConfiguration(
            self,
            "RegistryScanning",
            scan_type="ENHANCED",
            rules=[
                ecr.CfnRegistryScanningConfiguration.ScanningRuleProperty(
                    scan_frequency="CONTINUOUS_SCAN",
                    repository_filters=[
                        ecr.CfnRegistryScanningConfiguration.RepositoryFilterProperty(
                            filter="*", filter_type="WILDCARD"
                        )
                    ],
                )
            ],
        )
        self.registry_scanning.node.add_dependency(self.inspector)

    def _acknowledge_sdk_function(self) -> None:
        acknowledge(
            self.inspector.node.find_child("CustomResourcePolicy").node.default_child,
            (
                "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                "inspector2:Enable and inspector2:Disable act on the calling account and support no resource-level "
                "permissions (Service Authorization Reference)",
            ),
            (
                "NIST.800.53.R5::NIST.800.53.R5-IAMNoInlinePolicy",
                "CDK-generated policy of the AwsCustomResource: inspector2:Enable/Disable and the Inspector "
                "service-linked role only",
            ),
        )
        # CDK's singleton function behind every AwsCustomResource of the stack.
        function = cdk.Stack.of(self).node.find_child(SDK_FUNCTION_ID)
        acknowledge(
            function.node.find_child("ServiceRole"),
            (
                f"AwsSolutions::AwsSolutions-IAM4[Policy::{_BASIC_POLICY}]",
                "role of CDK's AwsCustomResource function, which CDK creates with this AWS policy for its own logs",
            ),
        )
        _deploy_time = "CDK's AwsCustomResource function runs only while CloudFormation deploys this stack"
        acknowledge(
            function.node.default_child,
            ("NIST.800.53.R5::NIST.800.53.R5-LambdaConcurrency", f"{_deploy_time}, one call at a time"),
            (
                "NIST.800.53.R5::NIST.800.53.R5-LambdaDLQ",
                f"{_deploy_time}, invoked synchronously: a failure fails the deploy, there is no event to keep",
            ),
            (
                "NIST.800.53.R5::NIST.800.53.R5-LambdaInsideVPC",
                f"{_deploy_time} and calls only the Inspector API; it handles no workload data",
            ),
        )
        # composition.FrameworkFunctionSkips is applied at the app and does not cross into stages.
        skip(function.node.default_child, *FRAMEWORK_FUNCTION_SKIPS)
