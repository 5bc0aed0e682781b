"""The key-policy statement that lets CloudWatch Logs use a customer managed key.

CloudWatch Logs calls KMS as its regional service principal, not as an IAM principal of the
account, so only the key policy can admit it; the encryption-context condition keeps it to
this account's log groups in the key's region (the documented confused-deputy guard).
https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms


def admit_cloudwatch_logs(key: kms.Key, *, log_group_arn: str | None = None) -> None:
    """Admits CloudWatch Logs to `key` for this account's log groups in its region, or for the
    one log group `log_group_arn` when the key serves only that one."""
    stack = cdk.Stack.of(key)
    condition = (
        {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": log_group_arn}}
        if log_group_arn
        else {
            "ArnLike": {
                "kms:EncryptionContext:aws:logs:arn": f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:*"
            }
        }
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchLogsEncryptsThisAccountsLogGroups",
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resources=["*"],
            conditions=condition,
        )
    )
