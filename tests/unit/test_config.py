"""Bad config fails fast, before any construct, with a message naming the field and the fix."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from config import ConfigError, load_config, parse_config
from config.loader import DEFAULT_CONFIG

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def raw() -> dict:
    return yaml.safe_load(DEFAULT_CONFIG.read_text())


def error_for(raw: dict) -> str:
    with pytest.raises(ConfigError) as exc:
        parse_config(raw)
    return str(exc.value)


def test_default_config_is_valid():
    cfg = load_config()
    assert set(cfg.environments) == {"dev", "staging", "prod"}
    assert cfg.environments["prod"].production


@pytest.mark.parametrize("bad", ["12345", "1234567890123", "abcdefghijkl", 123456789012])
def test_malformed_account_id(raw, bad):
    raw["environments"]["dev"]["account"]["id"] = bad
    message = error_for(raw)
    assert "environments.dev.account.id" in message
    assert "fix:" in message or "string" in message


def test_duplicated_account_id(raw):
    raw["environments"]["staging"]["account"]["id"] = raw["environments"]["dev"]["account"]["id"]
    message = error_for(raw)
    assert "environments.staging.account.id" in message and "already used by environments.dev.account.id" in message


def test_tooling_account_reused_by_environment(raw):
    raw["environments"]["prod"]["account"]["id"] = raw["organization"]["tooling"]["id"]
    assert "environments.prod.account.id" in error_for(raw)


def test_unknown_region(raw):
    raw["environments"]["staging"]["region"] = "us-east-7"
    message = error_for(raw)
    assert "environments.staging.region" in message and "unknown region 'us-east-7'" in message


def test_dr_region_equal_to_primary(raw):
    raw["environments"]["prod"]["dr_region"] = raw["environments"]["prod"]["region"]
    message = error_for(raw)
    assert "environments.prod" in message and "dr_region equals region" in message and "fix:" in message


def test_overlapping_cidrs(raw):
    raw["environments"]["staging"]["network"]["vpc_cidr"] = "10.10.128.0/17"
    message = error_for(raw)
    assert "environments.staging.network.vpc_cidr" in message and "overlaps environments.dev" in message


def test_public_cidr_rejected(raw):
    raw["environments"]["dev"]["network"]["vpc_cidr"] = "52.0.0.0/16"
    assert "environments.dev.network.vpc_cidr" in error_for(raw)


def test_nat_gateways_cannot_exceed_azs(raw):
    raw["environments"]["dev"]["network"]["nat_gateways"] = 3
    assert "nat_gateways (3) exceeds max_azs (2)" in error_for(raw)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("database", "multi_az"), False, "database.multi_az must be true"),
        (("database", "read_replicas"), 0, "database.read_replicas must be at least 1"),
        (("database", "backup_retention_days"), 7, "database.backup_retention_days must be 35"),
        (("database", "deletion_protection"), False, "database.deletion_protection must be true"),
        (("cache", "replicas_per_shard"), 0, "cache.replicas_per_shard"),
        (("network", "nat_gateways"), 1, "one NAT gateway per AZ"),
        (("features", "gatekeeper_enforce"), False, "gatekeeper_enforce must be true"),
    ],
)
def test_prod_must_be_production_grade(raw, path, value, expected):
    raw["environments"]["prod"][path[0]][path[1]] = value
    message = error_for(raw)
    assert "environments.prod" in message and expected in message and "production: false" in message


def test_unknown_key(raw):
    raw["environments"]["dev"]["databse"] = {}
    message = error_for(raw)
    assert "environments.dev.databse: unknown key" in message


def test_missing_required_value(raw):
    del raw["environments"]["staging"]["domain_name"]
    assert "environments.staging.domain_name: required value is missing" in error_for(raw)


def test_bad_domain(raw):
    raw["environments"]["dev"]["domain_name"] = "not a domain"
    assert "environments.dev.domain_name" in error_for(raw)


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [("database", "instance_class", "db.r5.huge"), ("cache", "node_type", "cache.m5.large")],
)
def test_unknown_size(raw, section, key, value):
    raw["environments"]["dev"][section][key] = value
    message = error_for(raw)
    assert f"environments.dev.{section}.{key}" in message and f"unknown size '{value}'" in message


def test_x86_node_type_rejected(raw):
    raw["environments"]["dev"]["cluster"]["app_nodes"]["instance_types"] = ["m5.large"]
    assert "environments.dev.cluster.app_nodes.instance_types.0" in error_for(raw)


def test_spot_needs_several_instance_types(raw):
    raw["environments"]["dev"]["cluster"]["spot_nodes"]["instance_types"] = ["m7g.large"]
    assert "at least two instance types" in error_for(raw)


def test_unsupported_engine_and_kubernetes_versions(raw):
    raw["environments"]["dev"]["database"]["engine_version"] = "11.22"
    raw["environments"]["dev"]["cluster"]["kubernetes_version"] = "1.27"
    message = error_for(raw)
    assert "environments.dev.database.engine_version" in message
    assert "environments.dev.cluster.kubernetes_version" in message


def test_public_demo_value_rejected(raw):
    raw["environments"]["dev"]["auth"]["site_url"] = "https://x/this_password_is_insecure_and_should_be_updated"
    message = error_for(raw)
    assert "environments.dev.auth.site_url" in message and "public demo value" in message


def test_pipeline_targets_known_environments(raw):
    raw["pipeline"]["promotion_order"] = ["staging", "qa"]
    assert "unknown environment 'qa'" in error_for(raw)


def test_every_error_is_reported_at_once(raw):
    raw["environments"]["dev"]["region"] = "nowhere-1"
    raw["environments"]["staging"]["cache"]["node_type"] = "cache.x1.huge"
    message = error_for(raw)
    assert "environments.dev.region" in message and "environments.staging.cache.node_type" in message


def test_app_exits_with_message_not_traceback(tmp_path, raw):
    bad = copy.deepcopy(raw)
    bad["environments"]["dev"]["network"]["vpc_cidr"] = "10.20.0.0/16"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "CDK_CONTEXT_JSON": f'{{"config": "{path}"}}'},
    )
    assert result.returncode == 1
    assert "config error" in result.stderr and "vpc_cidr" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "absent.yaml")


def test_availability_zones_default_and_validation(raw):
    assert load_config().environments["prod"].availability_zones == ["us-east-1a", "us-east-1b", "us-east-1c"]
    raw["environments"]["dev"]["network"]["availability_zones"] = ["us-west-2a", "us-west-2b"]
    assert "'us-west-2a' is not a zone of us-east-1" in error_for(raw)
    raw["environments"]["dev"]["network"]["availability_zones"] = ["us-east-1a"]
    assert "lists 1 zones but max_azs is 2" in error_for(raw)


def test_derived_bucket_names_fit_s3_limit(raw):
    raw["project"] = "supabase-platform-x"
    raw["environments"]["production"] = raw["environments"].pop("prod")
    raw["pipeline"]["promotion_order"] = ["staging"]
    raw["environments"]["production"]["dr_region"] = "ap-southeast-2"
    message = error_for(raw)
    assert "environments.production: bucket name" in message and "S3 allows 63" in message
