"""ExternalDNS's Pod Identity role: the tutorial's actions, record changes on the environment's zone only.

The role is synthesized on its own (a PodIdentity in a bare stack, as AddonRegistry builds it), so
the policy is checked as CloudFormation receives it without synthesizing the platform.
"""

import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from config import naming
from constructs_lib.addons import AddonContext, PodIdentity, external_dns, platform_addons
from k8s_charts.aws_values import from_config
from tests.conftest import ENVIRONMENTS

ENVS = ENVIRONMENTS
UPSTREAM_POLICY = Path(__file__).parents[1] / "fixtures/upstream/external-dns/iam_policy.json"


def _context(cfg, env_name, stack):
    values = from_config(cfg, env_name)
    bucket_name = naming.velero_bucket(cfg, env_name)
    return AddonContext(
        cluster_name=values.cluster_name,
        vpc_id="vpc-1",
        values=values,
        partition="aws",
        velero_bucket=s3.Bucket.from_bucket_name(stack, "Velero", bucket_name),
        velero_bucket_name=bucket_name,
        data_key=kms.Key.from_key_arn(stack, "DataKey", f"arn:aws:kms:{values.region}:{values.account}:key/data"),
    )


def _addon(cfg, env_name):
    stack = cdk.Stack(
        cdk.App(),
        "t",
        env=cdk.Environment(account=cfg.environments[env_name].account.id, region=cfg.environments[env_name].region),
    )
    ctx = _context(cfg, env_name, stack)
    (addon,) = [a for a in platform_addons(ctx, cfg.environments[env_name]) if a.name == external_dns.NAME]
    return stack, addon


def _statements(stack, addon):
    PodIdentity(
        stack,
        "Identity",
        cluster_name="c",
        cluster_arn="arn:aws:eks:us-east-1:111111111111:cluster/c",
        namespace=addon.namespace,
        service_account=addon.service_account,
        statements=addon.statements,
        description="external-dns",
        wildcard_reason=addon.wildcard_reason,
    )
    (policy,) = Template.from_stack(stack).find_resources("AWS::IAM::ManagedPolicy").values()
    return policy["Properties"]["PolicyDocument"]["Statement"]


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _grants(statements):
    """{action: resources} over every statement."""
    found = {}
    for statement in statements:
        assert statement["Effect"] == "Allow" and "Condition" not in statement
        for action in _as_list(statement["Action"]):
            found.setdefault(action, set()).update(_as_list(statement["Resource"]))
    return found


@pytest.mark.parametrize("env_name", ENVS)
def test_record_changes_are_granted_on_the_environments_zone_only(cfg, env_name):
    stack, addon = _addon(cfg, env_name)
    zone = f"arn:aws:route53:::hostedzone/{cfg.environments[env_name].hosted_zone_id}"
    assert _grants(_statements(stack, addon)) == {
        "route53:ChangeResourceRecordSets": {zone},
        "route53:ListResourceRecordSets": {zone},
        "route53:ListTagsForResources": {zone},
        "route53:ListHostedZones": {"*"},
    }


def test_actions_are_the_tutorials_with_hostedzone_star_narrowed_to_one_zone(cfg):
    upstream = _grants(json.loads(UPSTREAM_POLICY.read_text())["Statement"])
    stack, addon = _addon(cfg, "prod")
    ours = _grants(_statements(stack, addon))
    assert set(ours) == set(upstream)
    for action, resources in upstream.items():
        if resources == {"arn:aws:route53:::hostedzone/*"}:
            assert ours[action] == {f"arn:aws:route53:::hostedzone/{cfg.environments['prod'].hosted_zone_id}"}
        else:
            assert ours[action] == resources == {"*"}


def test_zones_of_different_environments_are_different_grants(cfg):
    zones = {env: _grants(_statements(*_addon(cfg, env)))["route53:ChangeResourceRecordSets"] for env in ENVS}
    assert len({frozenset(z) for z in zones.values()}) == len(ENVS)


@pytest.mark.parametrize("env_name", ENVS)
def test_values_confine_external_dns_to_the_environment(cfg, env_name):
    _, addon = _addon(cfg, env_name)
    env = cfg.environments[env_name]
    values = addon.values
    assert values["domainFilters"] == [env.domain_name]
    assert values["txtOwnerId"] == naming.cluster_name(cfg, env_name)
    assert (values["policy"], values["registry"], values["sources"]) == ("upsert-only", "txt", ["ingress"])
    assert f"--zone-id-filter={env.hosted_zone_id}" in values["extraArgs"]
    assert values["serviceAccount"]["name"] == addon.service_account
