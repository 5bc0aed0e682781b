"""NetworkPolicies: default deny in both directions, then one explicit edge per real flow.

The edge table is the single source; each component's policy is derived from it, and the
tests compare the rendered policies with this table in both directions. Calls between
components, their replicas' peer ports and the scrape ports come from the catalog
(k8s_charts/catalog.py); the edges written here are the flows that cross the namespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from constructs import Construct

from k8s_charts.catalog import CATALOG
from k8s_charts.mesh import ISTIO_NAMESPACE
from k8s_charts.objects import DNS_EGRESS
from k8s_charts.supabase import kong
from k8s_charts.supabase.contract import NOT_QUARANTINED
from k8s_charts.supabase.k8s import api_object, selector
from k8s_charts.supabase.props import COMPONENTS, OBSERVABILITY_NAMESPACE, PART_OF, SupabaseProps

ANYWHERE = "0.0.0.0/0"
# EKS Pod Identity Agent (node-local, link-local address) that hands out the storage role's
# credentials; without this edge the AWS SDK in storage cannot authenticate.
POD_IDENTITY_AGENT = "169.254.170.23/32"
OTLP_PORTS = (4317, 4318)
# Sidecars fetch their configuration and workload certificate from istiod over this port;
# without it istio-proxy never gets ready, and with native sidecars neither does the Pod.
# (15001/15006 are the proxy's in-Pod redirect targets and 15017 is istiod's webhook, which
# the API server calls: neither crosses a NetworkPolicy of this namespace.)
ISTIOD_XDS_PORT = 15012


@dataclass(frozen=True, kw_only=True)
class Pod:
    component: str


@dataclass(frozen=True, kw_only=True)
class Cidr:
    cidr: str
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Namespace:
    name: str


Peer = Pod | Cidr | Namespace


@dataclass(frozen=True, kw_only=True)
class Edge:
    src: Peer
    dst: Peer
    port: int
    why: str

    def __post_init__(self) -> None:
        if not isinstance(self.src, Pod) and not isinstance(self.dst, Pod):
            raise ValueError("an edge needs a supabase pod on one side")


def edges(props: SupabaseProps) -> tuple[Edge, ...]:
    vpc = props.values.vpc_cidr
    internet = Cidr(cidr=ANYWHERE, exclude=(vpc, "169.254.0.0/16"))
    out = [
        Edge(src=Cidr(cidr=vpc), dst=Pod(component="kong"), port=kong.PROXY_PORT, why="ALB targets (ip mode)"),
        Edge(src=Cidr(cidr=vpc), dst=Pod(component="kong"), port=kong.STATUS_PORT, why="ALB health check"),
        Edge(
            src=Pod(component="kong"),
            dst=Cidr(cidr=vpc),
            port=props.values.redis_port,
            why="rate limiting counters in ElastiCache",
        ),
        Edge(src=Pod(component="storage"), dst=internet, port=443, why="S3"),
        Edge(
            src=Pod(component="storage"), dst=Cidr(cidr=POD_IDENTITY_AGENT), port=80, why="EKS Pod Identity credentials"
        ),
        Edge(src=Pod(component="imgproxy"), dst=internet, port=443, why="presigned S3 source URLs"),
        Edge(src=Pod(component="auth"), dst=internet, port=587, why="SES SMTP"),
        Edge(src=Pod(component="auth"), dst=internet, port=443, why="OAuth/SAML identity providers"),
        Edge(src=Pod(component="functions"), dst=internet, port=443, why="user functions call HTTPS APIs"),
        Edge(src=Pod(component="pgbouncer"), dst=Cidr(cidr=vpc), port=props.values.db_port, why="RDS"),
        Edge(
            src=Pod(component="realtime"),
            dst=Cidr(cidr=vpc),
            port=props.values.db_port,
            why="RDS primary (logical replication, session level)",
        ),
        Edge(
            src=Pod(component="auth"),
            dst=Cidr(cidr=vpc),
            port=props.values.db_port,
            why="RDS primary (GoTrue migrations need a session)",
        ),
        Edge(
            src=Pod(component="storage"),
            dst=Cidr(cidr=vpc),
            port=props.values.db_port,
            why="RDS primary (Storage migrations)",
        ),
        Edge(
            src=Pod(component="meta"),
            dst=Cidr(cidr=vpc),
            port=props.values.db_port,
            why="RDS primary (Studio's SQL and table editors through postgres-meta)",
        ),
    ]
    out += [
        Edge(src=Pod(component=c.name), dst=Pod(component=callee), port=CATALOG[callee].port, why="catalog call")
        for c in CATALOG.values()
        for callee in c.calls
    ]
    out += [
        Edge(src=Pod(component=c.name), dst=Pod(component=c.name), port=p, why="replicas' own cluster")
        for c in CATALOG.values()
        for p in c.peer_ports
    ]
    out += [
        Edge(src=Namespace(name=OBSERVABILITY_NAMESPACE), dst=Pod(component=c.name), port=c.metrics_port, why="scrape")
        for c in CATALOG.values()
        if c.metrics_port is not None
    ]
    return tuple(out)


def _peer(peer: Peer) -> dict[str, Any]:
    if isinstance(peer, Pod):
        return {"podSelector": {"matchLabels": selector(peer.component)}}
    if isinstance(peer, Namespace):
        return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": peer.name}}}
    block: dict[str, Any] = {"cidr": peer.cidr}
    if peer.exclude:
        block["except"] = list(peer.exclude)
    return {"ipBlock": block}


def _rules(pairs: list[tuple[Peer, int]], direction: str) -> list[dict[str, Any]]:
    key = "from" if direction == "ingress" else "to"
    return [{key: [_peer(peer)], "ports": [{"protocol": "TCP", "port": port}]} for peer, port in pairs]


def allow_selector(match_labels: dict[str, str]) -> dict[str, Any]:
    """podSelector of an allow policy: a quarantined pod is left to the deny-all policies."""
    return {"matchLabels": match_labels, "matchExpressions": [dict(NOT_QUARANTINED)]}


def istiod_egress() -> dict[str, Any]:
    return {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ISTIO_NAMESPACE}},
                "podSelector": {"matchLabels": {"app": "istiod"}},
            }
        ],
        "ports": [{"protocol": "TCP", "port": ISTIOD_XDS_PORT}],
    }


def _policy(scope: Construct, name: str, pod_selector: dict[str, Any], body: dict[str, Any]) -> None:
    api_object(
        scope,
        api_version="networking.k8s.io/v1",
        kind="NetworkPolicy",
        name=name,
        labels={"app.kubernetes.io/part-of": PART_OF},
        body={"spec": {"podSelector": pod_selector, **body}},
    )


def add_network_policies(scope: Construct, props: SupabaseProps) -> None:
    # Selects every pod, quarantined ones included: it allows nothing, so it only isolates.
    _policy(scope, "default-deny", {}, {"policyTypes": ["Ingress", "Egress"]})
    everything = allow_selector({"app.kubernetes.io/part-of": PART_OF})
    _policy(
        scope,
        "allow-dns",
        everything,
        {
            "policyTypes": ["Egress"],
            "egress": [DNS_EGRESS],
        },
    )
    _policy(
        scope,
        "allow-otel-egress",
        everything,
        {
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [
                        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": OBSERVABILITY_NAMESPACE}}}
                    ],
                    "ports": [{"protocol": "TCP", "port": p} for p in OTLP_PORTS],
                }
            ],
        },
    )
    if props.istio:
        _policy(scope, "allow-istiod", everything, {"policyTypes": ["Egress"], "egress": [istiod_egress()]})
    table = edges(props)
    for component in COMPONENTS:
        ingress = [(e.src, e.port) for e in table if e.dst == Pod(component=component)]
        egress = [(e.dst, e.port) for e in table if e.src == Pod(component=component)]
        body: dict[str, Any] = {"policyTypes": ["Ingress", "Egress"]}
        if ingress:
            body["ingress"] = _rules(ingress, "ingress")
        if egress:
            body["egress"] = _rules(egress, "egress")
        _policy(scope, component, allow_selector(selector(component)), body)
