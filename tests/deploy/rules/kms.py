"""Key policies admit every service that uses the key.

A KMS key policy is the root of access to its key: a service principal that the policy does
not name cannot use the key at all, and an IAM principal can use it only if the policy
delegates to its account's IAM. Each rule derives the uses from the resources that reference a
key (in the same stack, through exports, cross-region references or literal alias ARNs) and
evaluates the key policy for the request that service makes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.deploy.cloud_assembly import CloudAssembly, Stack
from tests.deploy.iam_policy import Request, listed, matches
from tests.deploy.intrinsics import render, target
from tests.deploy.registry import Outcome, rule

# --- key policy evaluation -------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """Who calls KMS: a service principal, or an IAM principal of `account` (via a service)."""

    service: str | None = None
    account: str | None = None

    def named_by(self, principal: Any) -> bool:
        if principal == "*":
            return True
        if not isinstance(principal, dict):
            return False
        if self.service:
            return self.service in listed(principal.get("Service", []))
        for aws in listed(principal.get("AWS", [])):
            if aws == "*" or aws == self.account or re.fullmatch(rf"arn:aws:iam::{self.account}:(root|role/.+)", aws):
                return True
        return False


def _statement_applies(statement: Mapping[str, Any], caller: Caller, action: str, context: Mapping[str, Any]) -> bool:
    if "Principal" in statement and not caller.named_by(statement["Principal"]):
        return False
    if "NotPrincipal" in statement and caller.named_by(statement["NotPrincipal"]):
        return False
    # A key policy's Resource is the key itself ("*"); the request names no other resource.
    return matches(statement, Request(action, "*", context), unknown=False)


def denied_actions(
    policy: Mapping[str, Any],
    caller: Caller,
    actions: tuple[str, ...],
    context: Mapping[str, Any],
    *,
    required_condition: str | None = None,
) -> list[str]:
    """The actions the policy does not allow `caller` (an explicit deny wins over any allow).

    With `required_condition`, only allow statements that test that condition key count: the
    documented policy scopes the service to its own resources (the confused-deputy guard).
    """
    statements = listed(policy.get("Statement", []))
    missing = []
    for action in actions:
        allowed = any(
            s.get("Effect") == "Allow"
            and _statement_applies(s, caller, action, context)
            and (
                required_condition is None
                or any(
                    required_condition.lower() in (k.lower() for k in block)
                    for block in s.get("Condition", {}).values()
                )
            )
            for s in statements
        )
        denied = any(s.get("Effect") == "Deny" and _statement_applies(s, caller, action, context) for s in statements)
        if denied or not allowed:
            missing.append(action)
    return missing


@dataclass(frozen=True)
class KeyUse:
    """One documented use of a key by a resource."""

    stack: Stack
    logical_id: str
    key_ref: Any
    caller: Caller
    actions: tuple[str, ...]
    context: Mapping[str, Any] = field(default_factory=dict)
    required_condition: str | None = None

    def describe(self) -> str:
        who = self.caller.service or f"IAM principals of {self.caller.account} via {self.context.get('kms:ViaService')}"
        return f"{self.stack.stack_name}/{self.logical_id} ({who})"


def _check(assembly: CloudAssembly, uses: Iterator[KeyUse]) -> Outcome:
    outcome = Outcome()
    for use in uses:
        found = target(assembly, use.stack, use.key_ref)
        if found is None:
            outcome.check(
                False,
                f"{use.describe()}: key {json.dumps(use.key_ref)} is created by no stack, so its "
                "policy cannot be checked (name the key through a reference or its alias ARN)",
            )
            continue
        key_stack, key_id = found
        key = key_stack.resources_by_id[key_id]
        if key["Type"] != "AWS::KMS::Key":
            outcome.check(False, f"{use.describe()}: {key_stack.stack_name}/{key_id} is not a KMS key")
            continue
        policy = render(assembly, key_stack, key["Properties"].get("KeyPolicy", {}))
        missing = denied_actions(
            policy, use.caller, use.actions, use.context, required_condition=use.required_condition
        )
        condition = f" under a {use.required_condition} condition" if use.required_condition else ""
        outcome.check(
            not missing,
            f"{use.describe()}: the policy of key {key_stack.stack_name}/{key_id} does not "
            f"allow {', '.join(missing)}{condition}",
        )
    return outcome


# --- CloudWatch Logs ---------------------------------------------------------------------------

LOGS_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey")
LOGS_CONTEXT_KEY = "kms:EncryptionContext:aws:logs:arn"


def log_group_uses(assembly: CloudAssembly) -> Iterator[KeyUse]:
    for stack, logical_id, group in assembly.resources("AWS::Logs::LogGroup"):
        props = group.get("Properties", {})
        if "KmsKeyId" not in props:
            continue
        name = render(assembly, stack, props.get("LogGroupName", f"{stack.stack_name}-{logical_id}-generated"))
        arn = f"arn:aws:logs:{stack.region}:{stack.account}:log-group:{name}"
        yield KeyUse(
            stack,
            logical_id,
            props["KmsKeyId"],
            Caller(service=f"logs.{stack.region}.amazonaws.com"),
            LOGS_ACTIONS,
            {LOGS_CONTEXT_KEY: arn, "aws:SourceAccount": stack.account},
            required_condition=LOGS_CONTEXT_KEY,
        )


@rule("kms-log-group-key-admits-logs", category="key policies")
def log_group_keys_admit_logs(assembly: CloudAssembly) -> Outcome:
    """A log group's KMS key lets logs.<region>.amazonaws.com encrypt and decrypt, scoped by the
    kms:EncryptionContext:aws:logs:arn condition to log groups of the account; otherwise
    CreateLogGroup/AssociateKmsKey fail.
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html"""
    return _check(assembly, log_group_uses(assembly))


# --- Services that publish into encrypted topics, write trails and access logs -------------------

# Where a resource type names an SNS topic it publishes to, and the service principal that publishes.
TOPIC_PUBLISHERS = {
    "AWS::CloudWatch::Alarm": "cloudwatch.amazonaws.com",
    "AWS::CloudWatch::CompositeAlarm": "cloudwatch.amazonaws.com",
    "AWS::Events::Rule": "events.amazonaws.com",
    "AWS::Budgets::Budget": "budgets.amazonaws.com",
    "AWS::CE::AnomalySubscription": "costalerts.amazonaws.com",
    "AWS::CodeStarNotifications::NotificationRule": "codestar-notifications.amazonaws.com",
    "AWS::Backup::BackupVault": "backup.amazonaws.com",
    "AWS::S3::Bucket": "s3.amazonaws.com",
}
SNS_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")


def _values(value: Any) -> Iterator[Any]:
    """Every leaf and every intrinsic (dict with one Ref/Fn:: key) inside a property tree."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)).startswith(("Ref", "Fn::")):
            yield value
            return
        for item in value.values():
            yield from _values(item)
    elif isinstance(value, list):
        for item in value:
            yield from _values(item)
    else:
        yield value


