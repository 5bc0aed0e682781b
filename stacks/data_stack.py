"""One environment's data tier: PostgreSQL (primary + replicas), Valkey, secrets, backups, DNS.

Stateful: construct ids below are part of the resources' logical ids, which the tests pin.
Renaming one replaces a database.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_backup as backup
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_rds as rds
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from config import naming
from config.model import Environment, OrgConfig
from constructs_lib.api_keys import ApiKeyMinter
from constructs_lib.backup import DataBackup
from constructs_lib.cache import ValkeyCache
from constructs_lib.database import POSTGRES_PORT, BackupReplication, PostgresDatabase
from constructs_lib.log_keys import admit_cloudwatch_logs
from constructs_lib.restore_validation import RestoreValidation
from constructs_lib.secrets import SupabaseSecrets
from database.parameters import DATABASE_NAME
from database.roles import READ_ONLY_ROLE
from stacks.pipeline_stack import smoke_runner_role_arn

# A daily copy to the DR region bounds loss at a day. Tighter RPOs need the continuous
# mechanisms: PITR in AWS Backup, and RDS's own replication of automated backups (WAL every
# five minutes) to the DR region together with the secrets.
DAILY_COPY_RPO_MINUTES = 1440
CONTINUOUS_BACKUP_RPO_MINUTES = 60
DNS_TTL = cdk.Duration.seconds(30)
API_KEY_ISSUER = "supabase"
# Matches the mint function's default: the anon key is compiled into client apps.
API_KEY_EXPIRY_DAYS = 3650
# Keyed by `production`: config has no log retention field for the data tier yet.
LOG_RETENTION_DAYS = {True: 731, False: 90}
# NIST 800-53 (CP-9) asks for 15 days; Valkey snapshots are small.
CACHE_SNAPSHOT_RETENTION_DAYS = 15


def replicates_across_regions(env: Environment) -> bool:
    return env.recovery.rpo_minutes < DAILY_COPY_RPO_MINUTES


def continuous_backup(env: Environment) -> bool:
    return env.recovery.rpo_minutes <= CONTINUOUS_BACKUP_RPO_MINUTES


def restore_validation_hours(env: Environment) -> int:
    """The restored copy lives for the RTO: whoever validates it must be done within the RTO."""
    return max(1, min(168, env.recovery.rto_minutes // 60))


class DataStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cfg: OrgConfig,
        env_name: str,
        vpc: ec2.IVpc,
        dr_key: kms.IKey,
        dr_backup_vault: backup.IBackupVault,
        **kwargs,
    ) -> None:
        """`dr_key` and `dr_backup_vault` live in the environment's DR region (the dr stack)."""
        super().__init__(scope, id_, cross_region_references=True, **kwargs)
        env = cfg.environments[env_name]
        prefix = f"{cfg.project}-{env_name}"
        production = env.production
        log_days = LOG_RETENTION_DAYS[production]
        cross_region = replicates_across_regions(env)

        self.data_key = kms.Key(
            self,
            "DataKey",
            alias=f"alias/{cfg.project}/{env_name}/data",
            description=f"{prefix}: RDS storage and Performance Insights, secrets, cache, backups, data-tier logs",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        # CloudWatch Logs encrypts the RDS, Valkey and function log groups with this key.
        admit_cloudwatch_logs(self.data_key)

        self.secret_store = SupabaseSecrets(
            self,
            "Secrets",
            cfg=cfg,
            env_name=env_name,
            encryption_key=self.data_key,
            removal_policy=cdk.RemovalPolicy.RETAIN if production else cdk.RemovalPolicy.DESTROY,
            replica_key=dr_key if cross_region else None,
        )
        self.secrets: dict[str, secretsmanager.ISecret] = self.secret_store.secrets
        self.jwt_secret = self.secret_store.jwt
        self.api_keys_secret = self.secret_store.api_keys

        self.database = PostgresDatabase(
            self,
            "Database",
            identifier=naming.db_identifier(cfg, env_name),
            settings=env.database,
            production=production,
            vpc=vpc,
            encryption_key=self.data_key,
            master_secret=self.secret_store.master,
            log_retention_days=log_days,
            backup_replication=BackupReplication(
                region=env.dr_region,
                kms_key_arn=dr_key.key_arn,
                retention_days=env.database.backup_retention_days,
            )
            if cross_region
            else None,
        )
        self.db_instance: rds.DatabaseInstance = self.database.instance
        self.read_replicas: list[rds.DatabaseInstanceReadReplica] = self.database.read_replicas
        # No ingress here: the cluster stack adds rules from its cluster security group to
        # these two groups (by id, in its own template), so this stack never depends on it.
        self.db_security_group: ec2.SecurityGroup = self.database.security_group

        self.cache = ValkeyCache(
            self,
            "Cache",
            replication_group_id=naming.cache_replication_group_id(cfg, env_name),
            settings=env.cache,
            vpc=vpc,
            encryption_key=self.data_key,
            auth_secret=self.secret_store.redis,
            snapshot_retention_days=CACHE_SNAPSHOT_RETENTION_DAYS,
            log_retention_days=log_days,
        )
        self.cache_security_group: ec2.SecurityGroup = self.cache.security_group

        self.backup = DataBackup(
            self,
            "Backup",
            name=prefix,
            encryption_key=self.data_key,
            database=self.db_instance,
            restore_subnet_group_name=self.database.subnet_group.subnet_group_name,
            restore_security_group_id=self.db_security_group.security_group_id,
            dr_vault=dr_backup_vault,
            retention_days=env.database.backup_retention_days,
            continuous=continuous_backup(env),
            lock=production,
            restore_validation_hours=restore_validation_hours(env),
        )

        self.restore_validation = RestoreValidation(
            self,
            "RestoreValidation",
            restore_testing_plan=self.backup.restore_testing_plan,
            vpc=vpc,
            database_security_group=self.db_security_group,
            source_host=self.db_instance.db_instance_endpoint_address,
            source_port=POSTGRES_PORT,
            database_name=DATABASE_NAME,
            read_only_secret=self.secret_store.roles[READ_ONLY_ROLE],
            encryption_key=self.data_key,
            log_retention_days=log_days,
        )

        self.api_keys = ApiKeyMinter(
            self,
            "ApiKeys",
            jwt_secret=self.jwt_secret,
            jwt_secret_name=naming.secret_name(cfg, env_name, naming.SecretKeys.JWT),
            api_keys_secret=self.api_keys_secret,
            realtime_secret=self.secret_store.realtime,
            realtime_secret_name=naming.secret_name(cfg, env_name, naming.SecretKeys.REALTIME),
            encryption_key=self.data_key,
            issuer=API_KEY_ISSUER,
            expiry_days=API_KEY_EXPIRY_DAYS,
            legacy_api_keys=env.auth.legacy_api_keys,
            vpc=vpc,
            log_retention_days=log_days,
        )

        if env_name in cfg.pipeline.promotion_order:
            self._smoke_tests_role(cfg, env_name)
        self._dns(cfg, env_name, vpc)
        self._outputs()

    def _smoke_tests_role(self, cfg: OrgConfig, env_name: str) -> None:
        """The role the pipeline's smoke tests assume to read the API keys, and nothing else.

        Trusted through the tooling account's root with an aws:PrincipalArn condition rather than
        by naming the runner role as principal: IAM rejects a trust policy whose role principal
        does not exist yet, and this stack may deploy before the pipeline.
        """
        self.smoke_tests_policy = iam.ManagedPolicy(
            self,
            "SmokeTestsPolicy",
            description="Read the API keys secret (the smoke tests use the public and the secret key)",
            statements=[
                iam.PolicyStatement(
                    actions=["secretsmanager:GetSecretValue"], resources=[self.api_keys_secret.secret_arn]
                ),
                iam.PolicyStatement(
                    actions=["kms:Decrypt"],
                    resources=[self.data_key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{self.region}.amazonaws.com"}},
                ),
            ],
        )
        self.smoke_tests_role = iam.Role(
            self,
            "SmokeTestsRole",
            role_name=naming.smoke_role_name(env_name),
            assumed_by=iam.AccountPrincipal(cfg.organization.tooling.id).with_conditions(
                {"ArnEquals": {"aws:PrincipalArn": smoke_runner_role_arn(cfg, env_name)}}
            ),
            managed_policies=[self.smoke_tests_policy],
            max_session_duration=cdk.Duration.hours(1),
            description=f"{env_name} smoke tests from the delivery pipeline: read the API keys",
        )

    def _dns(self, cfg: OrgConfig, env_name: str, vpc: ec2.IVpc) -> None:
        """Stable names the cluster connects by; a restore or failover only moves a CNAME."""
        self.private_zone = route53.PrivateHostedZone(
            self,
            "PrivateZone",
            zone_name=naming.private_zone(cfg, env_name),
            vpc=vpc,
            comment=f"{cfg.project} {env_name}: data tier endpoints",
        )
        self.db_record = route53.CnameRecord(
            self,
            "DbRecord",
            zone=self.private_zone,
            ttl=DNS_TTL,
            record_name=naming.db_host(cfg, env_name),
            domain_name=self.db_instance.db_instance_endpoint_address,
        )
        read_host = naming.db_read_host(cfg, env_name)
        if not self.read_replicas:
            # Readers still get a name to use; it leads to the primary until a replica exists.
            route53.CnameRecord(
                self,
                "DbReadRecord",
                zone=self.private_zone,
                ttl=DNS_TTL,
                record_name=read_host,
                domain_name=self.db_instance.db_instance_endpoint_address,
            )
        for n, replica in enumerate(self.read_replicas, start=1):
            # db-ro spreads new connections over the replicas with equal weights; db-ro-N
            # reaches one replica (a pinned analytics job, or draining one before promotion).
            route53.CnameRecord(
                self,
                f"DbReadRecord{n}",
                zone=self.private_zone,
                ttl=DNS_TTL,
                record_name=read_host,
                domain_name=replica.db_instance_endpoint_address,
                set_identifier=f"replica-{n}",
                weight=1,
            )
            route53.CnameRecord(
                self,
                f"DbReplicaRecord{n}",
                zone=self.private_zone,
                ttl=DNS_TTL,
                record_name=read_host.replace("db-ro.", f"db-ro-{n}.", 1),
                domain_name=replica.db_instance_endpoint_address,
            )
        self.redis_record = route53.CnameRecord(
            self,
            "RedisRecord",
            zone=self.private_zone,
            ttl=DNS_TTL,
            record_name=naming.redis_host(cfg, env_name),
            domain_name=self.cache.primary_endpoint,
        )

    def _outputs(self) -> None:
        cdk.CfnOutput(self, "DbEndpoint", value=self.db_instance.db_instance_endpoint_address)
        for n, replica in enumerate(self.read_replicas, start=1):
            cdk.CfnOutput(self, f"DbReplica{n}Endpoint", value=replica.db_instance_endpoint_address)
        cdk.CfnOutput(self, "RedisEndpoint", value=self.cache.primary_endpoint)
        cdk.CfnOutput(self, "PrivateZoneId", value=self.private_zone.hosted_zone_id)
        cdk.CfnOutput(self, "BackupVaultArn", value=self.backup.vault.backup_vault_arn)
