"""Automatic first response to runtime threats in the EKS cluster (ops/incident_response).

Detections in:
* GuardDuty findings of severity >= 7 (High, Critical) -> the alerts topic (people) and the
  function (it acts on EKS findings that name a pod, ignores the rest).
* Falco alerts of priority Critical and above: falcosidekick's SQS output puts them on the
  queue `falco_queue_name`; an EventBridge Pipe moves each message body onto the default bus
  as source FALCO_EVENT_SOURCE / detail-type FALCO_DETAIL_TYPE; a rule sends them to the
  function. Falcosidekick already notifies the alerts topic itself, so this rule does not.

Response out: the function labels the pod quarantined, ensures the namespace's deny-all
`quarantine` NetworkPolicy and publishes a summary to the alerts topic.

Kubernetes access: an EKS access entry maps the function's role to the Kubernetes group
K8S_GROUP, which a ClusterRole (applied here through the cluster's kubectl provider) allows
exactly `patch` on pods and `get`/`create`/`update` on NetworkPolicies. Namespace-scoped
AmazonEKSEditPolicy was the alternative; it would also grant secrets, deployments and
more, and only in the namespaces listed when deploying, while the function may have to
isolate a pod in any namespace but the protected ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_pipes as pipes
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from constructs_lib.checkov import skip
from constructs_lib.log_keys import admit_cloudwatch_logs
from constructs_lib.nag import acknowledge, acknowledge_unreserved_concurrency
from constructs_lib.retention import retention
from ops.incident_response.handler import (
    DEFAULT_PROTECTED_NAMESPACES,
    FALCO_DETAIL_TYPE,
    FALCO_EVENT_SOURCE,
    FALCO_PRIORITIES,
    GUARDDUTY_MIN_SEVERITY,
)

CODE_DIR = Path(__file__).resolve().parent.parent / "ops" / "incident_response"
K8S_GROUP = "supabase-incident-responders"
CLUSTER_ROLE = "supabase-incident-response"
# What ops/incident_response/handler.py's EksKubernetesClient calls, and nothing more.
RBAC_RULES = (
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["patch"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["get", "create", "update"]},
)
TIMEOUT = cdk.Duration.seconds(60)
EVENT_MAX_AGE = cdk.Duration.hours(2)
DLQ_RETENTION = cdk.Duration.days(14)
FALCO_QUEUE_MAX_RECEIVES = 5
VPC_POLICY = "arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"


def falco_queue_name(project: str, env_name: str) -> str:
    """Deterministic, so the Falco chart can build the queue URL from config alone."""
    return f"{project}-{env_name}-falco-events"


def rbac_manifests() -> list[dict]:
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": CLUSTER_ROLE, "labels": {"app.kubernetes.io/managed-by": "cdk"}},
            "rules": [dict(rule) for rule in RBAC_RULES],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": CLUSTER_ROLE, "labels": {"app.kubernetes.io/managed-by": "cdk"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": CLUSTER_ROLE},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": K8S_GROUP}],
        },
    ]


class IncidentResponse(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        cluster: eks.ICluster,
        cluster_security_group_id: str,
        topic: sns.ITopic,
        vpc: ec2.IVpc,
        falco_queue: str,
        log_retention_days: int,
        protected_namespaces: Sequence[str] = DEFAULT_PROTECTED_NAMESPACES,
    ) -> None:
        super().__init__(scope, id_)

        self.key = kms.Key(
            self,
            "Key",
            description=f"{name}: incident response logs and function settings",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.DESTROY,
            pending_window=cdk.Duration.days(7),
        )
        admit_cloudwatch_logs(self.key)
        # SQS-managed encryption: EventBridge, Lambda and falcosidekick write without a KMS grant.
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DLQ_RETENTION,
        )
        self.falco_queue = sqs.Queue(
            self,
            "FalcoQueue",
            queue_name=falco_queue,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=FALCO_QUEUE_MAX_RECEIVES
            ),
        )

        for queue in (self.dead_letter_queue, self.falco_queue):
            skip(
                queue.node.default_child,
                (
                    "CKV_AWS_27",
                    "encrypted at rest with SQS-managed SSE (SqsManagedSseEnabled: true); the check only recognises "
                    "KmsMasterKeyId",
                ),
            )

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            encryption_key=self.key,
            retention=retention(log_retention_days),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description="Incident response: find the cluster, report to the alerts topic",
            statements=[
                iam.PolicyStatement(
                    sid="FindCluster", actions=["eks:DescribeCluster"], resources=[cluster.cluster_arn]
                ),
                iam.PolicyStatement(sid="Report", actions=["sns:Publish"], resources=[topic.topic_arn]),
                iam.PolicyStatement(
                    sid="Logs",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[self.log_group.log_group_arn],
                ),
            ],
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            managed_policies=[self.policy],
            description=f"{name}: quarantine pods named by GuardDuty or Falco",
        )
        acknowledge(
            self.role,
            (
                f"AwsSolutions::AwsSolutions-IAM4[Policy::{VPC_POLICY}]",
                "AWS's policy for the ENIs of a VPC function; the function must be in the VPC to reach "
                "the cluster's private API endpoint",
            ),
        )

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            allow_all_outbound=False,
            description=f"{name}: incident response to the EKS API and the VPC interface endpoints",
        )
        self.security_group.add_egress_rule(
            ec2.Peer.ipv4(vpc.vpc_cidr_block),
            ec2.Port.tcp(443),
            "EKS private API endpoint and interface endpoints (EKS, SNS)",
        )
        self.api_ingress = ec2.CfnSecurityGroupIngress(
            self,
            "ToClusterApi",
            group_id=cluster_security_group_id,
            source_security_group_id=self.security_group.security_group_id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description=f"{name}: incident response function to the Kubernetes API",
        )

        self.function = lambda_.Function(
            self,
            "Function",
            description="Quarantines pods named by high-severity GuardDuty findings and critical Falco alerts",
            runtime=lambda_.Runtime.PYTHON_3_14,
            architecture=lambda_.Architecture.ARM_64,
            handler="handler.handler",
            code=lambda_.Code.from_asset(str(CODE_DIR), exclude=["__pycache__", "*.pyc"]),
            role=self.role,
            timeout=TIMEOUT,
            memory_size=256,
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            security_groups=[self.security_group],
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            dead_letter_queue=self.dead_letter_queue,
            max_event_age=EVENT_MAX_AGE,
            retry_attempts=2,
            environment={
                "TOPIC_ARN": topic.topic_arn,
                "CLUSTER_NAME": cluster.cluster_name,
                "PROTECTED_NAMESPACES": ",".join(protected_namespaces),
            },
            environment_encryption=self.key,
        )
        acknowledge(
            self.role.node.find_child("DefaultPolicy").node.default_child,
            (
                "NIST.800.53.R5::NIST.800.53.R5-IAMNoInlinePolicy",
                "CDK-generated grants of the function's own settings: X-Ray segments, sqs:SendMessage to its DLQ, "
                "kms:Decrypt of its environment key",
            ),
            (
                "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                "xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions",
            ),
        )
        acknowledge_unreserved_concurrency(
            self.function.node.default_child, why_safe="each invocation patches one pod and one NetworkPolicy"
        )

        self.access_entry = eks.CfnAccessEntry(
            self,
            "AccessEntry",
            cluster_name=cluster.cluster_name,
            principal_arn=self.role.role_arn,
            type="STANDARD",
            kubernetes_groups=[K8S_GROUP],
        )
        self.rbac = eks.KubernetesManifest(self, "Rbac", cluster=cluster, manifest=rbac_manifests(), overwrite=True)

        target = targets.LambdaFunction(
            self.function, dead_letter_queue=self.dead_letter_queue, max_event_age=EVENT_MAX_AGE, retry_attempts=4
        )
        self.guardduty_rule = events.Rule(
            self,
            "GuardDutyHighSeverity",
            description=f"GuardDuty findings of severity {GUARDDUTY_MIN_SEVERITY:g} or more",
            event_pattern=events.EventPattern(
                source=["aws.guardduty"],
                detail_type=["GuardDuty Finding"],
                detail={"severity": events.Match.greater_than_or_equal(GUARDDUTY_MIN_SEVERITY)},
            ),
            targets=[targets.SnsTopic(topic, dead_letter_queue=self.dead_letter_queue), target],
        )
        self.falco_rule = events.Rule(
            self,
            "FalcoCritical",
            description="Falco alerts of priority Critical, Alert or Emergency",
            event_pattern=events.EventPattern(
                source=[FALCO_EVENT_SOURCE],
                detail_type=[FALCO_DETAIL_TYPE],
                detail={
                    "priority": events.Match.any_of(
                        *(events.Match.equals_ignore_case(p) for p in sorted(FALCO_PRIORITIES))
                    )
                },
            ),
            targets=[target],
        )
        self._falco_pipe(name)

    def _falco_pipe(self, name: str) -> None:
        stack = cdk.Stack.of(self)
        default_bus = stack.format_arn(service="events", resource="event-bus", resource_name="default")
        self.pipe_role = iam.Role(
            self,
            "PipeRole",
            assumed_by=iam.ServicePrincipal(
                "pipes.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
            description=f"{name}: move Falco alerts from the queue onto the default event bus",
        )
        self.pipe_policy = iam.ManagedPolicy(
            self,
            "PipePolicy",
            roles=[self.pipe_role],
            description="Read the Falco queue, put events on the default bus",
            statements=[
                iam.PolicyStatement(
                    sid="ReadQueue",
                    actions=["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                    resources=[self.falco_queue.queue_arn],
                ),
                iam.PolicyStatement(sid="PutEvents", actions=["events:PutEvents"], resources=[default_bus]),
            ],
        )
        self.pipe = pipes.CfnPipe(
            self,
            "FalcoPipe",
            description="Falco alerts (falcosidekick SQS output) to the default event bus",
            role_arn=self.pipe_role.role_arn,
            source=self.falco_queue.queue_arn,
            source_parameters=pipes.CfnPipe.PipeSourceParametersProperty(
                sqs_queue_parameters=pipes.CfnPipe.PipeSourceSqsQueueParametersProperty(batch_size=1)
            ),
            target=default_bus,
            target_parameters=pipes.CfnPipe.PipeTargetParametersProperty(
                # The body is falcosidekick's JSON payload; Pipes parses it, so it becomes `detail`.
                input_template="<$.body>",
                event_bridge_event_bus_parameters=pipes.CfnPipe.PipeTargetEventBridgeEventBusParametersProperty(
                    source=FALCO_EVENT_SOURCE, detail_type=FALCO_DETAIL_TYPE
                ),
            ),
        )
        self.pipe.node.add_dependency(self.pipe_policy)
