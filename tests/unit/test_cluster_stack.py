"""Cluster stack: control plane, Graviton/spot/Fargate capacity, pinned EKS add-ons, pod identities."""

import json

import pytest
from aws_cdk.assertions import Match

from constructs_lib.addons import eks_managed
from constructs_lib.eks_cluster import cluster_log_group_name
from tests.conftest import ENVIRONMENTS

ENVS = ENVIRONMENTS


def _cluster(template, env):
    return template(env, "cluster")


@pytest.mark.parametrize("env", ENVS)
def test_control_plane(template, cfg, env):
    spec = cfg.environments[env].cluster
    _cluster(template, env).has_resource_properties(
        "AWS::EKS::Cluster",
        {
            "Version": spec.kubernetes_version,
            "Name": f"{cfg.project}-{env}",
            "AccessConfig": Match.object_like(
                {"AuthenticationMode": "API", "BootstrapClusterCreatorAdminPermissions": False}
            ),
            "Logging": {
                "ClusterLogging": {
                    "EnabledTypes": Match.array_with(
                        [{"Type": t} for t in ("api", "audit", "authenticator", "controllerManager", "scheduler")]
                    )
                }
            },
            "EncryptionConfig": [{"Provider": {"KeyArn": Match.any_value()}, "Resources": ["secrets"]}],
            "ResourcesVpcConfig": Match.object_like({"EndpointPrivateAccess": True, "EndpointPublicAccess": False}),
        },
    )


@pytest.mark.parametrize("env", ENVS)
def test_log_group_is_the_one_eks_and_the_cni_node_agent_write_to(template, cfg, env):
    _cluster(template, env).has_resource_properties(
        "AWS::Logs::LogGroup",
        {
            "LogGroupName": cluster_log_group_name(f"{cfg.project}-{env}"),
            "RetentionInDays": cfg.environments[env].network.flow_log_retention_days,
            "KmsKeyId": Match.any_value(),
        },
    )


def test_kubectl_role_is_the_only_access_entry_without_configured_admins(template, cfg):
    assert cfg.environments["staging"].cluster.admin_role_arns == []
    entries = _cluster(template, "staging").find_resources("AWS::EKS::AccessEntry")
    assert len(entries) == 1
    [entry] = entries.values()
    assert "KubectlProvider" in json.dumps(entry["Properties"]["PrincipalArn"])
    assert "AmazonEKSClusterAdminPolicy" in json.dumps(entry["Properties"]["AccessPolicies"][0]["PolicyArn"])


@pytest.mark.parametrize("env", ENVS)
def test_node_groups_are_graviton_from_config(template, cfg, env):
    spec = cfg.environments[env].cluster
    t = _cluster(template, env)
    for group, taint, capacity in (
        (spec.system_nodes, {"Key": "CriticalAddonsOnly", "Value": "true", "Effect": "NO_SCHEDULE"}, "ON_DEMAND"),
        (spec.app_nodes, None, "ON_DEMAND"),
        (spec.spot_nodes, {"Key": "spot", "Value": "true", "Effect": "NO_SCHEDULE"}, "SPOT"),
    ):
        t.has_resource_properties(
            "AWS::EKS::Nodegroup",
            {
                "AmiType": "AL2023_ARM_64_STANDARD",
                "CapacityType": capacity,
                "InstanceTypes": group.instance_types,
                "ScalingConfig": {
                    "MinSize": group.min_size,
                    "MaxSize": group.max_size,
                    "DesiredSize": group.desired_size,
                },
                "Taints": [taint] if taint else [],
                "LaunchTemplate": Match.object_like({"Id": Match.any_value()}),
                "Labels": Match.object_like({"node-role": Match.any_value()}),
            },
        )
    t.resource_count_is("AWS::EKS::Nodegroup", 3)


def test_launch_template_requires_imdsv2_hop_1_and_encrypted_gp3(template):
    _cluster(template, "prod").has_resource_properties(
        "AWS::EC2::LaunchTemplate",
        {
            "LaunchTemplateData": Match.object_like(
                {
                    "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1},
                    "BlockDeviceMappings": [
                        {"DeviceName": "/dev/xvda", "Ebs": Match.object_like({"Encrypted": True, "VolumeType": "gp3"})}
                    ],
                }
            )
        },
    )


@pytest.mark.parametrize("env", ENVS)
def test_fargate_profile_for_configured_namespaces(template, cfg, env):
    _cluster(template, env).has_resource_properties(
        "AWS::EKS::FargateProfile",
        {
            "Selectors": [{"Namespace": ns} for ns in cfg.environments[env].cluster.fargate_namespaces],
        },
    )


