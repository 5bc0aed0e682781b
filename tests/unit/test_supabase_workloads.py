"""Hardening, naming, scaling, Edge Functions packaging, bootstrap Job and Ingress."""

from __future__ import annotations

import re

import pytest

from config.loader import load_config
from database.bootstrap import BOOTSTRAP_SQL, psql_args
from k8s_charts.aws_values import from_config
from k8s_charts.supabase import images
from k8s_charts.supabase.chart import render_supabase
from k8s_charts.supabase.components import FUNCTIONS_DIR
from tests import rendered
from tests.conftest import ENVIRONMENT_KINDS

NON_PRODUCTION, PRODUCTION = ENVIRONMENT_KINDS

COMPONENTS = [
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
]
METRICS = {
    "kong": 8001,
    "auth": 9100,
    "rest": 3001,
    "rest-ro": 3001,
    "realtime": 4000,
    "imgproxy": 9464,
    "pgbouncer": 9127,
}


@pytest.fixture(scope="module")
def envs():
    cfg = load_config()
    out = {}
    for name in ENVIRONMENT_KINDS:
        out[name] = (from_config(cfg, name), rendered.supabase(name))
    return out


def test_supabase_charts_render_alike_alone_and_in_the_environment(envs):
    """What lets the suite read the session's render (tests/rendered.py) where a test means the
    charts `render_supabase` builds on their own, as `make local` does."""
    cfg = load_config()
    assert render_supabase(cfg, PRODUCTION, from_config(cfg, PRODUCTION)) == envs[PRODUCTION][1]


def _find(objects, kind, name):
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


