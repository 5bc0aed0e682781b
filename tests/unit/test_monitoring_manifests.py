"""Every object of the monitoring chart validates against its schema, and every scrape
config points at something the rendered charts really create."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import cdk8s
import kubernetes_validate
import pytest

from config import load_config
from k8s_charts.aws_values import from_config
from k8s_charts.monitoring import MonitoringChart
from tests import rendered

REPO = Path(__file__).resolve().parents[2]
VALIDATOR = REPO / "tests" / "compliance" / "validate_crd.mjs"
NODE = shutil.which("node") or "/usr/bin/node"
CRD_GROUPS = ("monitoring.coreos.com/", "argoproj.io/")


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    cfg = load_config()
    return MonitoringChart(
        cdk8s.App(), "monitoring", cfg=cfg, env_name="prod", values=from_config(cfg, "prod")
    ).to_json()


@pytest.fixture(scope="module")
def manifests() -> dict[str, list[dict]]:
    return rendered.manifests("prod")


def test_builtin_objects_validate_strictly(objects: list[dict]) -> None:
    builtin = [
        o
        for o in objects
        if "/" not in o["apiVersion"]
        or o["apiVersion"].split("/")[0].endswith("k8s.io")
        or o["apiVersion"] in {"apps/v1", "policy/v1"}
    ]
    assert {o["kind"] for o in builtin} >= {
        "Deployment",
        "Service",
        "ServiceAccount",
        "ConfigMap",
        "NetworkPolicy",
        "PodDisruptionBudget",
    }
    for o in builtin:
        kubernetes_validate.validate(o, "1.35.0", strict=True)


def test_strict_validation_catches_a_typo(objects: list[dict]) -> None:
    bad = json.loads(json.dumps(next(o for o in objects if o["kind"] == "Deployment")))
    bad["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = bad["spec"]["template"]["spec"]["containers"][
        0
    ].pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, "1.35.0", strict=True)


def test_custom_resources_match_prometheus_operator_schemas(objects: list[dict]) -> None:
    crs = [o for o in objects if o["apiVersion"].startswith(CRD_GROUPS)]
    out = subprocess.run(
        [NODE, str(VALIDATOR)], input=json.dumps(crs), capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)
    assert {r["kind"] for r in results} == {
        "ServiceMonitor",
        "PodMonitor",
        "PrometheusRule",
        "Probe",
        "AlertmanagerConfig",
    }
    assert [r for r in results if r["error"]] == []


def test_external_secrets_are_well_formed(objects: list[dict]) -> None:
    secrets = [o for o in objects if o["kind"] == "ExternalSecret"]
    assert secrets
    for es in secrets:
        assert es["apiVersion"] == "external-secrets.io/v1"
        spec = es["spec"]
        assert spec["secretStoreRef"]["kind"] == "ClusterSecretStore" and spec["secretStoreRef"]["name"]
        assert spec["target"]["name"] == es["metadata"]["name"]
        for d in spec["data"]:
            assert d["secretKey"] and d["remoteRef"]["key"]


def _services(manifests: dict[str, list[dict]]) -> list[dict]:
    return [o for objs in manifests.values() for o in objs if o["kind"] == "Service"]


def _selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def test_every_service_monitor_finds_a_service_with_its_port(manifests: dict[str, list[dict]]) -> None:
    services = _services(manifests)
    if not any(s["metadata"].get("namespace") == "supabase" for s in services):
        pytest.skip("the Supabase chart is not in CHART_FACTORIES yet: nothing to cross-check against")
    monitors = [o for o in manifests["monitoring"] if o["kind"] == "ServiceMonitor"]
    assert monitors
    for m in monitors:
        namespaces = m["spec"]["namespaceSelector"]["matchNames"]
        ports = {e["port"] for e in m["spec"]["endpoints"]}
        matches = [
            s
            for s in services
            if s["metadata"].get("namespace") in namespaces
            and _selects(m["spec"]["selector"], s["metadata"].get("labels", {}))
        ]
        assert matches, f"ServiceMonitor {m['metadata']['name']} selects no Service in {namespaces}"
        # Services without the port yield no targets (e.g. Realtime's headless peer Service);
        # two with it would scrape every pod twice.
        exposing = [s["metadata"]["name"] for s in matches if ports <= {p.get("name") for p in s["spec"]["ports"]}]
        assert len(exposing) == 1, f"ServiceMonitor {m['metadata']['name']}: Services exposing {ports}: {exposing}"


def test_every_pod_monitor_port_exists_where_the_chart_owns_the_pods(manifests: dict[str, list[dict]]) -> None:
    """PodMonitors for Helm-installed controllers cannot be checked here; the rest must match a pod template."""
    pods = [
        (o["metadata"].get("namespace"), o["spec"]["template"])
        for objs in manifests.values()
        for o in objs
        if o["kind"] == "Deployment"
    ]
    for m in (o for o in manifests["monitoring"] if o["kind"] == "PodMonitor"):
        namespaces = m["spec"]["namespaceSelector"]["matchNames"]
        assert namespaces and set(namespaces).isdisjoint({"supabase", "observability"}), (
            f"{m['metadata']['name']}: pods of this project's charts are scraped through ServiceMonitors"
        )
        assert not [
            t for ns, t in pods if ns in namespaces and _selects(m["spec"]["selector"], t["metadata"].get("labels", {}))
        ]


PROMETHEUS_POD = {"app.kubernetes.io/name": "prometheus"}
OBSERVABILITY_NS = {"kubernetes.io/metadata.name": "observability"}


def _peer_admits_prometheus(peer: dict) -> bool:
    if "ipBlock" in peer or "namespaceSelector" not in peer:
        return False
    return _selects(peer["namespaceSelector"], OBSERVABILITY_NS) and _selects(
        peer.get("podSelector", {}), PROMETHEUS_POD
    )


def _port_allowed(rule: dict, number: int, name: str | None) -> bool:
    ports = rule.get("ports")
    return not ports or any(p.get("port") in {number, name} for p in ports)


def test_network_policies_let_prometheus_scrape_supabase(manifests: dict[str, list[dict]]) -> None:
    """With default-deny in `supabase`, every scraped pod needs an ingress rule admitting the
    Prometheus pods of `observability` on the metrics port."""
    objs = [o for objs in manifests.values() for o in objs if o["metadata"].get("namespace") == "supabase"]
    if not any(o["kind"] == "NetworkPolicy" for o in objs):
        pytest.skip("the Supabase chart renders no NetworkPolicies yet")
    services = [o for o in objs if o["kind"] == "Service"]
    templates = [o["spec"]["template"] for o in objs if o["kind"] in {"Deployment", "StatefulSet"}]
    policies = [
        o["spec"] for o in objs if o["kind"] == "NetworkPolicy" and "Ingress" in o["spec"].get("policyTypes", [])
    ]
    for m in (
        o for o in manifests["monitoring"] if o["kind"] == "ServiceMonitor" and o["metadata"]["namespace"] == "supabase"
    ):
        for svc in (s for s in services if _selects(m["spec"]["selector"], s["metadata"].get("labels", {}))):
            port = next((p for p in svc["spec"]["ports"] if p.get("name") == "metrics"), None)
            if port is None:
                continue
            for t in (
                t for t in templates if _selects({"matchLabels": svc["spec"]["selector"]}, t["metadata"]["labels"])
            ):
                target = port.get("targetPort", port["port"])
                container_ports = [cp for c in t["spec"]["containers"] for cp in c.get("ports", [])]
                number = (
                    target
                    if isinstance(target, int)
                    else next(cp["containerPort"] for cp in container_ports if cp.get("name") == target)
                )
                name = next((cp.get("name") for cp in container_ports if cp["containerPort"] == number), None)
                admitted = any(
                    _selects(p["podSelector"], t["metadata"]["labels"])
                    and any(
                        _port_allowed(rule, number, name)
                        and any(_peer_admits_prometheus(peer) for peer in rule.get("from", []))
                        for rule in p.get("ingress", [])
                    )
                    for p in policies
                )
                assert admitted, f"no NetworkPolicy lets Prometheus reach {svc['metadata']['name']}:{number}"
