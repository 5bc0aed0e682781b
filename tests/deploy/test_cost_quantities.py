"""`make cost` counts what deploys: every quantity it prices, held to the synthesized templates.

The estimate reads the config and the facts the stacks build with (scripts/cost); this file
reads the same numbers back out of each organization's templates, so a stack that starts
creating more (or fewer) NAT gateways, endpoints, replicas, cache nodes or node-group
instances than the estimate assumes fails here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from config import load_config
from scripts.cost import facts_of_manifests
from tests import rendered
from tests.conftest import ORG_CONFIGS
from tests.deploy.helm import environments


def _resources(assembly, path: str, type_: str) -> list[Mapping[str, Any]]:
    template = assembly.template_json(path)
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == type_]


def _helm_values(assembly, env: str, release: str) -> dict[str, Any]:
    """The release's values; CloudFormation tokens (inside ARN strings) read as the text TOKEN."""
    [chart] = [
        c for c in _resources(assembly, f"{env}/platform", "Custom::AWSCDK-EKS-HelmChart") if c["Release"] == release
    ]
    values = chart["Values"]
    if isinstance(values, dict):
        values = "".join(p if isinstance(p, str) else "TOKEN" for p in values["Fn::Join"][1])
    return json.loads(values)


@pytest.mark.parametrize("case", environments(), ids="-".join)
def test_estimated_quantities_are_the_templates(case: tuple[str, str], synthesized) -> None:
    org, env_name = case
    assembly = synthesized(org)
    cfg = load_config(ORG_CONFIGS[org])
    env = cfg.environments[env_name]
    found = facts_of_manifests(rendered.manifests(env_name, org))
    zones = len(env.availability_zones)

    assert len(_resources(assembly, f"{env_name}/network", "AWS::EC2::NatGateway")) == env.network.nat_gateways
    interface = [
        e
        for e in _resources(assembly, f"{env_name}/network", "AWS::EC2::VPCEndpoint")
        if e.get("VpcEndpointType") == "Interface"
    ]
    assert len(interface) == found.interface_endpoints
    assert {len(e["SubnetIds"]) for e in interface} == {zones}

    groups = {g["Labels"]["node-role"]: g for g in _resources(assembly, f"{env_name}/cluster", "AWS::EKS::Nodegroup")}
    for role, group, capacity in (
        ("system", env.cluster.system_nodes, "ON_DEMAND"),
        ("app", env.cluster.app_nodes, "ON_DEMAND"),
        ("spot", env.cluster.spot_nodes, "SPOT"),
    ):
        deployed = groups[role]
        assert (deployed["CapacityType"], deployed["InstanceTypes"]) == (capacity, group.instance_types)
        scaling = deployed["ScalingConfig"]
        assert (scaling["MinSize"], scaling["DesiredSize"]) == (group.min_size, group.desired_size)
    [launch_template] = _resources(assembly, f"{env_name}/cluster", "AWS::EC2::LaunchTemplate")
    volumes = [m["Ebs"]["VolumeSize"] for m in launch_template["LaunchTemplateData"]["BlockDeviceMappings"]]
    assert volumes == [found.root_volume_gib]

    instances = _resources(assembly, f"{env_name}/data", "AWS::RDS::DBInstance")
    [primary] = [i for i in instances if "SourceDBInstanceIdentifier" not in i]
    replicas = [i for i in instances if "SourceDBInstanceIdentifier" in i]
    assert primary["DBInstanceClass"] == env.database.instance_class
    assert bool(primary.get("MultiAZ")) == env.database.multi_az
    assert int(primary["AllocatedStorage"]) == env.database.allocated_storage_gib
    assert len(replicas) == env.database.read_replicas
    # Replicas are priced Single-AZ at the primary's class, with storage of the primary's size.
    assert all(not r.get("MultiAZ") and r["DBInstanceClass"] == env.database.instance_class for r in replicas)

    [cache] = _resources(assembly, f"{env_name}/data", "AWS::ElastiCache::ReplicationGroup")
    assert (cache["CacheNodeType"], cache["NumCacheClusters"]) == (
        env.cache.node_type,
        1 + env.cache.replicas_per_shard,
    )

    distributions = _resources(assembly, f"{env_name}/storage", "AWS::CloudFront::Distribution")
    assert bool(distributions) == env.features.cloudfront

    spec = _helm_values(assembly, env_name, "kube-prometheus-stack")["prometheus"]["prometheusSpec"]
    assert spec["replicas"] == found.prometheus_volumes
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"]
    assert claim == f"{env.observability.metrics_storage_gib}Gi"
