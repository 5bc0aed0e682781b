"""The alerts topic and the CloudWatch alarms, budgets and cost-anomaly alerts that notify it.

Every alarm sends both ALARM and OK to the one topic, so a reader of the topic (mail, the
on-call tool subscribed to it) sees an incident open and close. Thresholds are module
constants; docs/alerts-aws.md lists each alarm with its threshold and meaning.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_ce as ce
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from constructs_lib.checkov import skip
from database.pgbouncer import INSTANCE_MEMORY_GIB, max_connections

GIB = 1024**3
FIVE_MINUTES = cdk.Duration.minutes(5)

# AWS services that publish to the alerts topic: alarms, EventBridge rules, budgets, AWS
# Backup notifications and Cost Anomaly Detection.
SERVICE_PUBLISHERS = (
    "cloudwatch.amazonaws.com",
    "events.amazonaws.com",
    "budgets.amazonaws.com",
    "backup.amazonaws.com",
    "costalerts.amazonaws.com",
)

RDS_CPU_PERCENT = 80
RDS_FREE_STORAGE_SHARE = 0.10
RDS_CONNECTIONS_SHARE = 0.8
RDS_REPLICA_LAG_SECONDS = 60
RDS_FREEABLE_MEMORY_SHARE = 0.10
CACHE_CPU_PERCENT = 80
CACHE_ENGINE_CPU_PERCENT = 80
CACHE_MEMORY_PERCENT = 80
CACHE_EVICTIONS_PER_5MIN = 100
CACHE_REPLICATION_LAG_SECONDS = 10
# AWS's recommended NAT alarms: any port allocation error, and drops above 0.01 % of packets.
NAT_PORT_ALLOCATION_ERRORS = 0
NAT_DROP_PERCENT = 0.01
ALB_5XX_PER_5MIN = 25
TARGET_5XX_PER_5MIN = 50
CLOUDFRONT_5XX_RATE_PERCENT = 5
NETWORK_POLICY_DENIES_PER_5MIN = 100

# The VPC CNI node agent writes one line per policy decision, e.g.
# "Node: ip-10-0-1-2;SIP: 10.0.1.5;SPORT: 43210;DIP: 10.0.2.9;DPORT: 5432;PROTOCOL: TCP;PolicyVerdict: DENY"
# (aws-network-policy-agent, pkg/ebpf/events). The quoted phrase matches only DENY lines,
# never ACCEPT or EXPIRED/DELETED, nor control-plane lines in the same log group.
NETWORK_POLICY_DENY_PATTERN = '"PolicyVerdict: DENY"'
NETWORK_POLICY_DENY_METRIC = "NetworkPolicyDeniedFlows"

ALB_5XX_QUERY = 'SELECT SUM(HTTPCode_ELB_5XX_Count) FROM SCHEMA("AWS/ApplicationELB", LoadBalancer)'
TARGET_5XX_QUERY = 'SELECT SUM(HTTPCode_Target_5XX_Count) FROM SCHEMA("AWS/ApplicationELB", LoadBalancer)'

BUDGET_ACTUAL_PERCENT = 80
BUDGET_FORECAST_PERCENT = 100
# An anomaly is reported when it costs at least this share of the monthly budget (and at
# least ANOMALY_MIN_IMPACT_USD) and is at least ANOMALY_MIN_PERCENT above expected spend.
ANOMALY_BUDGET_SHARE = 0.02
ANOMALY_MIN_IMPACT_USD = 50
ANOMALY_MIN_PERCENT = 20


class AlertsTopic(Construct):
    """KMS-encrypted SNS topic, TLS only, that AWS services and in-account roles publish to."""

    def __init__(self, scope: Construct, id_: str, *, topic_name: str, email: str, key_alias: str) -> None:
        super().__init__(scope, id_)
        stack = cdk.Stack.of(self)
        # The key protects messages only while SNS holds them: nothing to keep after the topic goes.
        self.key = kms.Key(
            self,
            "Key",
            alias=key_alias,
            description=f"{topic_name}: SNS server-side encryption",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.DESTROY,
            pending_window=cdk.Duration.days(7),
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ServicePublishers",
                principals=[iam.ServicePrincipal(p) for p in SERVICE_PUBLISHERS],
                actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                resources=["*"],
            )
        )
        # The aws/sns pattern: any principal of this account that SNS lets publish (its own
        # sns:Publish grant decides) may use the key, and only through SNS. Alertmanager,
        # falcosidekick and the incident-response function then need no grant on this key.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AccountPublishersThroughSns",
                principals=[iam.AnyPrincipal()],
                actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                resources=["*"],
                conditions={
                    "StringEquals": {
                        "kms:CallerAccount": stack.account,
                        "kms:ViaService": f"sns.{stack.region}.amazonaws.com",
                    }
                },
            )
        )
        skip(
            self.key.node.default_child,
            (
                "CKV_AWS_33",
                "the wildcard principal is limited by kms:CallerAccount (this account) and kms:ViaService (SNS in this "
                "region): the same policy as the AWS managed aws/sns key",
            ),
        )
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=topic_name,
            display_name=topic_name,
            master_key=self.key,
            enforce_ssl=True,
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ServicePublishers",
                principals=[iam.ServicePrincipal(p) for p in SERVICE_PUBLISHERS],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
            )
        )
        self.topic.add_subscription(subscriptions.EmailSubscription(email))


class TopicAlarms(Construct):
    """A group of alarms named `<name_prefix>-<key>`, each notifying `topic` on ALARM and OK."""

    def __init__(self, scope: Construct, id_: str, *, topic: sns.ITopic, name_prefix: str) -> None:
        super().__init__(scope, id_)
        self.topic = topic
        self.name_prefix = name_prefix
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self.query_alarms: dict[str, cloudwatch.CfnAlarm] = {}
        # Alarm name -> ARN of the alarms that mean users are failing or data is at risk:
        # the stop conditions of the failover drills (constructs_lib/fis.py).
        self.critical: dict[str, str] = {}
        # Every alarm of the group as an IAlarm, for dashboards and composite alarms.
        self.handles: list[cloudwatch.IAlarm] = []

    def alarm(
        self,
        key: str,
        *,
        metric: cloudwatch.IMetric,
        threshold: float,
        description: str,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        periods: int = 3,
        datapoints: int | None = None,
        missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.MISSING,
        critical: bool = False,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            key,
            alarm_name=f"{self.name_prefix}-{key}",
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=periods,
            datapoints_to_alarm=datapoints or periods,
            treat_missing_data=missing,
        )
        action = cw_actions.SnsAction(self.topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        self.alarms[key] = alarm
        self.handles.append(alarm)
        if critical:
            self.critical[key] = alarm.alarm_arn
        return alarm

    def query_alarm(
        self,
        key: str,
        *,
        query: str,
        threshold: float,
        description: str,
        periods: int = 3,
        datapoints: int = 2,
        critical: bool = False,
    ) -> cloudwatch.CfnAlarm:
        """Alarm on a Metrics Insights query: covers resources whose names are unknown at synth."""
        alarm = cloudwatch.CfnAlarm(
            self,
            key,
            alarm_name=f"{self.name_prefix}-{key}",
            alarm_description=description,
            metrics=[
                cloudwatch.CfnAlarm.MetricDataQueryProperty(
                    id="q1",
                    expression=query,
                    period=int(FIVE_MINUTES.to_seconds()),
                    return_data=True,
                    label=key,
                )
            ],
            threshold=threshold,
            comparison_operator="GreaterThanThreshold",
            evaluation_periods=periods,
            datapoints_to_alarm=datapoints,
            treat_missing_data="notBreaching",
            alarm_actions=[self.topic.topic_arn],
            ok_actions=[self.topic.topic_arn],
        )
        self.query_alarms[key] = alarm
        self.handles.append(cloudwatch.Alarm.from_alarm_arn(self, f"{key}-handle", alarm.attr_arn))
        if critical:
            self.critical[key] = alarm.attr_arn
        return alarm


def _rds_metric(name: str, instance_id: str, statistic: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace="AWS/RDS",
        metric_name=name,
        dimensions_map={"DBInstanceIdentifier": instance_id},
        statistic=statistic,
        period=FIVE_MINUTES,
    )


class DatabaseAlarms(TopicAlarms):
    """CPU, storage, connections and memory of the primary; lag of every read replica."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        topic: sns.ITopic,
        name_prefix: str,
        instance: rds.IDatabaseInstance,
        replicas: Sequence[rds.IDatabaseInstance],
        instance_class: str,
        allocated_storage_gib: int,
    ) -> None:
        super().__init__(scope, id_, topic=topic, name_prefix=name_prefix)
        primary = instance.instance_identifier
        self.connections_threshold = int(max_connections(instance_class) * RDS_CONNECTIONS_SHARE)
        self.free_storage_threshold_bytes = int(allocated_storage_gib * GIB * RDS_FREE_STORAGE_SHARE)
        self.freeable_memory_threshold_bytes = int(
            INSTANCE_MEMORY_GIB[instance_class] * GIB * RDS_FREEABLE_MEMORY_SHARE
        )
        below = cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD
        self.alarm(
            "rds-cpu",
            metric=_rds_metric("CPUUtilization", primary, "Average"),
            threshold=RDS_CPU_PERCENT,
            description=f"Primary database CPU above {RDS_CPU_PERCENT}% for 15 minutes",
        )
        # Storage autoscaling grows the volume when 10 % is left; still being this low means
        # it has reached max_allocated_storage or cannot keep up.
        self.alarm(
            "rds-free-storage",
            metric=_rds_metric("FreeStorageSpace", primary, "Minimum"),
            threshold=self.free_storage_threshold_bytes,
            comparison=below,
            periods=2,
            description=f"Primary database has less than {RDS_FREE_STORAGE_SHARE:.0%} of its allocated storage free",
            critical=True,
        )
        self.alarm(
            "rds-connections",
            metric=_rds_metric("DatabaseConnections", primary, "Maximum"),
            threshold=self.connections_threshold,
            description=f"Primary database connections above {RDS_CONNECTIONS_SHARE:.0%} of max_connections "
            f"({max_connections(instance_class)} on {instance_class})",
            critical=True,
        )
        self.alarm(
            "rds-freeable-memory",
            metric=_rds_metric("FreeableMemory", primary, "Minimum"),
            threshold=self.freeable_memory_threshold_bytes,
            comparison=below,
            description=f"Primary database freeable memory below {RDS_FREEABLE_MEMORY_SHARE:.0%} of {instance_class}",
        )
        for n, replica in enumerate(replicas, start=1):
            self.alarm(
                f"rds-replica{n}-lag",
                metric=_rds_metric("ReplicaLag", replica.instance_identifier, "Maximum"),
                threshold=RDS_REPLICA_LAG_SECONDS,
                description=f"Read replica {n} is more than {RDS_REPLICA_LAG_SECONDS} s behind the primary",
            )


