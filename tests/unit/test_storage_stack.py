"""Storage stack: hardened storage and Velero buckets, CRR to the DR region, regional cert and WAF."""

import pytest
from aws_cdk.assertions import Match

from config import naming
from config.naming import velero_bucket as velero_bucket_name
from config.naming import velero_replica_bucket as velero_replica_bucket_name
from stacks.dr_stack import STORAGE_ARCHIVE_PREFIX
from tests.conftest import ENVIRONMENTS

ENVS = ENVIRONMENTS
PINNED = {
    "StorageBucket": "AWS::S3::Bucket",
    "VeleroBucket": "AWS::S3::Bucket",
    "AccessLogBucket": "AWS::S3::Bucket",
    "StorageKey": "AWS::KMS::Key",
    "VeleroKey": "AWS::KMS::Key",
}


def render(value) -> str:
    """Readable form of a CloudFormation value: partitions become `aws`, GetAtt `GetAtt:Id.Attr`."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(render(p) for p in parts)
    if value.get("Ref") == "AWS::Partition":
        return "aws"
    if "Ref" in value:
        return f"Ref:{value['Ref']}"
    if "Fn::GetAtt" in value:
        return "GetAtt:" + ".".join(value["Fn::GetAtt"])
    raise AssertionError(f"unexpected value {value}")


def resource(template, logical_id: str) -> dict:
    return template.to_json()["Resources"][logical_id]


def statements_of_bucket_policy(template, bucket_logical_id: str) -> list[dict]:
    policies = template.find_resources("AWS::S3::BucketPolicy", {"Properties": {"Bucket": {"Ref": bucket_logical_id}}})
    assert len(policies) == 1
    return next(iter(policies.values()))["Properties"]["PolicyDocument"]["Statement"]


@pytest.mark.parametrize("env", ENVS)
def test_stateful_logical_ids_are_pinned(template, env):
    resources = template(env, "storage").to_json()["Resources"]
    for logical_id, type_ in PINNED.items():
        assert resources[logical_id]["Type"] == type_, logical_id


@pytest.mark.parametrize("env", ENVS)
def test_storage_bucket_name_encryption_versioning_and_privacy(template, cfg, env):
    props = resource(template(env, "storage"), "StorageBucket")["Properties"]
    assert props["BucketName"] == naming.storage_bucket(cfg, env)
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {
            "BucketKeyEnabled": True,
            "ServerSideEncryptionByDefault": {
                "SSEAlgorithm": "aws:kms",
                "KMSMasterKeyID": {"Fn::GetAtt": ["StorageKey", "Arn"]},
            },
        }
    ]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": "AccessLogBucket"}


@pytest.mark.parametrize("env", ENVS)
def test_storage_key_rotates(template, env):
    assert resource(template(env, "storage"), "StorageKey")["Properties"]["EnableKeyRotation"] is True


@pytest.mark.parametrize("bucket", ["StorageBucket", "VeleroBucket", "AccessLogBucket"])
def test_bucket_policy_denies_plain_http_and_old_tls(template, bucket):
    statements = statements_of_bucket_policy(template("staging", "storage"), bucket)
    denies = [s for s in statements if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} and s["Action"] == "s3:*" for s in denies)
    assert any(s["Condition"] == {"NumericLessThan": {"s3:TlsVersion": 1.2}} and s["Action"] == "s3:*" for s in denies)


@pytest.mark.parametrize("env", ENVS)
def test_lifecycle_expires_noncurrent_versions_and_aborts_uploads(template, cfg, env):
    rules = resource(template(env, "storage"), "StorageBucket")["Properties"]["LifecycleConfiguration"]["Rules"]
    assert {
        "Id": "noncurrent-and-incomplete",
        "Status": "Enabled",
        "NoncurrentVersionExpiration": {"NoncurrentDays": cfg.environments[env].storage.noncurrent_version_expiry_days},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
    } in rules
    # The tiering configuration acts only on objects stored as INTELLIGENT_TIERING.
    assert {
        "Id": "intelligent-tiering",
        "Status": "Enabled",
        "Transitions": [{"StorageClass": "INTELLIGENT_TIERING", "TransitionInDays": 0}],
    } in rules


@pytest.mark.parametrize("env", ENVS)
def test_intelligent_tiering_archive_tiers_from_config(template, cfg, env):
    storage = cfg.environments[env].storage
    props = resource(template(env, "storage"), "StorageBucket")["Properties"]
    assert props["IntelligentTieringConfigurations"] == [
        {
            "Id": "archive",
            "Prefix": STORAGE_ARCHIVE_PREFIX,
            "Status": "Enabled",
            "Tierings": [
                {"AccessTier": "ARCHIVE_ACCESS", "Days": storage.archive_after_days},
                {"AccessTier": "DEEP_ARCHIVE_ACCESS", "Days": storage.deep_archive_after_days},
            ],
        }
    ]


@pytest.mark.parametrize(
    ("bucket", "target"),
    [
        ("StorageBucket", lambda cfg, env: naming.replica_bucket(cfg, env)),
        ("VeleroBucket", velero_replica_bucket_name),
    ],
)
@pytest.mark.parametrize("env", ENVS)
def test_replication_rtc_metrics_delete_markers_and_replica_key(template, cfg, env, bucket, target):
    replication = resource(template(env, "storage"), bucket)["Properties"]["ReplicationConfiguration"]
    assert render(replication["Role"]).startswith(f"GetAtt:{bucket}ReplicationRole")
    [rule] = replication["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["Filter"] == {"Prefix": ""}
    assert rule["DeleteMarkerReplication"] == {"Status": "Enabled"}
    assert rule["SourceSelectionCriteria"] == {"SseKmsEncryptedObjects": {"Status": "Enabled"}}
    destination = rule["Destination"]
    assert render(destination["Bucket"]) == f"arn:aws:s3:::{target(cfg, env)}"
    assert destination["ReplicationTime"] == {"Status": "Enabled", "Time": {"Minutes": 15}}
    assert destination["Metrics"] == {"Status": "Enabled", "EventThreshold": {"Minutes": 15}}
    # The DR region's key, read through the cross-region reference.
    assert render(destination["EncryptionConfiguration"]["ReplicaKmsKeyID"]).startswith("GetAtt:ExportsReader")
    assert "ReplicaKeyArn" in render(destination["EncryptionConfiguration"]["ReplicaKmsKeyID"])


@pytest.mark.parametrize(
    ("bucket", "key", "target"),
    [
        ("StorageBucket", "StorageKey", lambda cfg, env: naming.replica_bucket(cfg, env)),
        ("VeleroBucket", "VeleroKey", velero_replica_bucket_name),
    ],
)
@pytest.mark.parametrize("env", ENVS)
def test_replication_role_reaches_exactly_two_buckets_and_two_keys(template, cfg, env, bucket, key, target):
    t = template(env, "storage")
    role_id = render(resource(t, bucket)["Properties"]["ReplicationConfiguration"]["Role"]).split(":")[1].split(".")[0]
    policies = [
        p
        for p in t.find_resources("AWS::IAM::ManagedPolicy").values()
        if {"Ref": role_id} in p["Properties"].get("Roles", [])
    ]
    inline = [
        p for p in t.find_resources("AWS::IAM::Policy").values() if {"Ref": role_id} in p["Properties"].get("Roles", [])
    ]
    assert len(policies) == 1 and not inline
    statements = policies[0]["Properties"]["PolicyDocument"]["Statement"]
    resources = {render(s["Resource"]) for s in statements}
    assert all(s["Effect"] == "Allow" for s in statements)
    source = resource(t, bucket)["Properties"]["BucketName"]
    replica_key = render(
        resource(t, bucket)["Properties"]["ReplicationConfiguration"]["Rules"][0]["Destination"][
            "EncryptionConfiguration"
        ]["ReplicaKmsKeyID"]
    )
    assert resources == {
        f"arn:aws:s3:::{source}",
        f"arn:aws:s3:::{source}/*",
        f"arn:aws:s3:::{target(cfg, env)}/*",
        f"GetAtt:{key}.Arn",
        replica_key,
    }
    by_sid = {s["Sid"]: s for s in statements}
    assert by_sid["DecryptSource"]["Action"] == "kms:Decrypt"
    assert sorted(by_sid["EncryptReplica"]["Action"]) == ["kms:Encrypt", "kms:GenerateDataKey"]
    assert render(by_sid["EncryptReplica"]["Resource"]) == replica_key


@pytest.mark.parametrize("env", ENVS)
def test_velero_bucket_is_hardened_with_its_own_key(template, cfg, env):
    props = resource(template(env, "storage"), "VeleroBucket")["Properties"]
    assert props["BucketName"] == velero_bucket_name(cfg, env)
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": {"Fn::GetAtt": ["VeleroKey", "Arn"]},
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    # Velero restores must be synchronous: no archive tiers on its backups.
    assert "IntelligentTieringConfigurations" not in props


@pytest.mark.parametrize("env", ENVS)
def test_access_log_bucket_takes_server_access_logs_by_policy(template, cfg, env):
    t = template(env, "storage")
    props = resource(t, "AccessLogBucket")["Properties"]
    assert (
        props["BucketName"]
        == f"{cfg.project}-{env}-access-logs-{cfg.environments[env].account.id}-{cfg.environments[env].region}"
    )
    assert (
        props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
            "SSEAlgorithm"
        ]
        == "aws:kms"
    )
    assert "AccessControl" not in props
    statements = statements_of_bucket_policy(t, "AccessLogBucket")
    assert any(
        s.get("Principal") == {"Service": "logging.s3.amazonaws.com"} and s["Action"] == "s3:PutObject"
        for s in statements
    )


def test_production_buckets_and_keys_are_retained(template):
    resources = template("prod", "storage").to_json()["Resources"]
    for logical_id in PINNED:
        assert resources[logical_id]["DeletionPolicy"] == "Retain", logical_id
        assert resources[logical_id]["UpdateReplacePolicy"] == "Retain", logical_id


def test_dev_buckets_are_deletable_but_never_auto_emptied(template):
    resources = template("dev", "storage").to_json()["Resources"]
    assert resources["StorageBucket"]["DeletionPolicy"] == "Delete"
    for env in ENVS:
        template(env, "storage").resource_count_is("Custom::S3AutoDeleteObjects", 0)


@pytest.mark.parametrize("env", ENVS)
def test_regional_certificate_for_api_and_studio_validated_in_the_zone(template, cfg, env):
    e = cfg.environments[env]
    template(env, "storage").has_resource_properties(
        "AWS::CertificateManager::Certificate",
        {
            "DomainName": naming.api_host(e),
            "SubjectAlternativeNames": [naming.studio_host(e)],
            "ValidationMethod": "DNS",
            "DomainValidationOptions": Match.array_with(
                [
                    {"DomainName": naming.api_host(e), "HostedZoneId": e.hosted_zone_id},
                    {"DomainName": naming.studio_host(e), "HostedZoneId": e.hosted_zone_id},
                ]
            ),
        },
    )


@pytest.mark.parametrize("env", ENVS)
def test_outputs_for_the_cluster(template, env):
    outputs = template(env, "storage").to_json()["Outputs"]
    for name in (
        "StorageBucketName",
        "StorageBucketRegion",
        "RegionalWebAclArn",
        "ApiCertificateArn",
        "CloudFrontDomainName",
        "VeleroBucketName",
    ):
        assert name in outputs, name