@pytest.mark.parametrize("env", ENVS)
def test_fargate_pods_run_in_the_clusters_private_subnets(template, env):
    t = _cluster(template, env)
    [cluster] = t.find_resources("AWS::EKS::Cluster").values()
    [profile] = t.find_resources("AWS::EKS::FargateProfile").values()
    subnets = profile["Properties"]["Subnets"]
    # EKS accepts only private subnets for Fargate (no route to an internet gateway).
    assert subnets == cluster["Properties"]["ResourcesVpcConfig"]["SubnetIds"]
    assert all("privateSubnet" in subnet["Fn::ImportValue"] for subnet in subnets), subnets


@pytest.mark.parametrize("env", ENVS)
def test_eks_addons_pinned(template, env):
    t = _cluster(template, env)
    for name, version in eks_managed.VERSIONS["1.35"].items():
        t.has_resource_properties("AWS::EKS::Addon", {"AddonName": name, "AddonVersion": version})
    t.resource_count_is("AWS::EKS::Addon", len(eks_managed.VERSIONS["1.35"]))


def test_vpc_cni_enforces_network_policy_and_logs_to_cloudwatch(template):
    [cni] = (
        _cluster(template, "prod").find_resources("AWS::EKS::Addon", {"Properties": {"AddonName": "vpc-cni"}}).values()
    )
    config = json.loads(cni["Properties"]["ConfigurationValues"])
    assert config["enableNetworkPolicy"] == "true"
    assert config["nodeAgent"]["enableCloudWatchLogs"] == "true"
    assert cni["Properties"]["PodIdentityAssociations"][0]["ServiceAccount"] == "aws-node"


def test_node_role_has_no_workload_permissions(template):
    t = _cluster(template, "prod")
    roles = t.find_resources(
        "AWS::IAM::Role",
        {
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Statement": [Match.object_like({"Principal": {"Service": "ec2.amazonaws.com"}})]
                }
            }
        },
    )
    [node_role] = roles.values()
    policies = json.dumps(node_role["Properties"]["ManagedPolicyArns"])
    assert "AmazonEKSWorkerNodePolicy" in policies and "AmazonEC2ContainerRegistryPullOnly" in policies
    assert "CNI" not in policies and "S3" not in policies and "Policies" not in node_role["Properties"]


def test_workload_pod_identities(template):
    t = _cluster(template, "prod")
    t.has_resource_properties(
        "AWS::EKS::PodIdentityAssociation", {"Namespace": "observability", "ServiceAccount": "otel-collector"}
    )
    t.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Principal": {"Service": "pods.eks.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                                "Condition": Match.object_like({"StringEquals": {"aws:SourceAccount": "555555555555"}}),
                            }
                        )
                    ]
                )
            }
        },
    )


def test_storage_api_identity_scoped_to_storage_bucket(template):
    t = _cluster(template, "prod")
    t.has_resource_properties(
        "AWS::EKS::PodIdentityAssociation", {"Namespace": "supabase", "ServiceAccount": "storage"}
    )
    policies = [p for p in t.find_resources("AWS::IAM::ManagedPolicy").values() if "ObjectReadWrite" in json.dumps(p)]
    assert len(policies) == 1
    statements = {s["Sid"]: s for s in policies[0]["Properties"]["PolicyDocument"]["Statement"]}
    assert set(statements) == {"ObjectReadWrite", "ListBucket", "BucketKey"}
    for statement in statements.values():
        assert statement["Resource"] != "*"
    # The bucket and its key are the storage stack's, read through its exports.
    for sid, owner in (("ListBucket", "StorageBucket"), ("BucketKey", "StorageKey")):
        imported = statements[sid]["Resource"]["Fn::ImportValue"]
        assert imported.startswith("prod-storage:") and owner in imported, (sid, imported)


def test_data_tier_ingress_from_cluster_security_group(template):
    t = _cluster(template, "prod")
    for port, group in ((5432, "Database"), (6379, "Cache")):
        [ingress] = t.find_resources(
            "AWS::EC2::SecurityGroupIngress",
            {
                "Properties": {
                    "FromPort": port,
                    "ToPort": port,
                    "IpProtocol": "tcp",
                    "SourceSecurityGroupId": {"Fn::GetAtt": [Match.any_value(), "ClusterSecurityGroupId"]},
                }
            },
        ).values()
        imported = ingress["Properties"]["GroupId"]["Fn::ImportValue"]
        assert imported.startswith("prod-data:") and group in imported, imported