def cache_node_ids(replication_group_id: str, node_count: int) -> list[str]:
    """ElastiCache names the member clusters of a (non-cluster-mode) replication group <id>-001, -002, ..."""
    return [cdk.Fn.join("-", [replication_group_id, f"{n:03d}"]) for n in range(1, node_count + 1)]


class CacheAlarms(TopicAlarms):
    """Per node: host and engine CPU, memory, evictions; replication lag where the node is a replica."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        topic: sns.ITopic,
        name_prefix: str,
        replication_group_id: str,
        node_count: int,
    ) -> None:
        super().__init__(scope, id_, topic=topic, name_prefix=name_prefix)

        def metric(name: str, node: str, statistic: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/ElastiCache",
                metric_name=name,
                dimensions_map={"CacheClusterId": node},
                statistic=statistic,
                period=FIVE_MINUTES,
            )

        for n, node in enumerate(cache_node_ids(replication_group_id, node_count), start=1):
            self.alarm(
                f"cache-node{n}-cpu",
                metric=metric("CPUUtilization", node, "Average"),
                threshold=CACHE_CPU_PERCENT,
                description=f"Cache node {n} host CPU above {CACHE_CPU_PERCENT}% for 15 minutes",
            )
            self.alarm(
                f"cache-node{n}-engine-cpu",
                metric=metric("EngineCPUUtilization", node, "Average"),
                threshold=CACHE_ENGINE_CPU_PERCENT,
                description=f"Cache node {n} engine thread above {CACHE_ENGINE_CPU_PERCENT}% for 15 minutes",
            )
            self.alarm(
                f"cache-node{n}-memory",
                metric=metric("DatabaseMemoryUsagePercentage", node, "Maximum"),
                threshold=CACHE_MEMORY_PERCENT,
                description=f"Cache node {n} uses more than {CACHE_MEMORY_PERCENT}% of its maxmemory",
            )
            self.alarm(
                f"cache-node{n}-evictions",
                metric=metric("Evictions", node, "Sum"),
                threshold=CACHE_EVICTIONS_PER_5MIN,
                description=f"Cache node {n} evicts more than {CACHE_EVICTIONS_PER_5MIN} keys per 5 minutes",
            )
            if node_count > 1:
                # Only the node that is currently a replica reports lag; failover swaps roles.
                self.alarm(
                    f"cache-node{n}-replication-lag",
                    metric=metric("ReplicationLag", node, "Maximum"),
                    threshold=CACHE_REPLICATION_LAG_SECONDS,
                    missing=cloudwatch.TreatMissingData.NOT_BREACHING,
                    description=f"Cache node {n}, as a replica, is more than {CACHE_REPLICATION_LAG_SECONDS} s behind",
                )


class NatGatewayAlarms(TopicAlarms):
    """Port allocation errors and the share of dropped packets, per NAT gateway."""

    def __init__(
        self, scope: Construct, id_: str, *, topic: sns.ITopic, name_prefix: str, nat_gateway_ids: Sequence[str]
    ) -> None:
        super().__init__(scope, id_, topic=topic, name_prefix=name_prefix)
        for n, nat_id in enumerate(nat_gateway_ids, start=1):

            def metric(name: str, nat: str = nat_id) -> cloudwatch.Metric:
                return cloudwatch.Metric(
                    namespace="AWS/NATGateway",
                    metric_name=name,
                    dimensions_map={"NatGatewayId": nat},
                    statistic="Sum",
                    period=FIVE_MINUTES,
                )

            self.alarm(
                f"nat{n}-port-allocation-errors",
                metric=metric("ErrorPortAllocation"),
                threshold=NAT_PORT_ALLOCATION_ERRORS,
                periods=1,
                description=f"NAT gateway {n} could not allocate a source port (too many connections to one destination)",
            )
            self.alarm(
                f"nat{n}-packets-dropped",
                periods=3,
                metric=cloudwatch.MathExpression(
                    expression="IF(inbound > 0, 100 * drops / inbound, 0)",
                    using_metrics={"drops": metric("PacketsDropCount"), "inbound": metric("PacketsInFromSource")},
                    label=f"nat{n} dropped %",
                    period=FIVE_MINUTES,
                ),
                threshold=NAT_DROP_PERCENT,
                description=f"NAT gateway {n} drops more than {NAT_DROP_PERCENT}% of the packets it receives",
            )


class LoadBalancerAlarms(TopicAlarms):
    """5xx of the ALBs that the in-cluster load balancer controller creates (names unknown at synth)."""

    def __init__(self, scope: Construct, id_: str, *, topic: sns.ITopic, name_prefix: str) -> None:
        super().__init__(scope, id_, topic=topic, name_prefix=name_prefix)
        self.query_alarm(
            "alb-5xx",
            query=ALB_5XX_QUERY,
            threshold=ALB_5XX_PER_5MIN,
            description=f"Load balancers answered more than {ALB_5XX_PER_5MIN} 5xx themselves in 5 minutes "
            "(no healthy target, timeouts)",
            critical=True,
        )
        self.query_alarm(
            "alb-target-5xx",
            query=TARGET_5XX_QUERY,
            threshold=TARGET_5XX_PER_5MIN,
            description=f"Supabase services behind the load balancers returned more than "
            f"{TARGET_5XX_PER_5MIN} 5xx in 5 minutes",
            critical=True,
        )


class CloudFrontAlarms(TopicAlarms):
    """CloudFront publishes to us-east-1 only: create this in a us-east-1 stack."""

    def __init__(
        self, scope: Construct, id_: str, *, topic: sns.ITopic, name_prefix: str, distribution_id: str
    ) -> None:
        super().__init__(scope, id_, topic=topic, name_prefix=name_prefix)
        region = cdk.Stack.of(self).region
        if not cdk.Token.is_unresolved(region) and region != "us-east-1":
            raise ValueError(f"CloudFront metrics exist only in us-east-1, not {region}")
        self.alarm(
            "cloudfront-5xx-rate",
            threshold=CLOUDFRONT_5XX_RATE_PERCENT,
            metric=cloudwatch.Metric(
                namespace="AWS/CloudFront",
                metric_name="5xxErrorRate",
                dimensions_map={"DistributionId": distribution_id, "Region": "Global"},
                statistic="Average",
                period=FIVE_MINUTES,
            ),
            description=f"More than {CLOUDFRONT_5XX_RATE_PERCENT}% of CloudFront responses are 5xx",
        )


class NetworkPolicyDenyAlarm(TopicAlarms):
    """Counts the VPC CNI node agent's DENY verdicts in the cluster log group."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        topic: sns.ITopic,
        name_prefix: str,
        log_group: logs.ILogGroup,
        metric_namespace: str,
    ) -> None:
        super().__init__(scope, id_, topic=topic, name_prefix=name_prefix)
        self.metric_filter = logs.MetricFilter(
            self,
            "DenyFilter",
            log_group=log_group,
            filter_pattern=logs.FilterPattern.literal(NETWORK_POLICY_DENY_PATTERN),
            metric_namespace=metric_namespace,
            metric_name=NETWORK_POLICY_DENY_METRIC,
            metric_value="1",
            default_value=0,
        )
        self.alarm(
            "network-policy-denies",
            periods=2,
            metric=self.metric_filter.metric(statistic="Sum", period=FIVE_MINUTES),
            threshold=NETWORK_POLICY_DENIES_PER_5MIN,
            description=f"More than {NETWORK_POLICY_DENIES_PER_5MIN} flows per 5 minutes denied by NetworkPolicies "
            "for 10 minutes: a broken policy or a pod probing where it may not go",
        )


