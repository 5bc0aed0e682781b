"""`make cost`: the estimate per environment, its arithmetic against the price table, budget
warnings, and a clear message (no traceback) for a region the table does not price."""

from __future__ import annotations

import contextlib
import copy
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

import scripts.cost.__main__ as cost_main
from config import load_config, parse_config, yamlio
from config.model import CACHE_NODE_TYPES, GRAVITON_NODE_FAMILIES, NODE_SIZES, RDS_INSTANCE_CLASSES
from scripts.cost import (
    Facts,
    Prices,
    claimed_gib,
    estimate,
    facts,
    facts_of_manifests,
    load_balancers,
    load_usage,
    render,
)
from scripts.cost.__main__ import main
from tests import rendered
from tests.conftest import ORG_CONFIGS, ROOT

TABLE = yamlio.load((ROOT / "scripts" / "cost" / "prices.yaml").read_text())
USAGE = yamlio.load((ROOT / "scripts" / "cost" / "usage.yaml").read_text())
HOURS = 730


@pytest.fixture(scope="module")
def outputs() -> dict[str, str]:
    """`make cost` (its module's main) for every organization config, printed once. Its facts come
    from the session's renders of the same charts (tests/rendered.py) instead of a second rendering;
    test_facts_are_what_the_charts_render covers `facts` rendering them itself."""
    printed = {}
    for org, path in ORG_CONFIGS.items():
        with contextlib.redirect_stdout(io.StringIO()) as out, pytest.MonkeyPatch.context() as patch:
            patch.setattr(
                cost_main, "facts", lambda _cfg, env, org=org: facts_of_manifests(rendered.manifests(env, org))
            )
            assert main(["cost", str(path)]) == 0
        printed[org] = out.getvalue()
    return printed


def rows(output: str, env: str) -> dict[str, float]:
    """component -> USD/month of one environment's table in the printed output."""
    section = output.split(f"== {env} (")[1].split("\n\n")[0]
    found = {}
    for line in section.splitlines()[2:]:
        match = re.match(r"^(.+?)\s{2,}.*?([\d,]+\.\d\d)(\s|$)", line)
        if match and not line.startswith(("Graviton", "  ")):
            found[match.group(1).strip()] = float(match.group(2).replace(",", ""))
    return found


def test_every_environment_of_every_org_gets_a_table(outputs: dict[str, str]) -> None:
    for org, output in outputs.items():
        cfg = load_config(ORG_CONFIGS[org])
        for name, env in cfg.environments.items():
            table = rows(output, name)
            for component in ("EKS control plane", "NAT gateways", "RDS primary", "ElastiCache Valkey", "EBS gp3"):
                assert table[component] > 0, (org, name, component)
            assert ("CloudFront" in table) == env.features.cloudfront
            # The total row is the sum of the component rows (each printed rounded to the cent).
            parts = sum(v for k, v in table.items() if k not in ("total", "monthly budget"))
            assert table["total"] == pytest.approx(parts, abs=0.01 * len(table))
            assert table["monthly budget"] == env.monthly_budget_usd
        summary = output.split("environment   region")[1]
        assert all(re.search(rf"^{name}\s", summary, re.M) for name in cfg.environments)
        assert TABLE["as_of"] in output


def test_prod_components_recomputed_by_hand(outputs: dict[str, str]) -> None:
    """default prod, us-east-1: 3 NAT gateways, db.r7g.xlarge Multi-AZ + 2 replicas, 6 m7g.xlarge app nodes."""
    us = TABLE["regions"]["us-east-1"]
    prod = rows(outputs["default"], "prod")
    nat = (
        3 * us["nat_gateway"]["hourly"] * HOURS + USAGE["production"]["nat_processed_gb"] * us["nat_gateway"]["per_gb"]
    )
    assert prod["NAT gateways"] == round(nat, 2) == 121.05
    # xlarge is twice large (normalization factors 8 and 4); Multi-AZ bills the standby too.
    r7g_xlarge = us["rds_postgres"]["instance"]["db.r7g"]["large"] * 2
    assert prod["RDS primary"] == round(r7g_xlarge * 2 * HOURS, 2) == 697.88
    assert prod["RDS read replicas"] == round(2 * r7g_xlarge * HOURS, 2)
    assert prod["RDS primary storage"] == 200 * us["rds_postgres"]["gp3_gb_month"]["multi_az"] == 46.0
    assert prod["nodes app (on-demand)"] == round(6 * us["ec2"]["m7g"]["large"] * 2 * HOURS, 2) == 714.82
    # Spot: the mean of m7g.xlarge, m6g.xlarge and c7g.2xlarge (= 4 x c7g.large) at the spot discount.
    mean = (us["ec2"]["m7g"]["large"] * 2 + us["ec2"]["m6g"]["large"] * 2 + us["ec2"]["c7g"]["large"] * 4) / 3
    assert prod["nodes spot (spot)"] == round(2 * mean * (1 - TABLE["discounts"]["spot"]) * HOURS, 2)


