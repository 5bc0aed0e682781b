"""Names that one part of the platform uses must be created by another part.

A role ARN written as a literal, a hostname a client or CloudFront connects to: CloudFormation
accepts all of them at deploy time and the failure comes later (AccessDenied on AssumeRole,
NXDOMAIN). Each rule collects the names that are consumed and the resources that produce them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from tests.deploy.cloud_assembly import CloudAssembly, Stack
from tests.deploy.iam_policy import listed
from tests.deploy.intrinsics import render
from tests.deploy.registry import Outcome, rule

ROLE_ARN = re.compile(r"arn:aws:iam::(\d{12}):role/([\w+=,.@/*-]+)")
# Roles that exist without a stack of this app: `cdk bootstrap` (default qualifier) and
# service-linked roles that AWS creates.
# https://docs.aws.amazon.com/cdk/v2/guide/bootstrapping-env.html
# https://docs.aws.amazon.com/IAM/latest/UserGuide/using-service-linked-roles.html
EXTERNAL_ROLE = re.compile(r"(cdk-hnb659fds-.*|aws-service-role/.*|aws-reserved/.*)")
HTTPS_URL = re.compile(r"https://([a-z0-9-]+(?:\.[a-z0-9-]+)+)")
# Hosts in AWS-owned domains resolve without any record of ours.
AWS_DOMAINS = (".amazonaws.com", ".aws", ".cloudfront.net", ".amazon.com")
EXTERNAL_DNS_CHART = "external-dns"


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def created_roles(assembly: CloudAssembly) -> set[tuple[str, str]]:
    roles = set()
    for stack, _, role in assembly.resources("AWS::IAM::Role"):
        props = role.get("Properties", {})
        name = render(assembly, stack, props.get("RoleName"))
        if isinstance(name, str):
            roles.add((stack.account, f"{props.get('Path', '/').strip('/')}/{name}".lstrip("/")))
    return roles


@rule("names-role-arns-created", category="names")
def role_arns_created(assembly: CloudAssembly) -> Outcome:
    """Every role ARN a template names (assume-role targets, trust conditions, build environments)
    is created by a stack in that account, or by `cdk bootstrap`, or is a service-linked role;
    sts:AssumeRole on a role that does not exist fails with AccessDenied.
    https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-arns"""
    outcome = Outcome()
    roles = created_roles(assembly)
    for stack, logical_id, resource in assembly.resources():
        text = json.dumps(render(assembly, stack, resource.get("Properties", {})))
        for account, name in sorted(set(ROLE_ARN.findall(text))):
            if EXTERNAL_ROLE.fullmatch(name) or "*" in name or "{" in name:
                continue
            outcome.check(
                (account, name) in roles,
                f"{stack.stack_name}/{logical_id}: names role {name} in account {account}, which no stack creates",
            )
    return outcome


def kubernetes_objects(assembly: CloudAssembly, stack: Stack) -> Iterator[dict]:
    """The objects the stack applies to its cluster (manifests and Helm values as CloudFormation passes them)."""
    for _, resource in stack.resources("Custom::AWSCDK-EKS-KubernetesResource"):
        manifest = render(assembly, stack, resource["Properties"].get("Manifest"))
        if isinstance(manifest, str):
            yield from json.loads(manifest)


def _helm_values(assembly: CloudAssembly, stack: Stack, chart: str) -> Iterator[dict]:
    for _, resource in stack.resources("Custom::AWSCDK-EKS-HelmChart"):
        props = resource["Properties"]
        # A chart from a repository is named by `Chart`; one uploaded as an asset (every add-on of
        # constructs_lib.addons) carries only its S3 URL, and the release bears the chart's name.
        name = props.get("Release") if "ChartAssetURL" in props else props.get("Chart")
        if name == chart:
            values = render(assembly, stack, props.get("Values", "{}"))
            yield json.loads(values) if isinstance(values, str) else {}


def external_dns_hosts(assembly: CloudAssembly, stage: str) -> set[str]:
    """Ingress hosts that an ExternalDNS release of the same environment publishes (source
    `ingress`, host inside one of its domainFilters, the Ingress's class among its --ingress-class
    flags when it has any).
    https://kubernetes-sigs.github.io/external-dns/latest/docs/sources/ingress/"""
    hosts = set()
    stacks = [s for s in assembly if s.stage == stage]
    releases = [
        (listed(v.get("domainFilters", [])), listed(v.get("sources", [])), _ingress_classes(v))
        for s in stacks
        for v in _helm_values(assembly, s, EXTERNAL_DNS_CHART)
    ]
    for stack in stacks:
        for obj in kubernetes_objects(assembly, stack):
            if obj.get("kind") != "Ingress":
                continue
            spec = obj.get("spec", {})
            for ingress_rule in spec.get("rules", []):
                host = ingress_rule.get("host", "")
                if any(
                    "ingress" in sources
                    and any(host == d or host.endswith(f".{d}") for d in domains)
                    and (not classes or spec.get("ingressClassName") in classes)
                    for domains, sources, classes in releases
                ):
                    hosts.add(host)
    return hosts


