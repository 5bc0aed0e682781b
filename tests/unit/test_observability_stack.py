"""Alerts topic and CloudWatch alarms (alerts + observability stacks).

Stage-level assertions read the shared assembly and check that each alarm watches the
resource of the stack that owns it; the data-tier and CloudFront alarm constructs are also
checked on a small stack of imported resources, which pins their metrics, dimensions and
thresholds for replica and node counts the example config does not use.
"""

from __future__ import annotations

import json
import time

import aws_cdk as cdk
import boto3
import pytest
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match, Template
from moto import mock_aws

from constructs_lib import alarms as al
from database.pgbouncer import INSTANCE_MEMORY_GIB, max_connections
from k8s_charts.aws_values import from_config
from stacks.observability_stack import alerts_topic_name
from tests.conftest import ENVIRONMENTS

ENVS = ENVIRONMENTS
GIB = 1024**3


def alarms_of(t: Template) -> dict[str, dict]:
    return {r["Properties"]["AlarmName"]: r["Properties"] for r in t.find_resources("AWS::CloudWatch::Alarm").values()}


def assert_notifies_alerts_topic(props: dict, env: str) -> None:
    actions = props["AlarmActions"]
    assert props["OKActions"] == actions, props["AlarmName"]
    assert len(actions) == 1
    imported = actions[0]["Fn::ImportValue"]
    assert imported.startswith(f"{env}-alerts:") and "AlertsTopic" in imported, imported


# --- alerts topic ---------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_topic_name_is_what_the_charts_expect(template, cfg, env):
    e = cfg.environments[env]
    name = alerts_topic_name(cfg, env)
    assert f"arn:aws:sns:{e.region}:{e.account.id}:{name}" == from_config(cfg, env).alerts_topic_arn
    t = template(env, "alerts")
    t.resource_count_is("AWS::SNS::Topic", 1)
    t.has_resource_properties("AWS::SNS::Topic", {"TopicName": name, "KmsMasterKeyId": Match.any_value()})
    t.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": e.alert_email})


