"""Typed model of the organization this app deploys.

Every value the stacks need comes from here; nothing is looked up at synth time. Every check
raises a `Problem` (or pydantic's own error for a declared bound), which `config.loader` prints
as one line per value: `path: value given; rule; fix: ...`.
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
    StrictBool,
    field_validator,
    model_validator,
)

from config import network_layout
from config.regions import (
    EC2_FAMILIES_NOT_OFFERED,
    ELASTICACHE_FAMILIES_NOT_OFFERED,
    GRAVITON4_FAMILIES,
    GRAVITON4_REGIONS,
    RDS_POSTGRES_FAMILIES_NOT_OFFERED,
    ZONES,
    family,
)


class Problem(ValueError):
    """One refused value. `field` is relative to the model whose validator raised it ("" is the
    validated field itself); the loader prefixes the location."""

    def __init__(self, field: str, value: object, rule: str, fix: str) -> None:
        self.field, self.value, self.rule, self.fix = field, value, rule, fix
        super().__init__(f"{field}: {value!r} given; {rule}; fix: {fix}")


class Problems(ValueError):
    """Every refused value one cross-field check found, reported together."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def _raise(problems: list[Problem]) -> None:
    if problems:
        raise Problems(problems)


KNOWN_REGIONS = frozenset(ZONES)

# Bounds AWS enforces, each defined once and used by the model and its messages.
# RDS PostgreSQL gp3: 20 GiB to 64 TiB.
# https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/CHAP_Storage.html#gp3-storage
RDS_STORAGE_GIB = (20, 65536)
# Storage autoscaling: the maximum storage threshold must be at least 10% above the allocated storage.
# https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_PIOPS.Autoscaling.html
RDS_AUTOSCALING_HEADROOM_PERCENT = 10
# Automated backups (and AWS Backup continuous backups of RDS) keep 1 to 35 days.
# https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_WorkingWithAutomatedBackups.html
RDS_BACKUP_RETENTION_DAYS = (1, 35)
# RDS uploads transaction logs to S3 every 5 minutes: point-in-time restore and the replicated
# automated backups are never fresher, so a tighter RPO cannot be met.
# https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_PIT.html
RDS_LOG_UPLOAD_MINUTES = 5
# S3 Intelligent-Tiering: Archive Access after 90-730 days, Deep Archive Access after 180-730
# days, and Deep Archive after Archive. https://docs.aws.amazon.com/AmazonS3/latest/API/API_Tiering.html
ARCHIVE_ACCESS_DAYS = (90, 730)
DEEP_ARCHIVE_ACCESS_DAYS = (180, 730)
# WAFv2 rate-based statement Limit: 10 to 2,000,000,000 requests per window.
# https://docs.aws.amazon.com/waf/latest/APIReference/API_RateBasedStatement.html
WAF_RATE_LIMIT = (10, 2_000_000_000)
# EKS managed node groups: at most 450 nodes per group.
# https://docs.aws.amazon.com/eks/latest/userguide/service-quotas.html
NODE_GROUP_MAX_NODES = 450
# A Fargate profile takes at most five selectors (this project makes one profile).
# https://docs.aws.amazon.com/eks/latest/userguide/fargate-profile.html
FARGATE_SELECTORS = 5
# GoTrue hashes passwords with bcrypt, which reads at most 72 bytes: a higher minimum length
# would refuse every password. https://github.com/supabase/auth/blob/master/internal/crypto/password.go
PASSWORD_MAX_LENGTH = 72
# AWS Organizations account names are 1-50 characters.
# https://docs.aws.amazon.com/organizations/latest/APIReference/API_CreateAccount.html
ACCOUNT_NAME_LENGTH = (1, 50)
# Secrets Manager names: 1-512 of these characters.
# https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html
SECRET_NAME_PATTERN = r"^[A-Za-z0-9/_+=.@-]{1,512}$"
# RFC 1918, the ranges AWS recommends for VPCs.
# https://docs.aws.amazon.com/vpc/latest/userguide/vpc-cidr-blocks.html
RFC1918 = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
# Never the source address of a request to a public endpoint: RFC 1918, shared (CGNAT), loopback, link-local.
NOT_ROUTABLE = RFC1918 + tuple(ipaddress.IPv4Network(n) for n in ("100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16"))
# Construct ids of the top-level stacks (stacks/composition.py builds them under these ids): an
# environment (a Stage) of either name would collide with them.
ORG_STACK_ID = "org"
PIPELINE_STACK_ID = "pipeline"
RESERVED_ENVIRONMENT_NAMES = (ORG_STACK_ID, PIPELINE_STACK_ID)

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

