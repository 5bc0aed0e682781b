"""The names rules pass when every named role and host has a producer and fail when one lacks it."""

from __future__ import annotations

import json

from tests.deploy.cloud_assembly import CloudAssembly
from tests.deploy.rules.names import hostnames_resolve, role_arns_created

RUNNER = "arn:aws:iam::111111111111:role/smoke-runner"


def pipeline(role_arn: str) -> dict:
    return {
        "Resources": {
            "Runner": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "smoke-runner"}},
            "Assume": {
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "PolicyDocument": {
                        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn}]
                    }
                },
            },
        }
    }


def environment(role_name: str | None) -> dict:
    resources = {}
    if role_name:
        resources["Smoke"] = {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": role_name,
                "AssumeRolePolicyDocument": {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
                            "Action": "sts:AssumeRole",
                            "Condition": {"ArnEquals": {"aws:PrincipalArn": RUNNER}},
                        }
                    ]
                },
            },
        }
    return {"Resources": resources or {"Nothing": {"Type": "AWS::SNS::Topic", "Properties": {}}}}


def roles(role_name: str | None, target: str = "arn:aws:iam::222222222222:role/staging-smoke-tests"):
    return role_arns_created(
        CloudAssembly.from_templates(
            {"pipeline": pipeline(target), "env": environment(role_name)},
            pipeline={"account": "111111111111"},
            env={"account": "222222222222"},
        )
    )


def test_assumed_role_created_in_its_account_passes():
    outcome = roles("staging-smoke-tests")
    assert outcome.checked == 2 and not outcome.findings


def test_assumed_role_that_no_stack_creates_fails():
    outcome = roles(None)
    assert len(outcome.findings) == 1 and "staging-smoke-tests" in outcome.findings[0]


def test_role_created_in_another_account_fails():
    assert roles("staging-smoke-tests", target="arn:aws:iam::333333333333:role/staging-smoke-tests").findings


def test_bootstrap_roles_and_prefix_patterns_need_no_creator():
    outcome = roles("x", target="arn:aws:iam::222222222222:role/cdk-hnb659fds-deploy-role-222222222222-us-east-1")
    assert not outcome.findings
    assert not roles("x", target="arn:aws:iam::222222222222:role/staging-*").findings


def edge(
    *,
    record: bool,
    external_dns: bool,
    installed_from: str = "repository",
    domain: str = "example.com",
    extra_args: list[str] | None = None,
) -> dict:
    resources = {
        "Cert": {"Type": "AWS::CertificateManager::Certificate", "Properties": {"DomainName": "api.example.com"}},
        "Cdn": {
            "Type": "AWS::CloudFront::Distribution",
            "Properties": {
                "DistributionConfig": {
                    "Origins": [{"Id": "api", "DomainName": "api.example.com", "CustomOriginConfig": {}}]
                }
            },
        },
        "Ingress": {
            "Type": "Custom::AWSCDK-EKS-KubernetesResource",
            "Properties": {
                "Manifest": json.dumps(
                    [
                        {
                            "apiVersion": "networking.k8s.io/v1",
                            "kind": "Ingress",
                            "metadata": {"name": "api", "namespace": "s"},
                            "spec": {"ingressClassName": "alb", "rules": [{"host": "api.example.com"}]},
                        }
                    ]
                )
            },
        },
    }
    if record:
        resources["Record"] = {"Type": "AWS::Route53::RecordSet", "Properties": {"Name": "api.example.com."}}
    if external_dns:
        values = {
            "sources": ["ingress"],
            "domainFilters": [domain],
            **({"extraArgs": extra_args} if extra_args else {}),
        }
        chart = (
            {"Chart": "external-dns"}
            if installed_from == "repository"
            else {"Release": "external-dns", "ChartAssetURL": "s3://assets/0123.zip"}
        )
        resources["Dns"] = {
            "Type": "Custom::AWSCDK-EKS-HelmChart",
            "Properties": {**chart, "Values": json.dumps(values)},
        }
    return {"Resources": resources}


def hosts(**kwargs):
    return hostnames_resolve(CloudAssembly.from_templates({"edge": edge(**kwargs)}, edge={"stage": "dev"}))


def test_hosts_with_a_route53_record_pass():
    outcome = hosts(record=True, external_dns=False)
    assert outcome.checked == 3 and not outcome.findings


def test_hosts_published_by_external_dns_pass():
    assert not hosts(record=False, external_dns=True).findings


def test_hosts_without_any_producer_fail():
    outcome = hosts(record=False, external_dns=False)
    assert len(outcome.findings) == 3


def test_hosts_published_by_an_asset_installed_external_dns_pass():
    assert not hosts(
        record=False,
        external_dns=True,
        installed_from="asset",
        extra_args=["--zone-id-filter=Z0123", "--ingress-class=alb"],
    ).findings


def test_another_release_from_an_asset_publishes_nothing():
    outcome = hostnames_resolve(
        CloudAssembly.from_templates(
            {
                "edge": {
                    "Resources": {
                        **edge(record=False, external_dns=False)["Resources"],
                        "Other": {
                            "Type": "Custom::AWSCDK-EKS-HelmChart",
                            "Properties": {
                                "Release": "velero",
                                "ChartAssetURL": "s3://assets/0123.zip",
                                "Values": json.dumps({"sources": ["ingress"], "domainFilters": ["example.com"]}),
                            },
                        },
                    }
                }
            },
            edge={"stage": "dev"},
        )
    )
    assert len(outcome.findings) == 3


def test_hosts_outside_the_domain_filter_fail():
    assert len(hosts(record=False, external_dns=True, installed_from="asset", domain="other.example.org").findings) == 3


def test_ingress_of_a_class_external_dns_ignores_fails():
    assert (
        len(
            hosts(
                record=False, external_dns=True, installed_from="asset", extra_args=["--ingress-class=nginx"]
            ).findings
        )
        == 3
    )
