"""Argo Rollouts objects: schema-valid, pointed at real Deployments, and their analysis
queries parse and give the right verdict on known traffic."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import cdk8s
import pytest

from config import yamlio
from k8s_charts.rollouts.chart import (
    CANARY_TARGETS,
    PROMETHEUS_ADDRESS,
    SUCCESS_RATE_THRESHOLD,
    RolloutsChart,
)
from tests import rendered

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
NODE = shutil.which("node") or "/usr/bin/node"
REPO = Path(__file__).resolve().parents[2]
VALIDATOR = Path(__file__).with_name("validate_crd.mjs")


@pytest.fixture(scope="module")
def rollout_objects() -> list[dict]:
    return RolloutsChart(cdk8s.App(), "rollouts").to_json()


@pytest.fixture(scope="module")
def manifests() -> dict[str, list[dict]]:
    return rendered.manifests("prod")


def _node_validate(objs: list[dict]) -> list[dict]:
    out = subprocess.run(
        [NODE, str(VALIDATOR)], input=json.dumps(objs), capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _template(objs: list[dict]) -> dict:
    (template,) = [o for o in objs if o["kind"] == "AnalysisTemplate"]
    return template


def _bind(query: str, args: dict[str, str]) -> str:
    return re.sub(r"\{\{\s*args\.([\w-]+)\s*\}\}", lambda m: args[m.group(1)], query)


def _bad_rollout(rollout_objects: list[dict]) -> dict:
    bad = json.loads(json.dumps(next(o for o in rollout_objects if o["kind"] == "Rollout")))
    bad["spec"]["strategy"]["canary"]["steps"][0]["setWeight"] = "ten"
    return bad


@pytest.fixture(scope="module")
def verdicts(rollout_objects: list[dict]) -> tuple[list[dict], dict]:
    """The validator's verdicts on the rendered objects and on a broken Rollout, from one node run
    (it judges each object on its own; a start-up costs about a second)."""
    *rendered, bad = _node_validate([*rollout_objects, _bad_rollout(rollout_objects)])
    return rendered, bad


def test_rollouts_and_templates_match_the_crd_schemas(verdicts: tuple[list[dict], dict]) -> None:
    results, _ = verdicts
    assert {r["kind"] for r in results} == {"Rollout", "AnalysisTemplate"}
    assert [r for r in results if r["error"]] == []


def test_schema_validator_rejects_a_bad_rollout(verdicts: tuple[list[dict], dict]) -> None:
    _, bad = verdicts
    assert bad["kind"] == "Rollout" and bad["error"]


def test_each_rollout_references_its_deployment(rollout_objects: list[dict], manifests: dict[str, list[dict]]) -> None:
    deployments = {
        (o["metadata"].get("namespace"), o["metadata"]["name"]): o
        for objs in manifests.values()
        for o in objs
        if o["kind"] == "Deployment"
    }
    rollouts = [o for o in rollout_objects if o["kind"] == "Rollout"]
    assert {r["metadata"]["name"] for r in rollouts} == {t.component for t in CANARY_TARGETS}
    for r in rollouts:
        ref = r["spec"]["workloadRef"]
        assert ref == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": r["metadata"]["name"],
            "scaleDown": "progressively",
        }
        key = (r["metadata"]["namespace"], ref["name"])
        assert key in deployments, f"Rollout {key} points at a Deployment the charts do not render"
        assert "template" not in r["spec"] and "selector" not in r["spec"]
        # The component's HPA owns the scale once it targets the Rollout.
        assert "replicas" not in r["spec"]


def test_canary_is_gated_by_analysis(rollout_objects: list[dict]) -> None:
    template_name = _template(rollout_objects)["metadata"]["name"]
    for r in (o for o in rollout_objects if o["kind"] == "Rollout"):
        canary = r["spec"]["strategy"]["canary"]
        steps = canary["steps"]
        weights = [s["setWeight"] for s in steps if "setWeight" in s]
        assert weights == sorted(weights) and weights[0] <= 10 and weights[-1] < 100
        first_analysis = next(i for i, s in enumerate(steps) if "analysis" in s)
        assert first_analysis < next(i for i, s in enumerate(steps) if s.get("setWeight", 0) > 10), (
            "the first gate must come before traffic grows past 10%"
        )
        assert steps[first_analysis]["analysis"]["templates"] == [{"templateName": template_name}]
        assert canary["analysis"]["templates"] == [{"templateName": template_name}]
        assert r["spec"]["progressDeadlineAbort"] is True


def test_analysis_template_uses_in_cluster_prometheus(rollout_objects: list[dict]) -> None:
    metrics = _template(rollout_objects)["spec"]["metrics"]
    assert {m["name"] for m in metrics} == {"success-rate", "latency-p95"}
    for m in metrics:
        assert m["provider"]["prometheus"]["address"] == PROMETHEUS_ADDRESS
        assert m["failureLimit"] <= 1 and m["count"] >= 3


def test_analysis_queries_parse_for_every_target(rollout_objects: list[dict], tmp_path: Path) -> None:
    metrics = _template(rollout_objects)["spec"]["metrics"]
    rules = []
    for t in CANARY_TARGETS:
        args = {"kong-service": t.kong_service, "max-p95-ms": str(t.max_p95_ms)}
        for m in metrics:
            rules.append(
                {
                    "record": f"analysis:{m['name'].replace('-', '_')}:{t.component.replace('-', '_')}",
                    "expr": _bind(m["provider"]["prometheus"]["query"], args),
                }
            )
    path = tmp_path / "analysis.yaml"
    path.write_text(yamlio.dump({"groups": [{"name": "analysis", "rules": rules}]}))
    out = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def _evaluate(query: str, series: dict[str, str], tmp_path: Path) -> float:
    """Runs the query in promtool against synthetic series and returns its value at 10m."""
    (tmp_path / "rules.yaml").write_text(
        yamlio.dump({"groups": [{"name": "a", "rules": [{"record": "analysis:value", "expr": query}]}]})
    )
    # promtool only reports mismatches: ask for an impossible value and read the real one from the failure.
    test = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series.items()],
                "promql_expr_test": [
                    {
                        "expr": "analysis:value",
                        "eval_time": "10m",
                        "exp_samples": [{"labels": "analysis:value", "value": -1}],
                    }
                ],
            }
        ],
    }
    (tmp_path / "test.yaml").write_text(yamlio.dump(test))
    out = subprocess.run([PROMTOOL, "test", "rules", "test.yaml"], capture_output=True, text=True, cwd=tmp_path)
    got = re.search(r'got: \{__name__="analysis:value"\} ([0-9.eE+-]+)', out.stdout + out.stderr)
    assert got, out.stdout + out.stderr
    return float(got.group(1))


def _success_threshold(rollout_objects: list[dict]) -> float:
    cond = next(m for m in _template(rollout_objects)["spec"]["metrics"] if m["name"] == "success-rate")[
        "successCondition"
    ]
    return float(re.search(r"result\[0\] >= ([0-9.]+)", cond).group(1))


@pytest.mark.parametrize(("ok_per_min", "err_per_min", "passes"), [(995, 5, True), (900, 100, False)])
def test_success_rate_verdict(
    rollout_objects: list[dict], tmp_path: Path, ok_per_min: int, err_per_min: int, passes: bool
) -> None:
    target = next(t for t in CANARY_TARGETS if t.component == "rest")
    query = next(m for m in _template(rollout_objects)["spec"]["metrics"] if m["name"] == "success-rate")
    series = {
        'kong_http_requests_total{service="rest-v1-write",code="200"}': f"0+{ok_per_min}x20",
        'kong_http_requests_total{service="rest-v1-write",code="503"}': f"0+{err_per_min}x20",
        # Another service's failures must not count against this canary.
        'kong_http_requests_total{service="rest-v1-read",code="500"}': "0+1000x20",
    }
    value = _evaluate(
        _bind(query["provider"]["prometheus"]["query"], {"kong-service": target.kong_service}), series, tmp_path
    )
    assert value == pytest.approx(ok_per_min / (ok_per_min + err_per_min))
    assert (value >= _success_threshold(rollout_objects)) is passes
    assert _success_threshold(rollout_objects) == SUCCESS_RATE_THRESHOLD


@pytest.mark.parametrize(("fast_share", "passes"), [(0.99, True), (0.5, False)])
def test_latency_verdict(rollout_objects: list[dict], tmp_path: Path, fast_share: float, passes: bool) -> None:
    target = next(t for t in CANARY_TARGETS if t.component == "auth")
    metric = next(m for m in _template(rollout_objects)["spec"]["metrics"] if m["name"] == "latency-p95")
    per_min = 1000
    fast = int(per_min * fast_share)
    series = {
        f'kong_request_latency_ms_bucket{{service="auth-v1",le="{le}"}}': f"0+{n}x20"
        for le, n in (("100", fast), ("250", fast), ("1000", per_min), ("+Inf", per_min))
    }
    value = _evaluate(
        _bind(metric["provider"]["prometheus"]["query"], {"kong-service": target.kong_service}), series, tmp_path
    )
    assert (value <= target.max_p95_ms) is passes


def _strings(node: object):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)


def _kong_services(manifests: dict[str, list[dict]]) -> dict[str, str]:
    """Kong service name -> upstream host, read from the rendered declarative config
    (an ExternalSecret template: its secret placeholders are blanked before parsing)."""
    for objs in manifests.values():
        for text in _strings(objs):
            if "_format_version" in text and "services:" in text:
                config = yamlio.load(re.sub(r"\{\{[^}]*\}\}", '"x"', text))
                return {s["name"]: s["host"] for s in config["services"]}
    pytest.fail("no Kong declarative config in the rendered manifests")


def test_analysis_watches_exactly_the_components_kong_services(manifests: dict[str, list[dict]]) -> None:
    services = _kong_services(manifests)
    for t in CANARY_TARGETS:
        # Prometheus anchors =~ regexes at both ends.
        matched = {n for n in services if re.fullmatch(t.kong_service, n)}
        own = {n for n, host in services.items() if host.split(".")[0] == t.component}
        assert matched, f"{t.component}: {t.kong_service} matches no Kong service"
        assert matched == own, f"{t.component}: watches {sorted(matched)}, Kong routes {sorted(own)} to it"


def test_supabase_chart_hands_scaling_to_the_rollouts(manifests: dict[str, list[dict]]) -> None:
    """Argo scales a workloadRef'd Deployment to zero: an HPA still aimed at the Deployment, or
    a replica count in it, would scale it back up on every sync and run both pod sets."""
    objs = [o for objs in manifests.values() for o in objs if o["metadata"].get("namespace") == "supabase"]
    for t in CANARY_TARGETS:
        deployment = next(o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == t.component)
        assert "replicas" not in deployment["spec"], f"Deployment {t.component} must leave replicas to Argo Rollouts"
        for hpa in (o for o in objs if o["kind"] == "HorizontalPodAutoscaler" and o["metadata"]["name"] == t.component):
            assert hpa["spec"]["scaleTargetRef"] == {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Rollout",
                "name": t.component,
            }, f"HPA {t.component} must target the Rollout"