# The only values CloudWatch Logs accepts for a log group's retention (PutRetentionPolicy,
# retentionInDays "Valid Values", and AWS::Logs::LogGroup RetentionInDays):
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)

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
# Project names end up in bucket, RDS and ElastiCache names: those refuse a trailing hyphen and
# two hyphens in a row.
PROJECT_PATTERN = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
_K8S_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _account_id(value: str) -> str:
    if not _ACCOUNT_ID.match(value):
        raise Problem(
            "",
            value,
            "an AWS account id is exactly 12 digits",
            'write the 12-digit id in quotes so leading zeros survive YAML, e.g. "012345678901"',
        )
    return value


def _region(value: str) -> str:
    if value not in KNOWN_REGIONS:
        raise Problem(
            "",
            value,
            "not a region this project supports (every service it uses must be offered there)",
            f"use one of {', '.join(sorted(KNOWN_REGIONS))}",
        )
    return value


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise Problem("", value, "not an e-mail address", "give a mailbox that receives mail, e.g. aws+dev@example.com")
    return value


def _fqdn(value: str) -> str:
    if not _FQDN.match(value):
        raise Problem("", value, "not a lower-case DNS name", "e.g. supabase.example.com")
    return value


def _secret_name(value: str) -> str:
    if not re.match(SECRET_NAME_PATTERN, value):
        raise Problem(
            "",
            value,
            "Secrets Manager names are 1-512 of A-Z a-z 0-9 / _ + = . @ -",
            "use the secret's name, e.g. prod/supabase/oauth/github",
        )
    return value


AccountId = Annotated[str, AfterValidator(_account_id)]
Region = Annotated[str, AfterValidator(_region)]
Email = Annotated[str, AfterValidator(_email)]
DomainName = Annotated[str, AfterValidator(_fqdn)]
SecretName = Annotated[str, AfterValidator(_secret_name)]