def test_topic_policy_admits_service_publishers_and_requires_tls(template):
    statements = next(iter(template("staging", "alerts").find_resources("AWS::SNS::TopicPolicy").values()))[
        "Properties"
    ]["PolicyDocument"]["Statement"]
    publish = next(s for s in statements if s.get("Sid") == "ServicePublishers")
    assert publish["Effect"] == "Allow" and publish["Action"] == "sns:Publish"
    assert set(publish["Principal"]["Service"]) == {
        "cloudwatch.amazonaws.com",
        "events.amazonaws.com",
        "budgets.amazonaws.com",
        "backup.amazonaws.com",
        "costalerts.amazonaws.com",
    }
    tls = [s for s in statements if s["Effect"] == "Deny"]
    assert tls and tls[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_topic_key_lets_publishers_encrypt(template, cfg):
    key = next(iter(template("prod", "alerts").find_resources("AWS::KMS::Key").values()))["Properties"]
    assert key["EnableKeyRotation"] is True
    statements = {s.get("Sid"): s for s in key["KeyPolicy"]["Statement"]}
    assert "costalerts.amazonaws.com" in statements["ServicePublishers"]["Principal"]["Service"]
    via_sns = statements["AccountPublishersThroughSns"]
    assert via_sns["Condition"]["StringEquals"] == {
        "kms:CallerAccount": cfg.environments["prod"].account.id,
        "kms:ViaService": "sns.us-east-1.amazonaws.com",
    }


def test_alerts_stack_deploys_before_its_publishers(assembly):
    alerts = assembly.stack("staging/alerts")
    assert alerts.depends_on == ()
    for unit in ("cluster", "platform", "observability", "cost", "security"):
        stack = assembly.stack(f"staging/{unit}")
        if unit in ("observability", "cost", "security", "platform"):
            assert alerts.artifact_id in stack.depends_on, unit
        assert assembly.stack("staging/observability").artifact_id not in stack.depends_on, unit


# --- alarms in the stage --------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_every_alarm_notifies_the_topic_on_alarm_and_ok(template, env):
    found = alarms_of(template(env, "observability"))
    assert found
    for props in found.values():
        assert_notifies_alerts_topic(props, env)


@pytest.mark.parametrize("env", ENVS)
def test_nat_gateway_alarms_per_gateway(template, cfg, env):
    found = alarms_of(template(env, "observability"))
    count = cfg.environments[env].network.nat_gateways
    for n in range(1, count + 1):
        ports = found[f"supabase-{env}-nat{n}-port-allocation-errors"]
        assert (ports["Namespace"], ports["MetricName"], ports["Statistic"]) == (
            "AWS/NATGateway",
            "ErrorPortAllocation",
            "Sum",
        )
        assert ports["Threshold"] == 0 and ports["ComparisonOperator"] == "GreaterThanThreshold"
        nat_dim = ports["Dimensions"][0]
        assert nat_dim["Name"] == "NatGatewayId"
        assert nat_dim["Value"]["Fn::ImportValue"].startswith(f"{env}-network:")
        assert f"publicSubnet{n}NATGateway" in nat_dim["Value"]["Fn::ImportValue"]

        drops = found[f"supabase-{env}-nat{n}-packets-dropped"]
        assert drops["Threshold"] == al.NAT_DROP_PERCENT
        metrics = {m["Id"]: m for m in drops["Metrics"]}
        assert metrics["drops"]["MetricStat"]["Metric"]["MetricName"] == "PacketsDropCount"
        assert metrics["drops"]["MetricStat"]["Metric"]["Dimensions"] == [nat_dim]
        assert metrics["inbound"]["MetricStat"]["Metric"]["Dimensions"] == [nat_dim]
        assert "100 * drops / inbound" in metrics["expr_1"]["Expression"]
    assert not any(f"nat{count + 1}-" in name for name in found)


def test_load_balancer_alarms_use_metrics_insights(template):
    found = alarms_of(template("prod", "observability"))
    for name, query, threshold in (
        ("alb-5xx", al.ALB_5XX_QUERY, al.ALB_5XX_PER_5MIN),
        ("alb-target-5xx", al.TARGET_5XX_QUERY, al.TARGET_5XX_PER_5MIN),
    ):
        props = found[f"supabase-prod-{name}"]
        assert props["Metrics"] == [{"Id": "q1", "Expression": query, "Period": 300, "ReturnData": True, "Label": name}]
        assert props["Threshold"] == threshold and props["TreatMissingData"] == "notBreaching"
    assert 'FROM SCHEMA("AWS/ApplicationELB", LoadBalancer)' in al.ALB_5XX_QUERY
    assert "HTTPCode_Target_5XX_Count" in al.TARGET_5XX_QUERY


@pytest.mark.parametrize("env", ENVS)
def test_data_tier_alarms_watch_the_data_stacks_instances_and_cache(template, cfg, env):
    e = cfg.environments[env]
    found = alarms_of(template(env, "observability"))

    def watched(name: str) -> str:
        [dimension] = found[f"supabase-{env}-{name}"]["Dimensions"]
        return json.dumps(dimension["Value"])

    for name in ("rds-cpu", "rds-free-storage", "rds-connections", "rds-freeable-memory"):
        assert f'"{env}-data:' in watched(name) and "DatabasePrimary" in watched(name), name
    for n in range(1, e.database.read_replicas + 1):
        assert f'"{env}-data:' in watched(f"rds-replica{n}-lag") and f"DatabaseReplica{n}" in watched(
            f"rds-replica{n}-lag"
        )
    assert f"supabase-{env}-rds-replica{e.database.read_replicas + 1}-lag" not in found
    nodes = 1 + e.cache.replicas_per_shard
    for n in range(1, nodes + 1):
        assert f'"{env}-data:' in watched(f"cache-node{n}-cpu") and "CacheReplicationGroup" in watched(
            f"cache-node{n}-cpu"
        )
    assert f"supabase-{env}-cache-node{nodes + 1}-cpu" not in found


@pytest.mark.parametrize("env", ENVS)
def test_cloudfront_alarm_watches_the_storage_stacks_distribution(template, cfg, env):
    e = cfg.environments[env]
    assert e.features.cloudfront and e.region == "us-east-1"
    [dimension, region] = alarms_of(template(env, "observability"))[f"supabase-{env}-cloudfront-5xx-rate"]["Dimensions"]
    imported = dimension["Value"]["Fn::ImportValue"]
    assert imported.startswith(f"{env}-storage:") and "Distribution" in imported, imported
    assert region == {"Name": "Region", "Value": "Global"}


@pytest.mark.parametrize("env", ENVS)
def test_network_policy_denies_counted_from_the_cluster_log_group(template, env):
    t = template(env, "observability")
    filters = t.find_resources("AWS::Logs::MetricFilter")
    assert len(filters) == 1
    props = next(iter(filters.values()))["Properties"]
    assert props["LogGroupName"]["Fn::ImportValue"].startswith(f"{env}-cluster:")
    assert "ClusterLogGroup" in props["LogGroupName"]["Fn::ImportValue"]
    transform = props["MetricTransformations"][0]
    assert transform == {
        "MetricName": al.NETWORK_POLICY_DENY_METRIC,
        "MetricNamespace": f"supabase/{env}",
        "MetricValue": "1",
        "DefaultValue": 0,
    }
    alarm = alarms_of(t)[f"supabase-{env}-network-policy-denies"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        f"supabase/{env}",
        al.NETWORK_POLICY_DENY_METRIC,
        "Sum",
    )
    assert alarm["Threshold"] == al.NETWORK_POLICY_DENIES_PER_5MIN


def test_cluster_ships_network_policy_logs_where_the_filter_reads(template):
    """The VPC CNI node agent writes to /aws/eks/<cluster>/cluster when enableCloudWatchLogs is on."""
    cluster = template("staging", "cluster")
    cluster.has_resource_properties("AWS::Logs::LogGroup", {"LogGroupName": "/aws/eks/supabase-staging/cluster"})
    cluster.has_resource_properties(
        "AWS::EKS::Addon",
        {
            "AddonName": "vpc-cni",
            "ConfigurationValues": Match.serialized_json(
                Match.object_like(
                    {
                        "enableNetworkPolicy": "true",
                        "nodeAgent": Match.object_like(
                            {"enablePolicyEventLogs": "true", "enableCloudWatchLogs": "true"}
                        ),
                    }
                )
            ),
        },
    )


def test_deny_pattern_matches_only_deny_verdicts(template):
    """CloudWatch Logs filter semantics (moto) over lines in the node agent's format."""
    pattern = next(iter(template("dev", "observability").find_resources("AWS::Logs::MetricFilter").values()))[
        "Properties"
    ]["FilterPattern"]
    line = "Node: ip-10-10-3-7.ec2.internal;SIP: 10.10.3.21;SPORT: 41234;DIP: 10.10.40.9;DPORT: 5432;PROTOCOL: TCP;PolicyVerdict: {}"
    lines = {
        "deny": line.format("DENY"),
        "deny-tier": line.format("DENY") + ";Tier: default",
        "accept": line.format("ACCEPT"),
        "expired": line.format("EXPIRED/DELETED"),
        "apiserver": 'I1126 08:00:00.1 1 authorization.go:73] "Forbidden" verdict DENY reason="RBAC"',
    }
    with mock_aws():
        logs = boto3.client("logs", region_name="us-east-1")
        logs.create_log_group(logGroupName="g")
        logs.create_log_stream(logGroupName="g", logStreamName="aws-network-policy-agent-audit-1")
        now = int(time.time() * 1000)
        logs.put_log_events(
            logGroupName="g",
            logStreamName="aws-network-policy-agent-audit-1",
            logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(lines.values())],
        )
        matched = {e["message"] for e in logs.filter_log_events(logGroupName="g", filterPattern=pattern)["events"]}
    assert matched == {lines["deny"], lines["deny-tier"]}


