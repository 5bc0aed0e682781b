"""An EKS cluster on Graviton managed node groups, with pinned EKS add-ons.

Capacity: a system node group (tainted CriticalAddonsOnly, for controllers), an app node group,
a spot node group (tainted spot=true:NoSchedule: only workloads that tolerate interruption) and
a Fargate profile for batch namespaces. Every node group runs the AL2023 ARM64 AMI.

Instance metadata: IMDSv2 only, hop limit 1. Pods get AWS credentials from EKS Pod Identity
(the agent at 169.254.170.23 on the node), not from instance metadata, so a hop limit of 1
keeps every pod that is not on the host network away from the node role. Controllers that
would read region/VPC from metadata get them as values instead.

Access: authentication mode API (access entries). The kubectl provider's role is the identity
through which CloudFormation (and so the pipeline, whose CDK cfn-exec role only invokes that
provider) changes Kubernetes objects; it gets the cluster-admin access entry from the
construct. `cluster.admin_role_arns` from config get cluster-admin entries for people. The
creator's implicit admin entry is turned off, so every principal with access is visible here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk.lambda_layer_kubectl_v35 import KubectlV35Layer
from constructs import Construct

from config.model import Environment, NodeGroup
from constructs_lib.addons import eks_managed
from constructs_lib.addons.pod_identity import PodIdentity, managed_policy_finding
from constructs_lib.log_keys import admit_cloudwatch_logs
from constructs_lib.nag import acknowledge
from constructs_lib.retention import retention

# Cluster minor -> (CDK version, kubectl layer of the same minor).
KUBERNETES = {"1.35": (eks.KubernetesVersion.V1_35, KubectlV35Layer)}

AMI_TYPE = eks.NodegroupAmiType.AL2023_ARM_64_STANDARD
ROOT_VOLUME_GIB = 100
# The control plane's network interfaces, the node groups and Fargate pods all live in the private subnets.
PRIVATE_SUBNETS = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
SYSTEM_LABELS = {"node-role": "system"}
APP_LABELS = {"node-role": "app"}
SPOT_LABELS = {"node-role": "spot"}
SYSTEM_TAINT = eks.TaintSpec(key="CriticalAddonsOnly", value="true", effect=eks.TaintEffect.NO_SCHEDULE)
SPOT_TAINT = eks.TaintSpec(key="spot", value="true", effect=eks.TaintEffect.NO_SCHEDULE)
ALL_LOG_TYPES = [
    eks.ClusterLoggingTypes.API,
    eks.ClusterLoggingTypes.AUDIT,
    eks.ClusterLoggingTypes.AUTHENTICATOR,
    eks.ClusterLoggingTypes.CONTROLLER_MANAGER,
    eks.ClusterLoggingTypes.SCHEDULER,
]
CLUSTER_ADMIN_POLICY = "AmazonEKSClusterAdminPolicy"


def cluster_log_group_name(cluster_name: str) -> str:
    """EKS writes control-plane logs here, and the VPC CNI node agent its network policy decisions."""
    return f"/aws/eks/{cluster_name}/cluster"


class EksCluster(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cluster_name: str,
        env_config: Environment,
        vpc: ec2.IVpc,
        log_retention_days: int,
        admin_role_arns: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, id_)
        spec = env_config.cluster
        version, layer = KUBERNETES[spec.kubernetes_version]
        removal = cdk.RemovalPolicy.RETAIN if env_config.production else cdk.RemovalPolicy.DESTROY

        self.secrets_key = kms.Key(
            self,
            "SecretsKey",
            description=f"{cluster_name} Kubernetes secrets envelope encryption",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.log_key = kms.Key(
            self,
            "LogKey",
            description=f"{cluster_name} control-plane and network policy logs",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        admit_cloudwatch_logs(self.log_key)
        # Created ahead of the cluster so that retention and encryption are ours, not EKS's defaults.
        self.log_group = logs.LogGroup(
            self,
            "ClusterLogGroup",
            log_group_name=cluster_log_group_name(cluster_name),
            retention=retention(log_retention_days),
            encryption_key=self.log_key,
            removal_policy=removal,
        )

        endpoint = (
            eks.EndpointAccess.PUBLIC_AND_PRIVATE.only_from(*[str(c) for c in spec.public_access_cidrs])
            if spec.public_access_cidrs
            else eks.EndpointAccess.PRIVATE
        )
        self.cluster = eks.Cluster(
            self,
            "Cluster",
            cluster_name=cluster_name,
            version=version,
            vpc=vpc,
            vpc_subnets=[PRIVATE_SUBNETS],
            endpoint_access=endpoint,
            default_capacity_type=eks.DefaultCapacityType.NODEGROUP,
            default_capacity=0,
            cluster_logging=ALL_LOG_TYPES,
            secrets_encryption_key=self.secrets_key,
            bootstrap_cluster_creator_admin_permissions=False,
            kubectl_provider_options=eks.KubectlProviderOptions(kubectl_layer=layer(self, "KubectlLayer")),
            removal_policy=removal,
        )
        self.cluster.node.add_dependency(self.log_group)
        self._acknowledge_construct_internals()
        for index, arn in enumerate(admin_role_arns):
            self.cluster.grant_access(
                f"Admin{index}",
                arn,
                [
                    eks.AccessPolicy.from_access_policy_name(
                        CLUSTER_ADMIN_POLICY, access_scope_type=eks.AccessScopeType.CLUSTER
                    )
                ],
            )

        self.node_role = iam.Role(
            self,
            "NodeRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description=f"{cluster_name} managed nodes: join the cluster and pull images, nothing for workloads",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(n)
                for n in ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly")
            ],
        )
        acknowledge(
            self.node_role,
            *(
                managed_policy_finding(
                    n,
                    "AWS-maintained node policy EKS documents for managed nodes; "
                    "the CNI policy is not on the node role (aws-node has its own Pod Identity role).",
                )
                for n in ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly")
            ),
        )
        self.launch_template = ec2.LaunchTemplate(
            self,
            "NodeLaunchTemplate",
            require_imdsv2=True,
            http_tokens=ec2.LaunchTemplateHttpTokens.REQUIRED,
            http_put_response_hop_limit=1,
            block_devices=[
                ec2.BlockDevice(
                    device_name="/dev/xvda",
                    volume=ec2.BlockDeviceVolume.ebs(
                        ROOT_VOLUME_GIB,
                        volume_type=ec2.EbsDeviceVolumeType.GP3,
                        encrypted=True,
                        delete_on_termination=True,
                    ),
                )
            ],
        )

        self.addon_roles: dict[str, PodIdentity] = {}
        self.addons: dict[str, eks.CfnAddon] = {}
        self._add_managed_addons(cluster_name, spec.kubernetes_version)

        self.nodegroups = {
            "system": self._nodegroup("System", spec.system_nodes, labels=SYSTEM_LABELS, taints=[SYSTEM_TAINT]),
            "app": self._nodegroup("App", spec.app_nodes, labels=APP_LABELS, taints=[]),
            "spot": self._nodegroup(
                "Spot", spec.spot_nodes, labels=SPOT_LABELS, taints=[SPOT_TAINT], capacity_type=eks.CapacityType.SPOT
            ),
        }
        for name, addon in self.addons.items():
            before = next(a.before_nodes for a in eks_managed.managed_addons(spec.kubernetes_version) if a.name == name)
            for nodegroup in self.nodegroups.values():
                (nodegroup.node.add_dependency(addon) if before else addon.node.add_dependency(nodegroup))

        self.fargate_profile = (
            self.cluster.add_fargate_profile(
                "Fargate",
                selectors=[eks.Selector(namespace=ns) for ns in spec.fargate_namespaces],
                # Without the VPC the construct drops the selection (and warns), leaving the subnets
                # to EKS; named here, the profile's subnets are the cluster's, in the template.
                vpc=vpc,
                subnet_selection=PRIVATE_SUBNETS,
            )
            if spec.fargate_namespaces
            else None
        )
        if self.fargate_profile is not None:
            acknowledge(
                self.fargate_profile.pod_execution_role,
                managed_policy_finding(
                    "AmazonEKSFargatePodExecutionRolePolicy",
                    "AWS-maintained policy EKS requires for the Fargate pod execution "
                    "role (image pulls and log shipping).",
                ),
            )

    def _acknowledge_construct_internals(self) -> None:
        """Findings on resources the eks_v2 construct creates for itself (cluster role, kubectl provider)."""
        cluster_role = self.cluster.node.find_child("Role")
        acknowledge(
            cluster_role,
            managed_policy_finding(
                "AmazonEKSClusterPolicy", "AWS-maintained policy EKS requires on the cluster service role."
            ),
        )
        provider = self.cluster.node.find_child("KubectlProvider")
        handler = provider.node.find_child("Handler")
        on_event = provider.node.find_child("Provider").node.find_child("framework-onEvent")
        sync = (
            "invoked synchronously by the CloudFormation custom resource provider framework for each kubectl/helm "
            "operation; a failure fails the deployment instead of being queued"
        )
        for function in (handler, on_event):
            function.node.default_child.add_metadata(
                "checkov",
                {
                    "skip": [
                        {"id": "CKV_AWS_116", "comment": f"No DLQ: the function is {sync}."},
                        {
                            "id": "CKV_AWS_115",
                            "comment": "Runs only during deployments; reserved concurrency could push a new "
                            "account below its unreserved minimum.",
                        },
                        {
                            "id": "CKV_AWS_173",
                            "comment": "Its only environment variable is AWS_STS_REGIONAL_ENDPOINTS=regional, "
                            "not a secret.",
                        },
                    ]
                },
            )
            acknowledge(
                function.node.default_child,
                ("NIST.800.53.R5::NIST.800.53.R5-LambdaDLQ", f"The function is {sync}."),
                (
                    "NIST.800.53.R5::NIST.800.53.R5-LambdaConcurrency",
                    "Runs only during deployments of this stack; "
                    "reserving concurrency could push a new account below its unreserved minimum of 10.",
                ),
            )
            acknowledge(
                function.node.find_child("ServiceRole").node.find_child("DefaultPolicy").node.default_child,
                (
                    "NIST.800.53.R5::NIST.800.53.R5-IAMNoInlinePolicy",
                    "Policy generated by the eks_v2 kubectl provider "
                    "for its own functions (describe this cluster, invoke its handler).",
                ),
            )
        # HelmChart resources install the vendored charts from zip assets; CDK grants the handler
        # read access to the bootstrap assets bucket for them (asset.grantRead).
        stack = cdk.Stack.of(self)
        assets_bucket = f"cdk-{cdk.DefaultStackSynthesizer.DEFAULT_QUALIFIER}-assets-{stack.account}-{stack.region}"
        chart_assets = (
            "CDK grant for the vendored Helm chart assets: the kubectl handler reads the chart zips from "
            "the CDK bootstrap assets bucket of this account and region, and nothing else in it"
        )
        acknowledge(
            handler.node.find_child("ServiceRole").node.find_child("DefaultPolicy").node.default_child,
            *(
                (f"AwsSolutions::AwsSolutions-IAM5[{finding}]", chart_assets)
                for finding in (
                    "Action::s3:GetBucket*",
                    "Action::s3:GetObject*",
                    "Action::s3:List*",
                    f"Resource::arn:<AWS::Partition>:s3:::{assets_bucket}/*",
                )
            ),
        )
        acknowledge(
            handler.node.default_child,
            (
                "AwsSolutions::AwsSolutions-L1",
                "The kubectl handler's Python runtime is "
                "pinned by aws-cdk-lib together with the kubectl/helm layer it is tested with.",
            ),
        )
        lambda_policies = ("service-role/AWSLambdaBasicExecutionRole", "service-role/AWSLambdaVPCAccessExecutionRole")
        reason = "AWS-maintained execution policies of the eks_v2 kubectl provider's VPC Lambda functions (logs, ENIs)."
        acknowledge(
            handler.node.find_child("ServiceRole"),
            *(managed_policy_finding(n, reason) for n in (*lambda_policies, "AmazonEC2ContainerRegistryReadOnly")),
            (
                'AwsSolutions::AwsSolutions-IAM4[Policy::{"Fn::If":["EksClusterKubectlProviderHandlerHasEcrPublicC426D1A5",'
                '{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},":iam::aws:policy/'
                'AmazonElasticContainerRegistryPublicReadOnly"]]},{"Ref":"AWS::NoValue"}]}]',
                "Added by eks_v2 only when a Helm chart comes from public ECR (OCI); read-only image pulls.",
            ),
        )
        acknowledge(
            on_event.node.find_child("ServiceRole"), *(managed_policy_finding(n, reason) for n in lambda_policies)
        )
        acknowledge(
            on_event.node.find_child("ServiceRole").node.find_child("DefaultPolicy").node.default_child,
            (
                "AwsSolutions::AwsSolutions-IAM5[Resource::<EksClusterKubectlProviderHandlerDA75FB7A.Arn>:*]",
                "The provider framework invokes any version/alias of the one kubectl handler function.",
            ),
        )

    def _nodegroup(
        self,
        id_: str,
        spec: NodeGroup,
        *,
        labels: dict[str, str],
        taints: list[eks.TaintSpec],
        capacity_type: eks.CapacityType = eks.CapacityType.ON_DEMAND,
    ) -> eks.Nodegroup:
        return self.cluster.add_nodegroup_capacity(
            id_,
            ami_type=AMI_TYPE,
            capacity_type=capacity_type,
            instance_types=[ec2.InstanceType(t) for t in spec.instance_types],
            min_size=spec.min_size,
            max_size=spec.max_size,
            desired_size=spec.desired_size,
            labels=labels,
            taints=taints,
            node_role=self.node_role,
            subnets=PRIVATE_SUBNETS,
            launch_template_spec=eks.LaunchTemplateSpec(
                id=self.launch_template.launch_template_id, version=self.launch_template.latest_version_number
            ),
            enable_node_auto_repair=True,
            max_unavailable_percentage=33,
        )

    def _add_managed_addons(self, cluster_name: str, kubernetes_version: str) -> None:
        cluster = self.cluster
        cni = PodIdentity(
            self,
            "VpcCniIdentity",
            cluster_name=cluster_name,
            cluster_arn=cluster.cluster_arn,
            namespace="kube-system",
            service_account=eks_managed.VPC_CNI_SERVICE_ACCOUNT,
            associate=False,
            description="VPC CNI (aws-node): ENI/IP management and network policy logs",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("AmazonEKS_CNI_Policy")],
            statements=[
                iam.PolicyStatement(
                    sid="NetworkPolicyLogs",
                    actions=["logs:DescribeLogGroups", "logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[self.log_group.log_group_arn, f"{self.log_group.log_group_arn}:log-stream:*"],
                )
            ],
            wildcard_reason=(
                "The node agent writes one log stream per node, named at run time, into this cluster's log group only."
            ),
        )
        acknowledge(
            cni.role,
            managed_policy_finding(
                "AmazonEKS_CNI_Policy",
                "AWS-maintained policy the VPC CNI add-on "
                "documents; it is attached to aws-node's Pod Identity role instead of the node role.",
            ),
        )
        ebs = PodIdentity(
            self,
            "EbsCsiIdentity",
            cluster_name=cluster_name,
            cluster_arn=cluster.cluster_arn,
            namespace="kube-system",
            service_account=eks_managed.EBS_CSI_SERVICE_ACCOUNT,
            associate=False,
            description="EBS CSI controller: create, attach and snapshot volumes",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AmazonEBSCSIDriverPolicy")],
        )
        acknowledge(
            ebs.role,
            managed_policy_finding(
                "service-role/AmazonEBSCSIDriverPolicy",
                "AWS-maintained policy the "
                "EBS CSI add-on documents; its mutating actions are conditioned on the driver's own CSIVolumeName tags.",
            ),
        )
        self.addon_roles = {eks_managed.VPC_CNI: cni, eks_managed.EBS_CSI: ebs}
        configuration = {eks_managed.VPC_CNI: eks_managed.vpc_cni_configuration()}
        for addon in eks_managed.managed_addons(kubernetes_version):
            identity = self.addon_roles.get(addon.name)
            cfn = eks.CfnAddon(
                self,
                f"Addon-{addon.name}",
                cluster_name=cluster.cluster_name,
                addon_name=addon.name,
                addon_version=addon.version,
                # EKS bootstraps self-managed vpc-cni/kube-proxy/coredns; the managed add-on adopts them.
                resolve_conflicts="OVERWRITE",
                configuration_values=json.dumps(configuration[addon.name]) if addon.name in configuration else None,
                pod_identity_associations=[
                    eks.CfnAddon.PodIdentityAssociationProperty(
                        role_arn=identity.role.role_arn, service_account=identity.service_account
                    )
                ]
                if identity
                else None,
                preserve_on_delete=False,
            )
            if identity and identity.policy:
                # The role ARN is referenced already; the separately attached policy is not.
                cfn.node.add_dependency(identity.policy)
            self.addons[addon.name] = cfn
        # Pod Identity credentials reach aws-node and the EBS CSI controller only through the agent.
        agent = self.addons[eks_managed.POD_IDENTITY_AGENT]
        for name in self.addon_roles:
            self.addons[name].node.add_dependency(agent)
