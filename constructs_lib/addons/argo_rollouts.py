"""Argo Rollouts: the Rollout/AnalysisTemplate CRDs and controller behind progressive delivery."""

from __future__ import annotations

from constructs_lib.addons.base import SYSTEM_NODE_SELECTOR, SYSTEM_NODE_TOLERATION, AddonContext, HelmAddon

NAME = "argo-rollouts"
VERSION = "2.40.9"  # Argo Rollouts v1.9.0
NAMESPACE = "argo-rollouts"


def build(ctx: AddonContext) -> HelmAddon:
    del ctx
    return HelmAddon(
        name=NAME,
        chart=NAME,
        version=VERSION,
        namespace=NAMESPACE,
        values={
            "installCRDs": True,
            "controller": {
                "replicas": 2,
                "nodeSelector": SYSTEM_NODE_SELECTOR,
                "tolerations": [SYSTEM_NODE_TOLERATION],
            },
            "dashboard": {"enabled": False},
        },
    )
