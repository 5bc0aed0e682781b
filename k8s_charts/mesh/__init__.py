"""Istio (sidecar mode) objects for the Supabase namespace.

Identity comes from mTLS: every caller is named by its ServiceAccount principal
(cluster.local/ns/<ns>/sa/<sa>), and each Supabase component admits only the callers of the
catalog's call graph (k8s_charts/catalog.py). The graph is data so that the tests can hold it against the NetworkPolicies
of the Supabase chart: an edge the mesh allows but the network refuses (or the reverse) is a
bug either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cdk8s
from constructs import Construct

from k8s_charts.catalog import CATALOG, Component
from k8s_charts.objects import from_manifest

NAMESPACE = "supabase"
TRUST_DOMAIN = "cluster.local"
# Label the Supabase chart's Namespace must carry for sidecar injection.
INJECTION_LABEL = ("istio-injection", "enabled")

# Helm releases the CDK installs from the vendored charts (charts/SOURCES.yaml), in
# this order: base (CRDs), cni (node agent, so Pods need no NET_ADMIN init container), istiod.
ISTIO_CHART_VERSION = "1.30.3"
ISTIO_NAMESPACE = "istio-system"

PROMETHEUS_PRINCIPAL = f"{TRUST_DOMAIN}/ns/observability/sa/kube-prometheus-stack-prometheus"


# Auth, Realtime, postgres-meta and PgBouncer also reach RDS directly (auth needs
# session-level features a transaction pool cannot give; meta connects as the user Studio
# names, which PgBouncer does not know), which is outside the mesh (egress, no
# AuthorizationPolicy). Calls inside the namespace are the catalog's.

# Kong's ports the ALB reaches from outside the mesh: the proxy, and the status port its
# target-group health check calls.
ALB_PORTS = (CATALOG["kong"].port, CATALOG["kong"].scrape_port())


@dataclass(frozen=True, kw_only=True)
class Edge:
    """One allowed connection: from a principal (or, for the ALB, an address block) to a port."""

    target: str
    port: int
    principal: str | None = None
    ip_block: str | None = None
    metrics_only: bool = False


def principal(component: str, namespace: str = NAMESPACE) -> str:
    return f"{TRUST_DOMAIN}/ns/{namespace}/sa/{component}"


def edges(vpc_cidr: str) -> list[Edge]:
    found = [Edge(target="kong", port=port, ip_block=vpc_cidr) for port in ALB_PORTS]
    found += [
        Edge(target=callee, port=CATALOG[callee].port, principal=principal(caller.name))
        for caller in CATALOG.values()
        for callee in caller.calls
    ]
    found += [
        Edge(target=c.name, port=port, principal=principal(c.name)) for c in CATALOG.values() for port in c.peer_ports
    ]
    found += [
        Edge(target=c.name, port=c.metrics_port, principal=PROMETHEUS_PRINCIPAL, metrics_only=True)
        for c in CATALOG.values()
        if c.metrics_port is not None
    ]
    return found


def _selector(component: str) -> dict[str, Any]:
    return {"matchLabels": {"app.kubernetes.io/name": component}}


def _host(component: str) -> str:
    return f"{component}.{NAMESPACE}.svc.cluster.local"


def _metadata(name: str) -> dict[str, Any]:
    return {"name": name, "namespace": NAMESPACE, "labels": {"app.kubernetes.io/part-of": "supabase"}}


def peer_authentications() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "PeerAuthentication",
            "metadata": _metadata("default"),
            "spec": {"mtls": {"mode": "STRICT"}},
        },
        {
            # The ALB (target type ip) connects straight to Kong's Pod and is not in the mesh,
            # so its plain-text connections to these ports are accepted; the
            # AuthorizationPolicy still limits them to the VPC's addresses.
            "apiVersion": "security.istio.io/v1",
            "kind": "PeerAuthentication",
            "metadata": _metadata("kong-alb"),
            "spec": {
                "selector": _selector("kong"),
                "mtls": {"mode": "STRICT"},
                "portLevelMtls": {str(port): {"mode": "PERMISSIVE"} for port in ALB_PORTS},
            },
        },
    ]


def _rule(edge: Edge) -> dict[str, Any]:
    source = {"principals": [edge.principal]} if edge.principal else {"ipBlocks": [edge.ip_block]}
    operation: dict[str, Any] = {"ports": [str(edge.port)]}
    if edge.metrics_only:
        operation.update(methods=["GET"], paths=["/metrics"])
    return {"from": [{"source": source}], "to": [{"operation": operation}]}


def authorization_policies(vpc_cidr: str) -> list[dict[str, Any]]:
    # An ALLOW policy with no rules matches nothing: everything not allowed below is refused.
    policies = [
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": _metadata("deny-by-default"),
            "spec": {},
        }
    ]
    all_edges = edges(vpc_cidr)
    for component in CATALOG:
        rules = [_rule(e) for e in all_edges if e.target == component]
        policies.append(
            {
                "apiVersion": "security.istio.io/v1",
                "kind": "AuthorizationPolicy",
                "metadata": _metadata(f"allow-{component}"),
                "spec": {"selector": _selector(component), "action": "ALLOW", "rules": rules},
            }
        )
    return policies


def _connection_pool(svc: Component) -> dict[str, Any]:
    tcp = {"maxConnections": 1024, "connectTimeout": "5s", "tcpKeepalive": {"time": "300s", "interval": "60s"}}
    if svc.protocol == "tcp":
        return {"tcp": tcp}
    http: dict[str, Any] = {"http1MaxPendingRequests": 256, "http2MaxRequests": 1024, "maxRetries": 3}
    if svc.timeout is None:
        # Matches the ALB idle timeout given to websocket traffic.
        http.update(idleTimeout="3600s", h2UpgradePolicy="DO_NOT_UPGRADE")
    return {"tcp": tcp, "http": http}


def destination_rules() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": _metadata(component),
            "spec": {
                "host": _host(component),
                "trafficPolicy": {
                    "tls": {"mode": "ISTIO_MUTUAL"},
                    "connectionPool": _connection_pool(svc),
                    # Eject a replica after 5 straight failures; never more than half of them,
                    # so a shared outage degrades instead of emptying the pool.
                    "outlierDetection": {
                        "consecutive5xxErrors": 5,
                        "interval": "10s",
                        "baseEjectionTime": "30s",
                        "maxEjectionPercent": 50,
                    },
                },
            },
        }
        for component, svc in CATALOG.items()
    ]


def _route(component: str, svc: Component) -> dict[str, Any]:
    route: dict[str, Any] = {
        "name": component,
        "route": [{"destination": {"host": _host(component), "port": {"number": svc.port}}}],
    }
    if svc.timeout is None:
        route["timeout"] = "0s"
        route["retries"] = {"attempts": 0}
    else:
        route["timeout"] = svc.timeout
        # Retry only what the server cannot have started processing, so a POST never runs twice.
        route["retries"] = (
            {
                "attempts": svc.retries,
                "perTryTimeout": svc.timeout,
                "retryOn": "connect-failure,refused-stream,reset-before-request",
            }
            if svc.retries
            else {"attempts": 0}
        )
    return route


def virtual_services() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": _metadata(component),
            "spec": {"hosts": [_host(component)], "http": [_route(component, svc)]},
        }
        for component, svc in CATALOG.items()
        if svc.protocol == "http"
    ]


def mesh_objects(vpc_cidr: str) -> list[dict[str, Any]]:
    return peer_authentications() + authorization_policies(vpc_cidr) + destination_rules() + virtual_services()


def istiod_helm_values() -> dict[str, Any]:
    """Values for the istiod chart: CNI mode, and sidecar resources the policies require."""
    return {
        "pilot": {"cni": {"enabled": True}},
        "global": {
            "proxy": {
                "resources": {
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                    "limits": {"cpu": "1000m", "memory": "512Mi"},
                },
            },
        },
    }


@dataclass(frozen=True, kw_only=True)
class MeshProps:
    vpc_cidr: str


class MeshChart(cdk8s.Chart):
    """Depends on the Istio CRDs (base chart) and on the Supabase Namespace."""

    def __init__(self, scope: Construct, id_: str, *, props: MeshProps) -> None:
        super().__init__(scope, id_, disable_resource_name_hashes=True)
        self.objects = []
        for manifest in mesh_objects(props.vpc_cidr):
            self.objects.append(from_manifest(self, manifest))
