"""Hardened S3 buckets: the data buckets (optionally replicated to another region) and the
log buckets they write their server access logs to.

Every bucket keeps its logical id equal to its construct id, so moving a bucket inside the
construct tree never makes CloudFormation replace (and orphan or empty) it.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from constructs_lib.nag import acknowledge

# S3 Replication Time Control offers exactly one SLA: 15 minutes.
REPLICATION_TIME = s3.ReplicationTimeValue.FIFTEEN_MINUTES
INCOMPLETE_UPLOAD_DAYS = 7
MIN_TLS_VERSION = 1.2
SERVER_ACCESS_LOGS_USE_BUCKET_POLICY = "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy"


@dataclass(frozen=True, kw_only=True)
class ArchiveTiering:
    """Intelligent-Tiering's opt-in archive tiers.

    Objects there need a RestoreObject (minutes to hours) before a GET succeeds, so the tiers
    apply only below `prefix`: a prefix whose readers tolerate that.
    """

    prefix: str
    archive_after_days: int
    deep_archive_after_days: int


@dataclass(frozen=True, kw_only=True)
class ReplicationTarget:
    """A versioned, KMS-encrypted bucket in another region of the same account."""

    bucket_name: str
    region: str
    account: str
    key_arn: str


def _pin_logical_id(resource: cdk.IResource, logical_id: str) -> cdk.CfnResource:
    cfn = resource.node.default_child
    assert isinstance(cfn, cdk.CfnResource)
    cfn.override_logical_id(logical_id)
    return cfn


def _removal(production: bool) -> cdk.RemovalPolicy:
    # Outside production a stack deletion removes an empty bucket and fails on a full one; no
    # auto-delete function ever holds s3:DeleteObject* on a data bucket.
    return cdk.RemovalPolicy.RETAIN if production else cdk.RemovalPolicy.DESTROY


class AccessLogBucket(Construct):
    """Target of S3 server access logs (and, with `allow_acls`, CloudFront standard logs).

    SSE-KMS with a key of its own: the log writers (logging.s3 and CloudFront's log delivery)
    get GenerateDataKey on it through the key policy.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        bucket_name: str,
        production: bool,
        retention_days: int,
        allow_acls: bool = False,
    ) -> None:
        super().__init__(scope, id_)
        # Log writers get a bucket-policy grant, never the LogDeliveryWrite ACL, whether or not
        # the CLI passed cdk.json's flags (the test App does not); BucketOwnerEnforced needs it.
        self.node.set_context(SERVER_ACCESS_LOGS_USE_BUCKET_POLICY, True)
        stack = cdk.Stack.of(self)
        self.key = kms.Key(
            self,
            "Key",
            description=f"{bucket_name} access logs",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        writers = [iam.ServicePrincipal("logging.s3.amazonaws.com")]
        if allow_acls:
            writers.append(iam.ServicePrincipal("delivery.logs.amazonaws.com"))
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="LogDeliveryWrites",
                principals=writers,
                actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=bucket_name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            minimum_tls_version=MIN_TLS_VERSION,
            versioned=True,
            # CloudFront standard logging writes through the awslogsdelivery account's ACL
            # grant, which S3 ignores unless ACLs are enabled.
            object_ownership=(
                s3.ObjectOwnership.BUCKET_OWNER_PREFERRED if allow_acls else s3.ObjectOwnership.BUCKET_OWNER_ENFORCED
            ),
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-logs",
                    expiration=cdk.Duration.days(retention_days),
                    noncurrent_version_expiration=cdk.Duration.days(1),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(INCOMPLETE_UPLOAD_DAYS),
                ),
            ],
            removal_policy=_removal(production),
        )
        cfn = _pin_logical_id(self.bucket, id_)
        acknowledge(
            cfn,
            (
                "AwsSolutions-S1",
                "this bucket is the server access log target; logging it into itself would log its own log writes endlessly",
            ),
            (
                "NIST.800.53.R5::NIST.800.53.R5-S3BucketLoggingEnabled",
                "this bucket is the server access log target; logging it into itself would log its own log writes endlessly",
            ),
            (
                "NIST.800.53.R5::NIST.800.53.R5-S3BucketReplicationEnabled",
                "access logs are regional audit data kept for a fixed retention; the data they describe is what is replicated",
            ),
        )
        cfn.add_metadata(
            "checkov",
            {
                "skip": [
                    {
                        "id": "CKV_AWS_18",
                        "comment": "server access log target bucket: logging it into itself would loop",
                    },
                ]
            },
        )