def _ingress_classes(values: dict) -> set[str]:
    """--ingress-class flags among the chart's extraArgs (a list of flags, or a map of flag to value)."""
    extra = values.get("extraArgs") or []
    if isinstance(extra, dict):
        found = extra.get("ingress-class", [])
        return set(found if isinstance(found, list) else [found])
    return {arg.split("=", 1)[1] for arg in extra if isinstance(arg, str) and arg.startswith("--ingress-class=")}


def record_names(assembly: CloudAssembly) -> set[str]:
    names = set()
    for stack, _, record in assembly.resources("AWS::Route53::RecordSet"):
        name = render(assembly, stack, record["Properties"].get("Name"))
        if isinstance(name, str):
            names.add(name.rstrip(".").lower())
    for stack, _, group in assembly.resources("AWS::Route53::RecordSetGroup"):
        for record in group["Properties"].get("RecordSets", []):
            name = render(assembly, stack, record.get("Name"))
            if isinstance(name, str):
                names.add(name.rstrip(".").lower())
    return names


def certificate_names(assembly: CloudAssembly) -> set[str]:
    names = set()
    for stack, _, certificate in assembly.resources("AWS::CertificateManager::Certificate"):
        props = render(assembly, stack, certificate["Properties"])
        names.update(
            n for n in [props.get("DomainName"), *props.get("SubjectAlternativeNames", [])] if isinstance(n, str)
        )
    return names


def referenced_hosts(assembly: CloudAssembly, stack: Stack, domains: set[str]) -> Iterator[tuple[str, str]]:
    """(where, host): URLs in build environments, CloudFront aliases and custom origins, Ingress hosts,
    certificate names."""
    for logical_id, resource in stack.resources():
        props = render(assembly, stack, resource.get("Properties", {}))
        kind = resource["Type"]
        if kind == "AWS::CodeBuild::Project":
            # Only URLs in the platform's own domains: a build also downloads third-party tools.
            for text in _strings(props):
                for host in HTTPS_URL.findall(text):
                    if any(host == d or host.endswith(f".{d}") for d in domains):
                        yield f"{logical_id} (build URL)", host
        elif kind == "AWS::CloudFront::Distribution":
            config = props.get("DistributionConfig", {})
            for alias in config.get("Aliases", []):
                yield f"{logical_id} (alias)", alias
            for origin in config.get("Origins", []):
                if "CustomOriginConfig" in origin:
                    yield f"{logical_id} (origin {origin.get('Id')})", origin.get("DomainName")
        elif kind == "AWS::CertificateManager::Certificate":
            for name in [props.get("DomainName"), *props.get("SubjectAlternativeNames", [])]:
                yield f"{logical_id} (certificate)", name
    for obj in kubernetes_objects(assembly, stack):
        if obj.get("kind") == "Ingress":
            for ingress_rule in obj.get("spec", {}).get("rules", []):
                yield f"Ingress {obj['metadata'].get('namespace')}/{obj['metadata']['name']}", ingress_rule.get("host")


@rule("names-hostnames-resolve", category="names")
def hostnames_resolve(assembly: CloudAssembly) -> Outcome:
    """Every hostname the platform serves or connects to (smoke-test URLs, CloudFront aliases and
    custom origins, Ingress hosts, certificate names) has a producer: a Route 53 record in a stack,
    or an Ingress host that the environment's ExternalDNS publishes. A custom origin must be a
    publicly resolvable DNS name; without a record CloudFront answers 502.
    https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/DownloadDistValuesOrigin.html#DownloadDistValuesDomainName
    https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/resource-record-sets-creating.html"""
    outcome = Outcome()
    records = record_names(assembly)
    published = {stage: external_dns_hosts(assembly, stage) for stage in {s.stage for s in assembly}}
    every_published = set().union(*published.values())
    domains = {name.split(".", 1)[1] for name in certificate_names(assembly) if "." in name}
    for stack in assembly:
        for where, host in referenced_hosts(assembly, stack, domains):
            if not isinstance(host, str) or "{" in host or host.startswith("*") or host.endswith(AWS_DOMAINS):
                continue
            host = host.lower()
            produced = host in records or host in (published[stack.stage] if stack.stage else every_published)
            outcome.check(
                produced,
                f"{stack.stack_name}/{where}: {host} has no Route 53 record and no ExternalDNS-published Ingress",
            )
    return outcome
