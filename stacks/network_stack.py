"""One environment's network: a three-tier VPC, flow logs and the endpoints the platform calls."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from config import network_layout
from config.model import Environment
from constructs_lib.log_keys import admit_cloudwatch_logs
from constructs_lib.nag import acknowledge
from constructs_lib.retention import retention

# Interface endpoints keep control-plane and image traffic off the NAT gateways (cost) and
# let private nodes work when a NAT gateway is impaired.
INTERFACE_ENDPOINTS: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "Kms": ec2.InterfaceVpcEndpointAwsService.KMS,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "Monitoring": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
    "Ssm": ec2.InterfaceVpcEndpointAwsService.SSM,
    "SsmMessages": ec2.InterfaceVpcEndpointAwsService.SSM_MESSAGES,
    "Ec2": ec2.InterfaceVpcEndpointAwsService.EC2,
    "Eks": ec2.InterfaceVpcEndpointAwsService.EKS,
    "EksAuth": ec2.InterfaceVpcEndpointAwsService.EKS_AUTH,
    "ElasticLoadBalancing": ec2.InterfaceVpcEndpointAwsService.ELASTIC_LOAD_BALANCING,
    "AutoScaling": ec2.InterfaceVpcEndpointAwsService.AUTOSCALING,
    "XRay": ec2.InterfaceVpcEndpointAwsService.XRAY,
    "Sns": ec2.InterfaceVpcEndpointAwsService.SNS,
}


class NetworkStack(cdk.Stack):
    def __init__(self, scope: Construct, id_: str, *, env_name: str, env_config: Environment, **kwargs) -> None:
        super().__init__(scope, id_, **kwargs)
        self._zones = env_config.availability_zones
        net = env_config.network
        plan = network_layout.plan(net.vpc_cidr, len(self._zones))
        if plan is None:  # the loader refuses such ranges; only a config built around it gets here
            raise ValueError(f"{net.vpc_cidr} cannot hold the subnet layout for {len(self._zones)} zones")
        self.subnet_plan = plan

        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(str(net.vpc_cidr)),
            availability_zones=self._zones,
            nat_gateways=net.nat_gateways,
            restrict_default_security_group=True,
            subnet_configuration=[
                # No auto-assigned public IPs: only NAT gateways (Elastic IPs) and ALBs live here.
                ec2.SubnetConfiguration(
                    name="public",
                    subnet_type=ec2.SubnetType.PUBLIC,
                    cidr_mask=network_layout.PUBLIC_PREFIX,
                    map_public_ip_on_launch=False,
                ),
                ec2.SubnetConfiguration(
                    name="private",
                    subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS,
                    cidr_mask=self.subnet_plan.private_prefix,
                ),
                ec2.SubnetConfiguration(
                    name="database",
                    subnet_type=ec2.SubnetType.PRIVATE_ISOLATED,
                    cidr_mask=network_layout.DATABASE_PREFIX,
                ),
            ],
        )
        acknowledge(
            self.vpc,
            (
                "CloudFormation-Validate::W3010",
                "zone names come from config/regions.py's table on purpose, so synth never looks them up "
                "(the CDK guide's no-lookups rule); the loader checks them against the region",
            ),
        )
        for subnet in self.vpc.public_subnets:
            cdk.Tags.of(subnet).add("kubernetes.io/role/elb", "1")
        for subnet in self.vpc.private_subnets:
            cdk.Tags.of(subnet).add("kubernetes.io/role/internal-elb", "1")

        flow_log_key = kms.Key(
            self,
            "FlowLogKey",
            description=f"{env_name} VPC flow logs",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        admit_cloudwatch_logs(flow_log_key)
        self.flow_log_group = logs.LogGroup(
            self,
            "FlowLogGroup",
            retention=retention(net.flow_log_retention_days),
            encryption_key=flow_log_key,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        flow_log = self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(self.flow_log_group),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
        acknowledge(
            flow_log.node.find_child("IAMRole").node.find_child("DefaultPolicy").node.default_child,
            (
                "NIST.800.53.R5::NIST.800.53.R5-IAMNoInlinePolicy",
                "CDK-generated policy of the flow log role; it grants only logs:CreateLogStream/PutLogEvents on this flow log group",
            ),
        )
        for subnet in self.vpc.public_subnets:
            acknowledge(
                subnet.node.find_child("DefaultRoute"),
                (
                    "NIST.800.53.R5::NIST.800.53.R5-VPCNoUnrestrictedRouteToIGW",
                    "public subnets exist only for the internet-facing ALB and the NAT gateways, which need the route to the internet gateway",
                ),
            )

        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
        self.endpoint_security_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            description="HTTPS from inside the VPC to interface endpoints",
            allow_all_outbound=False,
        )
        self.endpoint_security_group.add_ingress_rule(
            ec2.Peer.ipv4(str(net.vpc_cidr)), ec2.Port.tcp(443), "HTTPS from the VPC"
        )
        self.interface_endpoints = {
            name: self.vpc.add_interface_endpoint(
                name,
                service=service,
                private_dns_enabled=True,
                open=False,
                security_groups=[self.endpoint_security_group],
                subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            )
            for name, service in INTERFACE_ENDPOINTS.items()
        }

    @property
    def availability_zones(self) -> list[str]:
        """The zones named in config: synth must not look them up in the account (no credentials)."""
        return self._zones
