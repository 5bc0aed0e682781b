"""RDS for PostgreSQL set up for Supabase: primary, read replicas, parameters, logs, rotation.

No superuser exists on RDS; the master user (database.roles.MASTER_USER) and the parameter
group provide what Supabase needs (logical replication for Realtime, pg_tle, TLS only).
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from config.model import Database
from constructs_lib.checkov import skip
from constructs_lib.nag import acknowledge
from constructs_lib.retention import retention
from constructs_lib.secrets import NO_PUNCTUATION
from database.parameters import PG_CRON, SHARED_PRELOAD_LIBRARIES, SLOW_QUERY_LOG

POSTGRES_PORT = 5432
LOG_EXPORTS = ("postgresql", "upgrade")
# 30 s is finer than the 60 s the platform's alarms need and costs the same order as 60 s.
MONITORING_INTERVAL = cdk.Duration.seconds(30)
MASTER_ROTATION = cdk.Duration.days(30)
# UTC; the backup window precedes the maintenance window so a patch never runs mid-backup.
BACKUP_WINDOW = "03:00-04:00"
MAINTENANCE_WINDOW = "sun:04:30-sun:05:30"
# Share of allocated storage that WAL kept for replication slots may use. An abandoned
# logical slot (a Realtime that died mid-stream) would otherwise fill the disk and stop the
# primary; past this size PostgreSQL invalidates the slot instead.
SLOT_WAL_SHARE = 0.2
_NON_PRODUCTION = (
    "config sets {setting} false for this production: false environment to save cost; "
    "config.model rejects that setting for every production environment"
)
_REPLICA_ENCRYPTION = (
    "read replica: storage encryption is inherited from the primary, encrypted with the data key; "
    "CloudFormation documents StorageEncrypted as not to be set with SourceDBInstanceIdentifier"
)
_REPLICA_SINGLE_AZ = (
    "read replica: reads survive an AZ loss through the other replicas behind the weighted db-ro name and "
    "the Multi-AZ primary; a standby per replica would double its cost for no extra durability"
)


def engine_version(version: str) -> rds.PostgresEngineVersion:
    """ "17.9" -> rds.PostgresEngineVersion.VER_17_9; config only admits versions CDK knows."""
    found = getattr(rds.PostgresEngineVersion, "VER_" + version.replace(".", "_"), None)
    if found is None:
        raise ValueError(f"aws-cdk-lib has no PostgresEngineVersion for {version}; upgrade aws-cdk-lib or the config")
    return found


def instance_type(instance_class: str) -> ec2.InstanceType:
    """ "db.r7g.large" -> InstanceType("r7g.large"): CDK adds the "db." prefix itself."""
    return ec2.InstanceType(instance_class.removeprefix("db."))


def max_slot_wal_keep_size_mb(settings: Database) -> int:
    return int(settings.allocated_storage_gib * 1024 * SLOT_WAL_SHARE)


def parameters(settings: Database) -> dict[str, str]:
    return {
        "rds.logical_replication": "1",
        "rds.force_ssl": "1",
        "ssl_min_protocol_version": "TLSv1.2",
        "shared_preload_libraries": ",".join(SHARED_PRELOAD_LIBRARIES),
        **SLOW_QUERY_LOG,
        **PG_CRON,
        # ms: a forgotten open transaction holds locks and blocks vacuum for everyone.
        "idle_in_transaction_session_timeout": "300000",
        "max_slot_wal_keep_size": str(max_slot_wal_keep_size_mb(settings)),
    }


@dataclass(frozen=True, kw_only=True)
class BackupReplication:
    """Cross-region replication of the primary's automated backups (PITR in the DR region)."""

    region: str
    kms_key_arn: str
    retention_days: int