def test_backup_failures_reach_the_topic(template):
    t = template("staging", "observability")
    rules = [r["Properties"] for r in t.find_resources("AWS::Events::Rule").values()]
    patterns = {tuple(r["EventPattern"]["detail-type"]): r for r in rules}
    jobs = patterns[("Backup Job State Change",)]
    assert jobs["EventPattern"] == {
        "source": ["aws.backup"],
        "detail-type": ["Backup Job State Change"],
        "detail": {"state": ["FAILED", "ABORTED", "EXPIRED"]},
    }
    copies = patterns[("Copy Job State Change", "Restore Job State Change")]
    assert copies["EventPattern"]["detail"] == {"state": ["FAILED"]}
    for rule in (jobs, copies):
        assert rule["Targets"][0]["Arn"]["Fn::ImportValue"].startswith("staging-alerts:")


def test_dashboard_lists_the_alarms(template):
    dashboards = template("prod", "observability").find_resources("AWS::CloudWatch::Dashboard")
    assert len(dashboards) == 1
    body = json.dumps(next(iter(dashboards.values()))["Properties"]["DashboardBody"])
    alarm_ids = template("prod", "observability").find_resources("AWS::CloudWatch::Alarm")
    assert alarm_ids
    for logical_id in alarm_ids:
        assert logical_id in body, logical_id


# --- data-tier and CloudFront alarm constructs -----------------------------------------


@pytest.fixture(scope="module")
def construct_alarms():
    app = cdk.App()
    stack = cdk.Stack(app, "t", env=cdk.Environment(account="123456789012", region="us-east-1"))
    topic = sns.Topic(stack, "Topic")

    def imported(name: str) -> rds.IDatabaseInstance:
        return rds.DatabaseInstance.from_database_instance_attributes(
            stack,
            name,
            instance_identifier=name,
            instance_endpoint_address=f"{name}.example",
            port=5432,
            security_groups=[],
        )

    db = al.DatabaseAlarms(
        stack,
        "Db",
        topic=topic,
        name_prefix="p-e",
        instance=imported("p-e-db"),
        replicas=[imported("p-e-db-ro1"), imported("p-e-db-ro2")],
        instance_class="db.r7g.xlarge",
        allocated_storage_gib=200,
    )
    al.CacheAlarms(stack, "Cache", topic=topic, name_prefix="p-e", replication_group_id="p-e-valkey", node_count=3)
    al.CloudFrontAlarms(stack, "Cdn", topic=topic, name_prefix="p-e", distribution_id="E123EXAMPLE")
    t = Template.from_stack(stack)
    return db, t, stack.resolve(topic.topic_arn)