def test_graviton_and_spot_savings_by_hand(outputs: dict[str, str]) -> None:
    """dev: 4 m7g.large on demand against 4 m7i.large; nothing on spot."""
    us = TABLE["regions"]["us-east-1"]["ec2"]
    x86 = 4 * us["m7i"]["large"] * HOURS
    graviton = 4 * us["m7g"]["large"] * HOURS
    dev = outputs["default"].split("== dev (")[1].split("\n\n")[0]
    assert f"would cost ${x86:,.2f}; Graviton saves ${x86 - graviton:,.2f}, spot saves $0.00" in dev


def test_savings_recommended_for_the_steady_components(outputs: dict[str, str]) -> None:
    us = TABLE["regions"]["us-east-1"]
    prod = outputs["default"].split("== prod (")[1].split("\n\n")[0]
    rds = (2 + 2) * us["rds_postgres"]["instance"]["db.r7g"]["large"] * 2 * HOURS
    assert (
        f"RDS: 1-year no-upfront reserved instances for db.r7g.xlarge Multi-AZ and 2 replica(s): saves ${rds * TABLE['discounts']['rds_reserved_1yr_no_upfront']:,.2f}/month"
        in prod
    )
    assert "ElastiCache: 1-year no-upfront reserved nodes, 3 x cache.r7g.large" in prod
    # Baseline: min_size 3 system m7g.large + 3 app m7g.xlarge.
    baseline = (3 * us["ec2"]["m7g"]["large"] + 3 * 2 * us["ec2"]["m7g"]["large"]) * HOURS
    assert (
        f"for the 6 baseline On-Demand nodes (the groups' min_size): saves ${baseline * TABLE['discounts']['compute_savings_plan_1yr_no_upfront']:,.2f}/month"
        in prod
    )


def test_no_budget_warning_for_the_examples(outputs: dict[str, str]) -> None:
    assert "WARNING" not in outputs["default"]


def test_lowered_budget_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = yamlio.load(ORG_CONFIGS["default"].read_text())
    raw["environments"]["staging"]["monthly_budget_usd"] = 1000
    lowered = tmp_path / "lowered.yaml"
    lowered.write_text(yamlio.dump(raw))
    # The budget is no input of the charts: the default organization's renders give the same facts.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cost_main, "facts", lambda _cfg, env: facts_of_manifests(rendered.manifests(env)))
        assert main(["cost", str(lowered)]) == 0
    out = capsys.readouterr().out
    staging = rows(out, "staging")
    over = staging["total"] - 1000
    assert f"WARNING: over budget by ${over:,.2f}" in out
    assert re.search(rf"^staging\s.*WARNING: exceeds budget by \${over:,.2f}$", out, re.M)
    assert not re.search(r"^(dev|prod)\s.*WARNING", out, re.M)


