"""Network stack: three tiers, NAT per config, flow logs, endpoints, LB subnet tags."""

import pytest
from aws_cdk.assertions import Match

from stacks.network_stack import INTERFACE_ENDPOINTS
from tests.conftest import ENVIRONMENTS

ENVS = ENVIRONMENTS


@pytest.mark.parametrize("env", ENVS)
def test_vpc_uses_configured_cidr(template, cfg, env):
    template(env, "network").has_resource_properties(
        "AWS::EC2::VPC", {"CidrBlock": str(cfg.environments[env].network.vpc_cidr)}
    )


@pytest.mark.parametrize("env", ENVS)
def test_three_subnet_tiers_per_az(template, cfg, env):
    azs = cfg.environments[env].network.max_azs
    template(env, "network").resource_count_is("AWS::EC2::Subnet", 3 * azs)


@pytest.mark.parametrize("env", ENVS)
def test_nat_gateway_count_follows_config(template, cfg, env):
    template(env, "network").resource_count_is("AWS::EC2::NatGateway", cfg.environments[env].network.nat_gateways)


def test_prod_has_one_nat_per_az(template, cfg):
    assert cfg.environments["prod"].network.nat_gateways == cfg.environments["prod"].network.max_azs == 3
    template("prod", "network").resource_count_is("AWS::EC2::NatGateway", 3)


@pytest.mark.parametrize("env", ENVS)
def test_flow_logs_capture_all_traffic_with_retention(template, cfg, env):
    t = template(env, "network")
    t.has_resource_properties("AWS::EC2::FlowLog", {"TrafficType": "ALL", "LogDestinationType": "cloud-watch-logs"})
    t.has_resource_properties(
        "AWS::Logs::LogGroup",
        {"RetentionInDays": cfg.environments[env].network.flow_log_retention_days, "KmsKeyId": Match.any_value()},
    )


@pytest.mark.parametrize("env", ENVS)
def test_endpoints(template, env):
    t = template(env, "network")
    t.has_resource_properties("AWS::EC2::VPCEndpoint", {"VpcEndpointType": "Gateway", "ServiceName": Match.any_value()})
    interface = t.find_resources("AWS::EC2::VPCEndpoint", {"Properties": {"VpcEndpointType": "Interface"}})
    assert len(interface) == len(INTERFACE_ENDPOINTS)
    names = " ".join(str(r["Properties"]["ServiceName"]) for r in interface.values())
    for service in (
        "ecr.api",
        "ecr.dkr",
        "sts",
        "secretsmanager",
        "kms",
        "logs",
        "ssm",
        "eks",
        "eks-auth",
        "elasticloadbalancing",
        "autoscaling",
        "xray",
    ):
        assert f".{service}" in names, service


@pytest.mark.parametrize("env", ENVS)
def test_subnets_tagged_for_load_balancer_controller(template, env):
    t = template(env, "network")
    t.has_resource_properties(
        "AWS::EC2::Subnet",
        {
            "MapPublicIpOnLaunch": False,
            "Tags": Match.array_with([{"Key": "kubernetes.io/role/elb", "Value": "1"}]),
        },
    )
    t.has_resource_properties(
        "AWS::EC2::Subnet",
        {
            "Tags": Match.array_with([{"Key": "kubernetes.io/role/internal-elb", "Value": "1"}]),
        },
    )


def test_endpoint_security_group_admits_only_the_vpc(template, cfg):
    template("staging", "network").has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {
            "SecurityGroupIngress": [
                Match.object_like(
                    {"CidrIp": str(cfg.environments["staging"].network.vpc_cidr), "FromPort": 443, "ToPort": 443}
                )
            ],
        },
    )


def test_synth_needs_no_context_lookups(assembly):
    """No availability-zone (or other) lookup is left for the CLI to resolve with credentials."""
    import json

    manifests = sorted(assembly.outdir.rglob("manifest.json"))
    assert manifests
    missing = [m for path in manifests for m in json.loads(path.read_text()).get("missing", [])]
    assert not missing, [m["key"] for m in missing]


# Every range size the loader might see, with the zone counts the model allows.
LAYOUT_CASES = [(prefix, zones) for prefix in range(16, 23) for zones in (2, 3)]


@pytest.mark.parametrize(("prefix", "zones"), LAYOUT_CASES, ids=[f"/{p}-{z}az" for p, z in LAYOUT_CASES])
def test_subnet_plan_is_what_cdk_allocates(cfg, prefix, zones):
    """The loader's bound and the stack's layout come from `network_layout.plan`; CDK must agree
    with it: the same subnets where a plan exists, and a refusal where none does."""
    import ipaddress

    import aws_cdk as cdk
    from aws_cdk import aws_ec2 as ec2
    from aws_cdk.assertions import Template

    from config import network_layout
    from stacks.network_stack import NetworkStack

    vpc_cidr = ipaddress.IPv4Network(f"10.64.0.0/{prefix}")
    plan = network_layout.plan(vpc_cidr, zones)
    app = cdk.App()
    env = cdk.Environment(account="333333333333", region="us-east-1")
    if plan is None:
        # The smallest pod subnet the layout would try does not fit in CDK either.
        stack = cdk.Stack(app, "Probe", env=env)
        with pytest.raises(Exception, match="exceeds remaining space"):
            ec2.Vpc(
                stack,
                "Vpc",
                ip_addresses=ec2.IpAddresses.cidr(str(vpc_cidr)),
                availability_zones=[f"us-east-1{c}" for c in "abc"[:zones]],
                subnet_configuration=[
                    ec2.SubnetConfiguration(name=tier, subnet_type=kind, cidr_mask=mask)
                    for tier, kind, mask in (
                        ("public", ec2.SubnetType.PUBLIC, network_layout.PUBLIC_PREFIX),
                        ("private", ec2.SubnetType.PRIVATE_WITH_EGRESS, network_layout.POD_PREFIXES[-1]),
                        ("database", ec2.SubnetType.PRIVATE_ISOLATED, network_layout.DATABASE_PREFIX),
                    )
                ],
            )
        assert prefix > network_layout.smallest_vpc_prefix(zones)
        return
    dev = cfg.environments["dev"]
    network = dev.network.model_copy(update={"vpc_cidr": vpc_cidr, "max_azs": zones, "nat_gateways": 1})
    stack = NetworkStack(
        app, "Network", env_name="dev", env_config=dev.model_copy(update={"network": network}), env=env
    )
    subnets = Template.from_stack(stack).find_resources("AWS::EC2::Subnet")
    by_tier = {
        tier: sorted(str(s["Properties"]["CidrBlock"]) for lid, s in subnets.items() if lid.startswith(f"Vpc{tier}"))
        for tier in ("public", "private", "database")
    }
    assert by_tier == {tier: sorted(str(n) for t, n in plan.subnets if t == tier) for tier in by_tier}
    assert prefix <= network_layout.smallest_vpc_prefix(zones)
