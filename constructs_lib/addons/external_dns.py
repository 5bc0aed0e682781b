"""ExternalDNS: publishes the public Ingress hosts (api.<domain>, studio.<domain>) in Route 53.

The ALB behind those hosts exists only once the AWS Load Balancer Controller has reconciled the
Ingress, so CloudFormation has nothing to alias; ExternalDNS reads the Ingress's rules and the
ALB hostname the controller writes into its status, and writes an alias record for each host.

It may change records in exactly the environment's hosted zone (config `hosted_zone_id`), never
deletes a record it did not create (policy upsert-only), and marks its own records with TXT
records owned by the cluster's name, so two clusters sharing a zone never take over each other's.
Grant as ExternalDNS's AWS tutorial documents, narrowed from hostedzone/* to the one zone:
https://kubernetes-sigs.github.io/external-dns/latest/docs/tutorials/aws/
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam

from constructs_lib.addons.base import (
    SYSTEM_NODE_SELECTOR,
    SYSTEM_NODE_TOLERATION,
    AddonContext,
    HelmAddon,
    restricted_container_security_context,
)

NAME = "external-dns"
VERSION = "1.21.1"
NAMESPACE = "external-dns"
SERVICE_ACCOUNT = "external-dns"
# The IngressClass the AWS Load Balancer Controller serves (k8s_charts/supabase/ingress.py):
# an Ingress of another class has no ALB hostname in its status to publish.
INGRESS_CLASS = "alb"


def hosted_zone_arn(ctx: AddonContext, hosted_zone_id: str) -> str:
    # Route 53 is global: its ARNs carry neither region nor account.
    return f"arn:{ctx.partition}:route53:::hostedzone/{hosted_zone_id}"


def statements(ctx: AddonContext, *, hosted_zone_id: str) -> list[iam.PolicyStatement]:
    return [
        iam.PolicyStatement(
            sid="ChangeEnvironmentZone",
            actions=[
                "route53:ChangeResourceRecordSets",
                "route53:ListResourceRecordSets",
                "route53:ListTagsForResources",
            ],
            resources=[hosted_zone_arn(ctx, hosted_zone_id)],
        ),
        iam.PolicyStatement(sid="ListZones", actions=["route53:ListHostedZones"], resources=["*"]),
    ]


def build(ctx: AddonContext, *, hosted_zone_id: str) -> HelmAddon:
    return HelmAddon(
        name=NAME,
        chart=NAME,
        version=VERSION,
        namespace=NAMESPACE,
        service_account=SERVICE_ACCOUNT,
        statements=statements(ctx, hosted_zone_id=hosted_zone_id),
        values={
            "provider": {"name": "aws"},
            "sources": ["ingress"],
            "domainFilters": [ctx.values.domain_name],
            "policy": "upsert-only",
            "registry": "txt",
            "txtOwnerId": ctx.values.cluster_name,
            "extraArgs": [f"--zone-id-filter={hosted_zone_id}", f"--ingress-class={INGRESS_CLASS}"],
            # EKS Pod Identity sets only the credential variables, and the AWS SDK needs a region: the
            # tutorial's Pod Identity values set it the same way.
            "env": [{"name": "AWS_DEFAULT_REGION", "value": ctx.values.region}],
            "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
            "securityContext": restricted_container_security_context(),
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "256Mi"}},
            "nodeSelector": SYSTEM_NODE_SELECTOR,
            "tolerations": [SYSTEM_NODE_TOLERATION],
        },
        wildcard_reason=(
            "route53:ListHostedZones has no resource-level permission (Route 53 service authorization "
            "reference); record changes are granted on the environment's hosted zone only."
        ),
    )
