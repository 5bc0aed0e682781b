"""The monitoring chart's workloads, routing and tracing follow the platform rules and the config."""

from __future__ import annotations

import re

import cdk8s
import pytest

from config import load_config, yamlio
from k8s_charts.aws_values import from_config
from k8s_charts.catalog import CATALOG
from k8s_charts.monitoring import MonitoringChart
from k8s_charts.monitoring.scrape import ISTIO_SCRAPE_CLASS, SUPABASE_TARGETS
from tests.conftest import ENVIRONMENTS
from tests.rendered import manifests

ENVS = ENVIRONMENTS


def _render(env: str, cfg=None) -> list[dict]:
    cfg = cfg or load_config()
    return MonitoringChart(cdk8s.App(), "monitoring", cfg=cfg, env_name=env, values=from_config(cfg, env)).to_json()


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {env: manifests(env)["monitoring"] for env in ENVS}


def _kind(objs: list[dict], kind: str) -> list[dict]:
    return [o for o in objs if o["kind"] == kind]


def _one(objs: list[dict], kind: str, name: str) -> dict:
    (found,) = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def test_the_chart_renders_alike_alone_and_in_the_environment(rendered: dict[str, list[dict]]) -> None:
    """What lets the suite read the session's render (tests/rendered.py) for this chart."""
    assert _render(ENVS[-1]) == rendered[ENVS[-1]]


@pytest.mark.parametrize("env", ENVS)
def test_workloads_are_hardened(rendered: dict[str, list[dict]], env: str) -> None:
    deployments = _kind(rendered[env], "Deployment")
    assert deployments
    pdbs = {p["metadata"]["name"] for p in _kind(rendered[env], "PodDisruptionBudget")}
    policies = {p["metadata"]["name"] for p in _kind(rendered[env], "NetworkPolicy")}
    for d in deployments:
        name, pod = d["metadata"]["name"], d["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        for c in pod["containers"]:
            image = c["image"]
            assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", image), f"{image} is not pinned to a release"
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
            assert sc["runAsNonRoot"] is True and sc["capabilities"] == {"drop": ["ALL"]}
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]) and {"cpu", "memory"} <= set(
                c["resources"]["limits"]
            )
            assert c["livenessProbe"] and c["readinessProbe"]
        if d["spec"]["replicas"] > 1:
            assert name in pdbs, f"{name} has replicas but no PDB"
        assert name in policies, f"{name} has no NetworkPolicy"


def test_replica_exporter_only_with_read_replicas(rendered: dict[str, list[dict]]) -> None:
    cfg = load_config()
    for env in ENVS:
        names = {d["metadata"]["name"] for d in _kind(rendered[env], "Deployment")}
        assert ("postgres-exporter-replica" in names) is (cfg.environments[env].database.read_replicas > 0)


