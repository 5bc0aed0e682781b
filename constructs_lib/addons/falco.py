"""Falco runtime detection; falcosidekick publishes findings to the alerts SNS topic.

Values and version come from k8s_charts.falco (the rules' owner); this module adds the Pod
Identity of falcosidekick: sns:Publish on that one topic. The topic ARN in the Helm values and
in the policy is the same `ctx.values.alerts_topic_arn` (the alerts stack's token).
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam

from constructs_lib.addons.base import AddonContext, HelmAddon
from k8s_charts.falco import FALCO_CHART_VERSION, FALCO_NAMESPACE, SIDEKICK_SERVICE_ACCOUNT, helm_values

NAME = "falco"


def build(ctx: AddonContext) -> HelmAddon:
    return HelmAddon(
        name=NAME,
        chart=NAME,
        version=FALCO_CHART_VERSION,
        namespace=FALCO_NAMESPACE,
        service_account=SIDEKICK_SERVICE_ACCOUNT,
        statements=[
            iam.PolicyStatement(sid="PublishFindings", actions=["sns:Publish"], resources=[ctx.values.alerts_topic_arn])
        ],
        values=helm_values(ctx.values),
    )
