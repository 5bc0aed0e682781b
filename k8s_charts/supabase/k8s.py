"""Small helpers to emit raw Kubernetes objects from cdk8s charts.

Raw `ApiObject`s keep the rendered YAML exactly as reviewed in the snapshots; cdk8s-plus
would add defaults (e.g. its own NetworkPolicies) that the team's design does not want.
"""

from __future__ import annotations

from typing import Any

import cdk8s
from constructs import Construct

from k8s_charts import objects
from k8s_charts.supabase.props import NAMESPACE, PART_OF


def labels(component: str, version: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/version": version,
    }


def selector(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": component, "app.kubernetes.io/part-of": PART_OF}


def api_object(
    scope: Construct,
    *,
    api_version: str,
    kind: str,
    name: str,
    body: dict[str, Any],
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    namespaced: bool = True,
) -> cdk8s.ApiObject:
    metadata: dict[str, Any] = {"name": name}
    if namespaced:
        metadata["namespace"] = NAMESPACE
    if labels:
        metadata["labels"] = labels
    if annotations:
        metadata["annotations"] = annotations
    return objects.api_object(scope, f"{kind}-{name}", api_version=api_version, kind=kind, metadata=metadata, body=body)


def secret_env(name: str, secret: str, key: str | None = None) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key or name}}}


def plain_env(env: dict[str, str]) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in env.items()]
