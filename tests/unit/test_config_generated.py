"""Property-based proof of the loader's contract, over configs generated from the model itself.

1. Whatever a user writes, the loader either returns a config or raises `ConfigError` whose every
   line names a path, the value given, the rule and a fix; nothing else escapes.
2. Every config the loader accepts synthesizes for real, cdk-nag's packs find nothing open, and the
   deploy rehearsal's rules pass:
   organizations drawn across the model's declared bounds (numbers between each field's ge/le,
   sizes from the allow-lists, every region of the zone table, every VPC size the layout fits).
   Each organization has two environments, promoted in order: a non-production one and a
   production one, so the one synthesis covers both kinds and what lies between them (accounts,
   address ranges, the promotion order).
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
import shutil
import tempfile
from pathlib import Path

import annotated_types
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import tests.deploy.rules  # noqa: F401  (registers the rules)
from config import ConfigError, network_layout, parse_config, yamlio
from config import model as m
from config.loader import DEFAULT_CONFIG
from config.regions import (
    EC2_FAMILIES_NOT_OFFERED,
    ELASTICACHE_FAMILIES_NOT_OFFERED,
    GRAVITON4_FAMILIES,
    GRAVITON4_REGIONS,
    RDS_POSTGRES_FAMILIES_NOT_OFFERED,
    ZONES,
    family,
)
from tests import synth
from tests.conftest import ORG_CONFIGS
from tests.deploy.cloud_assembly import CloudAssembly
from tests.deploy.registry import RULES

# A full synthesis with the deploy rehearsal over it.
pytestmark = pytest.mark.long

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = yamlio.load(DEFAULT_CONFIG.read_text())
LINE = re.compile(r"^config: \S.*: .+ given; .+; fix: .+$")
# Unbounded fields (e.g. rpo_minutes ge=1) are drawn up to their lower bound plus this much.
UNBOUNDED_SPAN = 10_000


def bounds(model: type[BaseModel], field: str) -> tuple[int, int]:
    """(lowest, highest) a numeric field accepts, read from its declared ge/le."""
    low: int | None = None
    high: int | None = None
    for item in model.model_fields[field].metadata:
        if isinstance(item, annotated_types.Ge):
            low = int(item.ge)  # type: ignore[call-overload]
        elif isinstance(item, annotated_types.Le):
            high = int(item.le)  # type: ignore[call-overload]
    assert low is not None, f"{model.__name__}.{field} declares no lower bound"
    return low, high if high is not None else low + UNBOUNDED_SPAN


def length_bounds(model: type[BaseModel], field: str) -> tuple[int, int]:
    metadata = model.model_fields[field].metadata
    return (
        next(i.min_length for i in metadata if isinstance(i, annotated_types.MinLen)),
        next(i.max_length for i in metadata if isinstance(i, annotated_types.MaxLen)),
    )


def ints(model: type[BaseModel], field: str) -> st.SearchStrategy[int]:
    low, high = bounds(model, field)
    return st.integers(low, high)


# --- 1. Nothing but ConfigError ------------------------------------------------------------


def _leaves(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*path, key)
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield (*path, i)
            yield from _leaves(value, (*path, i))


PATHS = list(_leaves(DEFAULT))
ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "",
            "0",
            "-1",
            "us-east-1",
            "10.0.0.0/8",
            "10.0.0.0/30",
            "m7g.large",
            "db.r7g.large",
            "prod",
            "Z1",
            "https://",
            "a@b",
            "1e3",
            "yes",
            "☃",
            "111111111111",
            "o-",
            "r-",
        ]
    ),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(PATHS), ODD_VALUES, st.sampled_from(["set", "delete", "add key"]), st.text(max_size=8)
        ),
        min_size=1,
        max_size=4,
    )
)
def test_any_edit_is_accepted_or_refused_with_a_message(edits):
    raw = copy.deepcopy(DEFAULT)
    for path, value, action, key in edits:
        node = raw
        try:
            for step in path[:-1]:
                node = node[step]
            if action == "delete":
                del node[path[-1]]
            elif action == "add key":
                node[path[-1]][key] = value
            else:
                node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit replaced or removed this path, or it holds no mapping
    try:
        parse_config(raw)
    except ConfigError as exc:
        lines = str(exc).splitlines()
        assert lines
        for line in lines:
            assert LINE.match(line), line


# --- 2. Everything accepted synthesizes ------------------------------------------------------


@st.composite
def organizations(draw) -> dict:
    """An organization of two environments, the first non-production, drawn across the model's bounds."""
    raw = copy.deepcopy(DEFAULT)
    low, high = length_bounds(m.OrgConfig, "project")
    raw["project"] = draw(
        st.from_regex(r"[a-z][a-z0-9]{0,9}(-[a-z0-9]{1,5}){0,2}", fullmatch=True).filter(
            lambda s: low <= len(s) <= high
        )
    )
    raw["organization"].update(
        home_region=draw(st.sampled_from(sorted(ZONES))),
        tooling_region=draw(st.sampled_from(sorted(ZONES))),
        adopt_existing_accounts=draw(st.booleans()),
        cloudtrail_retention_days=draw(ints(m.Organization, "cloudtrail_retention_days")),
    )
    names = draw(
        st.lists(
            st.from_regex(r"[a-z][a-z0-9]{1,11}", fullmatch=True).filter(
                lambda n: n not in m.RESERVED_ENVIRONMENT_NAMES
            ),
            min_size=2,
            max_size=2,
            unique=True,
        )
    )
    # Production is promoted last (the loader's rule), after the non-production environment.
    kinds = [(False, names[0]), (True, names[1])]
    raw["environments"] = {
        name: environment(draw, name, index, production) for index, (production, name) in enumerate(kinds)
    }
    raw["pipeline"]["promotion_order"] = names
    return raw


