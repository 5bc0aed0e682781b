"""Vertical Pod Autoscaler, recommender only.

Charts may add `updateMode: "Off"` VPAs to learn right-sized requests; nothing evicts pods,
because the updater and the admission controller are not installed.
"""

from __future__ import annotations

from constructs_lib.addons.base import (
    SYSTEM_NODE_SELECTOR,
    SYSTEM_NODE_TOLERATION,
    AddonContext,
    HelmAddon,
    restricted_container_security_context,
)

NAME = "vpa"
VERSION = "4.11.0"
NAMESPACE = "vpa"


def build(ctx: AddonContext) -> HelmAddon:
    del ctx
    return HelmAddon(
        name=NAME,
        chart=NAME,
        version=VERSION,
        namespace=NAMESPACE,
        values={
            "recommender": {
                "enabled": True,
                "nodeSelector": SYSTEM_NODE_SELECTOR,
                "tolerations": [SYSTEM_NODE_TOLERATION],
                "podSecurityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 65534,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "securityContext": restricted_container_security_context(),
            },
            "updater": {"enabled": False},
            "admissionController": {"enabled": False},
        },
    )
