"""Typed model of the organization this app deploys.

Every value the stacks need comes from here; nothing is looked up at synth time. The
model rejects bad input with pydantic errors that `config.loader` turns into one line per
field ("environments.prod.network.vpc_cidr: ... fix: ...").
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

# Commercial regions in which every service this platform uses (EKS, RDS, ElastiCache,
# Backup, WAF) is offered. Kept in code so that a typo never reaches CloudFormation.
KNOWN_REGIONS = frozenset(
    {
        "us-east-1", "us-east-2", "us-west-1", "us-west-2",
        "ca-central-1", "ca-west-1", "sa-east-1",
        "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-central-2",
        "eu-north-1", "eu-south-1", "eu-south-2",
        "ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2",
        "ap-southeast-3", "ap-southeast-4", "ap-northeast-1", "ap-northeast-2",
        "ap-northeast-3", "ap-east-1", "me-south-1", "me-central-1",
        "af-south-1", "il-central-1",
    }
)

# Graviton classes only: every image the platform runs is multi-arch, and Graviton is the
# cheaper option for the same throughput. An unknown size fails at load time.
RDS_INSTANCE_CLASSES = frozenset(
    f"db.{family}.{size}"
    for family in ("t4g", "m7g", "r7g", "m8g", "r8g")
    for size in ("micro", "small", "medium", "large", "xlarge", "2xlarge", "4xlarge", "8xlarge")
    if not (family != "t4g" and size in ("micro", "small", "medium"))
    and not (family == "t4g" and size in ("4xlarge", "8xlarge"))
)
CACHE_NODE_TYPES = frozenset(
    f"cache.{family}.{size}"
    for family in ("t4g", "m7g", "r7g")
    for size in ("micro", "small", "medium", "large", "xlarge", "2xlarge")
    if not (family == "t4g" and size in ("large", "xlarge", "2xlarge"))
    and not (family != "t4g" and size in ("micro", "small", "medium"))
)
GRAVITON_NODE_FAMILIES = ("t4g", "m6g", "m7g", "m8g", "c6g", "c7g", "c8g", "r6g", "r7g", "r8g")
EC2_SIZES = ("medium", "large", "xlarge", "2xlarge", "4xlarge", "8xlarge")

# Versions in standard support on 2026-11 (EKS 1.35 until 2027-03; RDS PostgreSQL 17).
SUPPORTED_KUBERNETES_VERSIONS = ("1.35",)
SUPPORTED_POSTGRES_VERSIONS = ("17.9",)

LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)

# Public values from supabase/supabase docker/.env.example. A deployment carrying any of
# them is open to anyone who has read that file.
PUBLIC_DEMO_VALUES = (
    "your-super-secret-jwt-token-with-at-least-32-characters-long",
    "this_password_is_insecure_and_should_be_updated",
    "UpNVntn3cDxHJpq99YMc1T1AQgQpc8kfYTuRgBiYa15BLrx8etQoXz3gZv1/u2oq",
    "your-encryption-key-32-chars-min",
    "your-32-character-encryption-key",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoiYW5vbiIsImlzcyI6InN1cGFiYXNlLWRlbW8i",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIiwiaXNzIjoic3VwYWJhc2UtZGVtbyI",
)

_ACCOUNT_ID = re.compile(r"^\d{12}$")
_FQDN = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.IGNORECASE)
_ENV_NAME = re.compile(r"^[a-z][a-z0-9]{1,11}$")


def _account_id(value: str) -> str:
    if not _ACCOUNT_ID.match(value):
        raise ValueError(
            f"'{value}' is not an AWS account id; fix: use the 12-digit id, quoted in YAML "
            "so leading zeros survive (e.g. \"012345678901\")"
        )
    return value


def _region(value: str) -> str:
    if value not in KNOWN_REGIONS:
        raise ValueError(f"unknown region '{value}'; fix: use one of {', '.join(sorted(KNOWN_REGIONS))}")
    return value


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError(f"'{value}' is not an e-mail address; fix: give a mailbox that receives mail")
    return value


def _fqdn(value: str) -> str:
    if not _FQDN.match(value):
        raise ValueError(f"'{value}' is not a lower-case DNS name; fix: e.g. supabase.example.com")
    return value


AccountId = Annotated[str, AfterValidator(_account_id)]
Region = Annotated[str, AfterValidator(_region)]
Email = Annotated[str, AfterValidator(_email)]
DomainName = Annotated[str, AfterValidator(_fqdn)]


class Strict(BaseModel):
    """Unknown keys are an error: a misspelt switch must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Account(Strict):
    id: AccountId
    name: str = Field(min_length=3, max_length=50)
    email: Email


