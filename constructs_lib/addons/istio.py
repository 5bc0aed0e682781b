"""Istio in sidecar mode as three releases: base (CRDs), cni (node agent), istiod.

istio-cni sets up pod traffic redirection from a node agent, so application pods need no
NET_ADMIN init container and stay within the restricted Pod Security profile.
"""

from __future__ import annotations

from constructs_lib.addons.base import SYSTEM_NODE_SELECTOR, SYSTEM_NODE_TOLERATION, AddonContext, HelmAddon
from k8s_charts.mesh import ISTIO_CHART_VERSION, ISTIO_NAMESPACE

REPOSITORY = "https://istio-release.storage.googleapis.com/charts"
BASE = "istio-base"
CNI = "istio-cni"
ISTIOD = "istiod"


def build(ctx: AddonContext) -> list[HelmAddon]:
    del ctx
    return [
        HelmAddon(name=BASE, repository=REPOSITORY, chart="base", version=ISTIO_CHART_VERSION, namespace=ISTIO_NAMESPACE,
                  values={"defaultRevision": "default"}),
        HelmAddon(name=CNI, repository=REPOSITORY, chart="cni", version=ISTIO_CHART_VERSION, namespace=ISTIO_NAMESPACE,
                  depends_on=(BASE,), values={"profile": "default"}),
        HelmAddon(name=ISTIOD, repository=REPOSITORY, chart="istiod", version=ISTIO_CHART_VERSION,
                  namespace=ISTIO_NAMESPACE, depends_on=(BASE, CNI),
                  values={"pilot": {"cni": {"enabled": True}, "nodeSelector": SYSTEM_NODE_SELECTOR,
                                    "tolerations": [SYSTEM_NODE_TOLERATION]},
                          "global": {"proxy": {"holdApplicationUntilProxyStarts": True}}}),
    ]
