"""OPA Gatekeeper: admission policies (ConstraintTemplates in Rego v1 need >= 3.19).

The version is the policies chart's own pin (k8s_charts.policies), so templates and the
engine that reads them move together.
"""

from __future__ import annotations

from constructs_lib.addons.base import SYSTEM_NODE_SELECTOR, SYSTEM_NODE_TOLERATION, AddonContext, HelmAddon
from k8s_charts.policies import GATEKEEPER_CHART_VERSION, GATEKEEPER_NAMESPACE

NAME = "gatekeeper"
REPOSITORY = "https://open-policy-agent.github.io/gatekeeper/charts"


def build(ctx: AddonContext) -> HelmAddon:
    del ctx
    return HelmAddon(
        name=NAME, repository=REPOSITORY, chart=NAME, version=GATEKEEPER_CHART_VERSION, namespace=GATEKEEPER_NAMESPACE,
        values={
            "replicas": 3,
            "nodeSelector": SYSTEM_NODE_SELECTOR,
            "controllerManager": {"tolerations": [SYSTEM_NODE_TOLERATION]},
            "audit": {"tolerations": [SYSTEM_NODE_TOLERATION]},
        },
    )
