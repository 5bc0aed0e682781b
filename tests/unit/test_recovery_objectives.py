"""Recovery objectives (config `recovery.rpo_minutes` / `rto_minutes`) against what each
environment's data-tier template deploys.

The achieved RPO is derived from the template alone (the mechanisms it switches on and their
schedules), never from config, so a template that loses a mechanism fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ENVIRONMENTS

ENVS = ENVIRONMENTS
PRIMARY = "DatabasePrimaryEDE0B3D0"
DOC = Path(__file__).resolve().parents[2] / "docs" / "disaster-recovery.md"
# RDS uploads each instance's transaction logs to S3 every five minutes: the bound of
# point-in-time recovery, and of the replicated automated backups in the DR region.
LOG_SHIPPING_MINUTES = 5
HOUR, DAY, WEEK = 60, 1440, 10080


def cron_interval_minutes(expression: str) -> int:
    """Interval of an AWS cron(min hour day-of-month month day-of-week year) schedule."""
    match = re.fullmatch(r"cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)", expression)
    assert match, expression
    minute, hour, dom, month, dow, _ = match.groups()
    assert minute.isdigit() and month == "*", expression
    if hour == "*":
        return HOUR
    assert hour.isdigit(), expression
    if dom in ("*", "?") and dow in ("*", "?"):
        return DAY
    if dom == "?" and re.fullmatch(r"[A-Z]{3}", dow):
        return WEEK
    raise AssertionError(f"unsupported schedule {expression}")


def achieved_rpo(template: dict, dr_region: str) -> dict[str, int]:
    """Minutes of data lost, at worst, after losing the database in-region and after losing the region."""
    resources = template["Resources"]
    primary = resources[PRIMARY]["Properties"]
    plans = [r["Properties"]["BackupPlan"] for r in resources.values() if r["Type"] == "AWS::Backup::BackupPlan"]
    rules = [rule for plan in plans for rule in plan["BackupPlanRule"]]
    in_region = [cron_interval_minutes(rule["ScheduleExpression"]) for rule in rules]
    if primary.get("BackupRetentionPeriod", 0) >= 1 or any(rule.get("EnableContinuousBackup") for rule in rules):
        in_region.append(LOG_SHIPPING_MINUTES)
    region_loss = [cron_interval_minutes(rule["ScheduleExpression"]) for rule in rules if rule.get("CopyActions")]
    if primary.get("AutomaticBackupReplicationRegion") == dr_region:
        region_loss.append(LOG_SHIPPING_MINUTES)
    return {"in_region": min(in_region, default=10**9), "region_loss": min(region_loss, default=10**9)}


def of_type(template: dict, type_: str) -> list[dict]:
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == type_]


@pytest.mark.parametrize("env", ENVS)
def test_rpo_is_met_when_the_database_is_lost(assembly, cfg, env):
    e = cfg.environments[env]
    assert achieved_rpo(assembly.template_json(f"{env}/data"), e.dr_region)["in_region"] <= e.recovery.rpo_minutes


@pytest.mark.parametrize("env", ENVS)
def test_rpo_is_met_when_the_region_is_lost(assembly, cfg, env):
    e = cfg.environments[env]
    assert achieved_rpo(assembly.template_json(f"{env}/data"), e.dr_region)["region_loss"] <= e.recovery.rpo_minutes


def test_rpo_model_fails_a_template_without_cross_region_mechanisms(assembly, cfg):
    """The check above can fail: prod's template minus its cross-region replication misses prod's RPO."""
    template = assembly.template_json("prod/data")
    stripped = {
        "Resources": {
            **template["Resources"],
            PRIMARY: {
                **template["Resources"][PRIMARY],
                "Properties": {
                    k: v
                    for k, v in template["Resources"][PRIMARY]["Properties"].items()
                    if not k.startswith("AutomaticBackupReplication")
                },
            },
        }
    }
    assert achieved_rpo(stripped, cfg.environments["prod"].dr_region)["region_loss"] == DAY
    assert cfg.environments["prod"].recovery.rpo_minutes < DAY


@pytest.mark.parametrize("env", ENVS)
def test_rpo_within_the_hour_keeps_continuous_backups_in_aws_backup(assembly, cfg, env):
    """RDS's own PITR dies with the instance's automated backups; AWS Backup's continuous
    recovery points live in the (locked in production) vault."""
    e = cfg.environments[env]
    rules = [
        rule
        for plan in of_type(assembly.template_json(f"{env}/data"), "AWS::Backup::BackupPlan")
        for rule in plan["BackupPlan"]["BackupPlanRule"]
    ]
    continuous = any(rule.get("EnableContinuousBackup") for rule in rules)
    assert continuous is (e.recovery.rpo_minutes <= HOUR)


@pytest.mark.parametrize("env", ENVS)
def test_rpo_below_a_day_replicates_the_secrets_with_the_backups(assembly, cfg, env):
    """A database restored in the DR region is useless without the passwords it was backed up with."""
    e = cfg.environments[env]
    secrets = of_type(assembly.template_json(f"{env}/data"), "AWS::SecretsManager::Secret")
    replicated = {s["Name"] for s in secrets if any(r["Region"] == e.dr_region for r in s.get("ReplicaRegions", []))}
    if e.recovery.rpo_minutes < DAY:
        assert replicated == {s["Name"] for s in secrets}
    else:
        assert not replicated


@pytest.mark.parametrize("env", ENVS)
def test_rto_within_the_hour_has_automatic_failover_and_a_promotable_replica(assembly, cfg, env):
    e = cfg.environments[env]
    template = assembly.template_json(f"{env}/data")
    primary = template["Resources"][PRIMARY]["Properties"]
    replicas = [p for p in of_type(template, "AWS::RDS::DBInstance") if "SourceDBInstanceIdentifier" in p]
    (cache,) = of_type(template, "AWS::ElastiCache::ReplicationGroup")
    if e.recovery.rto_minutes <= HOUR:
        assert primary["MultiAZ"] is True
        assert len(replicas) >= 1
        assert cache["AutomaticFailoverEnabled"] is True
    if e.recovery.rto_minutes < DAY:
        # Without a standby, an AZ outage means a restore measured in hours.
        assert primary["MultiAZ"] is True


@pytest.mark.parametrize("env", ENVS)
def test_restores_are_rehearsed_weekly_within_the_rto(assembly, cfg, env):
    e = cfg.environments[env]
    template = assembly.template_json(f"{env}/data")
    (plan,) = of_type(template, "AWS::Backup::RestoreTestingPlan")
    (selection,) = of_type(template, "AWS::Backup::RestoreTestingSelection")
    assert cron_interval_minutes(plan["ScheduleExpression"]) <= WEEK
    assert PRIMARY in str(selection["ProtectedResourceArns"])
    # The restored copy exists for the validation window; validating it must fit the RTO.
    assert selection["ValidationWindowHours"] >= 1 and selection["ValidationWindowHours"] * HOUR <= max(
        HOUR, e.recovery.rto_minutes
    )


@pytest.mark.parametrize("env", ENVS)
def test_runbook_states_each_environments_objectives(cfg, env):
    e = cfg.environments[env]
    rows = [line for line in DOC.read_text().splitlines() if line.startswith(f"| {env} |")]
    assert rows, f"docs/disaster-recovery.md has no objectives row for {env}"
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert cells[1] == f"{e.recovery.rpo_minutes} min" and cells[2] == f"{e.recovery.rto_minutes} min", rows[0]
