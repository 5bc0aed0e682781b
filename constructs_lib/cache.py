"""ElastiCache for Valkey: one shard, replicas per config, TLS + AUTH, encrypted, logged."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from config.model import Cache
from constructs_lib.nag import acknowledge
from constructs_lib.retention import retention

ENGINE = "valkey"
ENGINE_VERSION = "8.1"
PARAMETER_GROUP = "default.valkey8"
REDIS_PORT = 6379
# UTC; clear of the database's backup (03:00-04:00) and maintenance (Sun 04:30) windows.
SNAPSHOT_WINDOW = "01:00-02:00"
MAINTENANCE_WINDOW = "sun:06:00-sun:07:00"
LOG_TYPES = ("slow-log", "engine-log")


class ValkeyCache(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        replication_group_id: str,
        settings: Cache,
        vpc: ec2.IVpc,
        encryption_key: kms.IKey,
        auth_secret: secretsmanager.ISecret,
        snapshot_retention_days: int,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, id_)
        # A replica in another AZ is what automatic failover promotes; without one (dev)
        # neither failover nor Multi-AZ is possible.
        self.failover = settings.replicas_per_shard >= 1

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            allow_all_outbound=False,
            description=f"{replication_group_id}: Valkey, reachable only from security groups granted explicitly",
        )
        self.subnet_group = elasticache.CfnSubnetGroup(
            self,
            "SubnetGroup",
            cache_subnet_group_name=replication_group_id,
            description=f"{replication_group_id}: isolated subnets",
            subnet_ids=vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED).subnet_ids,
        )
        self.log_groups = {
            log: logs.LogGroup(
                self,
                f"Log-{log}",
                log_group_name=f"/aws/elasticache/{replication_group_id}/{log}",
                encryption_key=encryption_key,
                retention=retention(log_retention_days),
                removal_policy=cdk.RemovalPolicy.RETAIN,
            )
            for log in LOG_TYPES
        }
        self.replication_group = elasticache.CfnReplicationGroup(
            self,
            "ReplicationGroup",
            replication_group_id=replication_group_id,
            replication_group_description=f"{replication_group_id}: Supabase cache",
            engine=ENGINE,
            engine_version=ENGINE_VERSION,
            cache_parameter_group_name=PARAMETER_GROUP,
            cache_node_type=settings.node_type,
            num_cache_clusters=1 + settings.replicas_per_shard,
            automatic_failover_enabled=self.failover,
            multi_az_enabled=self.failover,
            cache_subnet_group_name=self.subnet_group.ref,
            security_group_ids=[self.security_group.security_group_id],
            port=REDIS_PORT,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            at_rest_encryption_enabled=True,
            kms_key_id=encryption_key.key_arn,
            # Dynamic reference: CloudFormation resolves it at deploy time, the template holds none.
            auth_token=cdk.SecretValue.secrets_manager(auth_secret.secret_arn, json_field="auth_token").unsafe_unwrap(),
            snapshot_retention_limit=snapshot_retention_days,
            snapshot_window=SNAPSHOT_WINDOW,
            preferred_maintenance_window=MAINTENANCE_WINDOW,
            auto_minor_version_upgrade=True,
            log_delivery_configurations=[
                elasticache.CfnReplicationGroup.LogDeliveryConfigurationRequestProperty(
                    destination_type="cloudwatch-logs",
                    log_format="json",
                    log_type=log,
                    destination_details=elasticache.CfnReplicationGroup.DestinationDetailsProperty(
                        cloud_watch_logs_details=elasticache.CfnReplicationGroup.CloudWatchLogsDestinationDetailsProperty(
                            log_group=group.log_group_name,
                        ),
                    ),
                )
                for log, group in self.log_groups.items()
            ],
        )
        acknowledge(
            self.replication_group,
            (
                "AwsSolutions::AwsSolutions-AEC5",
                "6379 is the port the Supabase charts expect (k8s_charts.aws_values.redis_port); the group sits in "
                "isolated subnets behind a security group with no default ingress, and TLS plus AUTH are required",
            ),
        )
        if not self.failover:
            acknowledge(
                self.replication_group,
                (
                    "AwsSolutions::AwsSolutions-AEC4",
                    "config sets cache.replicas_per_shard 0 for this production: false environment to save cost; "
                    "config.model requires a replica (and so Multi-AZ failover) in every production environment",
                ),
            )
        self.primary_endpoint = self.replication_group.attr_primary_end_point_address
        self.reader_endpoint = self.replication_group.attr_reader_end_point_address