def topic_publisher_uses(assembly: CloudAssembly) -> Iterator[KeyUse]:
    encrypted = {
        (s.artifact_id, lid): topic["Properties"]["KmsMasterKeyId"]
        for s, lid, topic in assembly.resources("AWS::SNS::Topic")
        if "KmsMasterKeyId" in topic.get("Properties", {})
    }
    for stack, logical_id, resource in assembly.resources(*TOPIC_PUBLISHERS):
        published = set()
        for value in _values(resource.get("Properties", {})):
            found = target(assembly, stack, value) if isinstance(value, (dict, str)) else None
            found_id = (found[0].artifact_id, found[1]) if found else None
            if found_id in encrypted and found_id not in published:
                published.add(found_id)
                topic_stack, topic_id = found
                yield KeyUse(
                    topic_stack,
                    f"{topic_id} <- {stack.stack_name}/{logical_id}",
                    encrypted[(topic_stack.artifact_id, topic_id)],
                    Caller(service=TOPIC_PUBLISHERS[resource["Type"]]),
                    SNS_ACTIONS,
                    {"aws:SourceAccount": stack.account},
                )


def trail_uses(assembly: CloudAssembly) -> Iterator[KeyUse]:
    for stack, logical_id, trail in assembly.resources("AWS::CloudTrail::Trail"):
        props = trail.get("Properties", {})
        if "KMSKeyId" not in props:
            continue
        name = render(assembly, stack, props.get("TrailName", logical_id))
        arn = f"arn:aws:cloudtrail:{stack.region}:{stack.account}:trail/{name}"
        context = {
            "kms:EncryptionContext:aws:cloudtrail:arn": arn,
            "aws:SourceArn": arn,
            "aws:SourceAccount": stack.account,
        }
        caller = Caller(service="cloudtrail.amazonaws.com")
        yield KeyUse(stack, logical_id, props["KMSKeyId"], caller, ("kms:GenerateDataKey",), context)
        yield KeyUse(
            stack,
            logical_id,
            props["KMSKeyId"],
            caller,
            ("kms:DescribeKey",),
            {"aws:SourceArn": arn, "aws:SourceAccount": stack.account},
        )


