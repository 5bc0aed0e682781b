"""What the Supabase chart hands to, or takes from, the other charts and tools.

Argo Rollouts (which Deployments it drives), the monitoring chart (Realtime's scrape token,
trace sampling), Istio (namespace injection, istiod egress) and the incident-response
function (the quarantine label). Each side is rendered for real and held against the other.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import cdk8s
import pytest

from config import yamlio
from config.loader import load_config
from config.naming import SecretKeys
from k8s_charts.aws_values import from_config
from k8s_charts.mesh import INJECTION_LABEL
from k8s_charts.rollouts.chart import RolloutsChart
from k8s_charts.supabase import kong, secrets
from k8s_charts.supabase.bootstrap import SupabaseDbBootstrapChart
from k8s_charts.supabase.chart import SupabaseChart
from k8s_charts.supabase.contract import QUARANTINE_LABEL
from k8s_charts.supabase.props import Scaling, SupabaseProps
from ops.incident_response import handler as incident
from ops.mint_api_keys import handler as mint
from tests import rendered
from tests.conftest import ENVIRONMENTS

ENVS = ENVIRONMENTS
NAMESPACE = "supabase"
ISTIOD = ("istio-system", {"app": "istiod"}, 15012)


@pytest.fixture(scope="module")
def cfg():
    return load_config()


@pytest.fixture(scope="module", params=ENVS)
def env(request, cfg) -> tuple[str, list[dict[str, Any]]]:
    charts = rendered.manifests(request.param)
    return request.param, [o for objs in charts.values() for o in objs]


def _render(props: SupabaseProps) -> list[dict[str, Any]]:
    app = cdk8s.App()
    bootstrap = SupabaseDbBootstrapChart(app, "bootstrap", props=props)
    services = SupabaseChart(app, "services", props=props)
    return bootstrap.to_json() + services.to_json()


def _props(cfg, env_name: str, **changes: Any) -> SupabaseProps:
    props = SupabaseProps.from_config(cfg, env_name, from_config(cfg, env_name))
    return dataclasses.replace(props, **changes)


def _find(objs, kind, name, namespace=NAMESPACE):
    matches = [
        o
        for o in objs
        if o["kind"] == kind and o["metadata"]["name"] == name and o["metadata"].get("namespace") == namespace
    ]
    assert len(matches) == 1, (kind, name, len(matches))
    return matches[0]


def _selected(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
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


def _pod_templates(objs) -> dict[str, dict[str, str]]:
    """name -> pod labels of every workload the charts run in the supabase namespace."""
    return {
        o["metadata"]["name"]: o["spec"]["template"]["metadata"]["labels"]
        for o in objs
        if o["kind"] in ("Deployment", "Job") and o["metadata"].get("namespace") == NAMESPACE
    }


# --- Argo Rollouts ------------------------------------------------------------------------------


def test_rollout_hand_off_follows_the_rollouts_chart(env) -> None:
    """The components the rollouts chart renders a Rollout for are exactly the ones whose
    scaling the Supabase chart gives up; every other component keeps its own."""
    _, objs = env
    rollouts = {o["metadata"]["name"] for o in RolloutsChart(cdk8s.App(), "r").to_json() if o["kind"] == "Rollout"}
    assert rollouts
    for deployment in (o for o in objs if o["kind"] == "Deployment" and o["metadata"]["namespace"] == NAMESPACE):
        name = deployment["metadata"]["name"]
        hpas = [o for o in objs if o["kind"] == "HorizontalPodAutoscaler" and o["metadata"]["name"] == name]
        if name in rollouts:
            assert "replicas" not in deployment["spec"], name
            (hpa,) = hpas
            assert hpa["spec"]["scaleTargetRef"] == {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Rollout",
                "name": name,
            }
        else:
            assert deployment["spec"]["replicas"] >= 1, name
            for hpa in hpas:
                assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}


def test_a_rollout_gets_an_hpa_even_at_a_fixed_size(cfg) -> None:
    """The Rollout carries no replica count: without an HPA it would run one pod, whatever the floor."""
    objs = _render(
        _props(
            cfg,
            "prod",
            scaling={"auth": Scaling(replicas=4, max_replicas=4), "kong": Scaling(replicas=4, max_replicas=4)},
        )
    )
    hpa = _find(objs, "HorizontalPodAutoscaler", "auth")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (4, 4)
    assert hpa["spec"]["scaleTargetRef"]["kind"] == "Rollout"
    assert _find(objs, "Deployment", "kong")["spec"]["replicas"] == 4
    assert not [o for o in objs if o["kind"] == "HorizontalPodAutoscaler" and o["metadata"]["name"] == "kong"]


# --- Realtime's scrape token --------------------------------------------------------------------


def test_realtime_scrape_token_is_the_secret_the_service_monitor_reads(env, cfg) -> None:
    env_name, objs = env
    monitor = _find(objs, "ServiceMonitor", "realtime")
    (endpoint,) = monitor["spec"]["endpoints"]
    credentials = endpoint["authorization"]["credentials"]
    es = _find(objs, "ExternalSecret", credentials["name"])
    assert es["spec"]["target"]["name"] == credentials["name"]
    template = es["spec"]["target"]["template"]["data"]
    assert list(template) == [credentials["key"]]
    (data,) = es["spec"]["data"]
    # Minted next to the API keys by the key-minting function; ESO cannot sign a JWT.
    prefix = from_config(cfg, env_name).secret_prefix
    assert data["remoteRef"]["key"] == f"{prefix}{SecretKeys.API_KEYS}"
    assert data["remoteRef"]["property"] == mint.METRICS_TOKEN_FIELD
    assert template[credentials["key"]] == "{{ ." + data["secretKey"] + " }}"


def test_realtime_pods_never_see_the_scrape_token(env) -> None:
    _, objs = env
    realtime = _find(objs, "ExternalSecret", "realtime-secrets")
    assert mint.METRICS_TOKEN_FIELD not in {d["remoteRef"].get("property") for d in realtime["spec"]["data"]}
    pod = _find(objs, "Deployment", "realtime")["spec"]["template"]["spec"]
    refs = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for c in pod["containers"]
        for e in c.get("env", [])
        if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]
    }
    assert refs == {"realtime-secrets"}


# --- Trace sampling -----------------------------------------------------------------------------


def _kong_config(objs) -> dict[str, Any]:
    template = _find(objs, "ExternalSecret", "kong-config")["spec"]["target"]["template"]["data"]["kong.yml"]
    values = {v.var: "x" for v in vars(secrets).values() if isinstance(v, secrets.RemoteValue)}
    return yamlio.load(kong.render_template(template, values))


def _env_of(objs, name) -> dict[str, str]:
    container = _find(objs, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def test_traces_are_sampled_once_at_the_configured_ratio(env, cfg) -> None:
    env_name, objs = env
    ratio = cfg.environments[env_name].observability.tracing_sample_ratio
    collector = yamlio.load(_find(objs, "ConfigMap", "otel-collector", "observability")["data"]["config.yaml"])
    collector_ratio = collector["processors"]["probabilistic_sampler"]["sampling_percentage"] / 100
    assert "probabilistic_sampler" in collector["service"]["pipelines"]["traces"]["processors"]

    kong_plugin = next(p for p in _kong_config(objs)["plugins"] if p["name"] == "opentelemetry")
    kong_env = _env_of(objs, "kong")
    kong_ratio = float(kong_plugin["config"]["sampling_rate"])
    assert float(kong_env["KONG_TRACING_SAMPLING_RATE"]) == kong_ratio
    # The services follow Kong's decision (parent based) and sample every root span they start.
    deployments = [
        o["metadata"]["name"] for o in objs if o["kind"] == "Deployment" and o["metadata"]["namespace"] == NAMESPACE
    ]
    sources = {name: _env_of(objs, name) for name in deployments if "OTEL_TRACES_SAMPLER" in _env_of(objs, name)}
    assert sources
    for name, service_env in sources.items():
        assert service_env["OTEL_TRACES_SAMPLER"] == "parentbased_always_on", name
        assert "OTEL_TRACES_SAMPLER_ARG" not in service_env, name
    assert kong_ratio * collector_ratio == pytest.approx(ratio)
    assert kong_ratio == 1.0


# --- Istio --------------------------------------------------------------------------------------


def _reaches_istiod(policies, labels: dict[str, str]) -> bool:
    namespace, pod_labels, port = ISTIOD
    for np in policies:
        if not _selected(np["spec"]["podSelector"], labels) or "Egress" not in np["spec"]["policyTypes"]:
            continue
        for rule in np["spec"].get("egress", []):
            to_istiod = any(
                peer.get("namespaceSelector", {}).get("matchLabels") == {"kubernetes.io/metadata.name": namespace}
                and _selected(peer.get("podSelector", {}), pod_labels)
                for peer in rule.get("to", [])
            )
            if to_istiod and {"protocol": "TCP", "port": port} in rule["ports"]:
                return True
    return False


@pytest.mark.parametrize("istio", [True, False])
def test_sidecars_reach_istiod_only_when_injected(cfg, istio: bool) -> None:
    objs = _render(_props(cfg, "prod", istio=istio))
    key, value = INJECTION_LABEL
    labels = _find(objs, "Namespace", NAMESPACE, namespace=None)["metadata"]["labels"]
    assert (labels.get(key) == value) is istio and (key in labels) is istio
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    policies = [o for o in objs if o["kind"] == "NetworkPolicy"]
    # The bootstrap Job too: it runs before the services chart exists, and with a native
    # sidecar psql does not start until istio-proxy has its configuration.
    pods = _pod_templates(objs)
    assert any(name.startswith("db-bootstrap") for name in pods)
    for name, pod_labels in pods.items():
        assert _reaches_istiod(policies, pod_labels) is istio, name


def test_bootstrap_policy_alone_lets_its_sidecar_reach_istiod(cfg) -> None:
    app = cdk8s.App()
    objs = SupabaseDbBootstrapChart(app, "bootstrap", props=_props(cfg, "prod", istio=True)).to_json()
    (job,) = [o for o in objs if o["kind"] == "Job"]
    assert _reaches_istiod(
        [o for o in objs if o["kind"] == "NetworkPolicy"], job["spec"]["template"]["metadata"]["labels"]
    )


# --- Incident-response quarantine ---------------------------------------------------------------


def test_chart_honours_the_handlers_quarantine_label() -> None:
    # The Lambda ships only its own folder and cannot import the charts: its copy must match.
    assert incident.QUARANTINE_LABEL == QUARANTINE_LABEL


def test_a_quarantined_pod_is_selected_by_no_allow_policy(env) -> None:
    _, objs = env
    policies = [o for o in objs if o["kind"] == "NetworkPolicy" and o["metadata"].get("namespace") == NAMESPACE]
    policies.append(incident.quarantine_policy(NAMESPACE))
    pods = _pod_templates(objs)
    assert len(pods) >= 12
    for name, labels in pods.items():
        allows = [
            np["metadata"]["name"]
            for np in policies
            if _selected(np["spec"]["podSelector"], labels) and (np["spec"].get("ingress") or np["spec"].get("egress"))
        ]
        assert allows, f"{name}: no allow policy selects it even unquarantined; the check below would prove nothing"
        quarantined = {**labels, incident.QUARANTINE_LABEL: "true"}
        selecting = [np for np in policies if _selected(np["spec"]["podSelector"], quarantined)]
        leaks = [np["metadata"]["name"] for np in selecting if np["spec"].get("ingress") or np["spec"].get("egress")]
        assert leaks == [], f"{name} quarantined still gets traffic through {leaks}"
        # Still isolated in both directions (by default-deny and the handler's own policy).
        assert {"Ingress", "Egress"} <= {t for np in selecting for t in np["spec"]["policyTypes"]}, name


# --- SAML ---------------------------------------------------------------------------------------


def test_saml_key_is_read_from_the_shared_secret_name(cfg) -> None:
    props = _props(cfg, "dev")
    objs = _render(dataclasses.replace(props, auth=dataclasses.replace(props.auth, saml_enabled=True)))
    es = _find(objs, "ExternalSecret", "auth-secrets")
    refs = {d["secretKey"]: d["remoteRef"] for d in es["spec"]["data"]}
    assert refs["saml_private_key"]["key"] == props.remote_key(SecretKeys.SAML)
    assert refs["saml_private_key"]["property"] == "private_key"
    assert "GOTRUE_SAML_PRIVATE_KEY" in es["spec"]["target"]["template"]["data"]