class Organization(Strict):
    id: str = Field(pattern=r"^o-[a-z0-9]{10,32}$", description="Organization id, for the org trail and policy conditions.")
    root_id: str = Field(pattern=r"^r-[0-9a-z]{4,32}$", description="Root of the organization: parent of the OUs.")
    management_account_id: AccountId
    home_region: Region = "us-east-1"
    tooling: Account
    tooling_region: Region
    adopt_existing_accounts: bool = Field(
        default=False,
        description="True when the member accounts already exist: the org stack then does not create them.",
    )
    cloudtrail_retention_days: int = Field(default=365, ge=90)


class Network(Strict):
    vpc_cidr: ipaddress.IPv4Network
    max_azs: int = Field(ge=2, le=3)
    availability_zones: list[str] | None = Field(
        default=None,
        description="AZ names; default <region>a, b, c... Named here because synth never looks them up.",
    )
    nat_gateways: int = Field(ge=1, le=3)
    flow_log_retention_days: int = 365

    @field_validator("vpc_cidr")
    @classmethod
    def _size(cls, v: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
        if not v.is_private:
            raise ValueError(f"{v} is not a private (RFC 1918) range; fix: use e.g. 10.x.0.0/16")
        if not 16 <= v.prefixlen <= 20:
            raise ValueError(f"{v} must be between /16 and /20 to fit EKS pod IPs; fix: widen it")
        return v

    @field_validator("flow_log_retention_days")
    @classmethod
    def _retention(cls, v: int) -> int:
        if v not in LOG_RETENTION_DAYS:
            raise ValueError(f"{v} is not a CloudWatch Logs retention; fix: one of {LOG_RETENTION_DAYS}")
        return v

    @model_validator(mode="after")
    def _nat_within_azs(self) -> "Network":
        if self.nat_gateways > self.max_azs:
            raise ValueError(f"nat_gateways ({self.nat_gateways}) exceeds max_azs ({self.max_azs}); fix: at most one per AZ")
        return self


class Database(Strict):
    engine_version: str = SUPPORTED_POSTGRES_VERSIONS[0]
    instance_class: str
    allocated_storage_gib: int = Field(ge=20, le=65536)
    max_allocated_storage_gib: int = Field(ge=20, le=65536)
    multi_az: bool
    read_replicas: int = Field(ge=0, le=5)
    backup_retention_days: int = Field(ge=1, le=35)
    deletion_protection: bool

    @field_validator("engine_version")
    @classmethod
    def _engine(cls, v: str) -> str:
        if v not in SUPPORTED_POSTGRES_VERSIONS:
            raise ValueError(f"PostgreSQL {v} is not a version this project supports; fix: one of {SUPPORTED_POSTGRES_VERSIONS}")
        return v

    @field_validator("instance_class")
    @classmethod
    def _class(cls, v: str) -> str:
        if v not in RDS_INSTANCE_CLASSES:
            raise ValueError(f"unknown size '{v}'; fix: a Graviton class such as db.r7g.large ({', '.join(sorted(RDS_INSTANCE_CLASSES))})")
        return v

    @model_validator(mode="after")
    def _storage(self) -> "Database":
        if self.max_allocated_storage_gib < self.allocated_storage_gib:
            raise ValueError("max_allocated_storage_gib is below allocated_storage_gib; fix: raise the autoscaling ceiling")
        return self


class Cache(Strict):
    node_type: str
    replicas_per_shard: int = Field(ge=0, le=5)

    @field_validator("node_type")
    @classmethod
    def _node(cls, v: str) -> str:
        if v not in CACHE_NODE_TYPES:
            raise ValueError(f"unknown size '{v}'; fix: one of {', '.join(sorted(CACHE_NODE_TYPES))}")
        return v


def _graviton(v: str) -> str:
    family, _, size = v.partition(".")
    if family not in GRAVITON_NODE_FAMILIES or size not in EC2_SIZES:
        raise ValueError(f"unknown size '{v}'; fix: an arm64 (Graviton) type such as m7g.large")
    return v


NodeInstanceType = Annotated[str, AfterValidator(_graviton)]


class NodeGroup(Strict):
    instance_types: list[NodeInstanceType] = Field(min_length=1)
    min_size: int = Field(ge=0)
    max_size: int = Field(ge=1)
    desired_size: int = Field(ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> "NodeGroup":
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError("need min_size <= desired_size <= max_size; fix: adjust the three counts")
        return self


class Cluster(Strict):
    kubernetes_version: str = SUPPORTED_KUBERNETES_VERSIONS[0]
    public_access_cidrs: list[ipaddress.IPv4Network] = Field(
        default_factory=list,
        description="Empty keeps the API endpoint private (reached from the VPC or a VPN).",
    )
    admin_role_arns: list[str] = Field(default_factory=list)
    system_nodes: NodeGroup
    app_nodes: NodeGroup
    spot_nodes: NodeGroup
    fargate_namespaces: list[str] = Field(default_factory=list)
    velero_daily_retention_days: int = Field(default=30, ge=1)
    velero_hourly: bool = False

    @field_validator("kubernetes_version")
    @classmethod
    def _version(cls, v: str) -> str:
        if v not in SUPPORTED_KUBERNETES_VERSIONS:
            raise ValueError(f"Kubernetes {v} is not in EKS standard support here; fix: one of {SUPPORTED_KUBERNETES_VERSIONS}")
        return v

    @field_validator("admin_role_arns")
    @classmethod
    def _arns(cls, v: list[str]) -> list[str]:
        for arn in v:
            if not re.match(r"^arn:aws:iam::\d{12}:role/[\w+=,.@/-]+$", arn):
                raise ValueError(f"'{arn}' is not an IAM role ARN; fix: arn:aws:iam::ACCOUNT:role/NAME")
        return v

    @field_validator("spot_nodes")
    @classmethod
    def _diverse(cls, v: NodeGroup) -> NodeGroup:
        if len(v.instance_types) < 2:
            raise ValueError("a spot node group needs at least two instance types to survive capacity reclaims; fix: add another")
        return v


class Recovery(Strict):
    rpo_minutes: int = Field(ge=1, description="Most data loss tolerated.")
    rto_minutes: int = Field(ge=1, description="Longest outage tolerated.")


class Storage(Strict):
    waf_rate_limit_per_5min: int = Field(default=2000, ge=100, le=20_000_000)
    archive_after_days: int = Field(default=90, ge=90)
    deep_archive_after_days: int = Field(default=180, ge=180)
    noncurrent_version_expiry_days: int = Field(default=90, ge=1)


class OAuthProvider(Strict):
    name: Literal["google", "github", "gitlab", "azure", "apple", "bitbucket", "discord", "keycloak", "slack_oidc"]
    client_id: str = Field(min_length=3)
    secret_name: str = Field(min_length=3, description="Secrets Manager name holding the client secret.")


class Auth(Strict):
    site_url: str
    additional_redirect_urls: list[str] = Field(default_factory=list)
    disable_signup: bool = False
    password_min_length: int = Field(default=12, ge=8)
    jwt_expiry_seconds: int = Field(default=3600, ge=300, le=86400)
    smtp_sender: Email
    saml_enabled: bool = False
    oauth_providers: list[OAuthProvider] = Field(default_factory=list)

    @field_validator("site_url")
    @classmethod
    def _https(cls, v: str) -> str:
        if not v.startswith("https://"):
            raise ValueError(f"'{v}' must be an https:// URL; fix: the public URL of your app")
        return v


class Observability(Strict):
    metrics_retention_days: int = Field(default=15, ge=1)
    metrics_storage_gib: int = Field(default=50, ge=10)
    tracing_sample_ratio: float = Field(default=0.1, ge=0, le=1)
    slack_webhook_secret_name: str | None = None
    pagerduty_secret_name: str | None = None


class Features(Strict):
    istio: bool = True
    falco: bool = True
    gatekeeper_enforce: bool = Field(description="Deny non-compliant objects (True) or audit only (False).")
    cloudfront: bool = True


class Environment(Strict):
    account: Account
    region: Region
    dr_region: Region
    production: bool = Field(description="Production-grade guarantees are enforced for this environment.")
    domain_name: DomainName
    hosted_zone_id: str = Field(pattern=r"^Z[A-Z0-9]{4,32}$")
    alert_email: Email
    monthly_budget_usd: int = Field(ge=1)
    network: Network
    database: Database
    cache: Cache
    cluster: Cluster
    recovery: Recovery
    storage: Storage = Storage()
    auth: Auth
    observability: Observability = Observability()
    features: Features
    release_flags: dict[str, bool] = Field(
        default_factory=dict,
        description="Feature flags delivered through AWS AppConfig with a gradual rollout.",
    )

    @field_validator("release_flags")
    @classmethod
    def _flag_names(cls, v: dict[str, bool]) -> dict[str, bool]:
        for flag in v:
            if not re.match(r"^[a-z][a-z0-9_]{1,63}$", flag):
                raise ValueError(f"flag name '{flag}' must be snake_case (a-z, 0-9, _); fix: rename it")
        return v

    @property
    def availability_zones(self) -> list[str]:
        return self.network.availability_zones or [f"{self.region}{suffix}" for suffix in "abc"[: self.network.max_azs]]

    @model_validator(mode="after")
    def _zones_in_region(self) -> "Environment":
        zones = self.network.availability_zones
        if zones is not None:
            if len(zones) != self.network.max_azs:
                raise ValueError(f"network.availability_zones lists {len(zones)} zones but max_azs is {self.network.max_azs}; fix: make them agree")
            for zone in zones:
                if not re.fullmatch(rf"{re.escape(self.region)}[a-z]", zone):
                    raise ValueError(f"network.availability_zones: '{zone}' is not a zone of {self.region}; fix: e.g. {self.region}a")
        return self

    @model_validator(mode="after")
    def _dr_elsewhere(self) -> "Environment":
        if self.dr_region == self.region:
            raise ValueError(f"dr_region equals region ({self.region}); fix: choose a second region for disaster recovery")
        return self

    @model_validator(mode="after")
    def _production_grade(self) -> "Environment":
        if not self.production:
            return self
        problems = []
        if not self.database.multi_az:
            problems.append("database.multi_az must be true")
        if not self.database.deletion_protection:
            problems.append("database.deletion_protection must be true")
        if self.database.read_replicas < 1:
            problems.append("database.read_replicas must be at least 1")
        if self.database.backup_retention_days < 35:
            problems.append("database.backup_retention_days must be 35")
        if self.cache.replicas_per_shard < 1:
            problems.append("cache.replicas_per_shard must be at least 1 (automatic failover)")
        if self.network.max_azs < 3 or self.network.nat_gateways < self.network.max_azs:
            problems.append("network needs max_azs 3 and one NAT gateway per AZ")
        if not self.features.gatekeeper_enforce:
            problems.append("features.gatekeeper_enforce must be true")
        if problems:
            raise ValueError(
                "production environment is not production-grade: " + "; ".join(problems)
                + "; fix: set these, or mark the environment production: false"
            )
        return self


class Pipeline(Strict):
    connection_arn: str = Field(pattern=r"^arn:aws:codeconnections:[a-z0-9-]+:\d{12}:connection/[0-9a-f-]{36}$")
    repository: str = Field(pattern=r"^[\w.-]+/[\w.-]+$")
    branch: str = "main"
    promotion_order: list[str] = Field(min_length=1, description="Environments the pipeline deploys, in order.")


class OrgConfig(Strict):
    project: str = Field(pattern=r"^[a-z][a-z0-9-]{2,20}$")
    organization: Organization
    environments: dict[str, Environment] = Field(min_length=1)
    pipeline: Pipeline

    @field_validator("environments")
    @classmethod
    def _names(cls, v: dict[str, Environment]) -> dict[str, Environment]:
        for name in v:
            if not _ENV_NAME.match(name):
                raise ValueError(f"environment name '{name}' must be 2-12 lower-case letters/digits; fix: rename it (e.g. staging)")
        return v

    @model_validator(mode="after")
    def _accounts_unique(self) -> "OrgConfig":
        owners: dict[str, str] = {
            self.organization.management_account_id: "organization.management_account_id",
        }
        for field, account_id in [("organization.tooling.id", self.organization.tooling.id)] + [
            (f"environments.{n}.account.id", e.account.id) for n, e in self.environments.items()
        ]:
            if account_id in owners:
                raise ValueError(
                    f"{field}: account {account_id} is already used by {owners[account_id]}; "
                    "fix: give every environment and the tooling account its own account"
                )
            owners[account_id] = field
        return self

    @model_validator(mode="after")
    def _cidrs_disjoint(self) -> "OrgConfig":
        items = list(self.environments.items())
        for i, (a, ea) in enumerate(items):
            for b, eb in items[i + 1:]:
                if ea.network.vpc_cidr.overlaps(eb.network.vpc_cidr):
                    raise ValueError(
                        f"environments.{b}.network.vpc_cidr: {eb.network.vpc_cidr} overlaps "
                        f"environments.{a}.network.vpc_cidr {ea.network.vpc_cidr}; fix: give each "
                        "environment its own range so the VPCs can be peered or share a transit gateway"
                    )
        return self

    @model_validator(mode="after")
    def _pipeline_targets(self) -> "OrgConfig":
        for name in self.pipeline.promotion_order:
            if name not in self.environments:
                raise ValueError(f"pipeline.promotion_order: unknown environment '{name}'; fix: one of {sorted(self.environments)}")
        return self

    @property
    def regions(self) -> list[str]:
        """Every region the organization may use (SCP allow list and bootstrap targets)."""
        found = {self.organization.home_region, self.organization.tooling_region, "us-east-1"}
        for env in self.environments.values():
            found.update((env.region, env.dr_region))
        return sorted(found)

