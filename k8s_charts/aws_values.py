"""Values the charts take from the AWS side, as one typed object.

The cluster stack fills it with CDK tokens; `make synth`'s manifest writer and the tests
fill it from config (see `from_config`), with readable stand-ins for the few values only
CloudFormation knows. Charts never import aws_cdk.
"""

from __future__ import annotations

from dataclasses import dataclass

from config import naming
from config.model import OrgConfig
from database.parameters import DATABASE_NAME


@dataclass(frozen=True, kw_only=True)
class AwsValues:
    project: str
    env_name: str
    account: str
    region: str
    dr_region: str
    vpc_cidr: str
    production: bool
    domain_name: str
    api_host: str
    studio_host: str
    cluster_name: str
    storage_bucket: str
    secret_prefix: str
    db_host: str
    db_read_host: str
    db_port: int
    db_name: str
    db_instance_class: str
    redis_host: str
    redis_port: int
    certificate_arn: str
    waf_acl_arn: str
    alerts_topic_arn: str
    kubernetes_version: str


def from_config(
    cfg: OrgConfig, env_name: str, *, certificate_arn: str | None = None, waf_acl_arn: str | None = None
) -> AwsValues:
    env = cfg.environments[env_name]
    partition_region = f"arn:aws:{{}}:{env.region}:{env.account.id}"
    return AwsValues(
        project=cfg.project,
        env_name=env_name,
        account=env.account.id,
        region=env.region,
        dr_region=env.dr_region,
        vpc_cidr=str(env.network.vpc_cidr),
        production=env.production,
        domain_name=env.domain_name,
        api_host=naming.api_host(env),
        studio_host=naming.studio_host(env),
        cluster_name=naming.cluster_name(cfg, env_name),
        storage_bucket=naming.storage_bucket(cfg, env_name),
        secret_prefix=naming.secret_prefix(cfg, env_name),
        db_host=naming.db_host(cfg, env_name),
        db_read_host=naming.db_read_host(cfg, env_name),
        db_port=5432,
        db_name=DATABASE_NAME,
        db_instance_class=env.database.instance_class,
        redis_host=naming.redis_host(cfg, env_name),
        redis_port=6379,
        certificate_arn=certificate_arn or partition_region.format("acm") + ":certificate/from-storage-stack",
        waf_acl_arn=waf_acl_arn or partition_region.format("wafv2") + ":regional/webacl/from-storage-stack",
        alerts_topic_arn=partition_region.format("sns") + f":{cfg.project}-{env_name}-alerts",
        kubernetes_version=env.cluster.kubernetes_version,
    )