def access_log_target_uses(assembly: CloudAssembly) -> Iterator[KeyUse]:
    """Buckets with SSE-KMS that receive S3 server access logs: logging.s3 writes the objects."""
    for stack, logical_id, bucket in assembly.resources("AWS::S3::Bucket"):
        destination = bucket.get("Properties", {}).get("LoggingConfiguration", {}).get("DestinationBucketName")
        if destination is None:
            continue
        found = target(assembly, stack, destination) or _bucket_by_name(assembly, render(assembly, stack, destination))
        if found is None:
            continue
        target_stack, target_id = found
        for key_ref in _bucket_keys(target_stack.resources_by_id[target_id]):
            yield KeyUse(
                target_stack,
                f"{target_id} <- access logs of {stack.stack_name}/{logical_id}",
                key_ref,
                Caller(service="logging.s3.amazonaws.com"),
                ("kms:GenerateDataKey",),
                {"aws:SourceAccount": stack.account},
            )


def _bucket_by_name(assembly: CloudAssembly, name: Any) -> tuple[Stack, str] | None:
    for stack, logical_id, bucket in assembly.resources("AWS::S3::Bucket"):
        if render(assembly, stack, bucket.get("Properties", {}).get("BucketName")) == name:
            return stack, logical_id
    return None


def _bucket_keys(bucket: Mapping[str, Any]) -> Iterator[Any]:
    encryption = bucket.get("Properties", {}).get("BucketEncryption", {})
    for sse_rule in encryption.get("ServerSideEncryptionConfiguration", []):
        default = sse_rule.get("ServerSideEncryptionByDefault", {})
        if default.get("SSEAlgorithm", "").startswith("aws:kms") and "KMSMasterKeyID" in default:
            yield default["KMSMasterKeyID"]


@rule("kms-service-writers-admitted", category="key policies")
def service_writers_admitted(assembly: CloudAssembly) -> Outcome:
    """Services that write into a KMS-encrypted destination need the key policy's permission:
    publishers to an encrypted SNS topic (CloudWatch alarms, EventBridge, Budgets, cost anomaly
    detection, CodeStar notifications, Backup, S3 events) need kms:Decrypt and kms:GenerateDataKey*
    https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services ;
    CloudTrail needs kms:GenerateDataKey* and kms:DescribeKey on the trail's key
    https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-kms-key-policy-for-cloudtrail.html ;
    S3 server access logging writes as logging.s3.amazonaws.com into an SSE-KMS target bucket
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html"""

    def uses() -> Iterator[KeyUse]:
        yield from topic_publisher_uses(assembly)
        yield from trail_uses(assembly)
        yield from access_log_target_uses(assembly)

    return _check(assembly, uses())


# --- Services that use the key with the caller's IAM identity (and grants) ------------------------

GRANT_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant")
DATA_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")


