"""Cost stack: monthly budget notifications and Cost Anomaly Detection, both to the alerts topic."""

from __future__ import annotations

import json

import pytest

from constructs_lib.alarms import ANOMALY_MIN_IMPACT_USD, anomaly_threshold_expression
from tests.conftest import ENVIRONMENTS

ENVS = ENVIRONMENTS


def only(t, resource_type: str) -> dict:
    found = t.find_resources(resource_type)
    assert len(found) == 1, resource_type
    return next(iter(found.values()))["Properties"]


def is_alerts_topic(value, env: str) -> bool:
    imported = value.get("Fn::ImportValue", "") if isinstance(value, dict) else ""
    return imported.startswith(f"{env}-alerts:") and "AlertsTopic" in imported


@pytest.mark.parametrize("env", ENVS)
def test_monthly_budget_from_config(template, cfg, env):
    budget = only(template(env, "cost"), "AWS::Budgets::Budget")
    data = budget["Budget"]
    assert data["BudgetType"] == "COST" and data["TimeUnit"] == "MONTHLY"
    assert data["BudgetLimit"] == {"Amount": cfg.environments[env].monthly_budget_usd, "Unit": "USD"}
    assert data["BudgetName"] == f"supabase-{env}-monthly"


@pytest.mark.parametrize("env", ENVS)
def test_budget_notifies_at_80_actual_and_100_forecast(template, cfg, env):
    budget = only(template(env, "cost"), "AWS::Budgets::Budget")
    notifications = {
        (n["Notification"]["NotificationType"], n["Notification"]["Threshold"]): n
        for n in budget["NotificationsWithSubscribers"]
    }
    assert set(notifications) == {("ACTUAL", 80), ("FORECASTED", 100)}
    for n in notifications.values():
        assert n["Notification"]["ComparisonOperator"] == "GREATER_THAN"
        assert n["Notification"]["ThresholdType"] == "PERCENTAGE"
        subscribers = {s["SubscriptionType"]: s["Address"] for s in n["Subscribers"]}
        assert subscribers["EMAIL"] == cfg.environments[env].alert_email
        assert is_alerts_topic(subscribers["SNS"], env)


@pytest.mark.parametrize("env", ENVS)
def test_anomaly_monitor_per_service(template, env):
    t = template(env, "cost")
    monitor = only(t, "AWS::CE::AnomalyMonitor")
    assert (monitor["MonitorType"], monitor["MonitorDimension"]) == ("DIMENSIONAL", "SERVICE")
    subscription = only(t, "AWS::CE::AnomalySubscription")
    monitor_id = next(iter(t.find_resources("AWS::CE::AnomalyMonitor")))
    assert subscription["MonitorArnList"] == [{"Fn::GetAtt": [monitor_id, "MonitorArn"]}]
    assert subscription["Frequency"] == "IMMEDIATE"
    assert len(subscription["Subscribers"]) == 1
    assert subscription["Subscribers"][0]["Type"] == "SNS"
    assert is_alerts_topic(subscription["Subscribers"][0]["Address"], env)


@pytest.mark.parametrize("env", ENVS)
def test_anomaly_threshold_scales_with_budget(template, cfg, env):
    subscription = only(template(env, "cost"), "AWS::CE::AnomalySubscription")
    expression = json.loads(subscription["ThresholdExpression"])
    dims = {d["Dimensions"]["Key"]: d["Dimensions"] for d in expression["And"]}
    absolute = dims["ANOMALY_TOTAL_IMPACT_ABSOLUTE"]
    assert absolute["MatchOptions"] == ["GREATER_THAN_OR_EQUAL"]
    budget = cfg.environments[env].monthly_budget_usd
    assert int(absolute["Values"][0]) == max(ANOMALY_MIN_IMPACT_USD, round(budget * 0.02))
    assert dims["ANOMALY_TOTAL_IMPACT_PERCENTAGE"]["Values"] == ["20"]


def test_threshold_floor_and_growth():
    def impact(usd):
        return int(anomaly_threshold_expression(usd)["And"][0]["Dimensions"]["Values"][0])

    assert impact(100) == ANOMALY_MIN_IMPACT_USD
    assert impact(12000) == 240 > impact(3000) == 60


def test_topic_lets_budgets_and_cost_anomaly_detection_publish(template):
    policy = only(template("prod", "alerts"), "AWS::SNS::TopicPolicy")
    services = {
        p
        for s in policy["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow"
        for p in s["Principal"].get("Service", [])
    }
    assert {"budgets.amazonaws.com", "costalerts.amazonaws.com"} <= services


@pytest.mark.parametrize("env", ENVS)
def test_cost_allocation_tags_on_every_stack(assembly, env):
    for unit in ("cost", "alerts", "observability", "security"):
        tags = assembly.stack(f"{env}/{unit}").tags
        assert tags.get("project") == "supabase" and tags.get("environment") == env, unit
