"""Istio in sidecar mode as three releases, installed base (CRDs) -> cni (node agent) -> istiod.

istio-cni sets up pod traffic redirection from a node agent, so application pods need no
NET_ADMIN init container and stay within the restricted Pod Security profile. istiod takes the
mesh chart's values (k8s_charts.mesh.istiod_helm_values: CNI mode, sidecar resources the
policies require) plus placement on the system nodes.
"""

from __future__ import annotations

from constructs_lib.addons.base import (
    SYSTEM_NODE_SELECTOR,
    SYSTEM_NODE_TOLERATION,
    AddonContext,
    HelmAddon,
    merge_values,
)
from k8s_charts.mesh import ISTIO_CHART_VERSION, ISTIO_NAMESPACE, istiod_helm_values

# Istio's release build stamps the image hub and tag into the published charts; the vendored
# source charts leave them to values (charts/SOURCES.yaml), so the pin sets them here. The
# injector uses the same pair for the sidecar image.
IMAGES = {"global": {"hub": "docker.io/istio", "tag": ISTIO_CHART_VERSION}}
BASE = "istio-base"
CNI = "istio-cni"
ISTIOD = "istiod"


def build(ctx: AddonContext) -> list[HelmAddon]:
    del ctx
    istiod_values = merge_values(
        {
            "pilot": {"nodeSelector": SYSTEM_NODE_SELECTOR, "tolerations": [SYSTEM_NODE_TOLERATION]},
            # Application containers start only once their proxy can route their first connection.
            "global": {"proxy": {"holdApplicationUntilProxyStarts": True}},
        },
        merge_values(IMAGES, istiod_helm_values()),
    )
    return [
        HelmAddon(
            name=BASE,
            chart="base",
            version=ISTIO_CHART_VERSION,
            namespace=ISTIO_NAMESPACE,
            values={"defaultRevision": "default"},
        ),
        HelmAddon(
            name=CNI,
            chart="cni",
            version=ISTIO_CHART_VERSION,
            namespace=ISTIO_NAMESPACE,
            depends_on=(BASE,),
            values=IMAGES,
        ),
        # istiod's injector configures sidecars for CNI redirection: the node agent must be
        # running first, or pods injected meanwhile start without traffic capture.
        HelmAddon(
            name=ISTIOD,
            chart="istiod",
            version=ISTIO_CHART_VERSION,
            namespace=ISTIO_NAMESPACE,
            depends_on=(BASE, CNI),
            values=istiod_values,
        ),
    ]
