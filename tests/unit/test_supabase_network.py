"""NetworkPolicies: default deny, each intended edge present, and no edge beyond them.

The expected edges are written here from the design (not read from the code), and the
rendered policies are reduced back to (source, destination, port) triples for comparison.
"""

from __future__ import annotations

import pytest

from config.loader import load_config
from k8s_charts.aws_values import from_config
from tests import rendered
from tests.conftest import ENVIRONMENT_KINDS

OBS = "ns:observability"
# Namespace-wide policies (every Supabase pod), checked on their own below.
SHARED = ("default-deny", "allow-dns", "allow-otel-egress", "allow-istiod")


def expected(vpc: str) -> set[tuple[str, str, int]]:
    internet = "cidr:0.0.0.0/0"
    edges = {
        (f"cidr:{vpc}", "kong", 8000),
        (f"cidr:{vpc}", "kong", 8100),
        ("kong", f"cidr:{vpc}", 6379),
        ("storage", "rest", 3000),
        ("storage", "imgproxy", 5001),
        ("storage", internet, 443),
        ("storage", "cidr:169.254.170.23/32", 80),
        ("imgproxy", internet, 443),
        ("auth", internet, 587),
        ("auth", internet, 443),
        ("functions", internet, 443),
        ("functions", "kong", 8000),
        ("studio", "kong", 8000),
        ("studio", "meta", 8080),
        ("pgbouncer", f"cidr:{vpc}", 5432),
        ("realtime", f"cidr:{vpc}", 5432),
        ("auth", f"cidr:{vpc}", 5432),
        ("storage", f"cidr:{vpc}", 5432),
        ("meta", f"cidr:{vpc}", 5432),
    }
    edges |= {
        ("kong", c, p)
        for c, p in [
            ("auth", 9999),
            ("rest", 3000),
            ("rest-ro", 3000),
            ("realtime", 4000),
            ("storage", 5000),
            ("functions", 9000),
            ("meta", 8080),
            ("studio", 3000),
        ]
    }
    edges |= {(c, "pgbouncer", 6432) for c in ["rest", "rest-ro", "storage", "functions"]}
    edges |= {("realtime", "realtime", p) for p in (4369, 4370, 5369)}
    edges |= {
        (OBS, c, p)
        for c, p in [
            ("kong", 8100),
            ("auth", 9100),
            ("rest", 3001),
            ("rest-ro", 3001),
            ("realtime", 4000),
            ("imgproxy", 9464),
            ("pgbouncer", 9127),
        ]
    }
    return edges


def _peer(peer: dict) -> str:
    if "podSelector" in peer and "namespaceSelector" not in peer:
        return peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
    if "namespaceSelector" in peer:
        return "ns:" + peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
    return "cidr:" + peer["ipBlock"]["cidr"]


@pytest.fixture(scope="module", params=ENVIRONMENT_KINDS)
def policies(request):
    objects = rendered.supabase(request.param)["supabase"]
    return from_config(load_config(), request.param), {
        o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "NetworkPolicy"
    }


def test_default_deny_both_directions(policies):
    _, pols = policies
    deny = pols["default-deny"]
    assert deny["podSelector"] == {} and sorted(deny["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in deny and "egress" not in deny


def test_edges_are_exactly_the_design(policies):
    values, pols = policies
    found: set[tuple[str, str, int]] = set()
    for name, spec in pols.items():
        if name in SHARED:
            continue
        me = spec["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        for rule in spec.get("ingress", []):
            for peer in rule["from"]:
                found |= {(_peer(peer), me, p["port"]) for p in rule["ports"]}
        for rule in spec.get("egress", []):
            for peer in rule["to"]:
                found |= {(me, _peer(peer), p["port"]) for p in rule["ports"]}
    # Pod-to-pod edges appear on both ends (egress of one, ingress of the other): one triple.
    assert found == expected(values.vpc_cidr)


def test_pod_edges_are_allowed_on_both_ends(policies):
    _, pols = policies
    for name, spec in pols.items():
        if name in SHARED:
            continue
        me = spec["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        for rule in spec.get("egress", []):
            for peer in rule["to"]:
                target = _peer(peer)
                if ":" in target:
                    continue
                ingress = pols[target].get("ingress", [])
                assert any(_peer(p) == me and rule["ports"][0] in r["ports"] for r in ingress for p in r["from"]), (
                    f"{me} -> {target} allowed on egress only"
                )


def test_internet_egress_excludes_vpc_and_link_local(policies):
    values, pols = policies
    for spec in pols.values():
        for rule in spec.get("egress", []):
            for peer in rule["to"]:
                if peer.get("ipBlock", {}).get("cidr") == "0.0.0.0/0":
                    assert set(peer["ipBlock"]["except"]) == {values.vpc_cidr, "169.254.0.0/16"}


def test_dns_and_otel(policies):
    _, pols = policies
    dns = pols["allow-dns"]["egress"][0]
    assert dns["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    assert {(p["protocol"], p["port"]) for p in dns["ports"]} == {("UDP", 53), ("TCP", 53)}
    otel = pols["allow-otel-egress"]["egress"][0]
    assert otel["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == "observability"
    assert {p["port"] for p in otel["ports"]} == {4317, 4318}


def test_every_component_has_a_policy(policies):
    _, pols = policies
    for c in [
        "kong",
        "auth",
        "rest",
        "rest-ro",
        "realtime",
        "storage",
        "imgproxy",
        "meta",
        "studio",
        "functions",
        "pgbouncer",
    ]:
        assert sorted(pols[c]["policyTypes"]) == ["Egress", "Ingress"]
