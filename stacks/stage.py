"""One cdk.Stage per environment: used by `cdk deploy ENV/*` and by the delivery pipeline."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from config import naming
from config.model import OrgConfig
from stacks.cluster_stack import ClusterStack
from stacks.cost_stack import CostStack
from stacks.data_stack import LOG_RETENTION_DAYS, DataStack
from stacks.dr_stack import DrStack
from stacks.edge_stack import EDGE_REGION, EdgeStack
from stacks.feature_flags_stack import FeatureFlagsStack
from stacks.network_stack import NetworkStack
from stacks.observability_stack import AlertsStack, ObservabilityStack
from stacks.platform_stack import PlatformStack
from stacks.security_stack import SecurityStack
from stacks.storage_stack import StorageStack


class EnvironmentStage(cdk.Stage):
    def __init__(self, scope: Construct, id_: str, *, cfg: OrgConfig, env_name: str, **kwargs) -> None:
        env = cfg.environments[env_name]
        super().__init__(scope, id_, env=cdk.Environment(account=env.account.id, region=env.region), **kwargs)
        self.env_name = env_name
        stateful = {"termination_protection": env.production}

        def name(unit: str) -> str:
            return naming.stack_name(env_name, unit)

        self.network = NetworkStack(
            self,
            "network",
            stack_name=name("network"),
            env_name=env_name,
            env_config=env,
            description=f"{cfg.project} {env_name}: VPC, flow logs, endpoints",
            **stateful,
        )
        # The DR region deploys first and on its own: the primary-region stacks read its key
        # through cross-region references, and it must outlive the primary region.
        self.dr = DrStack(
            self,
            "dr",
            stack_name=name("dr"),
            cfg=cfg,
            env_name=env_name,
            env=cdk.Environment(account=env.account.id, region=env.dr_region),
            cross_region_references=True,
            description=f"{cfg.project} {env_name}: DR-region key, backup vault, replica buckets",
            **stateful,
        )
        self.data = DataStack(
            self,
            "data",
            stack_name=name("data"),
            cfg=cfg,
            env_name=env_name,
            vpc=self.network.vpc,
            dr_key=self.dr.key,
            dr_backup_vault=self.dr.backup_vault,
            description=f"{cfg.project} {env_name}: RDS PostgreSQL and replicas, Valkey, secrets, backups, private DNS",
            **stateful,
        )
        self.edge = (
            EdgeStack(
                self,
                "edge",
                stack_name=name("edge"),
                cfg=cfg,
                env_name=env_name,
                env=cdk.Environment(account=env.account.id, region=EDGE_REGION),
                cross_region_references=True,
                description=f"{cfg.project} {env_name}: CloudFront certificate and web ACL (us-east-1)",
            )
            if env.features.cloudfront
            else None
        )
        self.storage = StorageStack(
            self,
            "storage",
            stack_name=name("storage"),
            cfg=cfg,
            env_name=env_name,
            dr=self.dr,
            edge=self.edge,
            cross_region_references=True,
            description=f"{cfg.project} {env_name}: storage and Velero buckets with CRR, CloudFront, WAF",
            **stateful,
        )
        # The topic has its own stack so that everything publishing to it (cluster, platform,
        # observability, cost, security) can depend on it without a cycle.
        self.alerts = AlertsStack(
            self,
            "alerts",
            stack_name=name("alerts"),
            cfg=cfg,
            env_name=env_name,
            description=f"{cfg.project} {env_name}: alerts SNS topic",
        )
        alerts_topic = self.alerts.alerts_topic
        self.cluster = ClusterStack(
            self,
            "cluster",
            stack_name=name("cluster"),
            cfg=cfg,
            env_name=env_name,
            vpc=self.network.vpc,
            db_security_group=self.data.db_security_group,
            cache_security_group=self.data.cache_security_group,
            storage_bucket=self.storage.bucket,
            storage_bucket_key=self.storage.bucket_key,
            description=f"{cfg.project} {env_name}: EKS cluster, node groups, EKS add-ons, pod identities",
        )
        self.platform = PlatformStack(
            self,
            "platform",
            stack_name=name("platform"),
            cfg=cfg,
            env_name=env_name,
            cluster=self.cluster.cluster,
            vpc_id=self.network.vpc.vpc_id,
            certificate_arn=self.storage.certificate_arn,
            regional_web_acl_arn=self.storage.regional_web_acl_arn,
            storage_bucket=self.storage.bucket,
            velero_bucket=self.storage.velero_bucket,
            data_key=self.data.data_key,
            alerts_topic_arn=alerts_topic.topic_arn,
            description=f"{cfg.project} {env_name}: controllers (Helm) and Kubernetes manifests (cdk8s)",
        )
        self.platform.add_stack_dependency(self.cluster)
        self.observability = ObservabilityStack(
            self,
            "observability",
            stack_name=name("observability"),
            cfg=cfg,
            env_name=env_name,
            alerts_topic=alerts_topic,
            vpc=self.network.vpc,
            db_instance=self.data.db_instance,
            read_replicas=self.data.read_replicas,
            cache_replication_group=self.data.cache.replication_group,
            distribution=self.storage.distribution,
            cluster_log_group=self.cluster.eks.log_group,
            spot_nodegroup_name=self.cluster.eks.nodegroups["spot"].nodegroup_name,
            log_key=self.data.data_key,
            log_retention_days=LOG_RETENTION_DAYS[cfg.environments[env_name].production],
            description=f"{cfg.project} {env_name}: CloudWatch alarms, backup failure rules, dashboard, FIS failover drills",
        )
        self.cost = CostStack(
            self,
            "cost",
            stack_name=name("cost"),
            cfg=cfg,
            env_name=env_name,
            alerts_topic=alerts_topic,
            description=f"{cfg.project} {env_name}: budget and cost anomaly detection",
        )
        self.security = SecurityStack(
            self,
            "security",
            stack_name=name("security"),
            cfg=cfg,
            env_name=env_name,
            alerts_topic=alerts_topic,
            vpc=self.network.vpc,
            cluster=self.cluster.cluster,
            description=f"{cfg.project} {env_name}: GuardDuty, Security Hub, Config, Inspector, incident response",
            **stateful,
        )
        self.feature_flags = FeatureFlagsStack(
            self,
            "flags",
            stack_name=name("flags"),
            cfg=cfg,
            env_name=env_name,
            description=f"{cfg.project} {env_name}: release flags (AWS AppConfig, gradual rollout)",
        )
        for stack in self.node.children:
            if isinstance(stack, cdk.Stack):
                cdk.Tags.of(stack).add("project", cfg.project)
                cdk.Tags.of(stack).add("environment", env_name)