class HardenedBucket(Construct):
    """A data bucket: versioned, SSE-KMS with a customer key, TLS 1.2+ only, private, logged.

    With `replication` it copies every object to the target with Replication Time Control,
    re-encrypted under the target's key, through a role that can touch exactly the two buckets
    and the two keys.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        bucket_name: str,
        encryption_key: kms.IKey,
        access_logs: s3.IBucket,
        production: bool,
        noncurrent_version_expiry_days: int,
        tiering: ArchiveTiering | None = None,
        replication: ReplicationTarget | None = None,
    ) -> None:
        super().__init__(scope, id_)
        lifecycle = [
            s3.LifecycleRule(
                id="noncurrent-and-incomplete",
                noncurrent_version_expiration=cdk.Duration.days(noncurrent_version_expiry_days),
                abort_incomplete_multipart_upload_after=cdk.Duration.days(INCOMPLETE_UPLOAD_DAYS),
            ),
        ]
        tiering_configs = None
        if tiering is not None:
            # Intelligent-Tiering configurations act only on objects stored in that class;
            # clients upload as STANDARD, so every object moves there on day 0. The automatic
            # tiers (frequent, infrequent, archive instant) stay transparent to GETs.
            lifecycle.append(
                s3.LifecycleRule(
                    id="intelligent-tiering",
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INTELLIGENT_TIERING,
                            transition_after=cdk.Duration.days(0),
                        )
                    ],
                )
            )
            tiering_configs = [
                s3.IntelligentTieringConfiguration(
                    name="archive",
                    prefix=tiering.prefix,
                    archive_access_tier_time=cdk.Duration.days(tiering.archive_after_days),
                    deep_archive_access_tier_time=cdk.Duration.days(tiering.deep_archive_after_days),
                )
            ]

        self.replication_role: iam.Role | None = None
        self.replication_policy: iam.ManagedPolicy | None = None
        replication_rules = None
        if replication is not None:
            target_bucket = s3.Bucket.from_bucket_attributes(
                self,
                "ReplicaTarget",
                bucket_name=replication.bucket_name,
                account=replication.account,
                region=replication.region,
            )
            target_key = kms.Key.from_key_arn(self, "ReplicaTargetKey", replication.key_arn)
            self.replication_role, self.replication_policy = self._replication_role(
                bucket_name=bucket_name,
                source_key=encryption_key,
                target_bucket=target_bucket,
                target_key=target_key,
            )
            replication_rules = [
                s3.ReplicationRule(
                    id="to-dr-region",
                    priority=0,
                    destination=target_bucket,
                    kms_key=target_key,
                    sse_kms_encrypted_objects=True,
                    replication_time_control=REPLICATION_TIME,
                    metrics=REPLICATION_TIME,
                    # Enabled: an application delete becomes a delete marker on both sides, so
                    # after a failover the replica shows the same live objects as the primary
                    # did. Nothing is lost: delete markers hide versions, and versioning with the
                    # noncurrent expiry keeps them restorable on both sides. Permanent version
                    # deletes are never replicated, so a compromised primary cannot purge the DR copy.
                    delete_marker_replication=True,
                )
            ]

        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=bucket_name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=encryption_key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            minimum_tls_version=MIN_TLS_VERSION,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix=f"s3/{bucket_name}/",
            lifecycle_rules=lifecycle,
            intelligent_tiering_configurations=tiering_configs,
            replication_role=self.replication_role,
            replication_rules=replication_rules,
            removal_policy=_removal(production),
            auto_delete_objects=False,
        )
        self.cfn_bucket = _pin_logical_id(self.bucket, id_)
        if replication is None:
            acknowledge(
                self.cfn_bucket,
                (
                    "NIST.800.53.R5::NIST.800.53.R5-S3BucketReplicationEnabled",
                    f"{bucket_name} is itself the cross-region replica of a primary bucket; replicating it again would copy the copy",
                ),
            )
        if self.replication_policy is not None:
            # Replication starts as soon as the configuration is in place: its permissions
            # must already be attached, or the first objects fail to replicate.
            self.bucket.node.add_dependency(self.replication_policy)

    def _replication_role(
        self, *, bucket_name: str, source_key: kms.IKey, target_bucket: s3.IBucket, target_key: kms.IKey
    ) -> tuple[iam.Role, iam.ManagedPolicy]:
        stack = cdk.Stack.of(self)
        source_arn = stack.format_arn(service="s3", region="", account="", resource=bucket_name)
        role = iam.Role(
            self,
            "ReplicationRole",
            assumed_by=iam.ServicePrincipal("s3.amazonaws.com"),
            description=f"S3 replication of {bucket_name} to {target_bucket.bucket_name}",
        )
        policy = iam.ManagedPolicy(
            self,
            "ReplicationPolicy",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    sid="ReadSourceConfiguration",
                    actions=["s3:GetReplicationConfiguration", "s3:ListBucket"],
                    resources=[source_arn],
                ),
                iam.PolicyStatement(
                    sid="ReadSourceVersions",
                    actions=[
                        "s3:GetObjectVersionForReplication",
                        "s3:GetObjectVersionAcl",
                        "s3:GetObjectVersionTagging",
                        "s3:GetObjectRetention",
                        "s3:GetObjectLegalHold",
                    ],
                    resources=[f"{source_arn}/*"],
                ),
                iam.PolicyStatement(
                    sid="WriteReplicas",
                    actions=["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
                    resources=[target_bucket.arn_for_objects("*")],
                ),
                iam.PolicyStatement(
                    sid="DecryptSource",
                    actions=["kms:Decrypt"],
                    resources=[source_key.key_arn],
                    conditions={"StringLike": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}},
                ),
                iam.PolicyStatement(
                    sid="EncryptReplica",
                    actions=["kms:Encrypt", "kms:GenerateDataKey"],
                    resources=[target_key.key_arn],
                    conditions={"StringLike": {"kms:ViaService": f"s3.{target_bucket.env.region}.amazonaws.com"}},
                ),
            ],
        )
        acknowledge(
            policy.node.default_child,
            (
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::" + bucket_name + "/*]",
                "S3 replication reads every object version of the source bucket; the wildcard is the object path of that one bucket",
            ),
            (
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::" + target_bucket.bucket_name + "/*]",
                "S3 replication writes every object of the replica bucket; the wildcard is the object path of that one bucket",
            ),
        )
        return role, policy