class Strict(BaseModel):
    """Unknown keys are an error: a misspelt switch must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Account(Strict):
    id: AccountId
    name: str = Field(
        min_length=ACCOUNT_NAME_LENGTH[0],
        max_length=ACCOUNT_NAME_LENGTH[1],
        description="AWS Organizations account names are 1-50 characters",
    )
    email: Email


class Organization(Strict):
    id: str = Field(
        pattern=r"^o-[a-z0-9]{10,32}$",
        examples=["o-a1b2c3d4e5"],
        description="the organization id from the Organizations console",
    )
    root_id: str = Field(
        pattern=r"^r-[0-9a-z]{4,32}$", examples=["r-ab12"], description="the root id, parent of the OUs"
    )
    management_account_id: AccountId
    home_region: Region = "us-east-1"
    tooling: Account
    tooling_region: Region
    adopt_existing_accounts: bool = Field(
        default=False,
        description="True when the member accounts already exist: the org stack then does not create them.",
    )
    # S3 Object Lock keeps the trail at most 100 years; 90 days is this project's floor for audit.
    cloudtrail_retention_days: int = Field(
        default=365, ge=90, le=36500, description="organization trail retention in days"
    )


class Network(Strict):
    vpc_cidr: ipaddress.IPv4Network
    max_azs: int = Field(ge=2, le=3, description="EKS needs subnets in at least two zones")
    availability_zones: list[str] | None = Field(
        default=None,
        description="AZ names; default: the region's first letters. Named here because synth never looks them up.",
    )
    nat_gateways: int = Field(ge=1, le=3, description="private subnets reach the internet through NAT gateways")
    flow_log_retention_days: int = 365

    @field_validator("vpc_cidr")
    @classmethod
    def _range(cls, v: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
        if not any(v.subnet_of(block) for block in RFC1918):
            raise Problem(
                "",
                str(v),
                "not inside a private (RFC 1918) range",
                "use a range in 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16",
            )
        if v.prefixlen < network_layout.VPC_LARGEST_PREFIX:
            raise Problem(
                "",
                str(v),
                f"a VPC range is at most a /{network_layout.VPC_LARGEST_PREFIX}",
                f"use a /{network_layout.VPC_LARGEST_PREFIX} (e.g. {v.network_address}/{network_layout.VPC_LARGEST_PREFIX})",
            )
        return v

    @field_validator("flow_log_retention_days")
    @classmethod
    def _retention(cls, v: int) -> int:
        if v not in LOG_RETENTION_DAYS:
            raise Problem(
                "", v, "not a CloudWatch Logs retention period", f"one of {', '.join(map(str, LOG_RETENTION_DAYS))}"
            )
        return v

    @model_validator(mode="after")
    def _fits(self) -> Network:
        problems = []
        if self.nat_gateways > self.max_azs:
            problems.append(
                Problem(
                    "nat_gateways",
                    self.nat_gateways,
                    f"more than max_azs ({self.max_azs}): at most one NAT gateway per zone",
                    f"set nat_gateways to {self.max_azs} or less",
                )
            )
        if network_layout.plan(self.vpc_cidr, self.max_azs) is None:
            smallest = network_layout.smallest_vpc_prefix(self.max_azs)
            problems.append(
                Problem(
                    "vpc_cidr",
                    str(self.vpc_cidr),
                    f"too small for {self.max_azs} zones: each zone needs a /{network_layout.PUBLIC_PREFIX} public, "
                    f"a /{network_layout.POD_PREFIXES[-1]} or larger private (pod IPs) and a /{network_layout.DATABASE_PREFIX} database subnet",
                    f"use a /{smallest} or larger range (e.g. {self.vpc_cidr.network_address}/{smallest})"
                    + (", or lower max_azs" if self.max_azs > 2 else ""),
                )
            )
        _raise(problems)
        return self


def _storage_ceiling(allocated: int) -> int:
    return -(-allocated * (100 + RDS_AUTOSCALING_HEADROOM_PERCENT) // 100)


class Database(Strict):
    engine_version: str = SUPPORTED_POSTGRES_VERSIONS[0]
    instance_class: str
    allocated_storage_gib: int = Field(
        ge=RDS_STORAGE_GIB[0], le=RDS_STORAGE_GIB[1], description="RDS gp3 storage is 20-65536 GiB"
    )
    max_allocated_storage_gib: int = Field(
        ge=RDS_STORAGE_GIB[0], le=RDS_STORAGE_GIB[1], description="RDS gp3 storage is 20-65536 GiB"
    )
    multi_az: bool
    read_replicas: int = Field(ge=0, le=5, description="this project runs at most 5 read replicas")
    backup_retention_days: int = Field(
        ge=RDS_BACKUP_RETENTION_DAYS[0],
        le=RDS_BACKUP_RETENTION_DAYS[1],
        description="RDS keeps automated backups 1-35 days",
    )
    deletion_protection: bool

    @field_validator("engine_version")
    @classmethod
    def _engine(cls, v: str) -> str:
        if v not in SUPPORTED_POSTGRES_VERSIONS:
            raise Problem(
                "",
                v,
                "not a PostgreSQL version this project supports",
                f"one of {', '.join(SUPPORTED_POSTGRES_VERSIONS)}",
            )
        return v

    @field_validator("instance_class")
    @classmethod
    def _class(cls, v: str) -> str:
        if v not in RDS_INSTANCE_CLASSES:
            raise Problem(
                "",
                v,
                "unknown size: only Graviton classes are supported",
                f"e.g. db.r7g.large; one of {', '.join(sorted(RDS_INSTANCE_CLASSES))}",
            )
        return v

    @model_validator(mode="after")
    def _storage(self) -> Database:
        ceiling = _storage_ceiling(self.allocated_storage_gib)
        if self.max_allocated_storage_gib < ceiling:
            highest = RDS_STORAGE_GIB[1] * 100 // (100 + RDS_AUTOSCALING_HEADROOM_PERCENT)
            fix = (
                f"set it to {ceiling} or more"
                if ceiling <= RDS_STORAGE_GIB[1]
                else f"lower allocated_storage_gib to {highest} or less"
            )
            raise Problem(
                "max_allocated_storage_gib",
                self.max_allocated_storage_gib,
                f"RDS storage autoscaling needs a ceiling at least {RDS_AUTOSCALING_HEADROOM_PERCENT}% above "
                f"allocated_storage_gib ({self.allocated_storage_gib})",
                fix,
            )
        return self


class Cache(Strict):
    node_type: str
    replicas_per_shard: int = Field(ge=0, le=5, description="ElastiCache allows 0-5 replicas per shard")

    @field_validator("node_type")
    @classmethod
    def _node(cls, v: str) -> str:
        if v not in CACHE_NODE_TYPES:
            raise Problem(
                "",
                v,
                "unknown size: only Graviton node types are supported",
                f"one of {', '.join(sorted(CACHE_NODE_TYPES))}",
            )
        return v


# Burstable t4g stops at 2xlarge (https://aws.amazon.com/ec2/instance-types/t4/).
NODE_SIZES = {family: EC2_SIZES[:4] if family == "t4g" else EC2_SIZES for family in GRAVITON_NODE_FAMILIES}
NODE_INSTANCE_TYPES = frozenset(f"{family}.{size}" for family, sizes in NODE_SIZES.items() for size in sizes)


def _graviton(v: str) -> str:
    family, _, size = v.partition(".")
    if size not in NODE_SIZES.get(family, ()):
        raise Problem(
            "",
            v,
            "unknown size: nodes are arm64 (Graviton) of a supported family and size",
            f"e.g. m7g.large; families {', '.join(GRAVITON_NODE_FAMILIES)}, sizes {', '.join(EC2_SIZES)} (t4g up to 2xlarge)",
        )
    return v


NodeInstanceType = Annotated[str, AfterValidator(_graviton)]


class NodeGroup(Strict):
    instance_types: list[NodeInstanceType] = Field(min_length=1)
    min_size: int = Field(ge=0, le=NODE_GROUP_MAX_NODES, description="EKS managed node groups hold 0-450 nodes")
    max_size: int = Field(ge=1, le=NODE_GROUP_MAX_NODES, description="EKS managed node groups hold 1-450 nodes at most")
    desired_size: int = Field(ge=0, le=NODE_GROUP_MAX_NODES, description="EKS managed node groups hold 0-450 nodes")

    @model_validator(mode="after")
    def _bounds(self) -> NodeGroup:
        problems = []
        if self.min_size > self.max_size:
            problems.append(
                Problem(
                    "min_size", self.min_size, f"above max_size ({self.max_size})", "lower min_size or raise max_size"
                )
            )
        elif not self.min_size <= self.desired_size <= self.max_size:
            problems.append(
                Problem(
                    "desired_size",
                    self.desired_size,
                    f"outside min_size..max_size ({self.min_size}..{self.max_size})",
                    f"set desired_size between {self.min_size} and {self.max_size}",
                )
            )
        duplicates = sorted({t for t in self.instance_types if self.instance_types.count(t) > 1})
        if duplicates:
            problems.append(
                Problem(
                    "instance_types",
                    self.instance_types,
                    f"{duplicates[0]} is listed twice",
                    "list each instance type once",
                )
            )
        _raise(problems)
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
    fargate_namespaces: list[str] = Field(
        default_factory=list,
        max_length=FARGATE_SELECTORS,
        description="one Fargate profile takes at most 5 namespace selectors",
    )
    velero_daily_retention_days: int = Field(default=30, ge=1, description="days Velero keeps daily backups")
    velero_hourly: bool = False

    @field_validator("kubernetes_version")
    @classmethod
    def _version(cls, v: str) -> str:
        if v not in SUPPORTED_KUBERNETES_VERSIONS:
            raise Problem(
                "",
                v,
                "not a Kubernetes version in EKS standard support here",
                f"one of {', '.join(SUPPORTED_KUBERNETES_VERSIONS)}",
            )
        return v

    @field_validator("public_access_cidrs")
    @classmethod
    def _public(cls, v: list[ipaddress.IPv4Network]) -> list[ipaddress.IPv4Network]:
        for cidr in v:
            if any(cidr.subnet_of(block) for block in NOT_ROUTABLE):
                raise Problem(
                    "",
                    str(cidr),
                    "the public endpoint is reached from public addresses only; EKS refuses private ranges here",
                    "list your office or VPN egress ranges, or leave it empty for a private endpoint",
                )
        return v

    @field_validator("admin_role_arns")
    @classmethod
    def _arns(cls, v: list[str]) -> list[str]:
        for arn in v:
            if not re.match(r"^arn:aws:iam::\d{12}:role/[\w+=,.@/-]+$", arn):
                raise Problem("", arn, "not an IAM role ARN", "arn:aws:iam::ACCOUNT:role/NAME")
        return v

    @field_validator("fargate_namespaces")
    @classmethod
    def _namespaces(cls, v: list[str]) -> list[str]:
        for ns in v:
            if not _K8S_NAMESPACE.match(ns):
                raise Problem(
                    "",
                    ns,
                    "not a Kubernetes namespace name (lower-case letters, digits, '-', at most 63)",
                    "e.g. batch-jobs",
                )
        if len(set(v)) != len(v):
            raise Problem("", v, "a namespace is listed twice", "list each namespace once")
        return v

    @field_validator("spot_nodes")
    @classmethod
    def _diverse(cls, v: NodeGroup) -> NodeGroup:
        if len(v.instance_types) < 2:
            raise Problem(
                "instance_types",
                v.instance_types,
                "a spot node group needs at least two instance types to survive capacity reclaims",
                "add another type, e.g. m6g.large",
            )
        return v


class Recovery(Strict):
    rpo_minutes: int = Field(
        ge=RDS_LOG_UPLOAD_MINUTES,
        description="most data loss tolerated; RDS ships transaction logs every 5 minutes, so no backup is fresher",
    )
    rto_minutes: int = Field(ge=1, description="Longest outage tolerated.")


class Storage(Strict):
    waf_rate_limit_per_5min: int = Field(
        default=2000,
        ge=WAF_RATE_LIMIT[0],
        le=WAF_RATE_LIMIT[1],
        description="WAF rate-based rules limit 10-2,000,000,000 requests",
    )
    archive_after_days: int = Field(
        default=90,
        ge=ARCHIVE_ACCESS_DAYS[0],
        le=ARCHIVE_ACCESS_DAYS[1],
        description="S3 Intelligent-Tiering Archive Access starts after 90-730 days",
    )
    deep_archive_after_days: int = Field(
        default=180,
        ge=DEEP_ARCHIVE_ACCESS_DAYS[0],
        le=DEEP_ARCHIVE_ACCESS_DAYS[1],
        description="S3 Intelligent-Tiering Deep Archive Access starts after 180-730 days",
    )
    noncurrent_version_expiry_days: int = Field(
        default=90, ge=1, description="S3 expires noncurrent versions after 1 day at the earliest"
    )

    @model_validator(mode="after")
    def _tier_order(self) -> Storage:
        if self.deep_archive_after_days <= self.archive_after_days:
            raise Problem(
                "deep_archive_after_days",
                self.deep_archive_after_days,
                f"S3 Intelligent-Tiering moves objects to Deep Archive after Archive (archive_after_days is {self.archive_after_days})",
                f"set it above {self.archive_after_days}, or lower archive_after_days",
            )
        return self


class OAuthProvider(Strict):
    name: Literal["google", "github", "gitlab", "azure", "apple", "bitbucket", "discord", "keycloak", "slack_oidc"]
    client_id: str = Field(min_length=3, description="the OAuth client id of the provider's app")
    secret_name: SecretName = Field(description="Secrets Manager name holding the client secret.")


_URL = re.compile(r"^https://[a-z0-9.-]+(:\d{1,5})?(/\S*)?$", re.IGNORECASE)


class Auth(Strict):
    site_url: str
    additional_redirect_urls: list[str] = Field(default_factory=list)
    disable_signup: bool = False
    password_min_length: int = Field(
        default=12,
        ge=8,
        le=PASSWORD_MAX_LENGTH,
        description="GoTrue compares at most 72 bytes (bcrypt); this project asks for 8 or more",
    )
    jwt_expiry_seconds: int = Field(default=3600, ge=300, le=86400, description="tokens live 5 minutes to 1 day")
    smtp_sender: Email
    saml_enabled: bool = False
    oauth_providers: list[OAuthProvider] = Field(default_factory=list)
    # On by default so clients built with the anon/service_role JWTs keep working; upstream
    # deprecates them at the end of 2026. Off, Kong refuses them and no verifier accepts HS256.
    legacy_api_keys: StrictBool = Field(
        default=True,
        description="keep the legacy HS256 anon/service_role keys beside the sb_publishable_/sb_secret_ keys",
    )

    @field_validator("site_url")
    @classmethod
    def _https(cls, v: str) -> str:
        if not _URL.match(v):
            raise Problem("", v, "not an https:// URL", "the public URL of your app, e.g. https://app.example.com")
        return v

    @field_validator("oauth_providers")
    @classmethod
    def _one_each(cls, v: list[OAuthProvider]) -> list[OAuthProvider]:
        names = [p.name for p in v]
        for name in names:
            if names.count(name) > 1:
                raise Problem(
                    "",
                    name,
                    "GoTrue takes one configuration per provider; this one is listed twice",
                    "keep one entry per provider",
                )
        return v


class Observability(Strict):
    metrics_retention_days: int = Field(default=15, ge=1, description="days Prometheus keeps samples")
    metrics_storage_gib: int = Field(default=50, ge=10, description="Prometheus volume size")
    tracing_sample_ratio: float = Field(default=0.1, ge=0, le=1, description="a ratio of traces between 0 and 1")
    slack_webhook_secret_name: SecretName | None = None
    pagerduty_secret_name: SecretName | None = None
    log_retention_days: int = Field(
        default=30, description="days CloudWatch Logs keeps every pod's stdout/stderr (the containers log group)"
    )
    # Upstream's optional analytics backend (Logflare) behind Studio's Logs pages. Not deployed by
    # this platform: the loader refuses `true` until it is, so Studio never offers empty log pages.
    studio_log_explorer: bool = False

    @field_validator("log_retention_days")
    @classmethod
    def _log_retention(cls, v: int) -> int:
        if v not in LOG_RETENTION_DAYS:
            raise Problem(
                "", v, "not a CloudWatch Logs retention period", f"one of {', '.join(map(str, LOG_RETENTION_DAYS))}"
            )
        return v

    @field_validator("studio_log_explorer")
    @classmethod
    def _studio_logs(cls, v: bool) -> bool:
        if v:
            raise Problem(
                "",
                v,
                "Studio's log explorer needs upstream's Logflare analytics backend, which this platform does not "
                "deploy yet",
                "leave it false; every service's logs are in the CloudWatch Logs group "
                "/aws/eks/<cluster>/containers with saved Logs Insights queries (README: Operating the platform)",
            )
        return v


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
    hosted_zone_id: str = Field(
        pattern=r"^Z[A-Z0-9]{4,32}$",
        examples=["Z0123456789ABCDEFGHIJ"],
        description="the public hosted zone of domain_name (Route 53 console)",
    )
    alert_email: Email
    monthly_budget_usd: int = Field(ge=1, description="AWS Budgets needs a positive amount")
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
                raise Problem(
                    "",
                    flag,
                    "AppConfig flag keys here are snake_case: a-z first, then a-z, 0-9, _ (2-64)",
                    "rename it, e.g. read_replica_routing",
                )
        return v

    @property
    def availability_zones(self) -> list[str]:
        return self.network.availability_zones or [
            f"{self.region}{letter}" for letter in ZONES[self.region].letters[: self.network.max_azs]
        ]

    @model_validator(mode="after")
    def _region_facts(self) -> Environment:
        problems = []
        zones = ZONES[self.region]
        letters = ", ".join(f"{self.region}{letter}" for letter in zones.letters)
        named = self.network.availability_zones
        if named is None:
            if zones.ambiguous:
                problems.append(
                    Problem(
                        "network.availability_zones",
                        None,
                        f"{self.region}'s zone letters differ between accounts ({zones.per_account} of {letters})",
                        "list this account's zones (aws ec2 describe-availability-zones)",
                    )
                )
            elif zones.per_account < self.network.max_azs:
                problems.append(
                    Problem(
                        "network.max_azs",
                        self.network.max_azs,
                        f"{self.region} has only {zones.per_account} zones in an account",
                        f"set max_azs to {zones.per_account}, or choose another region",
                    )
                )
        else:
            if len(named) > zones.per_account:
                problems.append(
                    Problem(
                        "network.availability_zones",
                        named,
                        f"{self.region} has only {zones.per_account} zones in an account",
                        f"set max_azs to {zones.per_account} and name that many zones, or choose another region",
                    )
                )
            if len(named) != self.network.max_azs:
                problems.append(
                    Problem(
                        "network.availability_zones",
                        named,
                        f"lists {len(named)} zones but max_azs is {self.network.max_azs}",
                        "make them agree",
                    )
                )
            for zone in named:
                if not (zone.startswith(self.region) and zone[len(self.region) :] in tuple(zones.letters)):
                    problems.append(
                        Problem("network.availability_zones", zone, f"not a zone of {self.region}", f"one of {letters}")
                    )
            if len(set(named)) != len(named):
                problems.append(
                    Problem(
                        "network.availability_zones",
                        named,
                        "a zone is listed twice; each zone takes one subnet per tier",
                        f"name {self.network.max_azs} different zones",
                    )
                )
        if self.dr_region == self.region:
            problems.append(
                Problem(
                    "dr_region",
                    self.dr_region,
                    "equals region: a regional outage would take both",
                    "choose a second region for disaster recovery",
                )
            )
        graviton4 = [
            (path, size)
            for path, size in [("database.instance_class", self.database.instance_class)]
            + [
                (f"cluster.{g}.instance_types", t)
                for g in ("system_nodes", "app_nodes", "spot_nodes")
                for t in getattr(self.cluster, g).instance_types
            ]
            if any(f"{family}." in size for family in GRAVITON4_FAMILIES)
        ]
        if self.region not in GRAVITON4_REGIONS:
            for path, size in graviton4:
                problems.append(
                    Problem(
                        path,
                        size,
                        f"Graviton4 ({'/'.join(GRAVITON4_FAMILIES)}) is not confirmed in {self.region}",
                        f"use the 7g family (e.g. {size.replace('8g.', '7g.')}), or a region in {', '.join(sorted(GRAVITON4_REGIONS))}",
                    )
                )
        problems += self._not_offered()
        _raise(problems)
        return self

    def _not_offered(self) -> list[Problem]:
        """Sizes of a family the service does not offer where this environment puts them; the
        database's class also in dr_region, where a restore launches the same class."""
        placed = [
            (
                "database.instance_class",
                self.database.instance_class,
                RDS_INSTANCE_CLASSES,
                RDS_POSTGRES_FAMILIES_NOT_OFFERED,
                "RDS for PostgreSQL",
                (self.region, self.dr_region),
            ),
            (
                "cache.node_type",
                self.cache.node_type,
                CACHE_NODE_TYPES,
                ELASTICACHE_FAMILIES_NOT_OFFERED,
                "ElastiCache",
                (self.region,),
            ),
        ] + [
            (f"cluster.{g}.instance_types", t, NODE_INSTANCE_TYPES, EC2_FAMILIES_NOT_OFFERED, "EC2", (self.region,))
            for g in ("system_nodes", "app_nodes", "spot_nodes")
            for t in getattr(self.cluster, g).instance_types
        ]
        problems = []
        for path, size, allowed, not_offered, service, regions in placed:
            lacking = [r for r in regions if family(size) in not_offered.get(r, ())]
            if not lacking:
                continue

            def fits(other: str, regions: tuple[str, ...] = regions, not_offered=not_offered) -> bool:
                return all(
                    family(other) not in not_offered.get(r, ())
                    and (r in GRAVITON4_REGIONS or family(other) not in GRAVITON4_FAMILIES)
                    for r in regions
                )

            # The same size of another family, one of the same kind (r, m, c, t) first; else every
            # size that fits.
            same_size = sorted(
                (o for o in allowed if o.rsplit(".", 1)[1] == size.rsplit(".", 1)[1] and fits(o)),
                key=lambda o: (family(o)[0] != family(size)[0], o),
            )
            instead = same_size[0] if same_size else f"one of {', '.join(sorted(o for o in allowed if fits(o)))}"
            problems.append(
                Problem(
                    path,
                    size,
                    f"{service} does not offer the {family(size)} family in {' and '.join(lacking)}"
                    + (" (dr_region: a restore launches the same class)" if self.dr_region in lacking else ""),
                    f"use {instead}, or a region whose {service} offers {family(size)}",
                )
            )
        return problems

    @model_validator(mode="after")
    def _production_grade(self) -> Environment:
        if not self.production:
            return self
        fix = "set it, or mark the environment production: false"
        problems = []
        if not self.database.multi_az:
            problems.append(
                Problem("database.multi_az", False, "a production environment needs a standby in a second zone", fix)
            )
        if not self.database.deletion_protection:
            problems.append(
                Problem(
                    "database.deletion_protection", False, "a production database must be protected from deletion", fix
                )
            )
        if self.database.read_replicas < 1:
            problems.append(
                Problem("database.read_replicas", self.database.read_replicas, "production needs at least 1", fix)
            )
        if self.database.backup_retention_days < RDS_BACKUP_RETENTION_DAYS[1]:
            problems.append(
                Problem(
                    "database.backup_retention_days",
                    self.database.backup_retention_days,
                    f"production keeps backups {RDS_BACKUP_RETENTION_DAYS[1]} days",
                    fix,
                )
            )
        if self.cache.replicas_per_shard < 1:
            problems.append(
                Problem(
                    "cache.replicas_per_shard",
                    self.cache.replicas_per_shard,
                    "production needs at least 1 (automatic failover)",
                    fix,
                )
            )
        if self.network.max_azs < 3:
            problems.append(Problem("network.max_azs", self.network.max_azs, "production spans 3 zones", fix))
        if self.network.nat_gateways < self.network.max_azs:
            problems.append(
                Problem(
                    "network.nat_gateways", self.network.nat_gateways, "production has one NAT gateway per zone", fix
                )
            )
        if not self.features.gatekeeper_enforce:
            problems.append(
                Problem("features.gatekeeper_enforce", False, "production denies non-compliant objects", fix)
            )
        _raise(problems)
        return self


