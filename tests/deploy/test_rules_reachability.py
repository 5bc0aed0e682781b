"""The reachability rule passes a function with a working path and fails each broken one."""

from __future__ import annotations

import copy

from tests.deploy.cloud_assembly import CloudAssembly
from tests.deploy.rules.reachability import vpc_lambdas_reach_endpoints

VPC_ONLY_EGRESS = [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "10.0.0.0/16"}]
ANYWHERE_EGRESS = [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0"}]


def network(*, nat: bool, lambda_endpoint: bool) -> dict:
    resources = {
        "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.0.0.0/16"}},
        "Subnet": {"Type": "AWS::EC2::Subnet", "Properties": {"CidrBlock": "10.0.1.0/24", "VpcId": {"Ref": "Vpc"}}},
        "Table": {"Type": "AWS::EC2::RouteTable", "Properties": {"VpcId": {"Ref": "Vpc"}}},
        "Assoc": {
            "Type": "AWS::EC2::SubnetRouteTableAssociation",
            "Properties": {"SubnetId": {"Ref": "Subnet"}, "RouteTableId": {"Ref": "Table"}},
        },
        "EndpointSg": {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {
                "SecurityGroupIngress": [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "10.0.0.0/16"}]
            },
        },
    }
    if nat:
        resources["Default"] = {
            "Type": "AWS::EC2::Route",
            "Properties": {
                "RouteTableId": {"Ref": "Table"},
                "DestinationCidrBlock": "0.0.0.0/0",
                "NatGatewayId": "nat-1",
            },
        }
    if lambda_endpoint:
        resources["LambdaEndpoint"] = {
            "Type": "AWS::EC2::VPCEndpoint",
            "Properties": {
                "VpcEndpointType": "Interface",
                "PrivateDnsEnabled": True,
                "ServiceName": "com.amazonaws.us-east-1.lambda",
                "SubnetIds": [{"Ref": "Subnet"}],
                "SecurityGroupIds": [{"Fn::GetAtt": ["EndpointSg", "GroupId"]}],
            },
        }
    return {"Resources": resources, "Outputs": {"S": {"Value": {"Ref": "Subnet"}, "Export": {"Name": "net:subnet"}}}}


def app(egress: list, *, custom_resource: bool = True) -> dict:
    resources = {
        "Sg": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"SecurityGroupEgress": egress}},
        "Role": {"Type": "AWS::IAM::Role", "Properties": {}},
        "Policy": {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "Roles": [{"Ref": "Role"}],
                "PolicyDocument": {
                    "Statement": [
                        {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"},
                        {"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"},
                    ]
                },
            },
        },
        "Fn": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                "VpcConfig": {
                    "SubnetIds": [{"Fn::ImportValue": "net:subnet"}],
                    "SecurityGroupIds": [{"Fn::GetAtt": ["Sg", "GroupId"]}],
                },
            },
        },
    }
    if custom_resource:
        resources["Thing"] = {"Type": "Custom::Thing", "Properties": {"ServiceToken": {"Fn::GetAtt": ["Fn", "Arn"]}}}
    return {"Resources": resources}


def run(net: dict, application: dict):
    return vpc_lambdas_reach_endpoints(CloudAssembly.from_templates({"net": net, "app": application}))


def test_nat_route_and_open_egress_reach_everything():
    outcome = run(network(nat=True, lambda_endpoint=False), app(ANYWHERE_EGRESS))
    assert outcome.checked == 2 and not outcome.findings


def test_vpc_only_egress_reaches_neither_lambda_nor_the_response_url():
    outcome = run(network(nat=True, lambda_endpoint=False), app(VPC_ONLY_EGRESS))
    assert len(outcome.findings) == 2
    assert any("lambda API" in f for f in outcome.findings) and any("response URL" in f for f in outcome.findings)


def test_interface_endpoint_serves_its_service_only():
    outcome = run(network(nat=False, lambda_endpoint=True), app(VPC_ONLY_EGRESS))
    assert [f for f in outcome.findings if "response URL" in f] == outcome.findings and len(outcome.findings) == 1


def test_open_egress_without_nat_fails():
    assert run(network(nat=False, lambda_endpoint=False), app(ANYWHERE_EGRESS)).findings


def test_gateway_endpoint_needs_the_route_table_and_a_permissive_policy():
    net = network(nat=False, lambda_endpoint=True)
    net["Resources"]["S3"] = {
        "Type": "AWS::EC2::VPCEndpoint",
        "Properties": {"ServiceName": "com.amazonaws.us-east-1.s3", "RouteTableIds": [{"Ref": "Table"}]},
    }
    egress = [
        *VPC_ONLY_EGRESS,
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "DestinationPrefixListId": "pl-1"},
    ]
    assert not run(net, app(egress)).findings
    restricted = copy.deepcopy(net)
    restricted["Resources"]["S3"]["Properties"]["PolicyDocument"] = {
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::my-bucket/*"}]
    }
    assert run(restricted, app(egress)).findings


def test_function_outside_the_vpc_is_not_examined():
    application = app(VPC_ONLY_EGRESS)
    del application["Resources"]["Fn"]["Properties"]["VpcConfig"]
    assert run(network(nat=False, lambda_endpoint=False), application).checked == 0
