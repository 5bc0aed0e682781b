"""DR stack: key for S3/RDS/Backup in the DR region, locked vault in production, replica buckets."""

import pytest

from config import naming
from config.naming import velero_replica_bucket as velero_replica_bucket_name
from tests.conftest import ENVIRONMENTS, NON_PRODUCTION_ENVIRONMENTS

ENVS = ENVIRONMENTS
PINNED = {
    "ReplicaKey": "AWS::KMS::Key",
    "ReplicaBucket": "AWS::S3::Bucket",
    "VeleroReplicaBucket": "AWS::S3::Bucket",
    "ReplicaAccessLogBucket": "AWS::S3::Bucket",
    "BackupVault": "AWS::Backup::BackupVault",
}


def resources(template, env):
    return template(env, "dr").to_json()["Resources"]


def key_statements(template, env) -> dict[str, dict]:
    statements = resources(template, env)["ReplicaKey"]["Properties"]["KeyPolicy"]["Statement"]
    return {s.get("Sid", ""): s for s in statements}


@pytest.mark.parametrize("env", ENVS)
def test_stack_lives_in_the_dr_region_and_stands_alone(assembly, cfg, env):
    dr = assembly.stack(f"{env}/dr")
    assert dr.region == cfg.environments[env].dr_region
    assert dr.account == cfg.environments[env].account.id
    assert dr.stack_name == naming.stack_name(env, "dr")
    assert dr.termination_protection is cfg.environments[env].production
    # Deployable first and on its own: it depends on no other stack.
    assert dr.depends_on == ()
    assert "Fn::ImportValue" not in str(assembly.template_json(f"{env}/dr"))


@pytest.mark.parametrize("env", ENVS)
def test_stateful_logical_ids_are_pinned(template, env):
    found = resources(template, env)
    for logical_id, type_ in PINNED.items():
        assert found[logical_id]["Type"] == type_, logical_id


@pytest.mark.parametrize("env", ENVS)
def test_key_rotates_and_is_retained(template, env):
    key = resources(template, env)["ReplicaKey"]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"


@pytest.mark.parametrize("env", ENVS)
def test_key_policy_serves_only_the_dr_services(template, cfg, env):
    e = cfg.environments[env]
    services = [f"{s}.{e.dr_region}.amazonaws.com" for s in ("s3", "rds", "backup", "secretsmanager")]
    statements = key_statements(template, env)
    use = statements["DataKeysThroughDrServices"]
    assert use["Effect"] == "Allow"
    assert use["Condition"]["StringEquals"] == {"kms:CallerAccount": e.account.id, "kms:ViaService": services}
    assert {"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"} <= set(use["Action"])
    grants = statements["GrantsForRdsAndBackup"]
    assert "kms:CreateGrant" in grants["Action"]
    assert grants["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}
    assert grants["Condition"]["StringEquals"]["kms:ViaService"] == services[1:3]
    deny = statements["DenyDirectDataKeyUse"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"}
    assert deny["Condition"] == {"StringNotEquals": {"kms:ViaService": services}}
    # Key administration is never denied: the account root keeps managing the key.
    assert "kms:PutKeyPolicy" not in deny["Action"] and "kms:*" not in deny["Action"]


@pytest.mark.parametrize("env", ENVS)
def test_backup_vault_is_encrypted_with_the_dr_key(template, cfg, env):
    vault = resources(template, env)["BackupVault"]["Properties"]
    assert vault["BackupVaultName"] == f"{cfg.project}-{env}-dr"
    assert vault["EncryptionKeyArn"] == {"Fn::GetAtt": ["ReplicaKey", "Arn"]}


def test_production_vault_is_locked_and_retained(template):
    vault = resources(template, "prod")["BackupVault"]
    assert vault["Properties"]["LockConfiguration"] == {"MinRetentionDays": 7, "ChangeableForDays": 3}
    assert vault["DeletionPolicy"] == "Retain"


@pytest.mark.parametrize("env", NON_PRODUCTION_ENVIRONMENTS)
def test_non_production_vault_is_not_locked(template, env):
    assert "LockConfiguration" not in resources(template, env)["BackupVault"]["Properties"]


@pytest.mark.parametrize(
    ("logical_id", "name"),
    [
        ("ReplicaBucket", lambda cfg, env: naming.replica_bucket(cfg, env)),
        ("VeleroReplicaBucket", velero_replica_bucket_name),
    ],
)
@pytest.mark.parametrize("env", ENVS)
def test_replica_buckets_are_named_encrypted_and_versioned(template, cfg, env, logical_id, name):
    props = resources(template, env)[logical_id]["Properties"]
    assert props["BucketName"] == name(cfg, env)
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {
            "BucketKeyEnabled": True,
            "ServerSideEncryptionByDefault": {
                "SSEAlgorithm": "aws:kms",
                "KMSMasterKeyID": {"Fn::GetAtt": ["ReplicaKey", "Arn"]},
            },
        }
    ]
    # Replication requires versioning on the destination.
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": "ReplicaAccessLogBucket"}
    assert "ReplicationConfiguration" not in props


def test_production_replicas_are_retained(template):
    found = resources(template, "prod")
    for logical_id in ("ReplicaBucket", "VeleroReplicaBucket", "ReplicaAccessLogBucket"):
        assert found[logical_id]["DeletionPolicy"] == "Retain", logical_id


@pytest.mark.parametrize("env", ENVS)
def test_storage_replication_targets_this_stack(template, cfg, env):
    """The primary's replication names exactly the bucket this stack creates."""
    replica = resources(template, env)["ReplicaBucket"]["Properties"]["BucketName"]
    storage = template(env, "storage").to_json()["Resources"]["StorageBucket"]["Properties"]
    destination = storage["ReplicationConfiguration"]["Rules"][0]["Destination"]["Bucket"]
    assert destination["Fn::Join"][1][-1] == f":s3:::{replica}"