def _delegated(
    stack: Stack, logical_id: str, key_ref: Any, service: str, actions: tuple[str, ...], region: str | None = None
) -> KeyUse:
    region = region or stack.region
    return KeyUse(
        stack,
        logical_id,
        key_ref,
        Caller(account=stack.account),
        actions,
        {
            "kms:ViaService": f"{service}.{region}.amazonaws.com",
            "kms:CallerAccount": stack.account,
            "kms:GrantIsForAWSResource": "true",
            "aws:SourceAccount": stack.account,
        },
    )


def delegated_uses(assembly: CloudAssembly) -> Iterator[KeyUse]:
    for stack, logical_id, resource in assembly.resources():
        props = resource.get("Properties", {})
        kind = resource["Type"]
        if kind == "AWS::RDS::DBInstance":
            for prop in ("KmsKeyId", "PerformanceInsightsKMSKeyId"):
                if prop in props:
                    yield _delegated(stack, logical_id, props[prop], "rds", GRANT_ACTIONS)
            if "AutomaticBackupReplicationKmsKeyId" in props:
                yield _delegated(
                    stack,
                    logical_id,
                    props["AutomaticBackupReplicationKmsKeyId"],
                    "rds",
                    GRANT_ACTIONS,
                    region=render(assembly, stack, props.get("AutomaticBackupReplicationRegion")),
                )
        elif kind == "AWS::ElastiCache::ReplicationGroup" and "KmsKeyId" in props:
            yield _delegated(stack, logical_id, props["KmsKeyId"], "elasticache", GRANT_ACTIONS)
        elif kind == "AWS::EKS::Cluster":
            for config in props.get("EncryptionConfig", []):
                yield _delegated(stack, logical_id, config["Provider"]["KeyArn"], "eks", GRANT_ACTIONS)
        elif kind == "AWS::Backup::BackupVault" and "EncryptionKeyArn" in props:
            yield _delegated(stack, logical_id, props["EncryptionKeyArn"], "backup", GRANT_ACTIONS)
        elif kind == "AWS::SecretsManager::Secret":
            if "KmsKeyId" in props:
                yield _delegated(stack, logical_id, props["KmsKeyId"], "secretsmanager", DATA_ACTIONS)
            for replica in props.get("ReplicaRegions", []):
                if "KmsKeyId" in replica:
                    yield _delegated(
                        stack,
                        logical_id,
                        replica["KmsKeyId"],
                        "secretsmanager",
                        DATA_ACTIONS,
                        region=render(assembly, stack, replica["Region"]),
                    )
        elif kind == "AWS::Lambda::Function" and "KmsKeyArn" in props:
            yield _delegated(stack, logical_id, props["KmsKeyArn"], "lambda", GRANT_ACTIONS)
        elif kind == "AWS::S3::Bucket":
            for key_ref in _bucket_keys(resource):
                yield _delegated(stack, logical_id, key_ref, "s3", DATA_ACTIONS)
            for replication in props.get("ReplicationConfiguration", {}).get("Rules", []):
                replica_key = (
                    replication.get("Destination", {}).get("EncryptionConfiguration", {}).get("ReplicaKmsKeyID")
                )
                if replica_key is not None:
                    found = target(assembly, stack, replica_key)
                    region = found[0].region if found else None
                    yield _delegated(
                        stack, f"{logical_id} (replication)", replica_key, "s3", ("kms:Encrypt",), region=region
                    )


@rule("kms-iam-delegated-services-admitted", category="key policies")
def iam_delegated_services_admitted(assembly: CloudAssembly) -> Outcome:
    """Services that use a key on the caller's behalf (RDS, ElastiCache, EKS secrets, AWS Backup,
    Secrets Manager and its replicas, Lambda environment encryption, S3 SSE-KMS and replication)
    call KMS with kms:ViaService=<service>.<region>.amazonaws.com and, for RDS/ElastiCache/EKS/Backup/
    Lambda, create grants; the key policy must let the using account's IAM principals do so
    (usually the statement that enables IAM policies) and no deny may catch the request.
    https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html#key-policy-default-allow-root-enable-iam
    https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service"""
    return _check(assembly, delegated_uses(assembly))