@pytest.mark.parametrize("component", COMPONENTS)
def test_component_naming_and_hardening(envs, component):
    for _, charts in envs.values():
        objects = charts["supabase"]
        deploy = _find(objects, "Deployment", component)
        assert _find(objects, "Service", component)["spec"]["selector"]["app.kubernetes.io/name"] == component
        assert _find(objects, "ServiceAccount", component)["automountServiceAccountToken"] is False
        _find(objects, "PodDisruptionBudget", component)
        labels = deploy["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "supabase"
        pod = deploy["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == component and pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
        for c in pod["containers"]:
            tag = c["image"].rsplit(":", 1)[1]
            assert tag and tag != "latest"
            assert labels["app.kubernetes.io/version"] == pod["containers"][0]["image"].rsplit(":", 1)[1]
            assert set(c["resources"]) == {"requests", "limits"}
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                assert probe in c
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"]
            assert sc["capabilities"] == {"drop": ["ALL"]} and sc["seccompProfile"]["type"] == "RuntimeDefault"
            mounted = {m["mountPath"] for m in c.get("volumeMounts", [])}
            declared = {v["name"] for v in pod.get("volumes", [])}
            assert {m["name"] for m in c.get("volumeMounts", [])} <= declared, mounted


@pytest.mark.parametrize("component,port", sorted(METRICS.items()))
def test_metrics_port_named_on_service(envs, component, port):
    service = _find(envs[PRODUCTION][1]["supabase"], "Service", component)
    assert {"name": "metrics", "port": port} in [
        {"name": p["name"], "port": p["port"]} for p in service["spec"]["ports"]
    ]


def _floor(objects, component):
    """Replica floor: the Deployment's count, or its HPA's minimum where a Rollout owns the scale."""
    replicas = _find(objects, "Deployment", component)["spec"].get("replicas")
    return (
        replicas
        if replicas is not None
        else _find(objects, "HorizontalPodAutoscaler", component)["spec"]["minReplicas"]
    )


def test_production_runs_more_replicas(envs):
    for component in COMPONENTS:
        dev = _floor(envs[NON_PRODUCTION][1]["supabase"], component)
        prod = _floor(envs[PRODUCTION][1]["supabase"], component)
        assert prod >= 2 and prod >= dev, component


def test_realtime_hpa_scales_on_connections(envs):
    hpa = _find(envs[PRODUCTION][1]["supabase"], "HorizontalPodAutoscaler", "realtime")
    kinds = {m["type"] for m in hpa["spec"]["metrics"]}
    assert kinds == {"Resource", "Pods"}
    assert (
        hpa["spec"]["minReplicas"]
        == _find(envs[PRODUCTION][1]["supabase"], "Deployment", "realtime")["spec"]["replicas"]
    )


def test_edge_functions_packaged_from_folder(envs):
    objects = envs[NON_PRODUCTION][1]["supabase"]
    cm = _find(objects, "ConfigMap", "functions-source")
    on_disk = {p.relative_to(FUNCTIONS_DIR).as_posix(): p.read_text() for p in FUNCTIONS_DIR.rglob("*") if p.is_file()}
    assert {"main/index.ts", "hello/index.ts"} <= set(on_disk)
    pod = _find(objects, "Deployment", "functions")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "functions-source")
    assert {i["path"]: cm["data"][i["key"]] for i in volume["configMap"]["items"]} == on_disk
    container = pod["containers"][0]
    assert container["args"] == ["start", "--main-service", "/home/deno/functions/main"]
    assert {"name": "functions-source", "mountPath": "/home/deno/functions", "readOnly": True} in container[
        "volumeMounts"
    ]
    assert "/_internal/health" in on_disk["main/index.ts"]


def test_bootstrap_job(envs):
    values, charts = envs[PRODUCTION]
    objects = charts["supabase-db-bootstrap"]
    ns = _find(objects, "Namespace", "supabase")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    job = next(o for o in objects if o["kind"] == "Job")
    assert job["spec"]["backoffLimit"] > 0 and job["spec"]["ttlSecondsAfterFinished"] > 0
    c = job["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == images.POSTGRES_CLIENT.ref and c["image"].split(":")[1].startswith("17")
    sql_path = "/bootstrap/bootstrap.sql"
    assert c["args"] == psql_args(sql_path)
    assert _find(objects, "ConfigMap", "db-bootstrap-sql")["data"]["bootstrap.sql"] == BOOTSTRAP_SQL
    env = {e["name"]: e for e in c["env"]}
    # Every $(VAR) Kubernetes must expand in the args comes from the container's env.
    assert set(re.findall(r"\$\((\w+)\)", " ".join(c["args"]))) <= set(env)
    assert env["PGHOST"]["value"] == values.db_host and env["PGSSLMODE"]["value"] == "require"
    assert env["PGUSER"]["value"] == "supabase_admin" and "valueFrom" in env["PGPASSWORD"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True


def test_bootstrap_job_name_follows_sql(envs):
    objects = envs[NON_PRODUCTION][1]["supabase-db-bootstrap"]
    job = next(o for o in objects if o["kind"] == "Job")
    import hashlib

    assert job["metadata"]["name"].endswith(hashlib.sha256(BOOTSTRAP_SQL.encode()).hexdigest()[:10])


@pytest.mark.parametrize("env_name", ENVIRONMENT_KINDS)
def test_ingress(envs, env_name):
    values, charts = envs[env_name]
    ing = _find(charts["supabase"], "Ingress", "supabase")
    a = ing["metadata"]["annotations"]
    assert ing["spec"]["ingressClassName"] == "alb"
    assert a["alb.ingress.kubernetes.io/target-type"] == "ip"
    assert a["alb.ingress.kubernetes.io/scheme"] == "internet-facing"
    assert a["alb.ingress.kubernetes.io/certificate-arn"] == values.certificate_arn
    assert a["alb.ingress.kubernetes.io/wafv2-acl-arn"] == values.waf_acl_arn
    assert a["alb.ingress.kubernetes.io/ssl-redirect"] == "443"
    assert "TLS13-1-2" in a["alb.ingress.kubernetes.io/ssl-policy"]
    assert a["alb.ingress.kubernetes.io/healthcheck-path"] == "/status/ready"
    attrs = a["alb.ingress.kubernetes.io/load-balancer-attributes"]
    assert "idle_timeout.timeout_seconds=3600" in attrs
    assert ("deletion_protection.enabled=true" in attrs) == values.production
    hosts = {r["host"]: r["http"]["paths"][0]["backend"]["service"] for r in ing["spec"]["rules"]}
    assert hosts == {
        values.api_host: {"name": "kong", "port": {"number": 8000}},
        values.studio_host: {"name": "kong", "port": {"number": 8000}},
    }
