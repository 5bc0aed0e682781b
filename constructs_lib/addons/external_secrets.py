"""External Secrets Operator: syncs this environment's Secrets Manager secrets into Kubernetes.

It reads only secrets under the environment's prefix (config.naming.secret_prefix) and may
decrypt only with the data stack's key, and only through Secrets Manager.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam

from constructs_lib.addons.base import SYSTEM_NODE_SELECTOR, SYSTEM_NODE_TOLERATION, AddonContext, HelmAddon

NAME = "external-secrets"
REPOSITORY = "https://charts.external-secrets.io"
VERSION = "2.4.1"
NAMESPACE = "external-secrets"
SERVICE_ACCOUNT = "external-secrets"


def statements(ctx: AddonContext) -> list[iam.PolicyStatement]:
    found = [
        iam.PolicyStatement(
            sid="ReadEnvironmentSecrets",
            actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            resources=[ctx.arn("secretsmanager", f"secret:{ctx.values.secret_prefix}*")],
        ),
    ]
    if ctx.data_key is not None:
        found.append(iam.PolicyStatement(
            sid="DecryptThroughSecretsManager",
            actions=["kms:Decrypt"],
            resources=[ctx.data_key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{ctx.values.region}.amazonaws.com"}},
        ))
    return found


def build(ctx: AddonContext) -> HelmAddon:
    placement = {"nodeSelector": SYSTEM_NODE_SELECTOR, "tolerations": [SYSTEM_NODE_TOLERATION]}
    return HelmAddon(
        name=NAME, repository=REPOSITORY, chart=NAME, version=VERSION, namespace=NAMESPACE,
        service_account=SERVICE_ACCOUNT,
        statements=statements(ctx),
        values={
            "installCRDs": True,
            "replicaCount": 2,
            "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
            **placement,
            "webhook": {"replicaCount": 2, **placement},
            "certController": placement,
        },
        wildcard_reason=(
            "Secret ARNs end in a random suffix that Secrets Manager appends, so the grant is the "
             "documented prefix wildcard arn:...:secret:<project>/<env>/*, this environment's secrets only."),
    )
