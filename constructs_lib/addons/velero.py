"""Velero: Kubernetes object backups to the environment's Velero bucket and EBS snapshots of volumes.

No node agent (file-system backup) is installed: volumes are EBS and are captured by native
snapshots, so Velero needs neither privileged pods nor hostPath mounts.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam

from config import naming
from constructs_lib.addons.base import (
    SYSTEM_NODE_SELECTOR,
    SYSTEM_NODE_TOLERATION,
    AddonContext,
    HelmAddon,
    restricted_container_security_context,
)

NAME = "velero"
VERSION = "12.1.0"
NAMESPACE = "velero"
SERVICE_ACCOUNT = "velero-server"
AWS_PLUGIN_IMAGE = "velero/velero-plugin-for-aws:v1.14.2"
STORAGE_LOCATION = "default"
SNAPSHOT_LOCATION = "default"


def statements(ctx: AddonContext) -> list[iam.PolicyStatement]:
    bucket = ctx.velero_bucket
    found = [
        iam.PolicyStatement(
            sid="BackupObjects",
            actions=[
                "s3:GetObject",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",
            ],
            # Literal ARN: a cross-stack token here would become an export the policy depends on.
            resources=[naming.bucket_objects_arn(ctx.velero_bucket_name)],
        ),
        iam.PolicyStatement(sid="ListBackups", actions=["s3:ListBucket"], resources=[bucket.bucket_arn]),
        # Describe APIs have no resource-level permissions.
        iam.PolicyStatement(
            sid="DescribeVolumes", actions=["ec2:DescribeVolumes", "ec2:DescribeSnapshots"], resources=["*"]
        ),
        iam.PolicyStatement(
            sid="Snapshots",
            actions=["ec2:CreateSnapshot", "ec2:DeleteSnapshot", "ec2:CreateVolume", "ec2:CreateTags"],
            resources=[ctx.arn("ec2", "volume/*"), f"arn:{ctx.partition}:ec2:{ctx.values.region}::snapshot/*"],
        ),
    ]
    if bucket.encryption_key is not None:
        found.append(
            iam.PolicyStatement(
                sid="BucketKey",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[bucket.encryption_key.key_arn],
            )
        )
    return found


def build(ctx: AddonContext) -> HelmAddon:
    return HelmAddon(
        name=NAME,
        chart=NAME,
        version=VERSION,
        namespace=NAMESPACE,
        service_account=SERVICE_ACCOUNT,
        statements=statements(ctx),
        values={
            "initContainers": [
                {
                    "name": "velero-plugin-for-aws",
                    "image": AWS_PLUGIN_IMAGE,
                    "volumeMounts": [{"mountPath": "/target", "name": "plugins"}],
                    "securityContext": restricted_container_security_context(),
                }
            ],
            "serviceAccount": {"server": {"create": True, "name": SERVICE_ACCOUNT}},
            # Pod Identity supplies credentials through the SDK's default chain: no static keys.
            "credentials": {"useSecret": False},
            "deployNodeAgent": False,
            "snapshotsEnabled": True,
            # The CRD-upgrade hook job pulls an extra kubectl image; CRDs come from the chart's crds/ on install.
            "upgradeCRDs": False,
            "configuration": {
                "backupStorageLocation": [
                    {
                        "name": STORAGE_LOCATION,
                        "provider": "aws",
                        "bucket": ctx.velero_bucket.bucket_name,
                        "default": True,
                        "config": {"region": ctx.values.region},
                    }
                ],
                "volumeSnapshotLocation": [
                    {
                        "name": SNAPSHOT_LOCATION,
                        "provider": "aws",
                        "config": {"region": ctx.values.region},
                    }
                ],
            },
            "podSecurityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65534,
                "fsGroup": 65534,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containerSecurityContext": restricted_container_security_context(),
            "nodeSelector": SYSTEM_NODE_SELECTOR,
            "tolerations": [SYSTEM_NODE_TOLERATION],
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
        },
        wildcard_reason=(
            "Velero names its backup objects and EBS snapshots at run time: object access is limited "
            "to the Velero bucket, snapshot actions to this account/region, Describe APIs have no resource-level permissions."
        ),
    )
