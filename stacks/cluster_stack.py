"""One environment's EKS cluster: control plane, Graviton/spot/Fargate capacity, EKS add-ons,
the workloads' Pod Identities and the cluster's way into the data tier.

Kubernetes objects and Helm controllers are applied by the platform stack, which depends on
this one.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from config import naming
from config.model import OrgConfig
from constructs_lib.addons.pod_identity import PodIdentity, wildcard_findings
from constructs_lib.container_logs import WILDCARD_REASON, ContainerLogs, writer_statements
from constructs_lib.eks_cluster import EksCluster
from constructs_lib.nag import acknowledge
from k8s_charts.aws_values import from_config
from k8s_charts.monitoring.objects import OBSERVABILITY_NAMESPACE
from k8s_charts.monitoring.tracing import OTEL_COLLECTOR
from k8s_charts.supabase.logs import saved_queries
from k8s_charts.supabase.props import SupabaseProps

SUPABASE_NAMESPACE = "supabase"
STORAGE_API_SERVICE_ACCOUNT = "storage"
DB_PORT = 5432
CACHE_PORT = 6379


class ClusterStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cfg: OrgConfig,
        env_name: str,
        vpc: ec2.IVpc,
        db_security_group: ec2.ISecurityGroup,
        cache_security_group: ec2.ISecurityGroup,
        storage_bucket: s3.IBucket,
        storage_bucket_key: kms.IKey,
        **kwargs,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        env = cfg.environments[env_name]
        self.cluster_name = naming.cluster_name(cfg, env_name)
        self.eks = EksCluster(
            self,
            "Eks",
            cluster_name=self.cluster_name,
            env_config=env,
            vpc=vpc,
            # No cluster log retention in config yet: keep control-plane logs as long as flow logs.
            log_retention_days=env.network.flow_log_retention_days,
            admin_role_arns=env.cluster.admin_role_arns,
        )
        self.cluster = self.eks.cluster
        self.log_group_name = self.eks.log_group.log_group_name
        self.container_logs = ContainerLogs(
            self,
            "ContainerLogs",
            cluster_name=self.cluster_name,
            retention_days=env.observability.log_retention_days,
            queries=saved_queries(SupabaseProps.from_config(cfg, env_name, from_config(cfg, env_name))),
            removal_policy=cdk.RemovalPolicy.RETAIN if env.production else cdk.RemovalPolicy.DESTROY,
        )
        if self.eks.fargate_profile is not None:
            # Fargate's log router runs with the pod execution role (EKS Fargate logging guide).
            statements = writer_statements(self.container_logs.log_group_arn)
            self.fargate_log_policy = iam.ManagedPolicy(
                self,
                "FargateLogPolicy",
                description=f"{self.cluster_name} Fargate log router: write to the containers log group",
                statements=statements,
                roles=[self.eks.fargate_profile.pod_execution_role],
            )
            acknowledge(
                self.fargate_log_policy.node.default_child, *wildcard_findings(self, statements, WILDCARD_REASON)
            )

        # Pods and nodes (managed node groups and Fargate) use the cluster security group. The
        # rules live here, on the data stack's groups by id, so the data stack never depends on this one.
        self.data_ingress: list[ec2.CfnSecurityGroupIngress] = []
        for group, port in ((db_security_group, DB_PORT), (cache_security_group, CACHE_PORT)):
            self.data_ingress.append(
                ec2.CfnSecurityGroupIngress(
                    self,
                    f"ClusterTo{port}",
                    group_id=group.security_group_id,
                    source_security_group_id=self.cluster.cluster_security_group_id,
                    ip_protocol="tcp",
                    from_port=port,
                    to_port=port,
                    description=f"EKS {self.cluster_name} pods and nodes to port {port}",
                )
            )

        self.workload_identities: dict[str, PodIdentity] = {}
        self.workload_identities["storage-api"] = PodIdentity(
            self,
            "StorageApiIdentity",
            cluster_name=self.cluster.cluster_name,
            cluster_arn=self.cluster.cluster_arn,
            namespace=SUPABASE_NAMESPACE,
            service_account=STORAGE_API_SERVICE_ACCOUNT,
            statements=[
                iam.PolicyStatement(
                    sid="ObjectReadWrite",
                    actions=[
                        "s3:GetObject",
                        "s3:PutObject",
                        "s3:DeleteObject",
                        "s3:AbortMultipartUpload",
                        "s3:ListMultipartUploadParts",
                    ],
                    resources=[naming.bucket_objects_arn(naming.storage_bucket(cfg, env_name))],
                ),
                iam.PolicyStatement(
                    sid="ListBucket",
                    actions=["s3:ListBucket", "s3:ListBucketMultipartUploads"],
                    resources=[storage_bucket.bucket_arn],
                ),
                iam.PolicyStatement(
                    sid="BucketKey",
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=[storage_bucket_key.key_arn],
                ),
            ],
            description="Supabase Storage API: objects of the storage bucket",
            wildcard_reason=(
                "Storage API object keys are user file paths chosen at run time; "
                "the grant is every object of the one storage bucket (arn:...:bucket/*)."
            ),
        )
        self.workload_identities["adot-collector"] = PodIdentity(
            self,
            "AdotCollectorIdentity",
            cluster_name=self.cluster.cluster_name,
            cluster_arn=self.cluster.cluster_arn,
            namespace=OBSERVABILITY_NAMESPACE,
            service_account=OTEL_COLLECTOR,
            statements=[
                iam.PolicyStatement(
                    sid="XRay",
                    actions=[
                        "xray:PutTraceSegments",
                        "xray:PutTelemetryRecords",
                        "xray:GetSamplingRules",
                        "xray:GetSamplingTargets",
                        "xray:GetSamplingStatisticSummaries",
                    ],
                    # X-Ray's data-plane APIs have no resource-level permissions.
                    resources=["*"],
                )
            ],
            description="ADOT collector: send traces to X-Ray",
            wildcard_reason=(
                "xray:PutTraceSegments/PutTelemetryRecords/GetSampling* support no "
                "resource-level permissions (Service Authorization Reference), so Resource must be *."
            ),
        )
