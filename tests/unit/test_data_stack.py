"""Data stack: RDS primary and replicas, backups, secrets, API key minting, Valkey, private DNS."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_secretsmanager as secretsmanager

from config import load_config, naming
from config.naming import SecretKeys
from constructs_lib import lambda_deps
from constructs_lib.api_keys import secret_generation
from constructs_lib.secrets import generator
from database.roles import LOGIN_ROLES, MASTER_USER
from stacks.data_stack import DAILY_COPY_RPO_MINUTES
from tests.conftest import ENVIRONMENTS, ORG_CONFIGS

ENVS = ENVIRONMENTS
# A daily backup copy cannot meet an RPO under a day: those environments also replicate RDS's
# automated backups to the DR region.
REPLICATING = tuple(
    name
    for name, env in load_config(ORG_CONFIGS["default"]).environments.items()
    if env.recovery.rpo_minutes < DAILY_COPY_RPO_MINUTES
)
HANDLER = Path(__file__).resolve().parents[2] / "ops" / "mint_api_keys" / "handler.py"
# Logical ids of the stateful resources: a change here means CloudFormation replaces (and
# loses) a database, a vault or a cache. Never update these to make a test pass.
PRIMARY = "DatabasePrimaryEDE0B3D0"
REPLICAS = ["DatabaseReplica1ED560A1F", "DatabaseReplica2035311FF"]
VAULT = "BackupVaultADF21B19"
CACHE = "CacheReplicationGroupBFE59FF3"
DATA_KEY = "DataKey17AFBB84"
KEY_ARN = {"Fn::GetAtt": [DATA_KEY, "Arn"]}


def props(t, logical_id: str) -> dict:
    return t.to_json()["Resources"][logical_id]["Properties"]


def of_type(t, type_: str) -> dict[str, dict]:
    return t.find_resources(type_)


def secret_by_name(t, name: str) -> dict:
    found = [r for r in of_type(t, "AWS::SecretsManager::Secret").values() if r["Properties"].get("Name") == name]
    assert len(found) == 1, name
    return found[0]


def dr_source(assembly, env: str, reference: dict) -> tuple[str, str]:
    """Follows a cross-region reference to the DR stack: (resource type, attribute) it reads."""
    logical_id, attribute = reference["Fn::GetAtt"]
    data = assembly.template_json(f"{env}/data")
    assert data["Resources"][logical_id]["Type"] == "Custom::CrossRegionExportReader"
    dr = assembly.template_json(f"{env}/dr")
    writers = [r for r in dr["Resources"].values() if r["Type"] == "Custom::CrossRegionExportWriter"]
    exports = {k: v for w in writers for k, v in w["Properties"]["WriterProps"]["exports"].items()}
    source_id, source_attribute = exports[attribute]["Fn::GetAtt"]
    return dr["Resources"][source_id]["Type"], source_attribute


# --- RDS primary ------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_primary_follows_config(template, cfg, env):
    db = cfg.environments[env].database
    p = props(template(env, "data"), PRIMARY)
    assert p["Engine"] == "postgres"
    assert p["EngineVersion"] == db.engine_version == "17.9"
    assert p["DBInstanceClass"] == db.instance_class
    assert p["MultiAZ"] is db.multi_az
    assert p["StorageType"] == "gp3"
    assert int(p["AllocatedStorage"]) == db.allocated_storage_gib
    assert p["MaxAllocatedStorage"] == db.max_allocated_storage_gib
    assert p["DBInstanceIdentifier"] == f"{cfg.project}-{env}-db"
    assert ":SecretString:username::}}" in json.dumps(p["MasterUsername"])


@pytest.mark.parametrize("env", ENVS)
def test_primary_encryption_monitoring_and_auth(template, env):
    p = props(template(env, "data"), PRIMARY)
    assert p["StorageEncrypted"] is True and p["KmsKeyId"] == KEY_ARN
    assert p["EnablePerformanceInsights"] is True and p["PerformanceInsightsKMSKeyId"] == KEY_ARN
    assert p["PerformanceInsightsRetentionPeriod"] >= 7
    assert 0 < p["MonitoringInterval"] <= 60 and "MonitoringRoleArn" in p
    assert sorted(p["EnableCloudwatchLogsExports"]) == ["postgresql", "upgrade"]
    assert p["EnableIAMDatabaseAuthentication"] is True
    assert p["PubliclyAccessible"] is False
    assert p["CACertificateIdentifier"] == "rds-ca-rsa2048-g1"


@pytest.mark.parametrize("env", ENVS)
def test_key_is_customer_managed_rotated_and_retained(template, env):
    key = template(env, "data").to_json()["Resources"][DATA_KEY]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"


@pytest.mark.parametrize("env", ENVS)
def test_parameter_group(template, cfg, env):
    t = template(env, "data")
    groups = of_type(t, "AWS::RDS::DBParameterGroup")
    assert len(groups) == 1
    ((group_id, group),) = groups.items()
    assert group["Properties"]["Family"] == "postgres17"
    params = group["Properties"]["Parameters"]
    assert params["rds.logical_replication"] == "1"
    assert params["rds.force_ssl"] == "1"
    assert set(params["shared_preload_libraries"].split(",")) == {
        "pg_stat_statements",
        "auto_explain",
        "pg_tle",
        "pg_cron",
    }
    assert params["log_min_duration_statement"] == "1000"
    # Plans of the same slow statements; the harness proves these lines appear.
    assert params["auto_explain.log_min_duration"] == "1000"
    # pg_cron runs partition maintenance from the database every service uses.
    assert params["cron.database_name"] == "postgres"
    assert params["log_lock_waits"] == "1"
    assert int(params["log_temp_files"]) >= 0
    assert 0 < int(params["idle_in_transaction_session_timeout"]) <= 3_600_000
    # The slot guard must trip well before WAL could fill the allocated storage.
    storage_mb = cfg.environments[env].database.allocated_storage_gib * 1024
    assert 0 < int(params["max_slot_wal_keep_size"]) <= storage_mb // 4
    for logical_id in [PRIMARY, *REPLICAS[: cfg.environments[env].database.read_replicas]]:
        assert props(t, logical_id)["DBParameterGroupName"] == {"Ref": group_id}


@pytest.mark.parametrize("env", ENVS)
def test_subnet_groups_use_only_isolated_subnets(template, cfg, env):
    t = template(env, "data")
    azs = cfg.environments[env].network.max_azs
    ((rds_group_id, rds_group),) = of_type(t, "AWS::RDS::DBSubnetGroup").items()
    ((_, cache_group),) = of_type(t, "AWS::ElastiCache::SubnetGroup").items()
    for subnets in (rds_group["Properties"]["SubnetIds"], cache_group["Properties"]["SubnetIds"]):
        assert len(subnets) == azs
        for subnet in subnets:
            assert re.search(r"Vpcdatabase", subnet["Fn::ImportValue"]), subnet
    assert props(t, PRIMARY)["DBSubnetGroupName"] == {"Ref": rds_group_id}


@pytest.mark.parametrize("env", ENVS)
def test_data_security_groups_are_closed(template, env):
    """No ingress and no egress of their own: the cluster stack adds its rules."""
    t = template(env, "data")
    db_sg = props(t, PRIMARY)["VPCSecurityGroups"][0]["Fn::GetAtt"][0]
    cache_sg = props(t, CACHE)["SecurityGroupIds"][0]["Fn::GetAtt"][0]
    for sg in (db_sg, cache_sg):
        p = props(t, sg)
        assert "SecurityGroupIngress" not in p
        # CDK's stand-in for "no egress": a rule matching no address.
        assert [rule["CidrIp"] for rule in p["SecurityGroupEgress"]] == ["255.255.255.255/32"]
    ingress = of_type(t, "AWS::EC2::SecurityGroupIngress")
    # The rules in this stack: the master-password rotation function and the restore
    # validation function, each to PostgreSQL on the database's group only.
    assert len(ingress) == 2
    sources = set()
    for rule in ingress.values():
        assert rule["Properties"]["GroupId"] == {"Fn::GetAtt": [db_sg, "GroupId"]}
        assert rule["Properties"]["FromPort"] == rule["Properties"]["ToPort"] == 5432
        sources.add(rule["Properties"]["SourceSecurityGroupId"]["Fn::GetAtt"][0])
    assert len(sources) == 2
    assert any("Rotation" in s for s in sources) and any("RestoreValidation" in s for s in sources)


# --- no data lost ---------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_retention_and_deletion_protection(template, cfg, env):
    e = cfg.environments[env]
    resource = template(env, "data").to_json()["Resources"][PRIMARY]
    expected = "Retain" if e.production else "Snapshot"
    assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == expected
    p = resource["Properties"]
    assert p["DeletionProtection"] is e.database.deletion_protection
    assert p["DeleteAutomatedBackups"] is False
    assert p["BackupRetentionPeriod"] == e.database.backup_retention_days
    assert p["CopyTagsToSnapshot"] is True


def test_prod_retains_and_protects_everything_stateful(template, assembly):
    t = template("prod", "data").to_json()["Resources"]
    assert t[PRIMARY]["DeletionPolicy"] == "Retain" and t[PRIMARY]["Properties"]["DeletionProtection"] is True
    for replica in REPLICAS:
        assert t[replica]["DeletionPolicy"] == "Retain" and t[replica]["Properties"]["DeletionProtection"] is True
    assert t[VAULT]["DeletionPolicy"] == "Retain"
    for secret in (r for r in t.values() if r["Type"] == "AWS::SecretsManager::Secret"):
        assert secret["DeletionPolicy"] == "Retain", secret["Properties"]["Name"]
    assert assembly.stack("prod/data").termination_protection is True


def test_dev_takes_a_final_snapshot_and_drops_protection(template):
    t = template("dev", "data").to_json()["Resources"]
    assert t[PRIMARY]["DeletionPolicy"] == "Snapshot"
    assert t[PRIMARY]["Properties"]["DeletionProtection"] is False


@pytest.mark.parametrize("env", REPLICATING)
def test_cross_region_automated_backups(template, assembly, cfg, env):
    e = cfg.environments[env]
    p = props(template(env, "data"), PRIMARY)
    assert p["AutomaticBackupReplicationRegion"] == e.dr_region
    assert p["AutomaticBackupReplicationRetentionPeriod"] == e.database.backup_retention_days
    assert dr_source(assembly, env, p["AutomaticBackupReplicationKmsKeyId"]) == ("AWS::KMS::Key", "Arn")


def test_dev_has_no_cross_region_automated_backups(template):
    p = props(template("dev", "data"), PRIMARY)
    assert not {k for k in p if k.startswith("AutomaticBackupReplication")}


@pytest.mark.parametrize("env", REPLICATING)
def test_dr_key_admits_every_service_that_writes_with_it(assembly, template, cfg, env):
    """Contract with the dr stack: RDS (replicated automated backups), AWS Backup (copies) and
    Secrets Manager (secret replicas) encrypt with the DR key in the DR region. A key policy
    that denies one of them breaks that replication; for secrets CloudFormation even reports
    success while the replica fails."""
    region = cfg.environments[env].dr_region
    reference = props(template(env, "data"), PRIMARY)["AutomaticBackupReplicationKmsKeyId"]
    dr = assembly.template_json(f"{env}/dr")
    writers = [r for r in dr["Resources"].values() if r["Type"] == "Custom::CrossRegionExportWriter"]
    exports = {k: v for w in writers for k, v in w["Properties"]["WriterProps"]["exports"].items()}
    key_id = exports[reference["Fn::GetAtt"][1]]["Fn::GetAtt"][0]
    data_key_actions = {"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:GenerateDataKey*", "kms:ReEncrypt*"}
    for statement in dr["Resources"][key_id]["Properties"]["KeyPolicy"]["Statement"]:
        actions = set(statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
        if statement["Effect"] != "Deny" or not actions & data_key_actions:
            continue
        exempt = statement.get("Condition", {}).get("StringNotEquals", {}).get("kms:ViaService", [])
        exempt = exempt if isinstance(exempt, list) else [exempt]
        for service in ("rds", "backup", "secretsmanager"):
            assert f"{service}.{region}.amazonaws.com" in exempt, (
                f"the DR key ({key_id}) denies {service}; add it to stacks/dr_stack.py KEY_SERVICES"
            )


@pytest.mark.parametrize("env", ENVS)
def test_stack_reads_dr_region_values_through_cross_region_references(assembly, template, env):
    assert assembly.stack(f"{env}/data").stack_name == f"{env}-data"
    (reader,) = of_type(template(env, "data"), "Custom::CrossRegionExportReader").values()
    assert reader["Properties"]["ReaderProps"]["region"] == assembly.stack(f"{env}/data").region


# --- read replicas --------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_read_replicas(template, cfg, env):
    t = template(env, "data")
    count = cfg.environments[env].database.read_replicas
    instances = of_type(t, "AWS::RDS::DBInstance")
    assert len(instances) == 1 + count
    primary = props(t, PRIMARY)
    outputs = t.to_json()["Outputs"]
    for n, logical_id in enumerate(REPLICAS[:count], start=1):
        p = instances[logical_id]["Properties"]
        assert json.dumps({"Ref": PRIMARY}) in json.dumps(p["SourceDBInstanceIdentifier"])
        assert p["DBInstanceIdentifier"] == f"{cfg.project}-{env}-db-ro{n}"
        assert p["DBSubnetGroupName"] == primary["DBSubnetGroupName"]
        assert p["VPCSecurityGroups"] == primary["VPCSecurityGroups"]
        assert p["EnablePerformanceInsights"] is True and p["PerformanceInsightsKMSKeyId"] == KEY_ARN
        assert p["DBInstanceClass"] == primary["DBInstanceClass"]
        assert outputs[f"DbReplica{n}Endpoint"]["Value"] == {"Fn::GetAtt": [logical_id, "Endpoint.Address"]}
    assert outputs["DbEndpoint"]["Value"] == {"Fn::GetAtt": [PRIMARY, "Endpoint.Address"]}


def test_prod_has_a_replica_per_config(cfg, template):
    assert cfg.environments["prod"].database.read_replicas >= 1
    assert (
        len(of_type(template("prod", "data"), "AWS::RDS::DBInstance"))
        == 1 + cfg.environments["prod"].database.read_replicas
    )


@pytest.mark.parametrize("env", ENVS)
def test_database_logs_are_encrypted_with_retention_before_the_instances_exist(template, cfg, env):
    t = template(env, "data").to_json()["Resources"]
    names = [f"{cfg.project}-{env}-db"] + [
        f"{cfg.project}-{env}-db-ro{n}" for n in range(1, cfg.environments[env].database.read_replicas + 1)
    ]
    groups = {r["Properties"].get("LogGroupName"): (k, r) for k, r in t.items() if r["Type"] == "AWS::Logs::LogGroup"}
    for instance_name, logical_id in zip(names, [PRIMARY, *REPLICAS], strict=False):
        for log in ("postgresql", "upgrade"):
            group_id, group = groups[f"/aws/rds/instance/{instance_name}/{log}"]
            assert group["Properties"]["KmsKeyId"] == KEY_ARN
            assert group["Properties"]["RetentionInDays"] >= 90
            assert group_id in t[logical_id]["DependsOn"]


# --- AWS Backup -----------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_vault_encrypted_and_lock_only_in_production(template, cfg, env):
    e = cfg.environments[env]
    vault = template(env, "data").to_json()["Resources"][VAULT]
    p = vault["Properties"]
    assert vault["Type"] == "AWS::Backup::BackupVault" and vault["DeletionPolicy"] == "Retain"
    assert p["EncryptionKeyArn"] == KEY_ARN
    assert p["BackupVaultName"] == f"{cfg.project}-{env}"
    deny = p["AccessPolicy"]["Statement"][0]
    assert deny["Effect"] == "Deny" and "backup:DeleteRecoveryPoint" in deny["Action"]
    if e.production:
        assert p["LockConfiguration"]["MinRetentionDays"] == e.database.backup_retention_days
        assert "ChangeableForDays" not in p["LockConfiguration"]  # governance mode
    else:
        assert "LockConfiguration" not in p


@pytest.mark.parametrize("env", ENVS)
def test_backup_plan_copies_daily_to_the_dr_vault(template, assembly, cfg, env):
    e = cfg.environments[env]
    (plan,) = of_type(template(env, "data"), "AWS::Backup::BackupPlan").values()
    rules = {r["RuleName"]: r for r in plan["Properties"]["BackupPlan"]["BackupPlanRule"]}
    daily = rules["DailySnapshot"]
    assert daily["ScheduleExpression"] == "cron(0 5 * * ? *)"
    assert daily["Lifecycle"]["DeleteAfterDays"] == e.database.backup_retention_days
    assert daily["TargetBackupVault"] == {"Fn::GetAtt": [VAULT, "BackupVaultName"]}
    (copy,) = daily["CopyActions"]
    assert copy["Lifecycle"]["DeleteAfterDays"] == e.database.backup_retention_days
    assert dr_source(assembly, env, copy["DestinationBackupVaultArn"]) == ("AWS::Backup::BackupVault", "BackupVaultArn")
    if e.recovery.rpo_minutes <= 60:
        assert rules["Continuous"]["EnableContinuousBackup"] is True
        assert rules["Continuous"]["Lifecycle"]["DeleteAfterDays"] == min(35, e.database.backup_retention_days)
    else:
        assert "Continuous" not in rules


@pytest.mark.parametrize("env", ENVS)
def test_backup_selections(template, env):
    selections = [
        s["Properties"]["BackupSelection"]
        for s in of_type(template(env, "data"), "AWS::Backup::BackupSelection").values()
    ]
    assert len(selections) == 2
    database = next(s for s in selections if s["SelectionName"].endswith("-database"))
    assert json.dumps({"Ref": PRIMARY}) in json.dumps(database["Resources"])
    volumes = next(s for s in selections if s["SelectionName"].endswith("-tagged-volumes"))
    assert volumes["Conditions"] == {
        "StringEquals": [{"ConditionKey": "aws:ResourceTag/backup", "ConditionValue": "supabase"}]
    }
    assert json.dumps(volumes["Resources"]).endswith(':volume/*"]]}]')


@pytest.mark.parametrize("env", ENVS)
def test_restore_testing_plan_and_selection(template, cfg, env):
    t = template(env, "data")
    e = cfg.environments[env]
    (plan,) = of_type(t, "AWS::Backup::RestoreTestingPlan").values()
    (selection,) = of_type(t, "AWS::Backup::RestoreTestingSelection").values()
    pp, sp = plan["Properties"], selection["Properties"]
    assert pp["RecoveryPointSelection"]["IncludeVaults"] == [{"Fn::GetAtt": [VAULT, "BackupVaultArn"]}]
    assert pp["RecoveryPointSelection"]["Algorithm"] == "LATEST_WITHIN_WINDOW"
    assert "SNAPSHOT" in pp["RecoveryPointSelection"]["RecoveryPointTypes"]
    assert re.fullmatch(r"cron\(0 \d+ \? \* [A-Z]{3} \*\)", pp["ScheduleExpression"])  # weekly
    assert re.fullmatch(r"[A-Za-z0-9_]+", pp["RestoreTestingPlanName"])
    assert sp["RestoreTestingPlanName"] == pp["RestoreTestingPlanName"]
    assert sp["ProtectedResourceType"] == "RDS"
    assert json.dumps({"Ref": PRIMARY}) in json.dumps(sp["ProtectedResourceArns"])
    (subnet_group_id,) = of_type(t, "AWS::RDS::DBSubnetGroup")
    assert sp["RestoreMetadataOverrides"]["dbSubnetGroupName"] == {"Ref": subnet_group_id}
    assert sp["RestoreMetadataOverrides"]["dbInstanceClass"].startswith("db.t4g.")
    assert 1 <= sp["ValidationWindowHours"] <= max(1, e.recovery.rto_minutes // 60)


# --- secrets --------------------------------------------------------------------------


def expected_names(cfg, env):
    keys = [
        SecretKeys.JWT,
        SecretKeys.API_KEYS,
        SecretKeys.DB_MASTER,
        SecretKeys.REALTIME,
        SecretKeys.META,
        SecretKeys.DASHBOARD,
        SecretKeys.SMTP,
        SecretKeys.REDIS,
    ] + [r.secret_key for r in LOGIN_ROLES]
    return {naming.secret_name(cfg, env, k) for k in keys}


def gen(secret: dict) -> dict:
    return secret["Properties"]["GenerateSecretString"]


def alphanumeric_only(spec: dict) -> bool:
    return set(string.punctuation) <= set(spec["ExcludeCharacters"])


@pytest.mark.parametrize("env", ENVS)
def test_every_documented_secret_exists_encrypted_with_the_data_key(template, cfg, env):
    secrets = of_type(template(env, "data"), "AWS::SecretsManager::Secret").values()
    names = {s["Properties"]["Name"] for s in secrets}
    assert expected_names(cfg, env) <= names
    # Besides the documented ones only the three Realtime parts exist.
    assert names - expected_names(cfg, env) == {
        naming.secret_name(cfg, env, f"realtime/parts/{f}")
        for f in ("secret_key_base", "db_enc_key", "metrics_jwt_secret")
    }
    for s in secrets:
        assert s["Properties"]["KmsKeyId"] == KEY_ARN, s["Properties"]["Name"]


@pytest.mark.parametrize("env", ENVS)
def test_generated_secret_templates(template, cfg, env):
    t = template(env, "data")
    name = lambda key: naming.secret_name(cfg, env, key)  # noqa: E731

    master = gen(secret_by_name(t, name(SecretKeys.DB_MASTER)))
    assert json.loads(master["SecretStringTemplate"]) == {"username": MASTER_USER, "dbname": "postgres"}
    assert master["GenerateStringKey"] == "password" and alphanumeric_only(master)

    for role in LOGIN_ROLES:
        spec = gen(secret_by_name(t, name(role.secret_key)))
        assert json.loads(spec["SecretStringTemplate"]) == {"username": role.name}
        assert spec["GenerateStringKey"] == "password"
        assert spec["PasswordLength"] >= 32 and alphanumeric_only(spec)

    jwt = gen(secret_by_name(t, name(SecretKeys.JWT)))
    assert json.loads(jwt["SecretStringTemplate"]) == {} and jwt["GenerateStringKey"] == "secret"
    assert jwt["PasswordLength"] >= 40 and alphanumeric_only(jwt)

    meta = gen(secret_by_name(t, name(SecretKeys.META)))
    assert meta["GenerateStringKey"] == "crypto_key" and meta["PasswordLength"] >= 32

    dashboard = gen(secret_by_name(t, name(SecretKeys.DASHBOARD)))
    assert json.loads(dashboard["SecretStringTemplate"]) == {"username": "supabase"}
    assert dashboard["GenerateStringKey"] == "password"

    redis = gen(secret_by_name(t, name(SecretKeys.REDIS)))
    assert redis["GenerateStringKey"] == "auth_token" and 32 <= redis["PasswordLength"] <= 128
    assert set('@"/') <= set(redis["ExcludeCharacters"])


@pytest.mark.parametrize("env", ENVS)
def test_realtime_secret_assembles_generated_parts(template, cfg, env):
    t = template(env, "data")
    resources = t.to_json()["Resources"]
    lengths = {"secret_key_base": 64, "db_enc_key": 16, "metrics_jwt_secret": 64}
    part_ids = {}
    for field, length in lengths.items():
        part_name = naming.secret_name(cfg, env, f"realtime/parts/{field}")
        (part_id,) = [
            k
            for k, r in resources.items()
            if r["Type"] == "AWS::SecretsManager::Secret" and r["Properties"]["Name"] == part_name
        ]
        assert gen(resources[part_id])["PasswordLength"] == length
        part_ids[field] = part_id
    joined = secret_by_name(t, naming.secret_name(cfg, env, SecretKeys.REALTIME))["Properties"]["SecretString"][
        "Fn::Join"
    ][1]
    # Reassemble with placeholders: the result must be JSON with exactly the three fields.
    text = "".join(piece if isinstance(piece, str) else f"<{piece['Ref']}>" for piece in joined)
    value = json.loads(text)
    assert set(value) == set(lengths)
    for field, part_id in part_ids.items():
        assert value[field] == f"{{{{resolve:secretsmanager:<{part_id}>:SecretString:value::}}}}"


@pytest.mark.parametrize("env", ENVS)
def test_placeholder_secrets(template, cfg, env):
    t = template(env, "data")
    assert (
        json.loads(secret_by_name(t, naming.secret_name(cfg, env, SecretKeys.API_KEYS))["Properties"]["SecretString"])
        == {}
    )
    smtp = secret_by_name(t, naming.secret_name(cfg, env, SecretKeys.SMTP))["Properties"]
    value = json.loads(smtp["SecretString"])
    assert set(value) == {"username", "password", "host", "port"}
    assert value["username"] == value["password"] == ""
    assert value["host"] == f"email-smtp.{cfg.environments[env].region}.amazonaws.com"
    assert "SES" in smtp["Description"]
    # No long-lived IAM user (SES SMTP credentials) is created by CDK.
    assert not of_type(t, "AWS::IAM::User") and not of_type(t, "AWS::IAM::AccessKey")


@pytest.mark.parametrize("env", ENVS)
def test_secrets_replicate_to_the_dr_region_when_rpo_needs_it(template, assembly, cfg, env):
    e = cfg.environments[env]
    for s in of_type(template(env, "data"), "AWS::SecretsManager::Secret").values():
        replicas = s["Properties"].get("ReplicaRegions")
        if e.recovery.rpo_minutes < 1440:
            (replica,) = replicas
            assert replica["Region"] == e.dr_region
            assert dr_source(assembly, env, replica["KmsKeyId"]) == ("AWS::KMS::Key", "Arn")
        else:
            assert replicas is None


@pytest.mark.parametrize("env", ENVS)
def test_master_password_rotates_every_30_days_in_the_vpc(template, env):
    t = template(env, "data")
    (schedule,) = of_type(t, "AWS::SecretsManager::RotationSchedule").values()
    p = schedule["Properties"]
    assert p["RotationRules"]["ScheduleExpression"] == "rate(30 days)"
    hosted = p["HostedRotationLambda"]
    assert hosted["RotationType"] == "PostgreSQLSingleUser"
    assert hosted["KmsKeyArn"] == KEY_ARN
    assert "privateSubnet" in json.dumps(hosted["VpcSubnetIds"])
    assert alphanumeric_only(hosted)
    (attachment_id,) = of_type(t, "AWS::SecretsManager::SecretTargetAttachment")
    assert p["SecretId"] == {"Ref": attachment_id}


@pytest.mark.parametrize("env", ENVS)
def test_master_secret_is_attached_to_the_primary_instance(template, cfg, env):
    """The attachment writes the instance endpoint into the secret's `host`: the name
    postgres-meta and Studio dial, because the RDS certificate carries it and not db.<zone>."""
    t = template(env, "data")
    resources = t.to_json()["Resources"]
    (attachment,) = of_type(t, "AWS::SecretsManager::SecretTargetAttachment").values()
    p = attachment["Properties"]
    assert p["TargetType"] == "AWS::RDS::DBInstance"
    target = resources[p["TargetId"]["Ref"]]
    assert target["Type"] == "AWS::RDS::DBInstance"
    assert "SourceDBInstanceIdentifier" not in target["Properties"]
    secret = resources[p["SecretId"]["Ref"]]
    assert secret["Properties"]["Name"] == naming.secret_name(cfg, env, SecretKeys.DB_MASTER)


# --- API keys -------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_api_key_custom_resource(template, cfg, env):
    t = template(env, "data")
    resources = t.to_json()["Resources"]
    (resource,) = of_type(t, "Custom::SupabaseApiKeys").values()
    p = resource["Properties"]
    jwt_id = next(
        k
        for k, r in resources.items()
        if r["Type"] == "AWS::SecretsManager::Secret"
        and r["Properties"]["Name"] == naming.secret_name(cfg, env, SecretKeys.JWT)
    )
    keys_id = next(
        k
        for k, r in resources.items()
        if r["Type"] == "AWS::SecretsManager::Secret"
        and r["Properties"]["Name"] == naming.secret_name(cfg, env, SecretKeys.API_KEYS)
    )
    assert p["JwtSecretArn"] == {"Ref": jwt_id}
    assert p["ApiKeysSecretArn"] == {"Ref": keys_id}
    realtime_id = next(
        k
        for k, r in resources.items()
        if r["Type"] == "AWS::SecretsManager::Secret"
        and r["Properties"]["Name"] == naming.secret_name(cfg, env, SecretKeys.REALTIME)
    )
    assert p["RealtimeSecretArn"] == {"Ref": realtime_id}
    assert p["Issuer"] == "supabase"
    assert int(p["ExpiryDays"]) >= 365
    assert p["LegacyApiKeys"] == str(cfg.environments[env].auth.legacy_api_keys).lower()
    assert re.fullmatch(r"[0-9a-f]{64}", p["JwtSecretGeneration"])
    framework = resources[p["ServiceToken"]["Fn::GetAtt"][0]]
    assert framework["Type"] == "AWS::Lambda::Function"


@pytest.mark.parametrize("env", ENVS)
def test_mint_function_code_runtime_and_least_privilege(template, assembly, cfg, env):
    t = template(env, "data")
    functions = [
        f for f in of_type(t, "AWS::Lambda::Function").values() if f["Properties"].get("Handler") == "handler.on_event"
    ]
    (fn,) = functions
    assert fn["Properties"]["Runtime"].startswith("python3.1")
    assert fn["Properties"]["Architectures"] == ["arm64"]
    assert "ReservedConcurrentExecutions" not in fn["Properties"]
    assert "VpcConfig" in fn["Properties"]
    # The deployed zip is exactly the handler directory: no Docker bundling, no extra files.
    asset_hash = fn["Properties"]["Code"]["S3Key"].removesuffix(".zip")
    asset = assembly.outdir / f"asset.{asset_hash}"
    assert sorted(p.name for p in asset.iterdir()) == ["handler.py", "keyset.py"]
    for name in ("handler.py", "keyset.py"):
        assert (asset / name).read_text() == (HANDLER.parent / name).read_text()
    # PyJWT and cryptography come as one layer of wheels for this runtime and architecture, laid
    # out as Lambda reads layers: packages under python/ (/opt/python on sys.path).
    (layer_ref,) = fn["Properties"]["Layers"]
    layer = t.to_json()["Resources"][layer_ref["Ref"]]["Properties"]
    assert layer["CompatibleRuntimes"] == [fn["Properties"]["Runtime"]]
    assert layer["CompatibleArchitectures"] == fn["Properties"]["Architectures"]
    deps = assembly.outdir / f"asset.{layer['Content']['S3Key'].removesuffix('.zip')}"
    assert [p.name for p in deps.iterdir()] == ["python"]
    assert {"jwt", "cryptography"} <= {p.name for p in (deps / "python").iterdir()}
    mint = lambda_deps.MINT_API_KEYS
    assert not lambda_deps.problems(
        deps / "python",
        runtime=mint.runtime,
        architecture=mint.architecture,
        pinned=lambda_deps.pins(mint.requirements),
    )
    env_vars = fn["Properties"]["Environment"]["Variables"]
    assert set(env_vars) == {
        "JWT_SECRET_ARN",
        "API_KEYS_SECRET_ARN",
        "REALTIME_SECRET_ARN",
        "JWT_ISSUER",
        "API_KEY_EXPIRY_DAYS",
        "LEGACY_API_KEYS",
    }

    role = t.to_json()["Resources"][fn["Properties"]["Role"]["Fn::GetAtt"][0]]
    (policy,) = [
        p
        for pid, p in of_type(t, "AWS::IAM::ManagedPolicy").items()
        if {"Ref": pid} in role["Properties"].get("ManagedPolicyArns", [])
    ]
    grants: dict[str, set[str]] = {}
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for resource in statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]:
            assert resource != "*"
            grants.setdefault(json.dumps(resource), set()).update(actions)
    assert grants[json.dumps(env_vars["JWT_SECRET_ARN"])] == {"secretsmanager:GetSecretValue"}
    assert grants[json.dumps(env_vars["REALTIME_SECRET_ARN"])] == {"secretsmanager:GetSecretValue"}
    assert grants[json.dumps(env_vars["API_KEYS_SECRET_ARN"])] == {
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
    }
    assert grants[json.dumps(KEY_ARN)] == {"kms:Decrypt", "kms:GenerateDataKey"}


@pytest.mark.parametrize("env", ENVS)
def test_jwt_secret_change_triggers_a_remint(template, cfg, env):
    t = template(env, "data")
    rules = [r["Properties"] for r in of_type(t, "AWS::Events::Rule").values() if "EventPattern" in r["Properties"]]
    (pattern,) = [r["EventPattern"] for r in rules if r["EventPattern"]["source"] == ["aws.secretsmanager"]]
    assert "PutSecretValue" in pattern["detail"]["eventName"]
    watched = pattern["detail"]["requestParameters"]["secretId"]
    assert naming.secret_name(cfg, env, SecretKeys.JWT) in watched
    assert naming.secret_name(cfg, env, SecretKeys.REALTIME) in watched


def test_jwt_generation_fingerprint_follows_the_generator():
    stack = cdk.Stack(cdk.App(), "fingerprint")

    def secret(id_: str, length: int) -> secretsmanager.Secret:
        return secretsmanager.Secret(
            stack, id_, generate_secret_string=generator(template={}, key="secret", length=length)
        )

    a, b = secret("A", 64), secret("B", 64)
    assert secret_generation(a) != secret_generation(b)  # different secret, different generation
    c = secretsmanager.Secret(
        cdk.Stack(cdk.App(), "fingerprint"), "A", generate_secret_string=generator(template={}, key="secret", length=48)
    )
    assert secret_generation(a) != secret_generation(c)  # same secret, new generator
    same = secretsmanager.Secret(
        cdk.Stack(cdk.App(), "fingerprint"), "A", generate_secret_string=generator(template={}, key="secret", length=64)
    )
    assert secret_generation(a) == secret_generation(same)  # stable across synths


# --- Valkey ---------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_valkey_replication_group(template, cfg, env):
    t = template(env, "data")
    cache = cfg.environments[env].cache
    p = props(t, CACHE)
    assert p["Engine"] == "valkey" and p["EngineVersion"].startswith("8.")
    assert p["CacheNodeType"] == cache.node_type
    assert p["NumCacheClusters"] == 1 + cache.replicas_per_shard
    failover = cache.replicas_per_shard >= 1
    assert p["AutomaticFailoverEnabled"] is failover and p["MultiAZEnabled"] is failover
    assert p["TransitEncryptionEnabled"] is True and p["TransitEncryptionMode"] == "required"
    assert p["AtRestEncryptionEnabled"] is True and p["KmsKeyId"] == KEY_ARN
    redis_secret = next(
        k
        for k, r in t.to_json()["Resources"].items()
        if r["Type"] == "AWS::SecretsManager::Secret"
        and r["Properties"]["Name"] == naming.secret_name(cfg, env, SecretKeys.REDIS)
    )
    assert p["AuthToken"] == {
        "Fn::Join": ["", ["{{resolve:secretsmanager:", {"Ref": redis_secret}, ":SecretString:auth_token::}}"]]
    }
    assert p["SnapshotRetentionLimit"] >= 1
    logs = {c["LogType"]: c for c in p["LogDeliveryConfigurations"]}
    assert logs["slow-log"]["DestinationType"] == "cloudwatch-logs"
    group_id = logs["slow-log"]["DestinationDetails"]["CloudWatchLogsDetails"]["LogGroup"]["Ref"]
    assert props(t, group_id)["KmsKeyId"] == KEY_ARN


def test_prod_cache_fails_over_dev_does_not(template):
    assert props(template("prod", "data"), CACHE)["AutomaticFailoverEnabled"] is True
    assert props(template("dev", "data"), CACHE)["AutomaticFailoverEnabled"] is False


# --- private DNS ----------------------------------------------------------------------


def records(t) -> list[dict]:
    return [r["Properties"] for r in of_type(t, "AWS::Route53::RecordSet").values()]


@pytest.mark.parametrize("env", ENVS)
def test_private_zone_names_the_endpoints(template, cfg, env):
    t = template(env, "data")
    ((zone_id, zone),) = of_type(t, "AWS::Route53::HostedZone").items()
    assert zone["Properties"]["Name"] == naming.private_zone(cfg, env) + "."
    assert "Vpc" in zone["Properties"]["VPCs"][0]["VPCId"]["Fn::ImportValue"]
    by_name: dict[str, list[dict]] = {}
    for r in records(t):
        assert r["Type"] == "CNAME" and r["HostedZoneId"] == {"Ref": zone_id}
        by_name.setdefault(r["Name"], []).append(r)
    (db,) = by_name[naming.db_host(cfg, env) + "."]
    assert db["ResourceRecords"] == [{"Fn::GetAtt": [PRIMARY, "Endpoint.Address"]}]
    (redis,) = by_name[naming.redis_host(cfg, env) + "."]
    assert redis["ResourceRecords"] == [{"Fn::GetAtt": [CACHE, "PrimaryEndPoint.Address"]}]

    readers = by_name[naming.db_read_host(cfg, env) + "."]
    count = cfg.environments[env].database.read_replicas
    if count == 0:
        assert [r["ResourceRecords"] for r in readers] == [[{"Fn::GetAtt": [PRIMARY, "Endpoint.Address"]}]]
    else:
        assert sorted(r["ResourceRecords"][0]["Fn::GetAtt"][0] for r in readers) == REPLICAS[:count]
        assert all(r["Weight"] == 1 for r in readers)
        assert len({r["SetIdentifier"] for r in readers}) == count
        for n, replica in enumerate(REPLICAS[:count], start=1):
            (direct,) = by_name[f"db-ro-{n}.{naming.private_zone(cfg, env)}."]
            assert direct["ResourceRecords"] == [{"Fn::GetAtt": [replica, "Endpoint.Address"]}]
