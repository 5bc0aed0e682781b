"""The environment's disaster-recovery region: the key, vault and buckets the primary region
replicates into.

Deployed before the primary-region stacks (they reference `key` through cross-region
references), and independent of them: it must survive the loss of the primary region.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_backup as backup
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from config import naming
from config.model import OrgConfig
from constructs_lib.buckets import AccessLogBucket, ArchiveTiering, HardenedBucket

ACCESS_LOG_RETENTION_DAYS = 365
# Compliance-mode vault lock: during the grace period an operator can still remove a wrongly
# configured lock; afterwards nobody (root included) can shorten retention or delete
# recovery points early, which is the protection against a compromised account.
VAULT_LOCK_MIN_RETENTION_DAYS = 7
VAULT_LOCK_GRACE_DAYS = 3
# Services that use the DR key in the DR region: S3 (replica objects), RDS (replicated
# automated backups) and AWS Backup (copied recovery points).
KEY_SERVICES = ("s3", "rds", "backup", "secretsmanager")
DATA_KEY_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"]

# Supabase Storage keys objects as <tenant>/<bucket>/<name>/<version>, with the tenant
# "stub" that k8s_charts/supabase/components.py sets (TENANT_ID). Only a Supabase bucket
# named "archive" gets the asynchronous archive tiers: a GET on an archived object fails
# until it is restored, which no other Supabase bucket's clients expect.
STORAGE_ARCHIVE_PREFIX = "stub/archive/"


class DrStack(cdk.Stack):
    def __init__(self, scope: Construct, id_: str, *, cfg: OrgConfig, env_name: str, **kwargs) -> None:
        super().__init__(scope, id_, **kwargs)
        env = cfg.environments[env_name]
        removal = cdk.RemovalPolicy.RETAIN if env.production else cdk.RemovalPolicy.DESTROY

        self.key = kms.Key(
            self,
            "ReplicaKey",
            alias=f"alias/{cfg.project}-{env_name}-dr",
            description=f"{cfg.project} {env_name}: replicas, backups and snapshots in the DR region",
            enable_key_rotation=True,
            # Losing this key makes every replica and recovery point in the region unreadable.
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.key.node.default_child.override_logical_id("ReplicaKey")
        via_services = [f"{service}.{self.region}.amazonaws.com" for service in KEY_SERVICES]
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DataKeysThroughDrServices",
                principals=[iam.AccountRootPrincipal()],
                actions=[*DATA_KEY_ACTIONS, "kms:DescribeKey"],
                resources=["*"],
                conditions={"StringEquals": {"kms:CallerAccount": self.account, "kms:ViaService": via_services}},
            )
        )
        # RDS and Backup copy into the region under grants they create on the caller's behalf.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="GrantsForRdsAndBackup",
                principals=[iam.AccountRootPrincipal()],
                actions=["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
                resources=["*"],
                conditions={
                    "StringEquals": {
                        "kms:CallerAccount": self.account,
                        "kms:ViaService": [f"rds.{self.region}.amazonaws.com", f"backup.{self.region}.amazonaws.com"],
                    },
                    "Bool": {"kms:GrantIsForAWSResource": "true"},
                },
            )
        )
        # Nobody uses the key directly: data keys only through KEY_SERVICES (S3 replication, RDS
        # backup replication, Backup copies, Secrets Manager replicas), so a
        # stolen admin credential cannot decrypt exported ciphertext with it.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyDirectDataKeyUse",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=DATA_KEY_ACTIONS,
                resources=["*"],
                conditions={"StringNotEquals": {"kms:ViaService": via_services}},
            )
        )

        self.access_logs = AccessLogBucket(
            self,
            "ReplicaAccessLogBucket",
            bucket_name=naming.access_log_bucket(cfg, env_name, env.dr_region),
            production=env.production,
            retention_days=ACCESS_LOG_RETENTION_DAYS,
        )
        self.access_log_bucket = self.access_logs.bucket
        # Replicas carry the primary's tiering so a failed-over region costs the same.
        tiering = ArchiveTiering(
            prefix=STORAGE_ARCHIVE_PREFIX,
            archive_after_days=env.storage.archive_after_days,
            deep_archive_after_days=env.storage.deep_archive_after_days,
        )
        self.replica = HardenedBucket(
            self,
            "ReplicaBucket",
            bucket_name=naming.replica_bucket(cfg, env_name),
            encryption_key=self.key,
            access_logs=self.access_log_bucket,
            production=env.production,
            noncurrent_version_expiry_days=env.storage.noncurrent_version_expiry_days,
            tiering=tiering,
        )
        self.replica_bucket = self.replica.bucket
        self.velero_replica = HardenedBucket(
            self,
            "VeleroReplicaBucket",
            bucket_name=naming.velero_replica_bucket(cfg, env_name),
            encryption_key=self.key,
            access_logs=self.access_log_bucket,
            production=env.production,
            noncurrent_version_expiry_days=env.storage.noncurrent_version_expiry_days,
        )
        self.velero_replica_bucket = self.velero_replica.bucket

        self.backup_vault = backup.BackupVault(
            self,
            "BackupVault",
            backup_vault_name=f"{cfg.project}-{env_name}-dr",
            encryption_key=self.key,
            lock_configuration=backup.LockConfiguration(
                min_retention=cdk.Duration.days(VAULT_LOCK_MIN_RETENTION_DAYS),
                changeable_for=cdk.Duration.days(VAULT_LOCK_GRACE_DAYS),
            )
            if env.production
            else None,
            removal_policy=removal,
        )
        self.backup_vault.node.default_child.override_logical_id("BackupVault")

        cdk.CfnOutput(self, "DrKeyArn", value=self.key.key_arn)
        cdk.CfnOutput(self, "BackupVaultName", value=self.backup_vault.backup_vault_name)
        cdk.CfnOutput(self, "ReplicaBucketName", value=self.replica_bucket.bucket_name)
        cdk.CfnOutput(self, "VeleroReplicaBucketName", value=self.velero_replica_bucket.bucket_name)
