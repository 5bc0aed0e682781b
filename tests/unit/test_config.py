"""Bad config fails fast, before any construct, with one line per refused value naming the
field path, the value given, the rule and the fix."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from config import ConfigError, load_config, parse_config, yamlio
from config.loader import DEFAULT_CONFIG

ROOT = Path(__file__).resolve().parents[2]
ACME = ROOT / "tests" / "fixtures" / "orgs" / "acme.yaml"


@pytest.fixture()
def raw() -> dict:
    return yamlio.load(DEFAULT_CONFIG.read_text())


def error_for(raw: dict) -> str:
    with pytest.raises(ConfigError) as exc:
        parse_config(raw)
    message = str(exc.value)
    for line in message.splitlines():
        assert line.startswith("config: ") and " given; " in line and "; fix: " in line, line
    return message


def env(raw: dict, name: str) -> dict:
    return raw["environments"][name]


def test_default_config_is_valid():
    cfg = load_config()
    assert set(cfg.environments) == {"dev", "staging", "prod"}
    assert cfg.environments["prod"].production


def _set(*path_and_value):
    *path, value = path_and_value

    def mutate(raw):
        node = raw
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _rename_env(old, new):
    def mutate(raw):
        raw["environments"][new] = raw["environments"].pop(old)
        raw["pipeline"]["promotion_order"] = [new if n == old else n for n in raw["pipeline"]["promotion_order"]]

    return mutate


E = "environments"
# (class of bad input, mutation, exact expected line after "config: ")
CASES = [
    # pydantic's generic errors, translated
    (
        "int_parsing",
        _set(E, "dev", "network", "max_azs", "two"),
        "environments.dev.network.max_azs: 'two' given; must be a whole number; fix: write digits without quotes, units or decimals, e.g. 3",
    ),
    (
        "bool_parsing",
        _set(E, "dev", "features", "istio", "maybe"),
        "environments.dev.features.istio: 'maybe' given; must be true or false; fix: write true or false, without quotes",
    ),
    (
        # Strict: YAML's quoted "no" would otherwise switch the legacy keys off (or on) by accident.
        "legacy_api_keys_strict",
        _set(E, "prod", "auth", "legacy_api_keys", "no"),
        "environments.prod.auth.legacy_api_keys: 'no' given; must be true or false; fix: write true or false, without quotes",
    ),
    (
        "greater_than_equal",
        _set(E, "dev", "database", "allocated_storage_gib", 10),
        "environments.dev.database.allocated_storage_gib: 10 given; must be at least 20 (RDS gp3 storage is 20-65536 GiB); fix: set it to at least 20",
    ),
    (
        "less_than_equal",
        _set(E, "dev", "storage", {"waf_rate_limit_per_5min": 3_000_000_000}),
        "environments.dev.storage.waf_rate_limit_per_5min: 3000000000 given; must be at most 2000000000 (WAF rate-based rules limit 10-2,000,000,000 requests); fix: set it to at most 2000000000",
    ),
    (
        "string_pattern_mismatch",
        _set(E, "dev", "hosted_zone_id", "zone-1"),
        "environments.dev.hosted_zone_id: 'zone-1' given; does not match ^Z[A-Z0-9]{4,32}$ (the public hosted zone of domain_name (Route 53 console)); fix: e.g. Z0123456789ABCDEFGHIJ",
    ),
    (
        "literal_error",
        _set(E, "prod", "auth", "oauth_providers", [{"name": "githup", "client_id": "abc", "secret_name": "x/y"}]),
        "environments.prod.auth.oauth_providers.0.name: 'githup' given; not one of the supported values; fix: one of 'google', 'github', 'gitlab', 'azure', 'apple', 'bitbucket', 'discord', 'keycloak' or 'slack_oidc'",
    ),
    (
        "list too short",
        _set("pipeline", "promotion_order", []),
        "pipeline.promotion_order: [] given; needs at least 1 entries (Environments the pipeline deploys, in order.); fix: list at least 1",
    ),
    (
        "unknown key",
        lambda raw: env(raw, "dev").update(databse={}),
        "environments.dev.databse: 'databse' given; unknown key (a misspelt switch would otherwise be ignored); fix: did you mean database?",
    ),
    (
        "missing",
        lambda raw: env(raw, "staging").pop("domain_name"),
        "environments.staging.domain_name: nothing given; a required value; fix: add domain_name: ... (see config/default.yaml for a working example)",
    ),
    (
        "host bits set",
        _set(E, "dev", "network", "vpc_cidr", "10.10.0.1/16"),
        "environments.dev.network.vpc_cidr: '10.10.0.1/16' given; not an IPv4 network in CIDR notation with the host bits zero; fix: e.g. 10.40.0.0/16",
    ),
    (
        "string too long",
        _set(E, "dev", "account", "name", "x" * 51),
        f"environments.dev.account.name: '{'x' * 51}' given; must be at most 50 characters (AWS Organizations account names are 1-50 characters); fix: use at most 50 characters",
    ),
    # formats
    (
        "account id",
        _set(E, "dev", "account", "id", "12345"),
        "environments.dev.account.id: '12345' given; an AWS account id is exactly 12 digits; fix: write the 12-digit id in quotes so leading zeros survive YAML, e.g. \"012345678901\"",
    ),
    (
        "account id as number",
        _set(E, "dev", "account", "id", 123456789012),
        'environments.dev.account.id: 123456789012 given; must be text; fix: quote it in YAML, e.g. "value"',
    ),
    (
        "project pattern",
        _set("project", "supa--base"),
        "project: 'supa--base' given; does not match ^[a-z][a-z0-9]*(-[a-z0-9]+)*$ (lower-case letters, digits and single hyphens, 3-21 characters; it prefixes AWS names); fix: e.g. supabase",
    ),
    (
        "e-mail",
        _set(E, "dev", "alert_email", "alerts"),
        "environments.dev.alert_email: 'alerts' given; not an e-mail address; fix: give a mailbox that receives mail, e.g. aws+dev@example.com",
    ),
    (
        "domain",
        _set(E, "dev", "domain_name", "not a domain"),
        "environments.dev.domain_name: 'not a domain' given; not a lower-case DNS name; fix: e.g. supabase.example.com",
    ),
    (
        "site url",
        _set(E, "dev", "auth", "site_url", "http://app.example.com"),
        "environments.dev.auth.site_url: 'http://app.example.com' given; not an https:// URL; fix: the public URL of your app, e.g. https://app.example.com",
    ),
    (
        "secret name",
        _set(E, "dev", "observability", {"slack_webhook_secret_name": "my secret"}),
        "environments.dev.observability.slack_webhook_secret_name: 'my secret' given; Secrets Manager names are 1-512 of A-Z a-z 0-9 / _ + = . @ -; fix: use the secret's name, e.g. prod/supabase/oauth/github",
    ),
    (
        "namespace",
        _set(E, "dev", "cluster", "fargate_namespaces", ["Batch_Jobs"]),
        "environments.dev.cluster.fargate_namespaces: 'Batch_Jobs' given; not a Kubernetes namespace name (lower-case letters, digits, '-', at most 63); fix: e.g. batch-jobs",
    ),
    (
        "fargate selectors",
        _set(E, "dev", "cluster", "fargate_namespaces", [f"ns{i}" for i in range(6)]),
        'environments.dev.cluster.fargate_namespaces: ["ns0", "ns1", "ns2", "ns3", "ns4", "ns5"] given; needs at most 5 entries (one Fargate profile takes at most 5 namespace selectors); fix: list at most 5',
    ),
    # sizes and services
    (
        "rds size",
        _set(E, "dev", "database", "instance_class", "db.r5.huge"),
        "environments.dev.database.instance_class: 'db.r5.huge'",
    ),
    (
        "cache size",
        _set(E, "dev", "cache", "node_type", "cache.m5.large"),
        "environments.dev.cache.node_type: 'cache.m5.large' given; unknown size: only Graviton node types are supported",
    ),
    (
        "x86 nodes",
        _set(E, "dev", "cluster", "app_nodes", "instance_types", ["m5.large"]),
        "environments.dev.cluster.app_nodes.instance_types.0: 'm5.large' given; unknown size: nodes are arm64 (Graviton)",
    ),
    (
        "graviton4 region",
        lambda raw: env(raw, "prod").update(region="eu-west-3"),
        "environments.prod.cluster.app_nodes.instance_types: 'm8g.xlarge' given; Graviton4 (m8g/r8g/c8g) is not confirmed in eu-west-3; fix: use the 7g family (e.g. m7g.xlarge)",
    ),
    (
        "RDS family the region lacks",
        lambda raw: env(raw, "staging").update(region="eu-west-3"),
        "environments.staging.database.instance_class: 'db.r7g.large' given; RDS for PostgreSQL does not offer the r7g family in eu-west-3; fix: use db.m7g.large, or a region whose RDS for PostgreSQL offers r7g",
    ),
    (
        "RDS family the DR region lacks",
        lambda raw: env(raw, "staging").update(dr_region="af-south-1"),
        "environments.staging.database.instance_class: 'db.r7g.large' given; RDS for PostgreSQL does not offer the r7g family in af-south-1 (dr_region: a restore launches the same class); fix: use db.t4g.large, or a region whose RDS for PostgreSQL offers r7g",
    ),
    (
        "EC2 family the region lacks",
        lambda raw: env(raw, "dev").update(region="eu-south-1"),
        "environments.dev.cluster.app_nodes.instance_types: 'm7g.large' given; EC2 does not offer the m7g family in eu-south-1; fix: use m6g.large, or a region whose EC2 offers m7g",
    ),
    (
        "ElastiCache family the region lacks, no size alike",
        lambda raw: env(raw, "dev").update(region="me-south-1"),
        "environments.dev.cache.node_type: 'cache.t4g.small' given; ElastiCache does not offer the t4g family in me-south-1; fix: use one of cache.m7g.2xlarge, cache.m7g.large, cache.m7g.xlarge, cache.r7g.2xlarge, cache.r7g.large, cache.r7g.xlarge, or a region whose ElastiCache offers t4g",
    ),
    (
        "engine version",
        _set(E, "dev", "database", "engine_version", "11.22"),
        "environments.dev.database.engine_version: '11.22' given; not a PostgreSQL version this project supports; fix: one of 17.9",
    ),
    (
        "kubernetes version",
        _set(E, "dev", "cluster", "kubernetes_version", "1.27"),
        "environments.dev.cluster.kubernetes_version: '1.27' given; not a Kubernetes version in EKS standard support here; fix: one of 1.35",
    ),
    # region facts
    (
        "unknown region",
        _set(E, "staging", "region", "us-east-7"),
        "environments.staging.region: 'us-east-7' given; not a region this project supports (every service it uses must be offered there)",
    ),
    (
        "zone of another region",
        _set(E, "dev", "network", "availability_zones", ["us-west-2a", "us-west-2b"]),
        "environments.dev.network.availability_zones: 'us-west-2a' given; not a zone of us-east-1; fix: one of us-east-1a, us-east-1b, us-east-1c, us-east-1d, us-east-1e, us-east-1f",
    ),
    (
        "zone letter that does not exist",
        _set(E, "dev", "network", "availability_zones", ["us-east-1a", "us-east-1g"]),
        "environments.dev.network.availability_zones: 'us-east-1g' given; not a zone of us-east-1",
    ),
    (
        "zone listed twice",
        _set(E, "dev", "network", "availability_zones", ["us-east-1a", "us-east-1a"]),
        'environments.dev.network.availability_zones: ["us-east-1a", "us-east-1a"] given; a zone is listed twice; each zone takes one subnet per tier; fix: name 2 different zones',
    ),
    (
        "zone count",
        _set(E, "dev", "network", "availability_zones", ["us-east-1a"]),
        'environments.dev.network.availability_zones: ["us-east-1a"] given; lists 1 zones but max_azs is 2; fix: make them agree',
    ),
    (
        "account-dependent zone letters",
        _set(E, "dev", "region", "us-west-1"),
        "environments.dev.network.availability_zones: nothing given; us-west-1's zone letters differ between accounts (2 of us-west-1a, us-west-1b, us-west-1c); fix: list this account's zones (aws ec2 describe-availability-zones)",
    ),
    (
        "region with too few zones",
        lambda raw: env(raw, "staging").update(
            region="us-west-1",
            dr_region="us-east-2",
            network={
                **env(raw, "staging")["network"],
                "availability_zones": ["us-west-1a", "us-west-1b", "us-west-1c"],
            },
        ),
        'environments.staging.network.availability_zones: ["us-west-1a", "us-west-1b", "us-west-1c"] given; us-west-1 has only 2 zones in an account; fix: set max_azs to 2',
    ),
    (
        "dr region equals region",
        lambda raw: env(raw, "prod").update(dr_region="us-east-1"),
        "environments.prod.dr_region: 'us-east-1' given; equals region: a regional outage would take both; fix: choose a second region for disaster recovery",
    ),
    # network layout
    (
        "vpc too small",
        _set(E, "dev", "network", "vpc_cidr", "10.10.0.0/21"),
        "environments.dev.network.vpc_cidr: '10.10.0.0/21' given; too small for 2 zones: each zone needs a /24 public, a /22 or larger private (pod IPs) and a /24 database subnet; fix: use a /20 or larger range (e.g. 10.10.0.0/20)",
    ),
    (
        "vpc too small for 3 zones",
        _set(E, "staging", "network", "vpc_cidr", "10.20.0.0/20"),
        "environments.staging.network.vpc_cidr: '10.20.0.0/20' given; too small for 3 zones: each zone needs a /24 public, a /22 or larger private (pod IPs) and a /24 database subnet; fix: use a /19 or larger range (e.g. 10.20.0.0/19), or lower max_azs",
    ),
    (
        "vpc too large",
        _set(E, "dev", "network", "vpc_cidr", "10.0.0.0/8"),
        "environments.dev.network.vpc_cidr: '10.0.0.0/8' given; a VPC range is at most a /16; fix: use a /16 (e.g. 10.0.0.0/16)",
    ),
    (
        "public vpc range",
        _set(E, "dev", "network", "vpc_cidr", "52.0.0.0/16"),
        "environments.dev.network.vpc_cidr: '52.0.0.0/16' given; not inside a private (RFC 1918) range; fix: use a range in 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16",
    ),
    (
        "nat beyond zones",
        _set(E, "dev", "network", "nat_gateways", 3),
        "environments.dev.network.nat_gateways: 3 given; more than max_azs (2): at most one NAT gateway per zone; fix: set nat_gateways to 2 or less",
    ),
    (
        "flow log retention",
        _set(E, "dev", "network", "flow_log_retention_days", 100),
        "environments.dev.network.flow_log_retention_days: 100 given; not a CloudWatch Logs retention period; fix: one of 1, 3, 5, 7",
    ),
    (
        "container log retention",
        _set(E, "staging", "observability", {"log_retention_days": 45}),
        "environments.staging.observability.log_retention_days: 45 given; not a CloudWatch Logs retention period; fix: one of 1, 3, 5, 7, 14, 30, 60, 90",
    ),
    (
        "studio log explorer without its backend",
        _set(E, "dev", "observability", {"studio_log_explorer": True}),
        "environments.dev.observability.studio_log_explorer: true given; Studio's log explorer needs upstream's Logflare analytics backend, which this platform does not deploy yet; fix: leave it false",
    ),
    (
        "private public-access cidr",
        _set(E, "dev", "cluster", "public_access_cidrs", ["10.0.0.0/8"]),
        "environments.dev.cluster.public_access_cidrs: '10.0.0.0/8' given; the public endpoint is reached from public addresses only",
    ),
    # ordering relations
    (
        "desired above max",
        _set(E, "dev", "cluster", "app_nodes", "desired_size", 9),
        "environments.dev.cluster.app_nodes.desired_size: 9 given; outside min_size..max_size (1..4); fix: set desired_size between 1 and 4",
    ),
    (
        "min above max",
        _set(E, "dev", "cluster", "app_nodes", "min_size", 5),
        "environments.dev.cluster.app_nodes.min_size: 5 given; above max_size (4); fix: lower min_size or raise max_size",
    ),
    (
        "node group quota",
        _set(E, "dev", "cluster", "app_nodes", "max_size", 451),
        "environments.dev.cluster.app_nodes.max_size: 451 given; must be at most 450 (EKS managed node groups hold 1-450 nodes at most); fix: set it to at most 450",
    ),
    (
        "spot diversity",
        _set(E, "dev", "cluster", "spot_nodes", "instance_types", ["m7g.large"]),
        'environments.dev.cluster.spot_nodes.instance_types: ["m7g.large"] given; a spot node group needs at least two instance types',
    ),
    (
        "instance type twice",
        _set(E, "dev", "cluster", "spot_nodes", "instance_types", ["m7g.large", "m7g.large"]),
        'environments.dev.cluster.spot_nodes.instance_types: ["m7g.large", "m7g.large"] given; m7g.large is listed twice; fix: list each instance type once',
    ),
    (
        "storage autoscaling headroom",
        _set(E, "dev", "database", "max_allocated_storage_gib", 52),
        "environments.dev.database.max_allocated_storage_gib: 52 given; RDS storage autoscaling needs a ceiling at least 10% above allocated_storage_gib (50); fix: set it to 55 or more",
    ),
    (
        "storage beyond gp3",
        _set(E, "dev", "database", "allocated_storage_gib", 65536),
        "environments.dev.database.max_allocated_storage_gib: 200 given; RDS storage autoscaling needs a ceiling at least 10% above allocated_storage_gib (65536); fix: lower allocated_storage_gib to 59578 or less",
    ),
    (
        "backup retention",
        _set(E, "dev", "database", "backup_retention_days", 36),
        "environments.dev.database.backup_retention_days: 36 given; must be at most 35 (RDS keeps automated backups 1-35 days); fix: set it to at most 35",
    ),
    (
        "deep archive before archive",
        _set(E, "dev", "storage", {"archive_after_days": 200, "deep_archive_after_days": 190}),
        "environments.dev.storage.deep_archive_after_days: 190 given; S3 Intelligent-Tiering moves objects to Deep Archive after Archive (archive_after_days is 200); fix: set it above 200, or lower archive_after_days",
    ),
    (
        "archive beyond 730",
        _set(E, "dev", "storage", {"archive_after_days": 800}),
        "environments.dev.storage.archive_after_days: 800 given; must be at most 730 (S3 Intelligent-Tiering Archive Access starts after 90-730 days); fix: set it to at most 730",
    ),
    (
        "waf floor",
        _set(E, "dev", "storage", {"waf_rate_limit_per_5min": 5}),
        "environments.dev.storage.waf_rate_limit_per_5min: 5 given; must be at least 10",
    ),
    (
        "password beyond bcrypt",
        _set(E, "dev", "auth", "password_min_length", 80),
        "environments.dev.auth.password_min_length: 80 given; must be at most 72",
    ),
    (
        "rpo below the log upload interval",
        _set(E, "prod", "recovery", "rpo_minutes", 1),
        "environments.prod.recovery.rpo_minutes: 1 given; must be at least 5 (most data loss tolerated; RDS ships transaction logs every 5 minutes, so no backup is fresher); fix: set it to at least 5",
    ),
    (
        "promotion twice",
        _set("pipeline", "promotion_order", ["staging", "prod", "prod"]),
        "pipeline.promotion_order.2: 'prod' given; listed twice: a stage deploys once per run; fix: list it once",
    ),
    (
        "production not last",
        _set("pipeline", "promotion_order", ["prod", "staging"]),
        'pipeline.promotion_order: ["prod", "staging"] given; a non-production environment is promoted after production; fix: put production environments last',
    ),
    (
        "promotion of unknown env",
        _set("pipeline", "promotion_order", ["staging", "qa"]),
        "pipeline.promotion_order.1: 'qa' given; not an environment of this config; fix: one of dev, prod, staging",
    ),
    # uniqueness
    (
        "account id reused",
        lambda raw: env(raw, "staging")["account"].update(id=env(raw, "dev")["account"]["id"]),
        "environments.staging.account.id: '333333333333' given; this account id is already used by environments.dev.account.id; fix: give every account and environment its own account id",
    ),
    (
        "tooling account reused",
        lambda raw: env(raw, "prod")["account"].update(id=raw["organization"]["tooling"]["id"]),
        "environments.prod.account.id: '222222222222' given; this account id is already used by organization.tooling.id",
    ),
    (
        "root e-mail reused",
        _set(E, "staging", "account", "email", "AWS+dev@example.com"),
        "environments.staging.account.email: 'AWS+dev@example.com' given; this account e-mail is already used by environments.dev.account.email",
    ),
    (
        "account name reused",
        _set(E, "staging", "account", "name", "supabase-dev"),
        "environments.staging.account.name: 'supabase-dev' given; this account name is already used by environments.dev.account.name",
    ),
    (
        "domain reused",
        _set(E, "staging", "domain_name", "dev.supabase.example.com"),
        "environments.staging.domain_name: 'dev.supabase.example.com' given; this domain name is already used by environments.dev.domain_name",
    ),
    (
        "hosted zone reused",
        _set(E, "prod", "hosted_zone_id", "Z0DEV00000000000EXAMPLE"),
        "environments.prod.hosted_zone_id: 'Z0DEV00000000000EXAMPLE' given; this hosted zone is already used by environments.dev.hosted_zone_id",
    ),
    (
        "overlapping cidrs",
        _set(E, "staging", "network", "vpc_cidr", "10.10.128.0/17"),
        "environments.staging.network.vpc_cidr: '10.10.128.0/17' given; overlaps environments.dev.network.vpc_cidr 10.10.0.0/16; fix: give each environment its own range",
    ),
    (
        "environment named like a top-level stack",
        _rename_env("dev", "pipeline"),
        "environments.pipeline: 'pipeline' given; the names org, pipeline belong to the organization-level stacks; fix: rename the environment, e.g. orgprod",
    ),
    (
        "environment name pattern",
        _rename_env("dev", "Dev-1"),
        "environments.Dev-1: 'Dev-1' given; environment names are 2-12 lower-case letters and digits, starting with a letter; fix: rename it, e.g. staging",
    ),
    (
        "oauth provider twice",
        _set(E, "prod", "auth", "oauth_providers", [{"name": "github", "client_id": "abc", "secret_name": "a/b"}] * 2),
        "environments.prod.auth.oauth_providers: 'github' given; GoTrue takes one configuration per provider",
    ),
    # derived names
    (
        "bucket name too long",
        _set("project", "supabase-platform-xy"),
        "environments.staging: 'staging' given; the derived S3 bucket name supabase-platform-xy-staging-storage-replica-444444444444-us-west-2 is 67 characters, AWS allows 63; fix: shorten project ('supabase-platform-xy') or the environment name by 4 characters together",
    ),
    (
        "cache id too long",
        lambda raw: (raw.update(project="abcdefghijklmnopqrstu"), _rename_env("dev", "abcdefghijkl")(raw)),
        "environments.abcdefghijkl: 'abcdefghijkl' given; the derived ElastiCache replication group id abcdefghijklmnopqrstu-abcdefghijkl-valkey "
        "is 41 characters, AWS allows 40; fix: shorten project ('abcdefghijklmnopqrstu') or the environment name by 1 characters together",
    ),
    # production grade
    (
        "production multi-az",
        _set(E, "prod", "database", "multi_az", False),
        "environments.prod.database.multi_az: false given; a production environment needs a standby in a second zone; fix: set it, or mark the environment production: false",
    ),
    (
        "production nat per zone",
        _set(E, "prod", "network", "nat_gateways", 1),
        "environments.prod.network.nat_gateways: 1 given; production has one NAT gateway per zone; fix: set it, or mark the environment production: false",
    ),
    (
        "production gatekeeper",
        _set(E, "prod", "features", "gatekeeper_enforce", False),
        "environments.prod.features.gatekeeper_enforce: false given; production denies non-compliant objects",
    ),
    # the public demo secrets
    (
        "demo secret",
        _set(E, "dev", "auth", "site_url", "https://x/this_password_is_insecure_and_should_be_updated"),
        "environments.dev.auth.site_url: 'https://x/this_password_is_insecure_and_should_be_updated' given; carries a public demo value from Supabase's .env.example; fix: remove it",
    ),
]


@pytest.mark.parametrize(("mutate", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_refused_with_path_value_rule_and_fix(raw, mutate, expected):
    mutate(raw)
    assert f"config: {expected}" in error_for(raw)


def test_every_error_is_reported_at_once(raw):
    env(raw, "dev")["region"] = "nowhere-1"
    env(raw, "staging")["cache"]["node_type"] = "cache.x1.huge"
    message = error_for(raw)
    assert "environments.dev.region" in message and "environments.staging.cache.node_type" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("- a list\n", "(top level): 'list' given; the top level must be a mapping"),
        ("project: [unclosed\n", "'line 2, column 1' given; not valid YAML"),
    ],
)
def test_unreadable_files(tmp_path, content, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert expected in str(exc.value) and "fix: " in str(exc.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="no such config file; fix: pass -c config=PATH"):
        load_config(tmp_path / "absent.yaml")


def test_default_zones_follow_the_region_table():
    cfg = load_config()
    assert cfg.environments["prod"].availability_zones == ["us-east-1a", "us-east-1b", "us-east-1c"]
    raw = yamlio.load(DEFAULT_CONFIG.read_text())
    env(raw, "staging").update(region="ca-central-1")
    # ca-central-1 has no zone c: the third default zone is d.
    assert parse_config(raw).environments["staging"].availability_zones == [
        "ca-central-1a",
        "ca-central-1b",
        "ca-central-1d",
    ]


def _run_app(config: Path, outdir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={
            # The venv's bin holds the pinned Node that jsii starts (the Makefile links it there).
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "CDK_OUTDIR": str(outdir),
            "CDK_CONTEXT_JSON": json.dumps({"config": str(config)}),
        },
    )


def test_app_exits_with_message_before_writing_anything(tmp_path, raw):
    env(raw, "dev")["network"]["vpc_cidr"] = "10.20.0.0/16"
    path = tmp_path / "bad.yaml"
    path.write_text(yamlio.dump(raw))
    outdir = tmp_path / "cdk.out"
    outdir.mkdir()
    (outdir / "previous.txt").write_text("left as it was")
    result = _run_app(path, outdir)
    assert result.returncode == 1
    assert (
        result.stderr.startswith("config error:\n")
        and "environments.staging.network.vpc_cidr: '10.20.0.0/16' given; overlaps environments.dev" in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in outdir.iterdir()) == ["previous.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "cdk.out"]


def _tiny_app(app, cfg):
    import aws_cdk as cdk

    cdk.Stack(app, "Tiny").add_metadata("config", cfg.project)


def _broken_app(app, cfg):
    _tiny_app(app, cfg)
    raise RuntimeError("1 of /19 exceeds remaining space of 10.0.0.0/18\n    at NetworkBuilder.addSubnets (...)")


@pytest.mark.parametrize(("build", "code"), [(_tiny_app, 0), (_broken_app, 2)], ids=["synth succeeds", "synth fails"])
def test_output_directory_changes_only_on_success(tmp_path, monkeypatch, capsys, build, code):
    import app

    outdir = tmp_path / "cdk.out"
    outdir.mkdir()
    (outdir / "stale.template.json").write_text("{}")
    (outdir / "synth.lock").write_text("")
    monkeypatch.setenv("CDK_OUTDIR", str(outdir))
    monkeypatch.setattr(app, "build_app", build)
    assert app.main() == code
    names = sorted(p.name for p in outdir.iterdir())
    if code == 0:
        assert "manifest.json" in names and "Tiny.template.json" in names and "synth.lock" in names
        assert "stale.template.json" not in names
    else:
        assert names == ["stale.template.json", "synth.lock"]
        err = capsys.readouterr().err
        assert (
            err.startswith("synth error: 1 of /19 exceeds remaining space of 10.0.0.0/18\n")
            and "at NetworkBuilder" not in err
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cdk.out"]


def test_every_supported_region_has_its_rds_root_ca():
    """Pods verify RDS against the region's root CA from the pinned bundle: a supported region
    without one would fail synth (k8s_charts/supabase/rds_ca.py raises)."""
    from config.regions import ZONES
    from k8s_charts.supabase import rds_ca

    assert {region: len(rds_ca.region_roots(region)) > 0 for region in ZONES} == dict.fromkeys(ZONES, True)
