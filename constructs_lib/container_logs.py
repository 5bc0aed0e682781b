"""Where every pod's stdout/stderr lands: one KMS-encrypted CloudWatch Logs group per cluster,
with the environment's retention and the saved Logs Insights queries for common incidents.

Fluent Bit on the nodes (constructs_lib/addons/fluent_bit.py) and Fargate's built-in log router
(the aws-logging ConfigMap, k8s_charts/base) are the only writers; `writer_statements` is the
grant both get, on this one group.
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from config import naming
from constructs_lib.log_keys import admit_cloudwatch_logs
from constructs_lib.retention import retention
from k8s_charts.supabase.logs import SavedQuery

# What the cloudwatch_logs output of Fluent Bit and the Fargate log router call with
# auto_create_group off (https://docs.fluentbit.io/manual/pipeline/outputs/cloudwatch, and
# https://docs.aws.amazon.com/eks/latest/userguide/fargate-logging.html for Fargate).
WRITER_ACTIONS = ("logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents")


def log_group_arn(*, partition: str, region: str, account: str, cluster: str) -> str:
    return f"arn:{partition}:logs:{region}:{account}:log-group:{naming.container_log_group(cluster)}"


def writer_statements(group_arn: str) -> list[iam.PolicyStatement]:
    """Create streams in, and write to, the containers log group only."""
    return [iam.PolicyStatement(sid="WriteContainerLogs", actions=list(WRITER_ACTIONS), resources=[f"{group_arn}:*"])]


WILDCARD_REASON = (
    "Log streams are named per pod and container at run time; the grant is every stream of the one "
    "containers log group (log-group:/aws/eks/<cluster>/containers:*)."
)


class ContainerLogs(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cluster_name: str,
        retention_days: int,
        queries: Sequence[SavedQuery],
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, id_)
        stack = cdk.Stack.of(self)
        self.log_group_name = naming.container_log_group(cluster_name)
        self.log_group_arn = log_group_arn(
            partition=stack.partition, region=stack.region, account=stack.account, cluster=cluster_name
        )
        self.key = kms.Key(
            self,
            "Key",
            description=f"{cluster_name} container logs",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        admit_cloudwatch_logs(self.key, log_group_arn=self.log_group_arn)
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            log_group_name=self.log_group_name,
            retention=retention(retention_days),
            encryption_key=self.key,
            removal_policy=removal_policy,
        )
        # Folders in the Logs Insights console: "<cluster>/<query>".
        self.queries = {
            q.name: logs.CfnQueryDefinition(
                self,
                f"Query-{q.name}",
                name=f"{cluster_name}/{q.name}",
                query_string=q.render(),
                log_group_names=[self.log_group_name],
            )
            for q in queries
        }
        for query in self.queries.values():
            query.node.add_dependency(self.log_group)