class Pipeline(Strict):
    # Connections are global and may be shared from another account, so neither the region nor
    # the account in the ARN has to match the tooling account's.
    # https://docs.aws.amazon.com/dtconsole/latest/userguide/welcome-connections-how-it-works-global.html
    connection_arn: str = Field(
        pattern=r"^arn:aws:(codeconnections|codestar-connections):[a-z0-9-]+:\d{12}:connection/[0-9a-f-]{36}$",
        examples=["arn:aws:codeconnections:us-east-1:222222222222:connection/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"],
        description="a CodeConnections connection ARN",
    )
    repository: str = Field(
        pattern=r"^[\w.-]+/[\w.-]+$",
        examples=["example-org/supabase-on-aws"],
        description="owner/name of the repository",
    )
    branch: str = Field(default="main", min_length=1)
    promotion_order: list[str] = Field(min_length=1, description="Environments the pipeline deploys, in order.")


class OrgConfig(Strict):
    project: str = Field(
        min_length=3,
        max_length=21,
        pattern=PROJECT_PATTERN,
        examples=["supabase"],
        description="lower-case letters, digits and single hyphens, 3-21 characters; it prefixes AWS names",
    )
    organization: Organization
    environments: dict[str, Environment] = Field(min_length=1)
    pipeline: Pipeline

    @field_validator("environments")
    @classmethod
    def _names(cls, v: dict[str, Environment]) -> dict[str, Environment]:
        for name in v:
            if not _ENV_NAME.match(name):
                raise Problem(
                    name,
                    name,
                    "environment names are 2-12 lower-case letters and digits, starting with a letter",
                    "rename it, e.g. staging",
                )
            if name in RESERVED_ENVIRONMENT_NAMES:
                raise Problem(
                    name,
                    name,
                    f"the names {', '.join(RESERVED_ENVIRONMENT_NAMES)} belong to the organization-level stacks",
                    "rename the environment, e.g. orgprod",
                )
        return v

    @model_validator(mode="after")
    def _unique(self) -> OrgConfig:
        """AWS refuses a second account with the same root e-mail, a second CloudFront alias for a
        domain, and two accounts cannot both own one hosted zone; shared accounts break isolation."""
        org = self.organization
        facts = {
            "account id": [
                ("organization.management_account_id", org.management_account_id),
                ("organization.tooling.id", org.tooling.id),
            ]
            + [(f"environments.{n}.account.id", e.account.id) for n, e in self.environments.items()],
            "account e-mail": [("organization.tooling.email", org.tooling.email)]
            + [(f"environments.{n}.account.email", e.account.email) for n, e in self.environments.items()],
            "account name": [("organization.tooling.name", org.tooling.name)]
            + [(f"environments.{n}.account.name", e.account.name) for n, e in self.environments.items()],
            "domain name": [(f"environments.{n}.domain_name", e.domain_name) for n, e in self.environments.items()],
            "hosted zone": [
                (f"environments.{n}.hosted_zone_id", e.hosted_zone_id) for n, e in self.environments.items()
            ],
        }
        problems = []
        for fact, owners in facts.items():
            seen: dict[str, str] = {}
            for path, value in owners:
                # E-mail addresses and domains are compared case-insensitively, as AWS does.
                key = value.lower()
                if key in seen:
                    problems.append(
                        Problem(
                            path,
                            value,
                            f"this {fact} is already used by {seen[key]}",
                            f"give every account and environment its own {fact}",
                        )
                    )
                seen.setdefault(key, path)
        items = list(self.environments.items())
        for i, (a, ea) in enumerate(items):
            for b, eb in items[i + 1 :]:
                if ea.network.vpc_cidr.overlaps(eb.network.vpc_cidr):
                    problems.append(
                        Problem(
                            f"environments.{b}.network.vpc_cidr",
                            str(eb.network.vpc_cidr),
                            f"overlaps environments.{a}.network.vpc_cidr {ea.network.vpc_cidr}",
                            "give each environment its own range so the VPCs can be peered or share a transit gateway",
                        )
                    )
        _raise(problems)
        return self

    @model_validator(mode="after")
    def _pipeline(self) -> OrgConfig:
        problems = []
        order = self.pipeline.promotion_order
        for i, name in enumerate(order):
            if name not in self.environments:
                problems.append(
                    Problem(
                        f"pipeline.promotion_order.{i}",
                        name,
                        "not an environment of this config",
                        f"one of {', '.join(sorted(self.environments))}",
                    )
                )
            elif order.index(name) != i:
                problems.append(
                    Problem(
                        f"pipeline.promotion_order.{i}",
                        name,
                        "listed twice: a stage deploys once per run",
                        "list it once",
                    )
                )
        production = [i for i, n in enumerate(order) if n in self.environments and self.environments[n].production]
        if production and any(
            n in self.environments and not self.environments[n].production for n in order[production[0] :]
        ):
            problems.append(
                Problem(
                    "pipeline.promotion_order",
                    order,
                    "a non-production environment is promoted after production",
                    "put production environments last",
                )
            )
        _raise(problems)
        return self

    @property
    def regions(self) -> list[str]:
        """Every region the organization may use (SCP allow list and bootstrap targets)."""
        found = {self.organization.home_region, self.organization.tooling_region, "us-east-1"}
        for env in self.environments.values():
            found.update((env.region, env.dr_region))
        return sorted(found)
