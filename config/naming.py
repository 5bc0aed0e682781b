"""Deterministic names shared by the CDK stacks and the Kubernetes charts.

Both sides derive names from config through these functions, so a chart never needs a value
looked up from AWS to find a bucket, a secret or a database host.
"""

from __future__ import annotations

from config.model import Environment, OrgConfig, Problem

EXECUTION_POLICY_NAME = "supabase-cdk-execution"


def execution_policy_arn(account_id: str) -> str:
    """Managed policy `cdk bootstrap` gives CloudFormation in a member account (deploy-access stack)."""
    return f"arn:aws:iam::{account_id}:policy/{EXECUTION_POLICY_NAME}"


def stack_name(env_name: str, unit: str) -> str:
    return f"{env_name}-{unit}"


def cluster_name(cfg: OrgConfig, env_name: str) -> str:
    return f"{cfg.project}-{env_name}"


def container_log_group(cluster: str) -> str:
    """Every pod's stdout/stderr: Fluent Bit on the nodes and Fargate's log router write here."""
    return f"/aws/eks/{cluster}/containers"


def data_prefix(cfg: OrgConfig, env_name: str) -> str:
    return f"{cfg.project}-{env_name}"


def db_identifier(cfg: OrgConfig, env_name: str) -> str:
    return f"{data_prefix(cfg, env_name)}-db"


def cache_replication_group_id(cfg: OrgConfig, env_name: str) -> str:
    return f"{data_prefix(cfg, env_name)}-valkey"


def storage_bucket(cfg: OrgConfig, env_name: str) -> str:
    env = cfg.environments[env_name]
    return f"{cfg.project}-{env_name}-storage-{env.account.id}-{env.region}"


def replica_bucket(cfg: OrgConfig, env_name: str) -> str:
    env = cfg.environments[env_name]
    return f"{cfg.project}-{env_name}-storage-replica-{env.account.id}-{env.dr_region}"


def velero_bucket(cfg: OrgConfig, env_name: str) -> str:
    env = cfg.environments[env_name]
    return f"{cfg.project}-{env_name}-velero-{env.account.id}-{env.region}"


def velero_replica_bucket(cfg: OrgConfig, env_name: str) -> str:
    env = cfg.environments[env_name]
    return f"{cfg.project}-{env_name}-velero-replica-{env.account.id}-{env.dr_region}"


def access_log_bucket(cfg: OrgConfig, env_name: str, region: str) -> str:
    env = cfg.environments[env_name]
    return f"{cfg.project}-{env_name}-access-logs-{env.account.id}-{region}"


def bucket_objects_arn(bucket_name: str) -> str:
    """Literal object ARN: IAM grants across stacks name the bucket without a CloudFormation export."""
    return f"arn:aws:s3:::{bucket_name}/*"


def secret_prefix(cfg: OrgConfig, env_name: str) -> str:
    """Every secret of an environment lives under this prefix; IAM grants are scoped to it."""
    return f"{cfg.project}/{env_name}/"


def secret_name(cfg: OrgConfig, env_name: str, key: str) -> str:
    return f"{secret_prefix(cfg, env_name)}{key}"


def private_zone(cfg: OrgConfig, env_name: str) -> str:
    """Private hosted zone whose CNAMEs (db, db-ro, redis) front the data tier's endpoints.

    Clients use these stable names; after a restore or a DR failover only the CNAME moves.
    """
    return f"{env_name}.{cfg.project}.internal"


def db_host(cfg: OrgConfig, env_name: str) -> str:
    return f"db.{private_zone(cfg, env_name)}"


def db_read_host(cfg: OrgConfig, env_name: str) -> str:
    return f"db-ro.{private_zone(cfg, env_name)}"


def redis_host(cfg: OrgConfig, env_name: str) -> str:
    return f"redis.{private_zone(cfg, env_name)}"


def smoke_role_name(env_name: str) -> str:
    """Role in an environment's account that the pipeline's smoke tests assume (read the API keys)."""
    return f"{env_name}-smoke-tests"


def api_host(env: Environment) -> str:
    return f"api.{env.domain_name}"


def studio_host(env: Environment) -> str:
    return f"studio.{env.domain_name}"


class SecretKeys:
    """Keys under `secret_prefix` of every Secrets Manager secret the platform creates.

    The data stack creates them, External Secrets in the charts reads them; JSON field names
    are listed beside each.
    """

    JWT = "jwt"  # {"secret"}: signs every Supabase JWT, >= 40 characters
    API_KEYS = "api-keys"  # {"anon_key", "service_role_key", "metrics_token"}: minted by the custom resource
    DB_MASTER = "db/master"  # RDS master (supabase_admin): {"username", "password", "host", "port", "dbname"}
    REALTIME = "realtime"  # {"secret_key_base" (64), "db_enc_key" (16), "metrics_jwt_secret"}
    META = "meta"  # {"crypto_key"} (32+)
    DASHBOARD = "dashboard"  # {"username", "password"}: Studio basic auth at Kong
    SMTP = "smtp"  # {"username", "password", "host", "port"}: SES SMTP credentials
    REDIS = "redis"  # {"auth_token"}
    SAML = "saml"  # {"private_key"}: GoTrue's SAML signing key (PEM), only when auth.saml_enabled
    # One per database.roles.LOGIN_ROLES entry: db/<role> with {"username", "password"}.


# Length limits AWS puts on the names derived above.
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
S3_BUCKET_NAME_MAX = 63
# https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_CreateReplicationGroup.html
CACHE_REPLICATION_GROUP_ID_MAX = 40
# https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html (replicas add "-roN")
RDS_IDENTIFIER_MAX = 63 - len("-ro9")
# https://docs.aws.amazon.com/eks/latest/APIReference/API_CreateCluster.html
EKS_CLUSTER_NAME_MAX = 100


def check_derived_names(cfg: OrgConfig) -> list[Problem]:
    """Names built from project, environment, account and region must stay within AWS's limits."""
    problems = []
    for env_name, env in cfg.environments.items():
        names = [
            ("S3 bucket name", S3_BUCKET_NAME_MAX, n)
            for n in (
                storage_bucket(cfg, env_name),
                replica_bucket(cfg, env_name),
                velero_bucket(cfg, env_name),
                velero_replica_bucket(cfg, env_name),
                access_log_bucket(cfg, env_name, env.region),
                access_log_bucket(cfg, env_name, env.dr_region),
            )
        ] + [
            (
                "ElastiCache replication group id",
                CACHE_REPLICATION_GROUP_ID_MAX,
                cache_replication_group_id(cfg, env_name),
            ),
            ("RDS instance identifier", RDS_IDENTIFIER_MAX, db_identifier(cfg, env_name)),
            ("EKS cluster name", EKS_CLUSTER_NAME_MAX, cluster_name(cfg, env_name)),
        ]
        longest: dict[str, tuple[int, str]] = {}
        for what, limit, name in names:
            if len(name) > limit and len(name) - limit > longest.get(what, (0, ""))[0]:
                longest[what] = (len(name) - limit, name)
        for what, (excess, name) in longest.items():
            limit = len(name) - excess
            problems.append(
                Problem(
                    f"environments.{env_name}",
                    env_name,
                    f"the derived {what} {name} is {len(name)} characters, AWS allows {limit}",
                    f"shorten project ('{cfg.project}') or the environment name by {excess} characters together",
                )
            )
    return problems