# AWS Backup's EventBridge events for jobs that did not produce (or copy, or restore) a recovery point.
BACKUP_JOB_FAILED_STATES = ("FAILED", "ABORTED", "EXPIRED")
BACKUP_COPY_RESTORE_FAILED_STATES = ("FAILED",)


class BackupFailureNotifications(Construct):
    def __init__(self, scope: Construct, id_: str, *, topic: sns.ITopic) -> None:
        super().__init__(scope, id_)
        self.backup_jobs = events.Rule(
            self,
            "BackupJobs",
            description="AWS Backup job failed, aborted or expired",
            event_pattern=events.EventPattern(
                source=["aws.backup"],
                detail_type=["Backup Job State Change"],
                detail={"state": list(BACKUP_JOB_FAILED_STATES)},
            ),
            targets=[targets.SnsTopic(topic)],
        )
        self.copy_and_restore_jobs = events.Rule(
            self,
            "CopyAndRestoreJobs",
            description="AWS Backup copy to the DR region or restore test failed",
            event_pattern=events.EventPattern(
                source=["aws.backup"],
                detail_type=["Copy Job State Change", "Restore Job State Change"],
                detail={"state": list(BACKUP_COPY_RESTORE_FAILED_STATES)},
            ),
            targets=[targets.SnsTopic(topic)],
        )


