"""The AWS side of observability, in two stacks so that no dependency cycle can form.

`<env>-alerts` holds only the alerts SNS topic and its key. Everything that publishes
(cluster and platform: Alertmanager, falcosidekick; cost; security; observability) depends
on it, and it depends on nothing, so it deploys first.

`<env>-observability` holds the CloudWatch alarms, the AWS Backup failure rules and the
dashboard. It reads the network, data, storage and cluster stacks (the resources it
watches), which never read it back.
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns
from constructs import Construct

from config.model import OrgConfig
from constructs_lib.alarms import (
    AlertsTopic,
    BackupFailureNotifications,
    CacheAlarms,
    CloudFrontAlarms,
    DatabaseAlarms,
    LoadBalancerAlarms,
    NatGatewayAlarms,
    NetworkPolicyDenyAlarm,
    TopicAlarms,
    nat_gateway_ids,
)
from constructs_lib.fis import FailoverDrills

CLOUDFRONT_METRICS_REGION = "us-east-1"


def alerts_topic_name(cfg: OrgConfig, env_name: str) -> str:
    """Must equal the name k8s_charts.aws_values.from_config puts in alerts_topic_arn."""
    return f"{cfg.project}-{env_name}-alerts"


def metric_namespace(cfg: OrgConfig, env_name: str) -> str:
    return f"{cfg.project}/{env_name}"


class AlertsStack(cdk.Stack):
    def __init__(self, scope: Construct, id_: str, *, cfg: OrgConfig, env_name: str, **kwargs) -> None:
        super().__init__(scope, id_, **kwargs)
        env = cfg.environments[env_name]
        self.alerts = AlertsTopic(
            self,
            "Alerts",
            topic_name=alerts_topic_name(cfg, env_name),
            email=env.alert_email,
            key_alias=f"alias/{cfg.project}/{env_name}/alerts",
        )
        self.alerts_topic: sns.Topic = self.alerts.topic
        self.alerts_key = self.alerts.key
        cdk.CfnOutput(self, "AlertsTopicArn", value=self.alerts_topic.topic_arn)


class ObservabilityStack(cdk.Stack):
    """`distribution` is None when features.cloudfront is off: then there is nothing to alarm on at the edge."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cfg: OrgConfig,
        env_name: str,
        alerts_topic: sns.ITopic,
        vpc: ec2.Vpc,
        db_instance: rds.IDatabaseInstance,
        read_replicas: Sequence[rds.IDatabaseInstance],
        cache_replication_group: elasticache.CfnReplicationGroup,
        distribution: cloudfront.IDistribution | None,
        cluster_log_group: logs.ILogGroup,
        spot_nodegroup_name: str,
        log_key: kms.IKey,
        log_retention_days: int,
        **kwargs,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        env = cfg.environments[env_name]
        prefix = f"{cfg.project}-{env_name}"
        self.alerts_topic = alerts_topic
        common = {"topic": alerts_topic, "name_prefix": prefix}
        self.groups: dict[str, TopicAlarms] = {}

        self.groups["database"] = DatabaseAlarms(
            self,
            "Database",
            **common,
            instance=db_instance,
            replicas=list(read_replicas),
            instance_class=env.database.instance_class,
            allocated_storage_gib=env.database.allocated_storage_gib,
        )
        self.groups["cache"] = CacheAlarms(
            self,
            "Cache",
            **common,
            replication_group_id=cache_replication_group.ref,
            node_count=1 + env.cache.replicas_per_shard,
        )
        self.groups["nat"] = NatGatewayAlarms(
            self,
            "Nat",
            **common,
            nat_gateway_ids=list(nat_gateway_ids(vpc.public_subnets).values()),
        )
        self.groups["load-balancers"] = LoadBalancerAlarms(self, "LoadBalancers", **common)

        # CloudFront's metrics live in us-east-1 only; from another region this stack cannot
        # alarm on them (a us-east-1 stack would have to).
        if distribution is not None and env.region == CLOUDFRONT_METRICS_REGION:
            self.groups["cloudfront"] = CloudFrontAlarms(
                self,
                "CloudFront",
                **common,
                distribution_id=distribution.distribution_id,
            )
        self.groups["network-policy"] = NetworkPolicyDenyAlarm(
            self,
            "NetworkPolicy",
            **common,
            log_group=cluster_log_group,
            metric_namespace=metric_namespace(cfg, env_name),
        )
        self.backup_notifications = BackupFailureNotifications(self, "BackupFailures", topic=alerts_topic)
        self.dashboard = self._dashboard(prefix)
        # The first zone's node subnets stand for "a zone": every zone holds nodes and a NAT path.
        first_zone = vpc.private_subnets[0].availability_zone
        self.drills = FailoverDrills(
            self,
            "Drills",
            name_prefix=f"{prefix}-drill",
            database=db_instance,
            multi_az=env.database.multi_az,
            vpc=vpc,
            zone_subnets=[s for s in vpc.private_subnets if s.availability_zone == first_zone],
            spot_nodegroup_name=spot_nodegroup_name,
            stop_alarm_arns={k: v for group in self.groups.values() for k, v in group.critical.items()},
            log_key=log_key,
            log_retention_days=log_retention_days,
        )

    def _dashboard(self, prefix: str) -> cloudwatch.Dashboard:
        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"{prefix}-aws")
        handles = [h for group in self.groups.values() for h in group.handles]
        dashboard.add_widgets(cloudwatch.AlarmStatusWidget(title="Alarms", alarms=handles, width=24))
        for name, group in self.groups.items():
            graphs = [cloudwatch.AlarmWidget(title=key, alarm=alarm, width=8) for key, alarm in group.alarms.items()]
            if graphs:
                dashboard.add_widgets(cloudwatch.TextWidget(markdown=f"## {name}", width=24, height=1))
                dashboard.add_widgets(*graphs)
        return dashboard
