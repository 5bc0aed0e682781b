"""Every VPC-attached Lambda function reaches every AWS endpoint it calls.

A function in a VPC has no internet access of its own: it reaches a service through an
interface endpoint (private DNS on, its security group open on 443 both ways), a gateway
endpoint (S3, DynamoDB) in its subnets' route tables, or a NAT gateway route with egress to
0.0.0.0/0 on 443. The network is modelled from the templates (subnets, route tables, routes,
endpoints, security groups), across stacks through exports.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tests.deploy.cloud_assembly import CloudAssembly, Stack
from tests.deploy.iam_policy import listed
from tests.deploy.intrinsics import render, target
from tests.deploy.registry import Outcome, rule

HTTPS = 443
ANYWHERE = ipaddress.ip_network("0.0.0.0/0")
# Actions the Lambda service performs with the execution role on the function's behalf, from
# outside the function's network: its log stream and its ENIs.
# https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs.html
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html#configuration-vpc-permissions
SERVICE_SIDE_ACTIONS = frozenset(
    {
        "logs:createloggroup",
        "logs:createlogstream",
        "logs:putlogevents",
        "ec2:createnetworkinterface",
        "ec2:describenetworkinterfaces",
        "ec2:deletenetworkinterface",
        "ec2:assignprivateipaddresses",
        "ec2:unassignprivateipaddresses",
    }
)
# IAM action prefixes whose endpoint service name differs.
ENDPOINT_NAMES = {"cloudwatch": "monitoring", "ecr": "ecr.api"}
# AWS-created security groups that CloudFormation references by attribute.
ALLOW_ALL_EGRESS_GROUPS = {("AWS::EKS::Cluster", "ClusterSecurityGroupId")}
CUSTOM_RESOURCE_RESPONSE = "s3"


@dataclass(frozen=True)
class Egress:
    protocol: str
    from_port: int
    to_port: int
    cidr: ipaddress.IPv4Network | None = None
    prefix_list: str | None = None
    group: tuple[str, str] | None = None

    def allows_https(self) -> bool:
        return self.protocol == "-1" or (self.protocol in ("tcp", "6") and self.from_port <= HTTPS <= self.to_port)


def _network(value: Any) -> ipaddress.IPv4Network | None:
    try:
        return ipaddress.ip_network(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _rule(assembly: CloudAssembly, stack: Stack, entry: Mapping[str, Any], *, peer: str) -> Egress:
    protocol = str(entry.get("IpProtocol", "-1"))
    group = entry.get(f"{peer}SecurityGroupId")
    found = target(assembly, stack, group) if group is not None else None
    return Egress(
        protocol=protocol,
        from_port=int(entry.get("FromPort", 0) or 0),
        to_port=int(entry.get("ToPort", 65535)),
        cidr=_network(render(assembly, stack, entry.get("CidrIp"))),
        prefix_list=render(assembly, stack, entry.get(f"{peer}PrefixListId"))
        if f"{peer}PrefixListId" in entry
        else None,
        group=(found[0].artifact_id, found[1]) if found else None,
    )


def security_group_rules(
    assembly: CloudAssembly, stack: Stack, group_ref: Any, *, direction: str
) -> list[Egress] | None:
    """The egress ("Egress") or ingress ("Ingress") rules of a group; None means allow-all egress."""
    peer = "Destination" if direction == "Egress" else "Source"
    if isinstance(group_ref, dict) and "Fn::GetAtt" in group_ref:
        logical_id, attribute = group_ref["Fn::GetAtt"]
        if (stack.resources_by_id.get(logical_id, {}).get("Type"), attribute) in ALLOW_ALL_EGRESS_GROUPS:
            return None if direction == "Egress" else []
    found = target(assembly, stack, group_ref)
    if found is None:
        return []
    group_stack, group_id = found
    props = group_stack.resources_by_id[group_id].get("Properties", {})
    key = f"SecurityGroup{direction}"
    if direction == "Egress" and key not in props:
        return None
    rules = [_rule(assembly, group_stack, entry, peer=peer) for entry in props.get(key, [])]
    for other_stack, _, standalone in assembly.resources(f"AWS::EC2::SecurityGroup{direction}"):
        other = standalone["Properties"]
        if target(assembly, other_stack, other.get("GroupId")) == found:
            rules.append(_rule(assembly, other_stack, other, peer=peer))
    return rules


@dataclass(frozen=True)
class Placement:
    """Where one function's ENIs sit: subnets (stack, id) with their CIDR and route table."""

    network: Stack
    subnets: tuple[str, ...]
    groups: tuple[Any, ...]
    function_stack: Stack

    def cidr(self, subnet: str) -> ipaddress.IPv4Network:
        return ipaddress.ip_network(self.network.resources_by_id[subnet]["Properties"]["CidrBlock"])

    def route_table(self, subnet: str) -> str | None:
        for _, association in self.network.resources("AWS::EC2::SubnetRouteTableAssociation"):
            props = association["Properties"]
            if props["SubnetId"] == {"Ref": subnet}:
                return props["RouteTableId"]["Ref"]
        return None