class BudgetAlerts(Construct):
    """Monthly cost budget: 80 % actual and 100 % forecast, to the mailbox and the topic."""

    def __init__(
        self, scope: Construct, id_: str, *, budget_name: str, monthly_usd: int, email: str, topic: sns.ITopic
    ) -> None:
        super().__init__(scope, id_)
        subscribers = [
            budgets.CfnBudget.SubscriberProperty(subscription_type="EMAIL", address=email),
            budgets.CfnBudget.SubscriberProperty(subscription_type="SNS", address=topic.topic_arn),
        ]

        def notification(kind: str, percent: int) -> budgets.CfnBudget.NotificationWithSubscribersProperty:
            return budgets.CfnBudget.NotificationWithSubscribersProperty(
                notification=budgets.CfnBudget.NotificationProperty(
                    notification_type=kind,
                    comparison_operator="GREATER_THAN",
                    threshold=percent,
                    threshold_type="PERCENTAGE",
                ),
                subscribers=subscribers,
            )

        self.budget = budgets.CfnBudget(
            self,
            "Budget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=budget_name,
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=monthly_usd, unit="USD"),
            ),
            notifications_with_subscribers=[
                notification("ACTUAL", BUDGET_ACTUAL_PERCENT),
                notification("FORECASTED", BUDGET_FORECAST_PERCENT),
            ],
        )