def test_postgres_exporter_reads_the_read_only_role_over_tls(rendered: dict[str, list[dict]]) -> None:
    objs = rendered["prod"]
    values = from_config(load_config(), "prod")
    es = _one(objs, "ExternalSecret", "postgres-exporter")
    assert {d["remoteRef"]["key"] for d in es["spec"]["data"]} == {f"{values.secret_prefix}db/supabase_read_only_user"}
    env = {
        e["name"]: e["value"]
        for e in _one(objs, "Deployment", "postgres-exporter")["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["DATA_SOURCE_URI"] == f"{values.db_host}:5432/postgres?sslmode=require"
    replica = _one(objs, "Deployment", "postgres-exporter-replica")["spec"]["template"]["spec"]["containers"][0]
    assert replica["env"][0]["value"].startswith(values.db_read_host + ":")
    assert "--collector.stat_statements" in replica["args"]


def test_redis_exporter_uses_tls_and_the_auth_token(rendered: dict[str, list[dict]]) -> None:
    values = from_config(load_config(), "staging")
    c = _one(rendered["staging"], "Deployment", "redis-exporter")["spec"]["template"]["spec"]["containers"][0]
    assert c["env"] == [{"name": "REDIS_ADDR", "value": f"rediss://{values.redis_host}:6379"}]
    es = _one(rendered["staging"], "ExternalSecret", "redis-exporter")
    assert es["spec"]["data"] == [
        {"secretKey": "REDIS_PASSWORD", "remoteRef": {"key": f"{values.secret_prefix}redis", "property": "auth_token"}}
    ]


def test_supabase_service_monitors(rendered: dict[str, list[dict]]) -> None:
    monitors = {
        m["metadata"]["name"]: m
        for m in _kind(rendered["prod"], "ServiceMonitor")
        if m["metadata"]["namespace"] == "supabase"
    }
    assert set(monitors) == {t.component for t in SUPABASE_TARGETS}
    for name, m in monitors.items():
        assert m["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert m["spec"]["selector"]["matchLabels"] == {
            "app.kubernetes.io/name": name,
            "app.kubernetes.io/part-of": "supabase",
        }
        assert [e["port"] for e in m["spec"]["endpoints"]] == ["metrics"]
    auth = monitors["realtime"]["spec"]["endpoints"][0]["authorization"]
    assert auth == {"type": "Bearer", "credentials": {"name": "realtime-metrics-token", "key": "token"}}
    assert all("authorization" not in m["spec"]["endpoints"][0] for n, m in monitors.items() if n != "realtime")


def _monitors(objs: list[dict]) -> list[dict]:
    return [o for o in objs if o["kind"] in {"ServiceMonitor", "PodMonitor"}]


def _endpoints(monitor: dict) -> list[dict]:
    return monitor["spec"].get("endpoints") or monitor["spec"]["podMetricsEndpoints"]


def test_meshed_targets_are_scraped_over_mtls(rendered: dict[str, list[dict]]) -> None:
    """STRICT mTLS in the supabase namespace: a plain-http scrape, or one without the Istio
    scrape class's client certificate, is refused by the target's sidecar."""
    cfg = load_config()
    for env in ENVS:
        assert cfg.environments[env].features.istio
        meshed = [m for m in _monitors(rendered[env]) if m["spec"]["namespaceSelector"]["matchNames"] == ["supabase"]]
        assert {m["metadata"]["name"] for m in meshed} == {t.component for t in SUPABASE_TARGETS}
        for m in meshed:
            assert m["spec"]["scrapeClass"] == ISTIO_SCRAPE_CLASS, m["metadata"]["name"]
            assert [e["scheme"] for e in _endpoints(m)] == ["https"], m["metadata"]["name"]
            # The mesh admits Prometheus' principal only on a component's declared metrics port.
            assert CATALOG[m["metadata"]["name"]].metrics_port is not None
        realtime = _one(rendered[env], "ServiceMonitor", "realtime")["spec"]["endpoints"][0]
        assert realtime["scheme"] == "https"
        assert realtime["authorization"] == {
            "type": "Bearer",
            "credentials": {"name": "realtime-metrics-token", "key": "token"},
        }
        # Exporters and controllers run outside the mesh and serve plain http: the class's
        # client TLS would fail against them.
        for m in _monitors(rendered[env]):
            if m not in meshed:
                assert "scrapeClass" not in m["spec"], m["metadata"]["name"]
                assert all(e.get("scheme", "http") == "http" for e in _endpoints(m)), m["metadata"]["name"]


def test_without_the_mesh_supabase_is_scraped_over_plain_http() -> None:
    cfg = load_config()
    env = cfg.environments["prod"]
    cfg = cfg.model_copy(
        update={
            "environments": {
                **cfg.environments,
                "prod": env.model_copy(update={"features": env.features.model_copy(update={"istio": False})}),
            }
        }
    )
    monitors = [m for m in _monitors(_render("prod", cfg)) if m["metadata"]["namespace"] == "supabase"]
    assert {m["metadata"]["name"] for m in monitors} == {t.component for t in SUPABASE_TARGETS}
    for m in monitors:
        assert "scrapeClass" not in m["spec"]
        assert all("scheme" not in e for e in _endpoints(m))
    realtime = next(m for m in monitors if m["metadata"]["name"] == "realtime")
    assert realtime["spec"]["endpoints"][0]["authorization"]["credentials"]["name"] == "realtime-metrics-token"


def test_every_monitoring_object_is_selected_by_the_operator(rendered: dict[str, list[dict]]) -> None:
    for o in rendered["prod"]:
        if o["apiVersion"].startswith("monitoring.coreos.com/"):
            assert o["metadata"]["labels"].get("release") == "kube-prometheus-stack", o["metadata"]["name"]


def _routes(objs: list[dict]) -> dict[str, str]:
    amc = _one(objs, "AlertmanagerConfig", "supabase-alerting")
    return {r["matchers"][0]["value"] + ":" + r["receiver"]: r for r in amc["spec"]["route"]["routes"]}


def test_severity_routing_to_sns(rendered: dict[str, list[dict]]) -> None:
    objs = rendered["prod"]
    values = from_config(load_config(), "prod")
    amc = _one(objs, "AlertmanagerConfig", "supabase-alerting")
    assert amc["spec"]["route"]["receiver"] == "null"
    assert set(_routes(objs)) == {"critical|warning:sns", "info:null"}
    sns = next(r for r in amc["spec"]["receivers"] if r["name"] == "sns")["snsConfigs"][0]
    assert sns["topicARN"] == values.alerts_topic_arn
    assert sns["sigv4"] == {"region": values.region}
    assert {r["name"] for r in amc["spec"]["receivers"]} == {"null", "sns"}
    assert not _kind(objs, "ExternalSecret") or all(
        e["metadata"]["name"] not in {"alertmanager-slack", "alertmanager-pagerduty"}
        for e in _kind(objs, "ExternalSecret")
    )


def test_slack_and_pagerduty_when_configured() -> None:
    cfg = load_config()
    env = cfg.environments["prod"]
    obs = env.observability.model_copy(
        update={"slack_webhook_secret_name": "prod/alerting/slack", "pagerduty_secret_name": "prod/alerting/pagerduty"}
    )
    cfg = cfg.model_copy(
        update={"environments": {**cfg.environments, "prod": env.model_copy(update={"observability": obs})}}
    )
    objs = _render("prod", cfg)
    routes = _routes(objs)
    assert set(routes) == {"critical:pagerduty", "critical|warning:slack", "critical|warning:sns", "info:null"}
    assert routes["critical:pagerduty"]["continue"] is True and routes["critical|warning:slack"]["continue"] is True
    order = [r["receiver"] for r in _one(objs, "AlertmanagerConfig", "supabase-alerting")["spec"]["route"]["routes"]]
    assert order.index("sns") > order.index("slack"), "continue-routes must precede the SNS route"
    remote = {e["metadata"]["name"]: e["spec"]["data"][0]["remoteRef"]["key"] for e in _kind(objs, "ExternalSecret")}
    assert remote["alertmanager-slack"] == "prod/alerting/slack"
    assert remote["alertmanager-pagerduty"] == "prod/alerting/pagerduty"


@pytest.mark.parametrize("env", ENVS)
def test_otel_collector_pipeline(rendered: dict[str, list[dict]], env: str) -> None:
    cfg = load_config()
    objs = rendered[env]
    conf = yamlio.load(_one(objs, "ConfigMap", "otel-collector")["data"]["config.yaml"])
    pipeline = conf["service"]["pipelines"]["traces"]
    assert pipeline["processors"][0] == "memory_limiter"
    for section in ("receivers", "processors", "exporters"):
        assert set(pipeline[section]) <= set(conf[section]), f"{section} used but not defined"
    assert conf["processors"]["probabilistic_sampler"]["sampling_percentage"] == pytest.approx(
        cfg.environments[env].observability.tracing_sample_ratio * 100
    )
    assert conf["exporters"]["awsxray"]["region"] == cfg.environments[env].region
    assert conf["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")
    assert conf["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    svc = _one(objs, "Service", "otel-collector")
    assert {p["port"] for p in svc["spec"]["ports"]} >= {4317, 4318}
    image = _one(objs, "Deployment", "otel-collector")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.startswith("public.ecr.aws/aws-observability/aws-otel-collector:v")


def test_otel_collector_accepts_only_supabase_on_otlp_ports(rendered: dict[str, list[dict]]) -> None:
    policy = _one(rendered["prod"], "NetworkPolicy", "otel-collector")["spec"]
    assert policy["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "otel-collector"}
    (rule,) = policy["ingress"]
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "supabase"}}}]
    assert sorted(p["port"] for p in rule["ports"]) == [4317, 4318]


def test_dashboards_and_probe_target_public_hosts(rendered: dict[str, list[dict]]) -> None:
    values = from_config(load_config(), "prod")
    probe = _one(rendered["prod"], "Probe", "public-endpoints")
    assert probe["spec"]["targets"]["staticConfig"]["static"] == [
        f"https://{values.api_host}/",
        f"https://{values.studio_host}/",
    ]
    assert (
        probe["spec"]["module"]
        in yamlio.load(_one(rendered["prod"], "ConfigMap", "blackbox-exporter")["data"]["blackbox.yml"])["modules"]
    )