def environment(draw, env_name: str, index: int, production: bool) -> dict:
    """One environment; `index` keeps its account, names and range apart from the others'."""
    env = copy.deepcopy(DEFAULT["environments"]["prod" if production else "dev"])
    env["account"] = {
        "id": f"{333333333333 + index * 111111111111}",
        "name": f"generated-{env_name}",
        "email": f"aws+{env_name}@example.com",
    }
    env["domain_name"] = f"{env_name}.example.com"
    env["hosted_zone_id"] = f"Z0GENERATED{index}EXAMPLE"
    env["auth"]["site_url"] = f"https://app.{env_name}.example.com"
    env["auth"]["legacy_api_keys"] = draw(st.booleans())

    # Production spans three zones, which a two-zone region cannot give.
    region = draw(st.sampled_from(sorted(r for r, z in ZONES.items() if z.per_account >= 3 or not production)))
    env["region"] = region
    env["dr_region"] = draw(st.sampled_from(sorted(set(ZONES) - {region})))
    zones = ZONES[region]
    low, high = bounds(m.Network, "max_azs")
    max_azs = high if production else draw(st.integers(low, min(high, zones.per_account)))
    letters = draw(st.permutations(zones.letters))[:max_azs] if zones.ambiguous or draw(st.booleans()) else None
    prefix = draw(st.integers(network_layout.VPC_LARGEST_PREFIX, network_layout.smallest_vpc_prefix(max_azs)))
    env["network"] = {
        "vpc_cidr": str(ipaddress.IPv4Network((f"10.{index}.0.0", prefix))),
        "max_azs": max_azs,
        "nat_gateways": max_azs if production else draw(st.integers(1, max_azs)),
        "flow_log_retention_days": draw(st.sampled_from(m.LOG_RETENTION_DAYS)),
        **({"availability_zones": [f"{region}{c}" for c in letters]} if letters else {}),
    }

    graviton4 = region in GRAVITON4_REGIONS
    # What the region offers: the 8g families only in GRAVITON4_REGIONS, and not the families the
    # region lacks (the database's class in dr_region too, where a restore launches it).
    rds = sorted(
        c
        for c in m.RDS_INSTANCE_CLASSES
        if (graviton4 or family(c) not in GRAVITON4_FAMILIES)
        and not any(family(c) in RDS_POSTGRES_FAMILIES_NOT_OFFERED.get(r, ()) for r in (region, env["dr_region"]))
    )
    allocated = draw(
        st.integers(m.RDS_STORAGE_GIB[0], m.RDS_STORAGE_GIB[1] * 100 // (100 + m.RDS_AUTOSCALING_HEADROOM_PERCENT))
    )
    env["database"] = {
        "instance_class": draw(st.sampled_from(rds)),
        "allocated_storage_gib": allocated,
        "max_allocated_storage_gib": draw(
            st.integers(-(-allocated * (100 + m.RDS_AUTOSCALING_HEADROOM_PERCENT) // 100), m.RDS_STORAGE_GIB[1])
        ),
        "multi_az": True if production else draw(st.booleans()),
        "read_replicas": draw(st.integers(1 if production else 0, bounds(m.Database, "read_replicas")[1])),
        "backup_retention_days": m.RDS_BACKUP_RETENTION_DAYS[1]
        if production
        else draw(ints(m.Database, "backup_retention_days")),
        "deletion_protection": True if production else draw(st.booleans()),
    }
    env["cache"] = {
        "node_type": draw(
            st.sampled_from(
                sorted(
                    t for t in m.CACHE_NODE_TYPES if family(t) not in ELASTICACHE_FAMILIES_NOT_OFFERED.get(region, ())
                )
            )
        ),
        "replicas_per_shard": draw(st.integers(1 if production else 0, bounds(m.Cache, "replicas_per_shard")[1])),
    }
    families = [
        f
        for f in m.GRAVITON_NODE_FAMILIES
        if (graviton4 or f not in GRAVITON4_FAMILIES) and f not in EC2_FAMILIES_NOT_OFFERED.get(region, ())
    ]
    node_types = st.sampled_from([f"{f}.{size}" for f in families for size in m.NODE_SIZES[f]])

    def group(min_types: int) -> dict:
        high = draw(st.integers(1, 20))
        low = draw(st.integers(0, high))
        return {
            "instance_types": draw(st.lists(node_types, min_size=min_types, max_size=3, unique=True)),
            "min_size": low,
            "max_size": high,
            "desired_size": draw(st.integers(low, high)),
        }

    env["cluster"] = {
        **env["cluster"],
        "system_nodes": group(1),
        "app_nodes": group(1),
        "spot_nodes": group(2),
        "fargate_namespaces": draw(st.lists(st.sampled_from(["batch-jobs", "jobs", "cron"]), unique=True, max_size=3)),
        "public_access_cidrs": draw(
            st.lists(st.sampled_from(["0.0.0.0/0", "8.8.8.0/24", "1.1.1.1/32"]), unique=True, max_size=2)
        ),
        "velero_daily_retention_days": draw(ints(m.Cluster, "velero_daily_retention_days")),
        "velero_hourly": draw(st.booleans()),
    }
    env["observability"] = {
        "metrics_retention_days": draw(ints(m.Observability, "metrics_retention_days")),
        "metrics_storage_gib": draw(ints(m.Observability, "metrics_storage_gib")),
        "tracing_sample_ratio": draw(st.floats(0, 1)),
        "log_retention_days": draw(st.sampled_from(m.LOG_RETENTION_DAYS)),
        **{
            key: f"{env_name}/alerting/{key}"
            for key in ("slack_webhook_secret_name", "pagerduty_secret_name")
            if draw(st.booleans())
        },
    }
    archive = draw(ints(m.Storage, "archive_after_days").filter(lambda d: d < m.DEEP_ARCHIVE_ACCESS_DAYS[1]))
    env["storage"] = {
        "waf_rate_limit_per_5min": draw(ints(m.Storage, "waf_rate_limit_per_5min")),
        "archive_after_days": archive,
        "deep_archive_after_days": draw(
            st.integers(max(archive + 1, m.DEEP_ARCHIVE_ACCESS_DAYS[0]), m.DEEP_ARCHIVE_ACCESS_DAYS[1])
        ),
        "noncurrent_version_expiry_days": draw(ints(m.Storage, "noncurrent_version_expiry_days")),
    }
    env["recovery"] = {
        "rpo_minutes": draw(ints(m.Recovery, "rpo_minutes")),
        "rto_minutes": draw(ints(m.Recovery, "rto_minutes")),
    }
    env["auth"] = {
        **env["auth"],
        "password_min_length": draw(ints(m.Auth, "password_min_length")),
        "jwt_expiry_seconds": draw(ints(m.Auth, "jwt_expiry_seconds")),
        "saml_enabled": draw(st.booleans()),
        "disable_signup": draw(st.booleans()),
        "oauth_providers": [
            {"name": name, "client_id": f"{name}-client", "secret_name": f"{env_name}/oauth/{name}"}
            for name in draw(st.lists(st.sampled_from(["github", "google", "slack_oidc"]), unique=True, max_size=2))
        ],
    }
    env["features"] = {
        "gatekeeper_enforce": True if production else draw(st.booleans()),
        "istio": draw(st.booleans()),
        "falco": draw(st.booleans()),
        "cloudfront": draw(st.booleans()),
    }
    env["monthly_budget_usd"] = draw(ints(m.Environment, "monthly_budget_usd"))
    env["release_flags"] = draw(
        st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{1,20}", fullmatch=True), st.booleans(), max_size=3)
    )
    return env


_RUN: dict[str, int] = {"organizations": 0, "rule runs": 0}
_SHAPES: set[str] = set()


# No shrinking: each example costs a full synth, and the failing config is printed whole. One
# example, of both kinds of environment: with the default organization and the second fixture
# (acme), three organizations are synthesized and rehearsed in every run.
@settings(
    max_examples=1,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
@given(organizations())
def test_every_accepted_config_synthesizes(report, raw):
    try:
        cfg = parse_config(raw)
    except ConfigError as exc:
        # Long project and environment names together exceed AWS name limits: refused by design.
        assume("the derived" not in str(exc))
        pytest.fail(f"the generator drew a config the loader refuses; tighten the generator:\n{exc}")
    outdir = Path(tempfile.mkdtemp(prefix="cdk.out-generated-"))
    try:
        # As `cdk synth` does it, cdk-nag included: an open finding fails the user's synth.
        synth.synthesize(cfg, outdir)
        assert sorted(outdir.rglob("*.template.json")), "synth wrote no templates"
        nag = json.loads((outdir / "validation-report.json").read_text())["pluginReports"]
        open_findings = [
            f"{plugin['pluginName']} {v['ruleName']} on {c['constructPath']}"
            for plugin in nag
            for v in plugin["violations"]
            for c in v["violatingConstructs"]
        ]
        assert not open_findings, "cdk synth would fail on cdk-nag findings:\n" + "\n".join(open_findings)
        # Rules that render Helm charts find the organization's config by name in ORG_CONFIGS.
        name = f"generated-{_RUN['organizations']}"
        config_file = outdir.parent / f"{outdir.name}.yaml"
        config_file.write_text(yamlio.dump(raw))
        ORG_CONFIGS[name] = config_file
        findings = []
        try:
            assembly = CloudAssembly.load(outdir, name=name)
            for rule_id, rule in sorted(RULES.items()):
                findings += [f"{rule_id}: {f}" for f in rule(assembly).findings]
        finally:
            del ORG_CONFIGS[name]
            config_file.unlink()
        _RUN["rule runs"] += len(RULES)
        _RUN["organizations"] += 1
        _SHAPES.add(
            "+".join(
                f"{env.region}/{env.network.vpc_cidr.prefixlen}x{env.network.max_azs}{'/prod' if env.production else ''}"
                for env in cfg.environments.values()
            )
        )
        report(
            "generated configs",
            f"{_RUN['organizations']} generated organizations synthesized, "
            f"{_RUN['rule runs']} deploy-rule runs over them; {', '.join(sorted(_SHAPES))}",
        )
        assert not findings, "\n".join(findings)
    finally:
        shutil.rmtree(outdir, ignore_errors=True)
