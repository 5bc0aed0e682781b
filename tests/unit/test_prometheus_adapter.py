"""prometheus-adapter serves the custom metric the Realtime HPA scales on.

The release is read back from the synthesized platform template; the HPA and the
NetworkPolicies from the rendered charts. The adapter rule's queries run in promtool against
synthetic series named as upstream Realtime exports them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from config import yamlio
from constructs_lib.addons import kube_prometheus_stack, prometheus_adapter
from tests import rendered
from tests.conftest import ENVIRONMENTS

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
ENVS = ENVIRONMENTS
# Copied from upstream on purpose (supabase/realtime's metrics documentation): Realtime's
# per-node connection gauge on /metrics. A test fails when the code's name drifts from it.
REALTIME_NODE_CONNECTIONS = "realtime_connections_global_connected"
# kube-prometheus-stack's Prometheus pods (the operator's labels on its StatefulSet pods).
PROMETHEUS_POD_LABELS = {
    "app.kubernetes.io/name": "prometheus",
    "prometheus": f"{kube_prometheus_stack.NAME}-prometheus",
}
# The adapter's template variables, as it fills them for GET .../namespaces/supabase/pods/*/<metric>.
LABEL_MATCHERS = 'namespace="supabase",pod=~"realtime-a|realtime-b"'


def _helm_charts(template, env):
    return template(env, "platform").find_resources("Custom::AWSCDK-EKS-HelmChart")


def _adapter_release(template, env):
    [(lid, chart)] = [
        (lid, c)
        for lid, c in _helm_charts(template, env).items()
        if c["Properties"]["Release"] == prometheus_adapter.NAME
    ]
    # Nothing in the adapter's values comes from CloudFormation: they are one JSON literal.
    return lid, chart["Properties"], json.loads(chart["Properties"]["Values"])


@pytest.fixture(scope="module")
def manifests() -> dict[str, list[dict]]:
    return rendered.manifests("prod")


def _objects(manifests, kind):
    return [o for objs in manifests.values() for o in objs if o["kind"] == kind]


def _realtime_hpa_metric(manifests) -> str:
    [hpa] = [o for o in _objects(manifests, "HorizontalPodAutoscaler") if o["metadata"]["name"] == "realtime"]
    [pods_metric] = [m for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    return pods_metric["pods"]["metric"]["name"]


def _exposed_name(rule: dict, series: str) -> str | None:
    """The name the adapter publishes `series` under: Go's regexp ReplaceAllString of `as`,
    or the first capture group (or the whole name) when `as` is empty."""
    name = rule.get("name", {})
    pattern = name.get("matches") or "(.*)"
    match = re.search(pattern, series)
    if not match:
        return None
    if name.get("as"):
        return re.sub(pattern, re.sub(r"\$\{?(\d+)\}?", r"\\g<\1>", name["as"]), series)
    return match.group(1) if match.groups() else series


def _substituted(metrics_query: str, series: str) -> str:
    return (
        metrics_query.replace("<<.Series>>", series)
        .replace("<<.LabelMatchers>>", LABEL_MATCHERS)
        .replace("<<.GroupBy>>", "pod")
    )


@pytest.mark.parametrize("env", ENVS)
def test_adapter_installed_pinned_after_prometheus(template, env):
    lid, props, values = _adapter_release(template, env)
    # The chart and its pin: tests/unit/test_addons.py opens the staged asset of every release.
    assert props["Namespace"] == "observability"
    [prom_lid] = [
        i for i, c in _helm_charts(template, env).items() if c["Properties"]["Release"] == kube_prometheus_stack.NAME
    ]
    assert prom_lid in _helm_charts(template, env)[lid].get("DependsOn", [])
    assert values["prometheus"] == {"url": "http://kube-prometheus-stack-prometheus.observability.svc", "port": 9090}


def test_adapter_has_no_aws_identity_and_bounded_resources(template):
    t = template("prod", "platform")
    accounts = {
        a["Properties"]["ServiceAccount"] for a in t.find_resources("AWS::EKS::PodIdentityAssociation").values()
    }
    assert not any("adapter" in sa for sa in accounts), accounts
    _, _, values = _adapter_release(template, "prod")
    resources = values["resources"]
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}
    assert values["replicas"] >= 2 and values["podDisruptionBudget"]["enabled"] is True
    assert values["securityContext"]["runAsNonRoot"] and values["securityContext"]["readOnlyRootFilesystem"]


def test_adapter_serves_only_the_rules_hpas_request(template):
    """The chart's catch-all default rules are off; every custom rule is requested by an HPA."""
    _, _, values = _adapter_release(template, "prod")
    assert values["rules"]["default"] is False
    assert set(values["rules"]) == {"default", "custom"}
    assert len(values["rules"]["custom"]) == 1


def test_hpa_requests_exactly_the_name_the_adapter_exposes(template, manifests):
    requested = _realtime_hpa_metric(manifests)
    [rule] = _adapter_release(template, "prod")[2]["rules"]["custom"]
    assert _exposed_name(rule, REALTIME_NODE_CONNECTIONS) == requested
    # The HPA asks for pods in the supabase namespace: the rule must map both labels to resources.
    assert rule["resources"]["overrides"] == {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}


