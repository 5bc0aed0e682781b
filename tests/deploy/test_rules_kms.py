"""Each key-policy rule passes a correct fixture and fails the broken variant of it."""

from __future__ import annotations

import copy

from tests.deploy.cloud_assembly import CloudAssembly
from tests.deploy.rules.kms import (
    iam_delegated_services_admitted,
    log_group_keys_admit_logs,
    service_writers_admitted,
)

ROOT = {"AWS": "arn:aws:iam::123456789012:root"}
ENABLE_IAM = {"Effect": "Allow", "Principal": ROOT, "Action": "kms:*", "Resource": "*"}
LOGS = {
    "Effect": "Allow",
    "Principal": {"Service": "logs.us-east-1.amazonaws.com"},
    "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
    "Resource": "*",
    "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:123456789012:log-group:*"}},
}


def key(*statements):
    return {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {"Statement": list(statements)}}}


def assembly(templates, **kwargs):
    return CloudAssembly.from_templates(templates, **kwargs)


def log_group_template(*statements):
    return {
        "Resources": {
            "Key": key(ENABLE_IAM, *statements),
            "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"KmsKeyId": {"Fn::GetAtt": ["Key", "Arn"]}}},
        }
    }


def test_log_group_key_admitting_logs_passes():
    outcome = log_group_keys_admit_logs(assembly({"s": log_group_template(LOGS)}))
    assert outcome.checked == 1 and not outcome.findings


def test_log_group_key_without_logs_fails():
    outcome = log_group_keys_admit_logs(assembly({"s": log_group_template()}))
    assert len(outcome.findings) == 1 and "kms:Encrypt" in outcome.findings[0]


def test_log_group_key_without_encryption_context_condition_fails():
    unscoped = {k: v for k, v in LOGS.items() if k != "Condition"}
    assert log_group_keys_admit_logs(assembly({"s": log_group_template(unscoped)})).findings


def test_log_group_key_scoped_to_another_region_fails():
    wrong = copy.deepcopy(LOGS)
    wrong["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"] = (
        "arn:aws:logs:eu-west-1:123456789012:log-group:*"
    )
    assert log_group_keys_admit_logs(assembly({"s": log_group_template(wrong)})).findings


def test_log_group_key_in_another_stack_through_an_export():
    producer = {
        "Resources": {"Key": key(ENABLE_IAM)},
        "Outputs": {"K": {"Value": {"Fn::GetAtt": ["Key", "Arn"]}, "Export": {"Name": "p:key"}}},
    }
    consumer = {
        "Resources": {"Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"KmsKeyId": {"Fn::ImportValue": "p:key"}}}}
    }
    outcome = log_group_keys_admit_logs(assembly({"p": producer, "c": consumer}))
    assert outcome.checked == 1 and "p/Key" in outcome.findings[0]


def topic_template(*statements):
    return {
        "Resources": {
            "Key": key(ENABLE_IAM, *statements),
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"KmsMasterKeyId": {"Ref": "Key"}}},
            "Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"AlarmActions": [{"Ref": "Topic"}]}},
        }
    }


def test_alarm_publishing_to_encrypted_topic():
    cloudwatch = {
        "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
        "Resource": "*",
    }
    assert not service_writers_admitted(assembly({"s": topic_template(cloudwatch)})).findings
    outcome = service_writers_admitted(assembly({"s": topic_template()}))
    assert len(outcome.findings) == 1 and "cloudwatch.amazonaws.com" in outcome.findings[0]


def test_trail_key_without_cloudtrail_fails():
    template = {
        "Resources": {
            "Key": key(ENABLE_IAM),
            "Trail": {"Type": "AWS::CloudTrail::Trail", "Properties": {"KMSKeyId": {"Ref": "Key"}, "TrailName": "t"}},
        }
    }
    assert service_writers_admitted(assembly({"s": template})).findings


def test_key_named_by_literal_alias_arn_in_another_region():
    dr = {
        "Resources": {
            "Key": key(),
            "Alias": {
                "Type": "AWS::KMS::Alias",
                "Properties": {"AliasName": "alias/dr", "TargetKeyId": {"Ref": "Key"}},
            },
        }
    }
    data = {
        "Resources": {
            "Secret": {
                "Type": "AWS::SecretsManager::Secret",
                "Properties": {
                    "ReplicaRegions": [
                        {"Region": "us-west-2", "KmsKeyId": "arn:aws:kms:us-west-2:123456789012:alias/dr"}
                    ]
                },
            }
        }
    }
    fixture = assembly({"dr": dr, "data": data}, dr={"region": "us-west-2"})
    outcome = iam_delegated_services_admitted(fixture)
    assert outcome.checked == 1 and "dr/Key" in outcome.findings[0]
    dr["Resources"]["Key"] = key(ENABLE_IAM)
    assert not iam_delegated_services_admitted(assembly({"dr": dr, "data": data}, dr={"region": "us-west-2"})).findings


def test_deny_outside_the_service_blocks_delegated_use():
    deny = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "kms:Decrypt",
        "Resource": "*",
        "Condition": {"StringNotEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}},
    }
    template = {
        "Resources": {
            "Key": key(ENABLE_IAM, deny),
            "Db": {"Type": "AWS::RDS::DBInstance", "Properties": {"KmsKeyId": {"Ref": "Key"}}},
        }
    }
    outcome = iam_delegated_services_admitted(assembly({"s": template}))
    assert len(outcome.findings) == 1 and "kms:Decrypt" in outcome.findings[0]