def _egress(assembly: CloudAssembly, placement: Placement) -> list[Egress] | None:
    rules: list[Egress] = []
    for group in placement.groups:
        found = security_group_rules(assembly, placement.function_stack, group, direction="Egress")
        if found is None:
            return None
        rules.extend(found)
    return rules


def _group_ids(assembly: CloudAssembly, placement: Placement) -> set[tuple[str, str]]:
    ids = set()
    for group in placement.groups:
        found = target(assembly, placement.function_stack, group)
        if found:
            ids.add((found[0].artifact_id, found[1]))
    return ids


def _egress_to(rules: list[Egress] | None, networks: list[ipaddress.IPv4Network], groups: set) -> bool:
    if rules is None:
        return True
    return any(
        r.allows_https()
        and (
            (r.cidr is not None and all(n.subnet_of(r.cidr) for n in networks))
            or (r.group is not None and r.group in groups)
        )
        for r in rules
    )


def _via_nat(assembly: CloudAssembly, placement: Placement, rules: list[Egress] | None) -> bool:
    if not _egress_to(rules, [ANYWHERE], set()):
        return False
    for subnet in placement.subnets:
        table = placement.route_table(subnet)
        routes = [
            r["Properties"]
            for _, r in placement.network.resources("AWS::EC2::Route")
            if r["Properties"].get("RouteTableId") == {"Ref": table}
        ]
        if not any(r.get("DestinationCidrBlock") == "0.0.0.0/0" and "NatGatewayId" in r for r in routes):
            return False
    return True


def _via_interface_endpoint(
    assembly: CloudAssembly, placement: Placement, rules: list[Egress] | None, service_name: str
) -> bool:
    network = placement.network
    for _endpoint_id, endpoint in network.resources("AWS::EC2::VPCEndpoint"):
        props = endpoint["Properties"]
        if (
            props.get("VpcEndpointType") != "Interface"
            or not props.get("PrivateDnsEnabled")
            or render(assembly, network, props.get("ServiceName")) != service_name
        ):
            continue
        endpoint_subnets = [
            ipaddress.ip_network(render(assembly, network, {"Fn::GetAtt": [s["Ref"], "CidrBlock"]}))
            for s in props.get("SubnetIds", [])
        ]
        endpoint_groups = {
            (network.artifact_id, target(assembly, network, g)[1]) for g in props.get("SecurityGroupIds", [])
        }
        if not _egress_to(rules, endpoint_subnets, endpoint_groups):
            continue
        sources = [placement.cidr(s) for s in placement.subnets]
        function_groups = _group_ids(assembly, placement)
        ingress = [
            r
            for g in props.get("SecurityGroupIds", [])
            for r in security_group_rules(assembly, network, g, direction="Ingress")
        ]
        if any(
            r.allows_https()
            and (
                (r.cidr is not None and all(n.subnet_of(r.cidr) for n in sources))
                or (r.group is not None and r.group in function_groups)
            )
            for r in ingress
        ):
            return True
    return False


def _gateway_policy_allows_response(props: Mapping[str, Any], region: str) -> bool:
    """CloudFormation's response bucket is AWS's: a custom endpoint policy must allow PutObject on it.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-vpce-bucketnames.html"""
    policy = props.get("PolicyDocument")
    if policy is None:
        return True
    response_object = f"arn:aws:s3:::cloudformation-custom-resource-response-{region}/response"
    return any(
        s.get("Effect") == "Allow"
        and any(fnmatch.fnmatchcase("s3:putobject", a.lower()) for a in listed(s.get("Action", [])))
        and any(fnmatch.fnmatchcase(response_object, r) for r in listed(s.get("Resource", [])) if isinstance(r, str))
        for s in listed(policy.get("Statement", []))
    )


def _via_gateway_endpoint(
    assembly: CloudAssembly, placement: Placement, rules: list[Egress] | None, service_name: str
) -> bool:
    network = placement.network
    egress_ok = rules is None or any(
        r.allows_https() and (r.prefix_list or (r.cidr is not None and r.cidr == ANYWHERE)) for r in rules
    )
    if not egress_ok:
        return False
    for _, endpoint in network.resources("AWS::EC2::VPCEndpoint"):
        props = endpoint["Properties"]
        if (
            props.get("VpcEndpointType", "Gateway") != "Gateway"
            or render(assembly, network, props.get("ServiceName")) != service_name
            or not _gateway_policy_allows_response(props, network.region)
        ):
            continue
        tables = {t["Ref"] for t in props.get("RouteTableIds", []) if isinstance(t, dict) and "Ref" in t}
        if all(placement.route_table(s) in tables for s in placement.subnets):
            return True
    return False


