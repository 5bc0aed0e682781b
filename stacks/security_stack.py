"""One environment account's security baseline and its incident-response wiring.

Depends on the alerts stack (topic), the network stack (VPC) and the cluster stack (the EKS
cluster the response acts on: its access entry, RBAC and API security group rule are
created here); none of them depends on this stack.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_sns as sns
from constructs import Construct

from config.model import OrgConfig
from constructs_lib.incident_response import IncidentResponse, falco_queue_name
from constructs_lib.security_baseline import SecurityBaseline

# Config has no log retention for operational functions yet: a year covers an incident review.
FUNCTION_LOG_RETENTION_DAYS = 365


class SecurityStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cfg: OrgConfig,
        env_name: str,
        alerts_topic: sns.ITopic,
        vpc: ec2.IVpc,
        cluster: eks.ICluster,
        **kwargs,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        env = cfg.environments[env_name]
        name = f"{cfg.project}-{env_name}"
        self.baseline = SecurityBaseline(
            self,
            "Baseline",
            name=name,
            # Global resource types (IAM) are recorded once per account: in the home region.
            include_global_resources=env.region == cfg.organization.home_region,
            audit_retention_days=cfg.organization.cloudtrail_retention_days,
            log_retention_days=FUNCTION_LOG_RETENTION_DAYS,
            production=env.production,
        )
        self.incident_response = IncidentResponse(
            self,
            "IncidentResponse",
            name=name,
            cluster=cluster,
            cluster_security_group_id=cluster.cluster_security_group_id,
            topic=alerts_topic,
            vpc=vpc,
            falco_queue=falco_queue_name(cfg.project, env_name),
            log_retention_days=FUNCTION_LOG_RETENTION_DAYS,
        )
