"""Chart `cost`: the per-namespace cost and right-sizing dashboards (valid PromQL, the right
arithmetic on OpenCost and kube-state-metrics series) and one recommend-only VPA per workload,
valid against the vendored VPA CRD."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from config import load_config, yamlio
from constructs_lib.addons import vertical_pod_autoscaler
from constructs_lib.addons.base import CHARTS_DIR
from k8s_charts.monitoring.cost_views import DASHBOARDS, VPA_TARGET_KINDS, vpa_metric
from tests.conftest import ORG_CONFIGS
from tests.deploy.test_helm_charts import schema_errors
from tests.rendered import manifests as rendered_manifests

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
ORGS = sorted(ORG_CONFIGS)


@pytest.fixture(scope="module")
def rendered() -> dict[tuple[str, str], dict[str, list[dict[str, Any]]]]:
    found = {}
    for org in ORGS:
        cfg = load_config(ORG_CONFIGS[org])
        for env in cfg.environments:
            found[(org, env)] = rendered_manifests(env, org)
    return found


def _dashboards(manifests: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    found = {}
    for obj in manifests["cost"]:
        if obj["kind"] == "ConfigMap" and obj["metadata"].get("labels", {}).get("grafana_dashboard") == "1":
            assert obj["metadata"]["namespace"] == "observability"
            ((key, body),) = obj["data"].items()
            found[key.removesuffix(".json")] = json.loads(body)
    return found


def _expr(dashboard: dict[str, Any], title_part: str) -> str:
    [expr] = [t["expr"] for p in dashboard["panels"] if title_part in p["title"] for t in p["targets"]]
    return expr


def test_dashboards_are_shipped_to_grafana(rendered) -> None:
    for manifests in rendered.values():
        dashboards = _dashboards(manifests)
        assert set(dashboards) == {"supabase-namespace-cost", "supabase-rightsizing"}
        for uid, d in dashboards.items():
            assert d["uid"] == uid and d["panels"]
            for p in d["panels"]:
                assert p["targets"] and p["datasource"]["uid"] == "${datasource}"
                assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24


def test_every_query_parses(tmp_path: Path) -> None:
    exprs = [e for d in DASHBOARDS for e in d.exprs()]
    rules = [{"record": f"dashboard:cost_{i}:check", "expr": e} for i, e in enumerate(exprs)]
    (tmp_path / "rules.yaml").write_text(yamlio.dump({"groups": [{"name": "cost", "rules": rules}]}))
    out = subprocess.run([PROMTOOL, "check", "rules", str(tmp_path / "rules.yaml")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def _promtool_test(tmp_path: Path, expr: str, series: list[dict[str, str]], expected: list[dict[str, Any]]) -> None:
    (tmp_path / "rules.yaml").write_text(
        yamlio.dump({"groups": [{"name": "t", "rules": [{"record": "cost:under_test", "expr": expr}]}]})
    )
    test = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {
                        "expr": "cost:under_test",
                        "eval_time": "10m",
                        "exp_samples": [{**e, "labels": f"cost:under_test{e['labels']}"} for e in expected],
                    }
                ],
            }
        ],
    }
    (tmp_path / "test.yaml").write_text(yamlio.dump(test))
    out = subprocess.run([PROMTOOL, "test", "rules", "test.yaml"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr


# One m7g.large-like node: $0.02 per core-hour, $0.003 per GiB-hour; one volume at $0.0001 per GiB-hour.
OPENCOST = [
    {"series": 'node_cpu_hourly_cost{node="n1",instance_type="m7g.large",instance="oc:9003"}', "values": "0.02x20"},
    {"series": 'node_ram_hourly_cost{node="n1",instance_type="m7g.large",instance="oc:9003"}', "values": "0.003x20"},
    {
        "series": 'container_cpu_allocation{namespace="supabase",pod="kong-1",container="kong",node="n1"}',
        "values": "0.5x20",
    },
    {
        "series": 'container_memory_allocation_bytes{namespace="supabase",pod="kong-1",container="kong",node="n1"}',
        "values": f"{2 * 1024**3}x20",
    },
    {
        "series": 'container_cpu_allocation{namespace="observability",pod="p-0",container="prometheus",node="n1"}',
        "values": "0.25x20",
    },
    {
        "series": 'container_memory_allocation_bytes{namespace="observability",pod="p-0",container="prometheus",node="n1"}',
        "values": f"{1024**3}x20",
    },
    {
        "series": 'pod_pvc_allocation{namespace="observability",pod="p-0",persistentvolume="pv1",persistentvolumeclaim="data"}',
        "values": f"{10 * 1024**3}x20",
    },
    {"series": 'pv_hourly_cost{persistentvolume="pv1",instance="oc:9003"}', "values": "0.0001x20"},
]


def test_namespace_cost_is_cpu_memory_and_volumes_at_node_prices(tmp_path: Path) -> None:
    """supabase: (0.5 x 0.02 + 2 x 0.003) x 730 = 11.68; observability adds its volume:
    (0.25 x 0.02 + 1 x 0.003 + 10 x 0.0001) x 730 = 6.57 (a namespace without volumes is not dropped)."""
    expr = _expr(
        next(d for d in map(lambda d: d.to_json(), DASHBOARDS) if d["uid"] == "supabase-namespace-cost"), "Monthly"
    )
    _promtool_test(
        tmp_path,
        f"round(({expr}) * 100) / 100",
        OPENCOST,
        [
            {"labels": '{namespace="supabase"}', "value": 11.68},
            {"labels": '{namespace="observability"}', "value": 6.57},
        ],
    )


def test_idle_cost_is_what_no_container_is_allocated(tmp_path: Path) -> None:
    """Node total $0.1/h; allocated 0.75 x 0.02 + 3 x 0.003 = 0.024: idle 0.076."""
    expr = _expr(next(d.to_json() for d in DASHBOARDS if d.uid == "supabase-namespace-cost"), "Idle")
    series = [*OPENCOST, {"series": 'node_total_hourly_cost{node="n1",instance_type="m7g.large"}', "values": "0.1x20"}]
    _promtool_test(tmp_path, f"round(({expr}) * 1000) / 1000", series, [{"labels": "{}", "value": 0.076}])


def test_over_request_divides_requests_by_the_vpa_target(tmp_path: Path) -> None:
    """kong requests 500m, the VPA target is 250m: ratio 2. The names are the ones the
    kube-state-metrics configuration defines (vpa_metric)."""
    expr = _expr(next(d.to_json() for d in DASHBOARDS if d.uid == "supabase-rightsizing"), "CPU over-request")
    target = vpa_metric("target")
    series = [
        {
            "series": 'kube_pod_container_resource_requests{namespace="supabase",pod="kong-1",container="kong",resource="cpu",unit="core"}',
            "values": "0.5x20",
        },
        {
            "series": f'{target}{{namespace="supabase",verticalpodautoscaler="kong-deployment",target_kind="Deployment",target_name="kong",container="kong",resource="cpu",unit="core"}}',
            "values": "0.25x20",
        },
        {
            "series": f'{target}{{namespace="supabase",verticalpodautoscaler="kong-deployment",target_kind="Deployment",target_name="kong",container="kong",resource="memory",unit="byte"}}',
            "values": "1e8x20",
        },
    ]
    _promtool_test(tmp_path, expr, series, [{"labels": '{namespace="supabase",container="kong"}', "value": 2}])


def test_every_workload_gets_a_recommend_only_vpa(rendered) -> None:
    for (org, env), manifests in rendered.items():
        workloads = {
            (o["metadata"]["namespace"], o["kind"], o["metadata"]["name"])
            for chart, objs in manifests.items()
            if chart != "cost"
            for o in objs
            if VPA_TARGET_KINDS.get(o["kind"]) == o["apiVersion"]
        }
        rollouts = {
            (o["metadata"]["namespace"], o["spec"]["workloadRef"]["name"])
            for objs in manifests.values()
            for o in objs
            if o["kind"] == "Rollout" and "workloadRef" in o["spec"]
        }
        assert rollouts, (org, env)
        vpas = [o for o in manifests["cost"] if o["kind"] == "VerticalPodAutoscaler"]
        targets = {
            (o["metadata"]["namespace"], o["spec"]["targetRef"]["kind"], o["spec"]["targetRef"]["name"]) for o in vpas
        }
        # Deployments a Rollout runs (workloadRef) are learnt through the Rollout.
        assert targets == {w for w in workloads if not (w[1] == "Deployment" and (w[0], w[2]) in rollouts)}, (org, env)
        assert {o["spec"]["updatePolicy"]["updateMode"] for o in vpas} == {"Off"}


def test_vpa_objects_validate_against_the_vendored_crd(rendered) -> None:
    crd_dir = CHARTS_DIR / f"{vertical_pod_autoscaler.NAME}-{vertical_pod_autoscaler.VERSION}" / "crds"
    crds = [d for f in sorted(crd_dir.glob("*.yaml")) for d in yamlio.load_all(f.read_text()) if d]
    vpas = [o for m in rendered.values() for o in m["cost"] if o["kind"] == "VerticalPodAutoscaler"]
    assert vpas and schema_errors(crds + vpas) == []
    broken = json.loads(json.dumps(vpas[0]))
    broken["spec"]["updatePolicy"]["updateMode"] = "Sometimes"
    assert schema_errors([*crds, broken])
