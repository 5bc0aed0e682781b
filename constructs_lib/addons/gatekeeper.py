"""OPA Gatekeeper: admission policies (ConstraintTemplates in Rego v1 need >= 3.19).

The version and the engine settings (audit interval, denial logging, webhook failure policy)
are the policies chart's own (k8s_charts.policies), so templates and the engine that reads them
move together; this module only adds placement on the system nodes.
"""

from __future__ import annotations

from constructs_lib.addons.base import (
    SYSTEM_NODE_SELECTOR,
    SYSTEM_NODE_TOLERATION,
    AddonContext,
    HelmAddon,
    merge_values,
)
from k8s_charts.policies import GATEKEEPER_CHART_VERSION, GATEKEEPER_NAMESPACE, gatekeeper_helm_values

NAME = "gatekeeper"


def build(ctx: AddonContext) -> HelmAddon:
    del ctx
    # The chart reads placement per component; a top-level nodeSelector is silently ignored.
    per_component = {"nodeSelector": SYSTEM_NODE_SELECTOR, "tolerations": [SYSTEM_NODE_TOLERATION]}
    placement = {"controllerManager": per_component, "audit": per_component}
    return HelmAddon(
        name=NAME,
        chart=NAME,
        version=GATEKEEPER_CHART_VERSION,
        namespace=GATEKEEPER_NAMESPACE,
        values=merge_values(placement, gatekeeper_helm_values()),
    )