def test_a_renamed_hpa_metric_would_be_caught(template):
    [rule] = _adapter_release(template, "prod")[2]["rules"]["custom"]
    assert _exposed_name(rule, REALTIME_NODE_CONNECTIONS) != "realtime_connections_connected"
    assert _exposed_name(rule, "realtime_connections_connected") is None


@pytest.fixture(scope="module")
def rule_files(tmp_path_factory) -> Path:
    """The adapter's queries as recording rules, substituted the way the adapter fills them."""
    [rule] = prometheus_adapter.custom_rules()
    series = REALTIME_NODE_CONNECTIONS
    rules = [
        {"record": "adapter:series_query:check", "expr": rule["seriesQuery"]},
        {"record": "adapter:realtime_connections:per_pod", "expr": _substituted(rule["metricsQuery"], series)},
    ]
    path = tmp_path_factory.mktemp("adapter") / "adapter_rules.yaml"
    path.write_text(yamlio.dump({"groups": [{"name": "prometheus-adapter", "rules": rules}]}, sort_keys=False))
    return path


def test_adapter_queries_parse(rule_files):
    out = subprocess.run([PROMTOOL, "check", "rules", str(rule_files)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 rules found" in out.stdout


def _run_test(rule_files: Path, expected_a: str) -> subprocess.CompletedProcess:
    target = 'namespace="supabase",service="realtime",endpoint="metrics",job="realtime",container="realtime"'
    series = [
        # What the ServiceMonitor scrape yields for two Realtime pods.
        {
            "series": f'{REALTIME_NODE_CONNECTIONS}{{{target},pod="realtime-a",instance="10.0.1.10:4000"}}',
            "values": "1200x10",
        },
        {
            "series": f'{REALTIME_NODE_CONNECTIONS}{{{target},pod="realtime-b",instance="10.0.1.11:4000"}}',
            "values": "800x10",
        },
        # Not the HPA's pods: another namespace, and a pod the HPA did not ask about.
        {"series": f'{REALTIME_NODE_CONNECTIONS}{{namespace="staging",pod="realtime-a"}}', "values": "9999x10"},
        {"series": f'{REALTIME_NODE_CONNECTIONS}{{namespace="supabase",pod="realtime-old"}}', "values": "5x10"},
        # The per-tenant gauge (on /tenant-metrics) must not be what the rule reads.
        {"series": f'realtime_connections_connected{{{target},pod="realtime-a",tenant="realtime"}}', "values": "7x10"},
    ]
    tests = {
        "rule_files": [rule_files.name],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {
                        "expr": "adapter:realtime_connections:per_pod",
                        "eval_time": "5m",
                        "exp_samples": [
                            {
                                "labels": 'adapter:realtime_connections:per_pod{pod="realtime-a"}',
                                "value": float(expected_a),
                            },
                            {"labels": 'adapter:realtime_connections:per_pod{pod="realtime-b"}', "value": 800.0},
                        ],
                    }
                ],
            }
        ],
    }
    test_file = rule_files.parent / "adapter_test.yaml"
    test_file.write_text(yamlio.dump(tests, sort_keys=False))
    return subprocess.run(
        [PROMTOOL, "test", "rules", test_file.name], capture_output=True, text=True, cwd=rule_files.parent
    )


def test_adapter_rule_yields_one_value_per_pod(rule_files):
    out = _run_test(rule_files, "1200")
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_wrong_expectation_is_caught(rule_files):
    """Guards the harness: counting the per-tenant gauge too (1207) must fail the promtool test."""
    out = _run_test(rule_files, "1207")
    assert out.returncode != 0, out.stdout


def _selects(selector: dict, labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, vals = expr["key"], expr["operator"], expr.get("values", [])
        ok = {
            "In": labels.get(key) in vals,
            "NotIn": labels.get(key) not in vals,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def _isolating(manifests, namespace: str, labels: dict[str, str], direction: str) -> list[str]:
    return [
        p["metadata"]["name"]
        for p in _objects(manifests, "NetworkPolicy")
        if p["metadata"].get("namespace") == namespace
        and direction in p["spec"].get("policyTypes", ["Ingress"])
        and _selects(p["spec"]["podSelector"], labels)
    ]


def test_network_policies_leave_the_adapter_paths_open(manifests):
    """observability has no default deny: the monitoring chart isolates only its own exporters.
    If a policy ever selects the adapter (API server -> adapter :6443, adapter -> Prometheus :9090)
    or Prometheus (ingress :9090), it must come with the allows; this test then fails first."""
    ns = prometheus_adapter.NAMESPACE
    assert _isolating(manifests, ns, prometheus_adapter.POD_LABELS, "Ingress") == []
    assert _isolating(manifests, ns, prometheus_adapter.POD_LABELS, "Egress") == []
    assert _isolating(manifests, ns, PROMETHEUS_POD_LABELS, "Ingress") == []
    # The same check sees the monitoring chart's exporter policies, so it is not vacuous.
    assert _isolating(manifests, ns, {"app.kubernetes.io/name": "redis-exporter"}, "Ingress")