def test_database_alarms(construct_alarms):
    db, t, topic = construct_alarms
    found = alarms_of(t)
    for props in found.values():
        assert props["AlarmActions"] == props["OKActions"] == [topic]

    def check(name, metric, statistic, threshold, op, instance="p-e-db"):
        props = found[f"p-e-{name}"]
        assert (props["Namespace"], props["MetricName"], props["Statistic"]) == ("AWS/RDS", metric, statistic)
        assert props["Dimensions"] == [{"Name": "DBInstanceIdentifier", "Value": instance}]
        assert props["Threshold"] == threshold and props["ComparisonOperator"] == op

    check("rds-cpu", "CPUUtilization", "Average", 80, "GreaterThanThreshold")
    check("rds-free-storage", "FreeStorageSpace", "Minimum", int(200 * GIB * 0.1), "LessThanThreshold")
    check(
        "rds-connections",
        "DatabaseConnections",
        "Maximum",
        int(max_connections("db.r7g.xlarge") * 0.8),
        "GreaterThanThreshold",
    )
    check(
        "rds-freeable-memory",
        "FreeableMemory",
        "Minimum",
        int(INSTANCE_MEMORY_GIB["db.r7g.xlarge"] * GIB * 0.1),
        "LessThanThreshold",
    )
    check("rds-replica1-lag", "ReplicaLag", "Maximum", al.RDS_REPLICA_LAG_SECONDS, "GreaterThanThreshold", "p-e-db-ro1")
    check("rds-replica2-lag", "ReplicaLag", "Maximum", al.RDS_REPLICA_LAG_SECONDS, "GreaterThanThreshold", "p-e-db-ro2")
    assert db.connections_threshold == int(max_connections("db.r7g.xlarge") * 0.8) > 1000


def test_connection_threshold_follows_the_instance_class():
    small = int(max_connections("db.t4g.large") * 0.8)
    large = int(max_connections("db.r7g.xlarge") * 0.8)
    assert 0 < small < large


def test_cache_alarms_per_node(construct_alarms):
    _, t, _ = construct_alarms
    found = alarms_of(t)
    for n in (1, 2, 3):
        node = f"p-e-valkey-00{n}"
        for key, metric, statistic, threshold in (
            ("cpu", "CPUUtilization", "Average", al.CACHE_CPU_PERCENT),
            ("engine-cpu", "EngineCPUUtilization", "Average", al.CACHE_ENGINE_CPU_PERCENT),
            ("memory", "DatabaseMemoryUsagePercentage", "Maximum", al.CACHE_MEMORY_PERCENT),
            ("evictions", "Evictions", "Sum", al.CACHE_EVICTIONS_PER_5MIN),
            ("replication-lag", "ReplicationLag", "Maximum", al.CACHE_REPLICATION_LAG_SECONDS),
        ):
            props = found[f"p-e-cache-node{n}-{key}"]
            assert (props["Namespace"], props["MetricName"], props["Statistic"]) == (
                "AWS/ElastiCache",
                metric,
                statistic,
            )
            assert props["Dimensions"] == [{"Name": "CacheClusterId", "Value": node}]
            assert props["Threshold"] == threshold
        assert found[f"p-e-cache-node{n}-replication-lag"]["TreatMissingData"] == "notBreaching"
    assert "p-e-cache-node4-cpu" not in found


def test_cloudfront_alarm_in_us_east_1_only(construct_alarms):
    _, t, _ = construct_alarms
    props = alarms_of(t)["p-e-cloudfront-5xx-rate"]
    assert (props["Namespace"], props["MetricName"]) == ("AWS/CloudFront", "5xxErrorRate")
    assert props["Dimensions"] == [
        {"Name": "DistributionId", "Value": "E123EXAMPLE"},
        {"Name": "Region", "Value": "Global"},
    ]
    app = cdk.App()
    elsewhere = cdk.Stack(app, "eu", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    with pytest.raises(ValueError, match="us-east-1"):
        al.CloudFrontAlarms(elsewhere, "Cdn", topic=sns.Topic(elsewhere, "T"), name_prefix="p", distribution_id="E1")