class PostgresDatabase(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        identifier: str,
        settings: Database,
        production: bool,
        vpc: ec2.IVpc,
        encryption_key: kms.IKey,
        master_secret: secretsmanager.ISecret,
        log_retention_days: int,
        backup_replication: BackupReplication | None,
    ) -> None:
        super().__init__(scope, id_)
        version = engine_version(settings.engine_version)
        engine = rds.DatabaseInstanceEngine.postgres(version=version)
        # Retained in production; elsewhere a final snapshot. Replicas hold nothing the
        # primary lacks, so outside production they simply go.
        removal = cdk.RemovalPolicy.RETAIN if production else cdk.RemovalPolicy.SNAPSHOT
        replica_removal = cdk.RemovalPolicy.RETAIN if production else cdk.RemovalPolicy.DESTROY
        pi_retention = (
            rds.PerformanceInsightRetention.MONTHS_1 if production else rds.PerformanceInsightRetention.DEFAULT
        )

        # No rules: the cluster stack admits its pods (see DataStack.allow_clients).
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            allow_all_outbound=False,
            description=f"{identifier}: PostgreSQL, reachable only from security groups granted explicitly",
        )
        self.subnet_group = rds.SubnetGroup(
            self,
            "SubnetGroup",
            vpc=vpc,
            description=f"{identifier}: isolated subnets",
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        )
        self.parameter_group = rds.ParameterGroup(
            self,
            "Parameters",
            engine=engine,
            parameters=parameters(settings),
            description=f"{identifier}: Supabase on RDS (logical replication, pg_tle, TLS only)",
        )
        self.monitoring_role = iam.Role(
            self,
            "MonitoringRole",
            assumed_by=iam.ServicePrincipal("monitoring.rds.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AmazonRDSEnhancedMonitoringRole")
            ],
        )
        acknowledge(
            self.monitoring_role,
            (
                "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole]",
                "AWS's documented policy for RDS enhanced monitoring: it only writes the RDSOSMetrics log group",
            ),
        )

        common = dict(
            vpc=vpc,
            subnet_group=self.subnet_group,
            security_groups=[self.security_group],
            parameter_group=self.parameter_group,
            instance_type=instance_type(settings.instance_class),
            storage_type=rds.StorageType.GP3,
            max_allocated_storage=settings.max_allocated_storage_gib,
            enable_performance_insights=True,
            performance_insight_encryption_key=encryption_key,
            performance_insight_retention=pi_retention,
            monitoring_interval=MONITORING_INTERVAL,
            monitoring_role=self.monitoring_role,
            cloudwatch_logs_exports=list(LOG_EXPORTS),
            iam_authentication=True,
            ca_certificate=rds.CaCertificate.RDS_CA_RSA2048_G1,
            auto_minor_version_upgrade=True,
            preferred_maintenance_window=MAINTENANCE_WINDOW,
            publicly_accessible=False,
            deletion_protection=settings.deletion_protection,
            copy_tags_to_snapshot=True,
            port=POSTGRES_PORT,
        )

        self.instance = rds.DatabaseInstance(
            self,
            "Primary",
            instance_identifier=identifier,
            engine=engine,
            credentials=rds.Credentials.from_secret(master_secret),
            multi_az=settings.multi_az,
            allocated_storage=settings.allocated_storage_gib,
            storage_encryption_key=encryption_key,
            backup_retention=cdk.Duration.days(settings.backup_retention_days),
            preferred_backup_window=BACKUP_WINDOW,
            delete_automated_backups=False,
            removal_policy=removal,
            **common,
        )
        self._log_groups(identifier, encryption_key, log_retention_days, self.instance)
        self.cfn_instance: rds.CfnDBInstance = self.instance.node.default_child
        if backup_replication is not None:
            self.cfn_instance.automatic_backup_replication_region = backup_replication.region
            self.cfn_instance.automatic_backup_replication_kms_key_id = backup_replication.kms_key_arn
            self.cfn_instance.automatic_backup_replication_retention_period = backup_replication.retention_days
        self._acknowledge_port(self.cfn_instance)
        if not settings.multi_az:
            skip(self.cfn_instance, ("CKV_AWS_157", _NON_PRODUCTION.format(setting="database.multi_az")))
            acknowledge(
                self.cfn_instance,
                *(
                    (rule, _NON_PRODUCTION.format(setting="database.multi_az"))
                    for rule in ("AwsSolutions::AwsSolutions-RDS3", "NIST.800.53.R5::NIST.800.53.R5-RDSMultiAZSupport")
                ),
            )
        if not settings.deletion_protection:
            acknowledge(
                self.cfn_instance,
                *(
                    (rule, _NON_PRODUCTION.format(setting="database.deletion_protection"))
                    for rule in (
                        "AwsSolutions::AwsSolutions-RDS10",
                        "NIST.800.53.R5::NIST.800.53.R5-RDSInstanceDeletionProtectionEnabled",
                    )
                ),
            )

        self.read_replicas: list[rds.DatabaseInstanceReadReplica] = []
        for n in range(1, settings.read_replicas + 1):
            replica_id = f"{identifier}-ro{n}"
            replica = rds.DatabaseInstanceReadReplica(
                self,
                f"Replica{n}",
                instance_identifier=replica_id,
                source_database_instance=self.instance,
                # The replicas are the redundancy for reads; the primary is the Multi-AZ one.
                multi_az=False,
                removal_policy=replica_removal,
                **common,
            )
            self._log_groups(replica_id, encryption_key, log_retention_days, replica)
            # Storage encryption is inherited from the primary (same key); CloudFormation
            # rejects StorageEncrypted on a replica.
            cfn_replica = replica.node.default_child
            self._acknowledge_port(cfn_replica)
            acknowledge(
                cfn_replica,
                ("NIST.800.53.R5::NIST.800.53.R5-RDSStorageEncrypted", _REPLICA_ENCRYPTION),
                ("AwsSolutions::AwsSolutions-RDS2", _REPLICA_ENCRYPTION),
                ("AwsSolutions::AwsSolutions-RDS3", _REPLICA_SINGLE_AZ),
                ("NIST.800.53.R5::NIST.800.53.R5-RDSMultiAZSupport", _REPLICA_SINGLE_AZ),
                (
                    "NIST.800.53.R5::NIST.800.53.R5-RDSInBackupPlan",
                    "read replica: AWS Backup protects the primary, whose recovery points contain everything a replica holds",
                ),
                (
                    "NIST.800.53.R5::NIST.800.53.R5-RDSInstanceBackupEnabled",
                    "read replica: automated backups run on the primary (and are replicated to the DR region there)",
                ),
            )
            skip(cfn_replica, ("CKV_AWS_16", _REPLICA_ENCRYPTION), ("CKV_AWS_157", _REPLICA_SINGLE_AZ))
            # `common` gives the replicas the primary's deletion protection, so they need the
            # same acknowledgement when it is off.
            if not settings.deletion_protection:
                acknowledge(
                    cfn_replica,
                    *(
                        (rule, _NON_PRODUCTION.format(setting="database.deletion_protection"))
                        for rule in (
                            "AwsSolutions::AwsSolutions-RDS10",
                            "NIST.800.53.R5::NIST.800.53.R5-RDSInstanceDeletionProtectionEnabled",
                        )
                    ),
                )
            self.read_replicas.append(replica)

        self.rotation_security_group = ec2.SecurityGroup(
            self,
            "RotationSecurityGroup",
            vpc=vpc,
            allow_all_outbound=False,
            description=f"{identifier}: master password rotation function",
        )
        self.rotation_security_group.add_egress_rule(
            ec2.Peer.ipv4(vpc.vpc_cidr_block), ec2.Port.tcp(443), "Secrets Manager and KMS interface endpoints"
        )
        self.rotation_security_group.connections.allow_to(
            self.security_group, ec2.Port.tcp(POSTGRES_PORT), "rotation function sets the master password"
        )
        # Hosted single-user rotation: the function logs in as supabase_admin and changes its
        # own password. Consumers of db/master (PgBouncer auth, the bootstrap job) read it
        # fresh from Secrets Manager instead of caching it.
        self.master_rotation = self.instance.secret.add_rotation_schedule(
            "Rotation",
            automatically_after=MASTER_ROTATION,
            hosted_rotation=secretsmanager.HostedRotation.postgre_sql_single_user(
                vpc=vpc,
                vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
                security_groups=[self.rotation_security_group],
                exclude_characters=NO_PUNCTUATION,
            ),
        )

    def _log_groups(self, instance_id: str, key: kms.IKey, days: int, owner: Construct) -> None:
        # Created before the instance so that RDS writes into encrypted groups with a
        # retention, instead of creating unencrypted, never-expiring ones itself.
        for log in LOG_EXPORTS:
            group = logs.LogGroup(
                self,
                f"{owner.node.id}Log-{log}",
                log_group_name=f"/aws/rds/instance/{instance_id}/{log}",
                encryption_key=key,
                retention=retention(days),
                removal_policy=cdk.RemovalPolicy.RETAIN,
            )
            owner.node.add_dependency(group)

    @staticmethod
    def _acknowledge_port(cfn: cdk.CfnResource) -> None:
        acknowledge(
            cfn,
            (
                "AwsSolutions::AwsSolutions-RDS11",
                "5432 is the port every Supabase component and PgBouncer expect (k8s_charts.aws_values.db_port); "
                "the instance sits in isolated subnets behind a security group with no default ingress",
            ),
        )
