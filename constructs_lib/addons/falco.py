"""Falco runtime detection; falcosidekick publishes findings to the alerts SNS topic.

Values and version come from k8s_charts.falco (the rules' owner); this module adds the Pod
Identity of falcosidekick: sns:Publish on that one topic.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam

from constructs_lib.addons.base import AddonContext, HelmAddon
from k8s_charts.falco import FALCO_CHART_VERSION, FALCO_NAMESPACE, SIDEKICK_SERVICE_ACCOUNT, helm_values

NAME = "falco"
REPOSITORY = "https://falcosecurity.github.io/charts"


def build(ctx: AddonContext) -> HelmAddon:
    topic = ctx.alerts_topic_arn or ctx.values.alerts_topic_arn
    return HelmAddon(
        name=NAME, repository=REPOSITORY, chart=NAME, version=FALCO_CHART_VERSION, namespace=FALCO_NAMESPACE,
        service_account=SIDEKICK_SERVICE_ACCOUNT,
        statements=[iam.PolicyStatement(sid="PublishFindings", actions=["sns:Publish"], resources=[topic])],
        values=helm_values(ctx.values),
    )
