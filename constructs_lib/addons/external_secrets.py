"""External Secrets Operator: syncs this environment's Secrets Manager secrets into Kubernetes.

It reads the secrets under the environment's prefix (config.naming.secret_prefix), plus the
few that config names outside it (OAuth client secrets, the Slack webhook and PagerDuty key of
Alertmanager), each by its exact name. It may decrypt only with the data stack's key, and only
through Secrets Manager.
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import aws_iam as iam

from config.model import Environment
from constructs_lib.addons.base import SYSTEM_NODE_SELECTOR, SYSTEM_NODE_TOLERATION, AddonContext, HelmAddon

NAME = "external-secrets"
VERSION = "2.4.1"
NAMESPACE = "external-secrets"
SERVICE_ACCOUNT = "external-secrets"
# Secrets Manager appends "-" and six random characters to every secret's name in its ARN.
ARN_SUFFIX = "-??????"


def configured_secret_names(env: Environment) -> list[str]:
    """Secrets Manager names config points the charts at (OAuth providers, alert receivers)."""
    names = [provider.secret_name for provider in env.auth.oauth_providers]
    names += [n for n in (env.observability.slack_webhook_secret_name, env.observability.pagerduty_secret_name) if n]
    return names


def statements(ctx: AddonContext, *, extra_secret_names: Iterable[str] = ()) -> list[iam.PolicyStatement]:
    read = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    prefix = ctx.values.secret_prefix
    found = [
        iam.PolicyStatement(
            sid="ReadEnvironmentSecrets",
            actions=read,
            resources=[ctx.arn("secretsmanager", f"secret:{prefix}*")],
        ),
    ]
    outside = sorted({n for n in extra_secret_names if not n.startswith(prefix)})
    if outside:
        found.append(
            iam.PolicyStatement(
                sid="ReadConfiguredSecrets",
                actions=read,
                resources=[ctx.arn("secretsmanager", f"secret:{name}{ARN_SUFFIX}") for name in outside],
            )
        )
    found.append(
        iam.PolicyStatement(
            sid="DecryptThroughSecretsManager",
            actions=["kms:Decrypt"],
            resources=[ctx.data_key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{ctx.values.region}.amazonaws.com"}},
        )
    )
    return found


def build(ctx: AddonContext, *, extra_secret_names: Iterable[str] = ()) -> HelmAddon:
    placement = {"nodeSelector": SYSTEM_NODE_SELECTOR, "tolerations": [SYSTEM_NODE_TOLERATION]}
    return HelmAddon(
        name=NAME,
        chart=NAME,
        version=VERSION,
        namespace=NAMESPACE,
        service_account=SERVICE_ACCOUNT,
        statements=statements(ctx, extra_secret_names=extra_secret_names),
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
            "documented prefix wildcard arn:...:secret:<project>/<env>/*, this environment's secrets only."
        ),
    )