def anomaly_threshold_expression(monthly_usd: int) -> dict:
    impact = max(ANOMALY_MIN_IMPACT_USD, round(monthly_usd * ANOMALY_BUDGET_SHARE))
    return {
        "And": [
            {
                "Dimensions": {
                    "Key": "ANOMALY_TOTAL_IMPACT_ABSOLUTE",
                    "MatchOptions": ["GREATER_THAN_OR_EQUAL"],
                    "Values": [str(impact)],
                }
            },
            {
                "Dimensions": {
                    "Key": "ANOMALY_TOTAL_IMPACT_PERCENTAGE",
                    "MatchOptions": ["GREATER_THAN_OR_EQUAL"],
                    "Values": [str(ANOMALY_MIN_PERCENT)],
                }
            },
        ]
    }


class CostAnomalyAlerts(Construct):
    """Per-service anomaly monitor; anomalies above the threshold go to the topic as they are found.

    An account may have one DIMENSIONAL/SERVICE monitor: each environment has its own account.
    """

    def __init__(self, scope: Construct, id_: str, *, name: str, monthly_usd: int, topic: sns.ITopic) -> None:
        super().__init__(scope, id_)
        self.monitor = ce.CfnAnomalyMonitor(
            self,
            "Monitor",
            monitor_name=f"{name}-services",
            monitor_type="DIMENSIONAL",
            monitor_dimension="SERVICE",
        )
        self.threshold_expression = anomaly_threshold_expression(monthly_usd)
        self.subscription = ce.CfnAnomalySubscription(
            self,
            "Subscription",
            subscription_name=f"{name}-anomalies",
            # SNS subscribers take IMMEDIATE only; DAILY/WEEKLY digests are e-mail only.
            frequency="IMMEDIATE",
            monitor_arn_list=[self.monitor.attr_monitor_arn],
            subscribers=[ce.CfnAnomalySubscription.SubscriberProperty(type="SNS", address=topic.topic_arn)],
            threshold_expression=json.dumps(self.threshold_expression),
        )


def nat_gateway_ids(public_subnets: Sequence[Construct]) -> Mapping[str, str]:
    """NAT gateway ids by subnet path: ec2.Vpc places a CfnNatGateway named NATGateway in a public subnet."""
    found = {}
    for subnet in public_subnets:
        nat = subnet.node.try_find_child("NATGateway")
        if isinstance(nat, cdk.CfnResource) and nat.cfn_resource_type == "AWS::EC2::NatGateway":
            found[subnet.node.path] = nat.ref
    return found