def _policy_documents(stack: Stack, role_id: str) -> Iterator[Mapping[str, Any]]:
    role = stack.resources_by_id[role_id]["Properties"]
    for inline in role.get("Policies", []):
        yield inline["PolicyDocument"]
    attached = {arn["Ref"] for arn in role.get("ManagedPolicyArns", []) if isinstance(arn, dict) and "Ref" in arn}
    for logical_id, policy in stack.resources("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        props = policy["Properties"]
        if logical_id in attached or {"Ref": role_id} in props.get("Roles", []):
            yield props["PolicyDocument"]


def called_services(stack: Stack, function_id: str) -> set[str]:
    """IAM action prefixes the function's own code calls, from its role's policies.

    KMS actions scoped by kms:ViaService are made by that other service, not by the function;
    so are sends to the function's dead-letter target, which the Lambda service makes
    (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html).
    """
    function = stack.resources_by_id[function_id]["Properties"]
    dead_letter = function.get("DeadLetterConfig", {}).get("TargetArn")
    role = function.get("Role", {})
    role_id = role.get("Fn::GetAtt", [None])[0] if isinstance(role, dict) else None
    if role_id not in stack.resources_by_id:
        return set()
    services = set()
    for document in _policy_documents(stack, role_id):
        for statement in listed(document.get("Statement", [])):
            if statement.get("Effect") != "Allow" or (
                dead_letter is not None and listed(statement.get("Resource")) == [dead_letter]
            ):
                continue
            via_service = any(
                "kms:viaservice" in (k.lower() for k in block) for block in statement.get("Condition", {}).values()
            )
            for action in listed(statement.get("Action", [])):
                prefix = action.split(":", 1)[0].lower()
                if action.lower() in SERVICE_SIDE_ACTIONS or (prefix == "kms" and via_service):
                    continue
                services.add(prefix)
    return services


def custom_resource_handlers(stack: Stack) -> set[str]:
    """Functions that CloudFormation invokes as a ServiceToken: they PUT the response to S3."""
    handlers = set()
    for _, resource in stack.resources():
        if resource["Type"].startswith("Custom::") or resource["Type"] == "AWS::CloudFormation::CustomResource":
            token = resource.get("Properties", {}).get("ServiceToken", {})
            if isinstance(token, dict) and "Fn::GetAtt" in token:
                handlers.add(token["Fn::GetAtt"][0])
    return handlers


@rule("vpc-lambda-reaches-its-endpoints", category="reachability")
def vpc_lambdas_reach_endpoints(assembly: CloudAssembly) -> Outcome:
    """A VPC-attached Lambda function reaches an AWS service only through an interface endpoint
    (private DNS, security groups open on 443), a gateway endpoint in its subnets' route tables
    with egress to the prefix list, or a NAT gateway route plus egress to 0.0.0.0/0:443; the
    services are those its role's policies allow, plus S3 for custom-resource handlers, which
    PUT their response to a pre-signed S3 URL.
    https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc-internet.html
    https://docs.aws.amazon.com/vpc/latest/privatelink/create-interface-endpoint.html
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-responses.html"""
    outcome = Outcome()
    for stack in assembly:
        handlers = custom_resource_handlers(stack)
        for function_id, function in stack.resources("AWS::Lambda::Function"):
            vpc = function.get("Properties", {}).get("VpcConfig")
            if not vpc or not vpc.get("SubnetIds"):
                continue
            subnets = [target(assembly, stack, s) for s in vpc["SubnetIds"]]
            if any(s is None for s in subnets) or len({s[0].artifact_id for s in subnets}) != 1:
                outcome.check(
                    False, f"{stack.stack_name}/{function_id}: its subnets are not modelled in one network stack"
                )
                continue
            placement = Placement(
                network=subnets[0][0],
                subnets=tuple(s[1] for s in subnets),
                groups=tuple(vpc.get("SecurityGroupIds", [])),
                function_stack=stack,
            )
            rules = _egress(assembly, placement)
            services = called_services(stack, function_id)
            if function_id in handlers:
                services.add(CUSTOM_RESOURCE_RESPONSE)
            for service in sorted(services):
                name = f"com.amazonaws.{placement.network.region}.{ENDPOINT_NAMES.get(service, service)}"
                reached = (
                    _via_interface_endpoint(assembly, placement, rules, name)
                    or _via_gateway_endpoint(assembly, placement, rules, name)
                    or _via_nat(assembly, placement, rules)
                )
                why = (
                    "the custom-resource response URL on S3"
                    if (service == CUSTOM_RESOURCE_RESPONSE and function_id in handlers)
                    else f"the {service} API"
                )
                outcome.check(
                    reached,
                    f"{stack.stack_name}/{function_id}: cannot reach {why}: no interface endpoint "
                    f"{name} its security groups allow on 443, no gateway endpoint with prefix-list "
                    "egress, and no NAT route with egress to 0.0.0.0/0:443",
                )
    return outcome
