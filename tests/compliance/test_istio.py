"""Istio objects: schema-valid for @kubernetes-models/istio, and coherent with the cluster.

Coherence means: every caller an AuthorizationPolicy admits is also let through by the
Supabase chart's NetworkPolicies (ingress at the callee, egress at the caller), every
pod-to-pod flow the NetworkPolicies open inside the namespace is admitted by the mesh, every
principal names a ServiceAccount the workloads really run as, and the ports left PERMISSIVE
are exactly the ones the ALB reaches.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from config.loader import load_config
from k8s_charts import mesh
from k8s_charts.catalog import CATALOG
from tests.conftest import ENVIRONMENTS
from tests.rendered import manifests

VALIDATOR = Path(__file__).with_name("istio_validate.mjs")
REPO = Path(__file__).parents[2]
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet"}


def validate(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    node = shutil.which("node")
    assert node, "node is needed for the Istio schema check"
    run = subprocess.run(
        [node, str(VALIDATOR)],
        input=json.dumps(objects),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=True,
    )
    return json.loads(run.stdout)


@pytest.fixture(scope="module")
def cfg():
    return load_config()


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {env: [o for objs in manifests(env).values() for o in objs] for env in ENVIRONMENTS}


def mesh_objects(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objs if o["apiVersion"].split("/")[0].endswith(".istio.io")]


def of_kind(objs: list[dict[str, Any]], kind: str, namespace: str = mesh.NAMESPACE) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind and o["metadata"].get("namespace") == namespace]


def supabase_rendered(objs: list[dict[str, Any]]) -> bool:
    return bool(of_kind(objs, "NetworkPolicy"))


# --- schema ------------------------------------------------------------------------------------


BAD_OBJECTS = [
    ("PeerAuthentication", {"mtls": {"mode": "STRICTT"}}),
    ("AuthorizationPolicy", {"action": "PERMIT"}),
    ("DestinationRule", {"host": "kong", "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": "many"}}}}),
    ("VirtualService", {"hosts": ["kong"], "http": [{"retries": {"attempts": "two"}}]}),
]


def bad_object(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    group = (
        "security.istio.io/v1" if kind in {"PeerAuthentication", "AuthorizationPolicy"} else "networking.istio.io/v1"
    )
    return {"apiVersion": group, "kind": kind, "metadata": {"name": "bad", "namespace": "x"}, "spec": spec}


def _key(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True)


@pytest.fixture(scope="module")
def verdicts(rendered) -> dict[str, dict[str, Any]]:
    """The validator's verdict on every object the schema tests ask about, from one node run (the
    validator judges each object on its own; a start-up costs a third of a second)."""
    objects = [o for env in ENVIRONMENTS for o in mesh_objects(rendered[env])]
    objects += [bad_object(kind, spec) for kind, spec in BAD_OBJECTS]
    return {_key(o): result for o, result in zip(objects, validate(objects), strict=True)}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_mesh_objects_are_valid(rendered, verdicts, cfg, env: str) -> None:
    objects = mesh_objects(rendered[env])
    if not cfg.environments[env].features.istio:
        assert objects == []
        return
    kinds = {o["kind"] for o in objects}
    assert kinds == {"PeerAuthentication", "AuthorizationPolicy", "DestinationRule", "VirtualService"}
    assert [r for r in (verdicts[_key(o)] for o in objects) if r["error"]] == []


@pytest.mark.parametrize(("kind", "spec"), BAD_OBJECTS)
def test_validator_rejects_bad_objects(verdicts, kind: str, spec: dict[str, Any]) -> None:
    assert verdicts[_key(bad_object(kind, spec))]["error"]


# --- the call graph against NetworkPolicies ----------------------------------------------------


@dataclass(frozen=True)
class PodModel:
    namespace: str
    labels: dict[str, str]
    ip: str
    ports: dict[str, int] = field(default_factory=dict)
    service_account: str = ""


def _selected(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    if selector is None:
        return False
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        present, value = expr["key"] in labels, labels.get(expr["key"])
        ok = {
            "In": present and value in expr.get("values", []),
            "NotIn": not present or value not in expr.get("values", []),
            "Exists": present,
            "DoesNotExist": not present,
        }[expr["operator"]]
        if not ok:
            return False
    return True


class Cluster:
    """Just enough of NetworkPolicy semantics to ask: may pod A open TCP port P on pod B?"""

    def __init__(self, objs: list[dict[str, Any]], vpc_cidr: str) -> None:
        self.policies = [o for o in objs if o["kind"] == "NetworkPolicy"]
        self.vpc = ipaddress.ip_network(vpc_cidr)
        hosts = self.vpc.hosts()
        self.namespace_labels = {
            o["metadata"]["name"]: {
                **o["metadata"].get("labels", {}),
                "kubernetes.io/metadata.name": o["metadata"]["name"],
            }
            for o in objs
            if o["kind"] == "Namespace"
        }
        self.pods: dict[str, PodModel] = {}
        for o in objs:
            if o["kind"] not in WORKLOAD_KINDS or o["metadata"].get("namespace") != mesh.NAMESPACE:
                continue
            spec = o["spec"]["template"]["spec"]
            ports = {
                p["name"]: p["containerPort"] for c in spec["containers"] for p in c.get("ports", []) if "name" in p
            }
            labels = o["spec"]["template"]["metadata"]["labels"]
            self.pods[labels["app.kubernetes.io/name"]] = PodModel(
                namespace=mesh.NAMESPACE,
                labels=labels,
                ip=str(next(hosts)),
                ports=ports,
                service_account=spec.get("serviceAccountName", "default"),
            )
        # kube-prometheus-stack labels its Prometheus Pods app.kubernetes.io/name=prometheus.
        self.pods["prometheus"] = PodModel(
            namespace="observability",
            labels={"app.kubernetes.io/name": "prometheus"},
            ip=str(next(hosts)),
            service_account="kube-prometheus-stack-prometheus",
        )
        # The ALB's ENIs sit in the VPC's public subnets; it is no Pod and has no egress policy.
        self.alb_ip = str(next(hosts))

    def _ns_labels(self, namespace: str) -> dict[str, str]:
        return self.namespace_labels.get(namespace, {"kubernetes.io/metadata.name": namespace})

    def _peer_matches(self, peer: dict[str, Any], policy_ns: str, pod: PodModel | None, ip: str) -> bool:
        if "ipBlock" in peer:
            block = peer["ipBlock"]
            addr = ipaddress.ip_address(ip)
            return addr in ipaddress.ip_network(block["cidr"]) and not any(
                addr in ipaddress.ip_network(e) for e in block.get("except", [])
            )
        if pod is None:
            return False
        if "namespaceSelector" in peer:
            if not _selected(peer["namespaceSelector"], self._ns_labels(pod.namespace)):
                return False
        elif pod.namespace != policy_ns:
            return False
        return "podSelector" not in peer or _selected(peer["podSelector"], pod.labels)

    @staticmethod
    def _port_matches(rule: dict[str, Any], port: int, target: PodModel | None) -> bool:
        if "ports" not in rule:
            return True
        for p in rule["ports"]:
            if p.get("protocol", "TCP") != "TCP":
                continue
            number = p.get("port")
            if number is None:
                return True
            if isinstance(number, str):
                number = target.ports.get(number) if target else None
            end = p.get("endPort", number)
            if number is not None and number <= port <= end:
                return True
        return False

    def _allowed(
        self, direction: str, subject: PodModel, peer: PodModel | None, peer_ip: str, port: int, target: PodModel | None
    ) -> bool:
        kind, key = ("Ingress", "ingress") if direction == "ingress" else ("Egress", "egress")
        selecting = [
            np
            for np in self.policies
            if np["metadata"].get("namespace") == subject.namespace
            and _selected(np["spec"]["podSelector"], subject.labels)
            and kind in np["spec"].get("policyTypes", ["Ingress"])
        ]
        if not selecting:
            return True
        peer_key = "from" if direction == "ingress" else "to"
        for np in selecting:
            for rule in np["spec"].get(key, []):
                peers = rule.get(peer_key)
                if (
                    not peers or any(self._peer_matches(p, np["metadata"]["namespace"], peer, peer_ip) for p in peers)
                ) and self._port_matches(rule, port, target):
                    return True
        return False

    def allows(self, source: PodModel | None, source_ip: str, target: PodModel, port: int) -> bool:
        ingress = self._allowed("ingress", target, source, source_ip, port, target)
        egress = source is None or self._allowed("egress", source, target, target.ip, port, target)
        return ingress and egress


def authorized_edges(objs: list[dict[str, Any]]) -> list[tuple[str, str, str, int]]:
    """(kind of source, source, target component, port) from the rendered AuthorizationPolicies."""
    found = []
    for policy in of_kind(objs, "AuthorizationPolicy"):
        spec = policy["spec"]
        if not spec:
            continue
        assert spec["action"] == "ALLOW"
        target = spec["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for rule in spec["rules"]:
            ports = [int(p) for to in rule["to"] for p in to["operation"]["ports"]]
            for src in rule["from"]:
                for principal in src["source"].get("principals", []):
                    found += [("principal", principal, target, port) for port in ports]
                for block in src["source"].get("ipBlocks", []):
                    found += [("ipBlock", block, target, port) for port in ports]
    return found


def _by_principal(cluster: Cluster, principal: str) -> PodModel:
    _, _, namespace, _, account = principal.split("/")
    matches = [p for p in cluster.pods.values() if p.namespace == namespace and p.service_account == account]
    assert len(matches) == 1, f"{principal}: {len(matches)} workloads run as this ServiceAccount"
    return matches[0]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_mesh_edge_is_open_in_the_network(rendered, cfg, env: str) -> None:
    objs = rendered[env]
    if not cfg.environments[env].features.istio or not supabase_rendered(objs):
        pytest.skip("needs Istio on and the Supabase chart's NetworkPolicies")
    cluster = Cluster(objs, str(cfg.environments[env].network.vpc_cidr))
    blocked = []
    edges = authorized_edges(objs)
    assert edges
    for kind, source, target, port in edges:
        target_pod = cluster.pods[target]
        if kind == "principal":
            src = _by_principal(cluster, source)
            ok = cluster.allows(src, src.ip, target_pod, port)
        else:
            assert ipaddress.ip_network(source) == cluster.vpc
            ok = cluster.allows(None, cluster.alb_ip, target_pod, port)
        if not ok:
            blocked.append(f"{source} -> {target}:{port}")
    assert blocked == [], "the mesh admits calls the NetworkPolicies drop"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_network_flow_inside_the_namespace_is_admitted_by_the_mesh(rendered, cfg, env: str) -> None:
    objs = rendered[env]
    if not cfg.environments[env].features.istio or not supabase_rendered(objs):
        pytest.skip("needs Istio on and the Supabase chart's NetworkPolicies")
    cluster = Cluster(objs, str(cfg.environments[env].network.vpc_cidr))
    admitted = {(source, target, port) for kind, source, target, port in authorized_edges(objs) if kind == "principal"}
    in_namespace = {n: p for n, p in cluster.pods.items() if p.namespace == mesh.NAMESPACE}
    missing = []
    for target_name, target in in_namespace.items():
        for np in cluster.policies:
            if np["metadata"].get("namespace") != mesh.NAMESPACE or not _selected(
                np["spec"]["podSelector"], target.labels
            ):
                continue
            for rule in np["spec"].get("ingress", []):
                # Pod-to-pod peers of the same namespace only: ipBlock and namespace peers are
                # the ALB and the scrapers, checked the other way round above.
                callers = [
                    name
                    for name, pod in in_namespace.items()
                    for peer in rule.get("from", [])
                    if set(peer) == {"podSelector"} and _selected(peer["podSelector"], pod.labels)
                ]
                ports = [
                    target.ports.get(q["port"]) if isinstance(q["port"], str) else q["port"]
                    for q in rule.get("ports", [])
                ]
                for caller_name in callers:
                    caller = in_namespace[caller_name]
                    for port in ports:
                        if not cluster.allows(caller, caller.ip, target, port):
                            continue
                        if (mesh.principal(caller.service_account), target_name, port) not in admitted:
                            missing.append(f"{caller_name} -> {target_name}:{port}")
    assert missing == [], "the network lets these through but the mesh would refuse them"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_principals_are_the_workloads_service_accounts(rendered, cfg, env: str) -> None:
    objs = rendered[env]
    if not supabase_rendered(objs):
        pytest.skip("needs the Supabase chart")
    accounts = {o["metadata"]["name"] for o in of_kind(objs, "ServiceAccount")}
    cluster = Cluster(objs, str(cfg.environments[env].network.vpc_cidr))
    for component in CATALOG:
        assert cluster.pods[component].service_account == component, component
        assert component in accounts, f"no ServiceAccount {component}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_only_alb_facing_ports_accept_plain_text(rendered, cfg, env: str) -> None:
    objs = rendered[env]
    if not cfg.environments[env].features.istio:
        pytest.skip("Istio is off")
    auths = {o["metadata"]["name"]: o["spec"] for o in of_kind(objs, "PeerAuthentication")}
    assert auths["default"] == {"mtls": {"mode": "STRICT"}}
    permissive = {
        int(port)
        for spec in auths.values()
        for port, mode in spec.get("portLevelMtls", {}).items()
        if mode["mode"] != "STRICT"
    }
    assert all(spec["mtls"]["mode"] == "STRICT" for spec in auths.values())
    if not supabase_rendered(objs):
        return
    (ingress,) = of_kind(objs, "Ingress")
    service = (
        next(
            s
            for s in of_kind(objs, "Service")
            if s["metadata"]["name"] == ingress["spec"]["defaultBackend"]["service"]["name"]
        )
        if "defaultBackend" in ingress["spec"]
        else None
    )
    backends = [p["backend"]["service"] for rule in ingress["spec"].get("rules", []) for p in rule["http"]["paths"]]
    if service is None:
        service = next(s for s in of_kind(objs, "Service") if s["metadata"]["name"] == backends[0]["name"])
    backend_port = (ingress["spec"].get("defaultBackend", {}).get("service") or backends[0])["port"]["number"]
    target_port = next(p.get("targetPort", p["port"]) for p in service["spec"]["ports"] if p["port"] == backend_port)
    health_port = int(ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/healthcheck-port"])
    assert permissive == {target_port, health_port}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_service_has_traffic_policy(rendered, cfg, env: str) -> None:
    objs = rendered[env]
    if not cfg.environments[env].features.istio or not supabase_rendered(objs):
        pytest.skip("needs Istio on and the Supabase chart")
    rules = {o["spec"]["host"]: o["spec"] for o in of_kind(objs, "DestinationRule")}
    routes = {h: o["spec"] for o in of_kind(objs, "VirtualService") for h in o["spec"]["hosts"]}
    for service in of_kind(objs, "Service"):
        component = service["spec"].get("selector", {}).get("app.kubernetes.io/name")
        if component not in CATALOG or service["spec"].get("clusterIP") == "None":
            continue
        host = f"{service['metadata']['name']}.{mesh.NAMESPACE}.svc.cluster.local"
        if service["metadata"]["name"] != component:
            continue
        assert host in rules, f"no DestinationRule for {host}"
        assert rules[host]["trafficPolicy"]["outlierDetection"]["maxEjectionPercent"] <= 50
        ports = {p["port"] for p in service["spec"]["ports"]}
        if CATALOG[component].protocol == "http":
            (route,) = routes[host]["http"]
            assert route["route"][0]["destination"]["port"]["number"] in ports


def test_websocket_route_is_never_retried_nor_cut() -> None:
    routes = {o["metadata"]["name"]: o["spec"]["http"][0] for o in mesh.virtual_services()}
    realtime = routes["realtime"]
    assert realtime["retries"] == {"attempts": 0} and realtime["timeout"] == "0s"
    rules = {o["metadata"]["name"]: o["spec"] for o in mesh.destination_rules()}
    assert rules["realtime"]["trafficPolicy"]["connectionPool"]["http"]["h2UpgradePolicy"] == "DO_NOT_UPGRADE"
    for name, route in routes.items():
        retry_on = route["retries"].get("retryOn", "")
        assert "5xx" not in retry_on and "gateway-error" not in retry_on, f"{name} would replay processed requests"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_supabase_namespace_is_injected(rendered, cfg, env: str) -> None:
    objs = rendered[env]
    namespaces = [o for o in objs if o["kind"] == "Namespace" and o["metadata"]["name"] == mesh.NAMESPACE]
    if not namespaces:
        pytest.skip("the Supabase chart renders no Namespace yet")
    key, value = mesh.INJECTION_LABEL
    labels = namespaces[0]["metadata"].get("labels", {})
    if cfg.environments[env].features.istio:
        assert labels.get(key) == value, f"Namespace {mesh.NAMESPACE} needs label {key}={value}"
    else:
        assert key not in labels
