"""One way to turn a plain manifest body into a cdk8s ApiObject, shared by every chart.

cdk8s-plus covers the common kinds; custom resources (and the few fields plus does not model)
are written as plain dicts and patched in key by key, so the rendered object is exactly the dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cdk8s
import cdk8s_plus_35 as kplus
from constructs import Construct

_HEADER = ("apiVersion", "kind", "metadata")

# Egress to the cluster's DNS (CoreDNS in kube-system): every pod behind a default-deny
# NetworkPolicy needs it to resolve anything at all.
DNS_EGRESS: dict[str, Any] = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}


def api_object(
    scope: Construct,
    id_: str,
    *,
    api_version: str,
    kind: str,
    metadata: cdk8s.ApiObjectMetadata | Mapping[str, Any],
    body: Mapping[str, Any],
) -> cdk8s.ApiObject:
    obj = cdk8s.ApiObject(scope, id_, api_version=api_version, kind=kind, metadata=metadata)
    for key, value in body.items():
        obj.add_json_patch(cdk8s.JsonPatch.add(f"/{key}", value))
    return obj


def from_manifest(scope: Construct, manifest: Mapping[str, Any]) -> cdk8s.ApiObject:
    """A complete manifest dict as an object with id `<kind>-<name>`."""
    return api_object(
        scope,
        f"{manifest['kind']}-{manifest['metadata']['name']}",
        api_version=manifest["apiVersion"],
        kind=manifest["kind"],
        metadata=manifest["metadata"],
        body={k: v for k, v in manifest.items() if k not in _HEADER},
    )


def service_account(
    scope: Construct, id_: str, *, name: str, namespace: str, labels: Mapping[str, str]
) -> kplus.ServiceAccount:
    """A workload's own identity (Pod Identity, Istio principal) with no API token mounted:
    none of the platform's workloads talks to the Kubernetes API."""
    return kplus.ServiceAccount(
        scope,
        id_,
        metadata=cdk8s.ApiObjectMetadata(name=name, namespace=namespace, labels=dict(labels)),
        automount_token=False,
    )