def _run(tmp_path: Path, raw: dict) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "org.yaml"
    path.write_text(yamlio.dump(raw))
    return subprocess.run(
        [sys.executable, "-m", "scripts.cost", str(path)], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_unpriced_region_is_named_with_the_fix(tmp_path: Path) -> None:
    raw = yamlio.load(ORG_CONFIGS["acme"].read_text())
    raw["environments"]["qa"]["region"] = "ap-south-1"
    raw["environments"]["qa"]["network"].pop("availability_zones")
    out = _run(tmp_path, raw)
    assert out.returncode == 2 and out.stdout == ""
    assert "Traceback" not in out.stderr
    [message] = out.stderr.strip().splitlines()[1:]
    assert message.startswith("environments.qa.region: 'ap-south-1' given; scripts/cost/prices.yaml has no prices")
    assert "fix: add a regions.ap-south-1 section" in message


def test_region_priced_only_for_dr_names_what_is_missing(tmp_path: Path) -> None:
    raw = yamlio.load(ORG_CONFIGS["acme"].read_text())
    raw["environments"]["live"]["region"], raw["environments"]["live"]["dr_region"] = "eu-central-1", "eu-west-1"
    out = _run(tmp_path, raw)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert (
        "environments.live.region: 'eu-central-1' given; scripts/cost/prices.yaml prices it only for s3, not ec2; fix: add regions.eu-central-1.ec2"
        in out.stderr
    )


def test_unpriced_dr_region_is_named(tmp_path: Path) -> None:
    raw = yamlio.load(ORG_CONFIGS["default"].read_text())
    raw["environments"]["dev"]["dr_region"] = "ca-central-1"
    out = _run(tmp_path, raw)
    assert out.returncode == 2
    assert "environments.dev.dr_region: 'ca-central-1' given" in out.stderr


def test_refused_config_is_the_loaders_message(tmp_path: Path) -> None:
    raw = yamlio.load(ORG_CONFIGS["default"].read_text())
    raw["environments"]["dev"]["monthly_budget_usd"] = 0
    out = _run(tmp_path, raw)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "environments.dev.monthly_budget_usd: 0 given" in out.stderr


@pytest.mark.parametrize("region", [r for r, p in TABLE["regions"].items() if "ec2" in p])
def test_every_size_the_loader_accepts_is_priced(region: str) -> None:
    """Any config the loader accepts in a priced region gets a table: the table covers its whole vocabulary."""
    prices = Prices.load()
    priced = TABLE["regions"][region]
    for family in GRAVITON_NODE_FAMILIES:
        for size in NODE_SIZES[family]:
            assert prices.sized(priced["ec2"], f"{family}.{size}", what="node") > 0
            assert prices.sized(priced["ec2"], f"{TABLE['x86_equivalent'][family]}.{size}", what="x86") > 0
    for instance_class in RDS_INSTANCE_CLASSES:
        assert prices.sized(priced["rds_postgres"]["instance"], instance_class, what="rds") > 0
    for node_type in CACHE_NODE_TYPES:
        assert prices.sized(priced["elasticache_valkey"]["node"], node_type, what="cache") > 0


def test_sizes_scale_by_normalization_factor() -> None:
    prices = Prices.load()
    ec2 = TABLE["regions"]["us-east-1"]["ec2"]
    assert prices.sized(ec2, "m7g.2xlarge", what="x") == pytest.approx(4 * ec2["m7g"]["large"])
    assert prices.sized(ec2, "t4g.medium", what="x") == pytest.approx(ec2["t4g"]["large"] / 2)


def test_alb_count_follows_ingress_groups() -> None:
    def ingress(name: str, group: str | None = None, cls: str = "alb") -> dict:
        annotations = {"alb.ingress.kubernetes.io/group.name": group} if group else {}
        return {
            "kind": "Ingress",
            "metadata": {"name": name, "namespace": "ns", "annotations": annotations},
            "spec": {"ingressClassName": cls},
        }

    assert load_balancers([ingress("a"), ingress("b")]) == 2
    assert load_balancers([ingress("a", "g"), ingress("b", "g"), ingress("c", cls="nginx")]) == 1


def test_claimed_volumes_count_statefulset_replicas() -> None:
    claim = {"spec": {"resources": {"requests": {"storage": "10Gi"}}}}
    objects = [
        {"kind": "PersistentVolumeClaim", **claim},
        {"kind": "StatefulSet", "spec": {"replicas": 3, "volumeClaimTemplates": [claim]}},
    ]
    assert claimed_gib(objects) == 40


def test_facts_are_what_the_charts_render() -> None:
    cfg = load_config(ORG_CONFIGS["default"])
    found = facts(cfg, "dev")
    # The supabase chart's one public Ingress (API and Studio hosts) is one ALB.
    assert found.load_balancers == 1
    assert found.interface_endpoints >= 10 and found.root_volume_gib >= 20 and found.prometheus_volumes >= 1


def test_estimate_moves_with_the_config() -> None:
    """More replicas cost more by exactly their price: the estimate reads the config, not a copy of it."""
    raw = yamlio.load(ORG_CONFIGS["default"].read_text())
    bigger = copy.deepcopy(raw)
    bigger["environments"]["staging"]["database"]["read_replicas"] = 3
    fixed = Facts(
        root_volume_gib=100, interface_endpoints=16, prometheus_volumes=2, load_balancers=1, other_volume_gib=0
    )
    prices, usage = Prices.load(), load_usage()
    before = estimate(parse_config(raw), "staging", prices=prices, usage=usage, facts=fixed)
    after = estimate(parse_config(bigger), "staging", prices=prices, usage=usage, facts=fixed)
    us = TABLE["regions"]["us-east-1"]["rds_postgres"]
    per_replica = us["instance"]["db.r7g"]["large"] * HOURS + 100 * us["gp3_gb_month"]["single_az"]
    assert after.total - before.total == pytest.approx(2 * per_replica)
    assert "staging" in render([after], prices=prices)
