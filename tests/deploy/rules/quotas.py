"""Documented size and count quotas CloudFormation, IAM, Organizations and Lambda enforce at deploy time."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.deploy.cloud_assembly import CloudAssembly, Stack
from tests.deploy.intrinsics import policy_length
from tests.deploy.registry import Outcome, rule

IAM_MANAGED_POLICY_MAX = 6_144
IAM_ROLE_INLINE_AGGREGATE_MAX = 10_240
IAM_TRUST_POLICY_MAX = 2_048
SCP_MAX = 5_120
SCPS_PER_TARGET_MAX = 5
# AWS attaches FullAWSAccess to the root and to every OU it creates; the org stack keeps it,
# so it takes one of the five places on every target.
SCPS_ATTACHED_BY_AWS = 1
TEMPLATE_VIA_S3_MAX_BYTES = 1_048_576
TEMPLATE_INLINE_MAX_BYTES = 51_200
TEMPLATE_COUNT_MAX = {"Resources": 500, "Outputs": 200, "Parameters": 200, "Mappings": 200}
LAMBDA_TIMEOUT_MAX_SECONDS = 900
# A kubectl/Helm handler spends this long on kubeconfig, chart download and `helm` start-up
# before its own wait begins; the wait must end that much before the Lambda is stopped.
HANDLER_START_UP_SECONDS = 60
KUBECTL_WAITS = {
    "Custom::AWSCDK-EKS-HelmChart": "Timeout",
    "Custom::AWSCDK-EKS-KubernetesObjectValue": "TimeoutSeconds",
}
NEW_ACCOUNT_CONCURRENCY = 10
LAMBDA_UNZIPPED_MAX_BYTES = 262_144_000  # 250 MB, the function's code and all its layers
LAMBDA_LAYERS_MAX = 5
UNRESERVED_CONCURRENCY_MIN = 100


@rule("iam-managed-policy-size", category="quotas")
def managed_policy_size(assembly: CloudAssembly) -> Outcome:
    """A customer managed policy is at most 6,144 characters, white space not counted
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html), with every
    intrinsic resolved to its longest realistic value."""
    outcome = Outcome()
    for stack, logical_id, resource in assembly.resources("AWS::IAM::ManagedPolicy"):
        length = policy_length(resource["Properties"]["PolicyDocument"], stack.template)
        outcome.check(
            length <= IAM_MANAGED_POLICY_MAX,
            f"{stack.stack_name}/{logical_id}: managed policy is up to {length} characters "
            f"(IAM allows {IAM_MANAGED_POLICY_MAX}); split it",
        )
    return outcome


def _role_key(reference: Any) -> str:
    if isinstance(reference, dict) and "Ref" in reference:
        return reference["Ref"]
    return json.dumps(reference, sort_keys=True)


@rule("iam-role-inline-policy-size", category="quotas")
def role_inline_policy_size(assembly: CloudAssembly) -> Outcome:
    """All inline policies of one role together are at most 10,240 characters, white space
    not counted (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html):
    the role's own `Policies` plus every AWS::IAM::Policy and AWS::IAM::RolePolicy naming it."""
    outcome = Outcome()
    for stack in assembly:
        totals: dict[str, int] = defaultdict(int)
        for logical_id, resource in stack.resources("AWS::IAM::Role"):
            totals[logical_id] += sum(
                policy_length(p["PolicyDocument"], stack.template)
                for p in resource.get("Properties", {}).get("Policies", [])
            )
        for _, resource in stack.resources("AWS::IAM::Policy"):
            props = resource["Properties"]
            for role in props.get("Roles", []):
                totals[_role_key(role)] += policy_length(props["PolicyDocument"], stack.template)
        for _, resource in stack.resources("AWS::IAM::RolePolicy"):
            props = resource["Properties"]
            totals[_role_key(props["RoleName"])] += policy_length(props["PolicyDocument"], stack.template)
        for role, total in totals.items():
            outcome.check(
                total <= IAM_ROLE_INLINE_AGGREGATE_MAX,
                f"{stack.stack_name}/{role}: inline policies total up to {total} characters "
                f"(IAM allows {IAM_ROLE_INLINE_AGGREGATE_MAX} per role); move statements to a managed policy",
            )
    return outcome


@rule("iam-trust-policy-size", category="quotas")
def trust_policy_size(assembly: CloudAssembly) -> Outcome:
    """A role trust policy is at most 2,048 characters by default, white space not counted
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html); raising it
    is a quota request per account, which a fresh member account has not made."""
    outcome = Outcome()
    for stack, logical_id, resource in assembly.resources("AWS::IAM::Role"):
        length = policy_length(resource["Properties"]["AssumeRolePolicyDocument"], stack.template)
        outcome.check(
            length <= IAM_TRUST_POLICY_MAX,
            f"{stack.stack_name}/{logical_id}: trust policy is up to {length} characters "
            f"(IAM allows {IAM_TRUST_POLICY_MAX})",
        )
    return outcome


def _service_control_policies(assembly: CloudAssembly):
    for stack, logical_id, resource in assembly.resources("AWS::Organizations::Policy"):
        if resource["Properties"].get("Type") == "SERVICE_CONTROL_POLICY":
            yield stack, logical_id, resource["Properties"]


@rule("scp-size", category="quotas")
def scp_size(assembly: CloudAssembly) -> Outcome:
    """A service control policy is at most 5,120 characters
    (https://docs.aws.amazon.com/organizations/latest/userguide/orgs_reference_limits.html);
    Organizations stores what the API receives, so white space counts."""
    outcome = Outcome()
    for stack, logical_id, props in _service_control_policies(assembly):
        length = policy_length(props["Content"], stack.template, count_whitespace=True)
        outcome.check(
            length <= SCP_MAX,
            f"{stack.stack_name}/{logical_id}: SCP is up to {length} characters (Organizations allows {SCP_MAX})",
        )
    return outcome


@rule("scp-per-target", category="quotas")
def scps_per_target(assembly: CloudAssembly) -> Outcome:
    """At most 5 SCPs may be attached to the root, an OU or an account, FullAWSAccess included
    (https://docs.aws.amazon.com/organizations/latest/userguide/orgs_reference_limits.html)."""
    outcome = Outcome()
    attached: dict[tuple[str, str], list[str]] = defaultdict(list)
    for stack, logical_id, props in _service_control_policies(assembly):
        for target in props.get("TargetIds", []):
            attached[(stack.stack_name, json.dumps(target, sort_keys=True))].append(logical_id)
    for (stack_name, target), policies in attached.items():
        count = len(policies) + SCPS_ATTACHED_BY_AWS
        outcome.check(
            count <= SCPS_PER_TARGET_MAX,
            f"{stack_name}: target {target} would carry {count} SCPs with FullAWSAccess "
            f"(Organizations allows {SCPS_PER_TARGET_MAX}): {', '.join(policies)}",
        )
    return outcome


@rule("cfn-template-size", category="quotas")
def template_size(assembly: CloudAssembly) -> Outcome:
    """A template is at most 1 MB when CloudFormation reads it from S3 and 51,200 bytes when
    passed in the request body
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html);
    a stack without a template asset URL is deployed with its template inline."""
    outcome = Outcome()
    for stack in assembly:
        via_s3 = bool(stack.properties.get("stackTemplateAssetObjectUrl"))
        limit = TEMPLATE_VIA_S3_MAX_BYTES if via_s3 else TEMPLATE_INLINE_MAX_BYTES
        outcome.check(
            stack.template_size <= limit,
            f"{stack.stack_name}: template is {stack.template_size} bytes, over the "
            f"{'S3' if via_s3 else 'inline'} limit of {limit}",
        )
    return outcome


@rule("cfn-template-counts", category="quotas")
def template_counts(assembly: CloudAssembly) -> Outcome:
    """At most 500 resources, 200 outputs, 200 parameters and 200 mappings per template
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html)."""
    outcome = Outcome()
    for stack in assembly:
        for section, limit in TEMPLATE_COUNT_MAX.items():
            count = len(stack.template.get(section, {}))
            outcome.check(count <= limit, f"{stack.stack_name}: {count} {section} (CloudFormation allows {limit})")
    return outcome


def _seconds(value: Any) -> int:
    """Helm's Go duration ("720s", "15m", "1h2m") or a number of seconds."""
    if isinstance(value, (int, float)):
        return int(value)
    units = {"h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+)([hms])", str(value))
    if not parts:
        return int(value)
    return sum(int(amount) * units[unit] for amount, unit in parts)


def _exports(assembly: CloudAssembly) -> dict[str, tuple[Stack, Any]]:
    """Export name -> (exporting stack, exported value)."""
    found = {}
    for stack in assembly:
        for output in stack.template.get("Outputs", {}).values():
            name = output.get("Export", {}).get("Name")
            if isinstance(name, str):
                found[name] = (stack, output["Value"])
    return found


def _function_behind(token: Any, stack: Stack, exports: Mapping[str, tuple[Stack, Any]]) -> tuple[Stack, str] | None:
    """The Lambda function a ServiceToken or function ARN points at, following exports."""
    if isinstance(token, dict) and "Fn::ImportValue" in token and token["Fn::ImportValue"] in exports:
        stack, token = exports[token["Fn::ImportValue"]]
    if isinstance(token, dict) and "Fn::GetAtt" in token:
        logical_id = token["Fn::GetAtt"][0]
        if stack.resources_by_id.get(logical_id, {}).get("Type") == "AWS::Lambda::Function":
            return stack, logical_id
    return None


def _timeout(stack: Stack, logical_id: str) -> int:
    # Lambda's default timeout is 3 seconds.
    return int(stack.resources_by_id[logical_id]["Properties"].get("Timeout", 3))


@rule("lambda-timeout-covers-waits", category="quotas")
def lambda_timeouts(assembly: CloudAssembly) -> Outcome:
    """A Lambda function runs at most 900 seconds
    (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html). A kubectl or
    Helm custom resource waits inside the provider's handler Lambda, invoked synchronously by
    the provider framework's onEvent Lambda
    (https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.custom_resources-readme.html): its
    wait plus the handler's start-up must end before either function is stopped, or the deploy
    fails on a timeout instead of reporting what it waited for."""
    outcome = Outcome()
    exports = _exports(assembly)
    for stack, logical_id, _ in assembly.resources("AWS::Lambda::Function"):
        timeout = _timeout(stack, logical_id)
        outcome.check(
            timeout <= LAMBDA_TIMEOUT_MAX_SECONDS,
            f"{stack.stack_name}/{logical_id}: Timeout {timeout}s exceeds Lambda's {LAMBDA_TIMEOUT_MAX_SECONDS}s",
        )
    for stack, logical_id, resource in assembly.resources(*KUBECTL_WAITS):
        props = resource["Properties"]
        wait_property = KUBECTL_WAITS[resource["Type"]]
        if wait_property not in props:
            continue
        framework = _function_behind(props["ServiceToken"], stack, exports)
        if framework is None:
            outcome.check(
                False, f"{stack.stack_name}/{logical_id}: ServiceToken is not a Lambda function of this assembly"
            )
            continue
        framework_stack, framework_id = framework
        limits = [_timeout(framework_stack, framework_id)]
        handler_arn = (
            framework_stack.resources_by_id[framework_id]["Properties"]
            .get("Environment", {})
            .get("Variables", {})
            .get("USER_ON_EVENT_FUNCTION_ARN")
        )
        handler = _function_behind(handler_arn, framework_stack, exports)
        if handler is not None:
            limits.append(_timeout(*handler))
        wait = _seconds(props[wait_property])
        outcome.check(
            wait + HANDLER_START_UP_SECONDS <= min(limits),
            f"{stack.stack_name}/{logical_id}: {wait_property} {wait}s + {HANDLER_START_UP_SECONDS}s start-up "
            f"exceeds the provider Lambda timeout of {min(limits)}s",
        )
    return outcome


@rule("lambda-reserved-concurrency", category="quotas")
def reserved_concurrency(assembly: CloudAssembly) -> Outcome:
    """Reserved concurrency may only take what leaves 100 unreserved
    (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html), and new
    accounts start with a concurrency quota as low as 10
    (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html): in the accounts
    the org stack creates, any ReservedConcurrentExecutions above 0 fails the deploy."""
    outcome = Outcome()
    budget = max(0, NEW_ACCOUNT_CONCURRENCY - UNRESERVED_CONCURRENCY_MIN)
    reserved: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for stack, logical_id, resource in assembly.resources("AWS::Lambda::Function"):
        value = resource["Properties"].get("ReservedConcurrentExecutions", 0)
        reserved[stack.env].append(
            (f"{stack.stack_name}/{logical_id}", int(value) if isinstance(value, int) else budget + 1)
        )
    for env, functions in reserved.items():
        total = sum(value for _, value in functions)
        outcome.check(
            total <= budget,
            f"{env}: functions reserve {total} concurrent executions, a new account can reserve {budget}: "
            + ", ".join(f"{name}={value}" for name, value in functions if value),
        )
    return outcome


def _asset_folders(stack: Stack) -> dict[str, Path]:
    """S3 object key -> the folder the CDK CLI zips and uploads under it (the stack's asset manifest)."""
    if stack.template_path is None:
        return {}
    manifest_path = stack.template_path.with_name(f"{stack.artifact_id}.assets.json")
    if not manifest_path.exists():
        return {}
    folders = {}
    for asset in json.loads(manifest_path.read_text()).get("files", {}).values():
        source = manifest_path.parent / asset["source"].get("path", "")
        if asset["source"].get("packaging") == "zip" and source.is_dir():
            for destination in asset.get("destinations", {}).values():
                folders[destination["objectKey"]] = source
    return folders


def _unzipped_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


@rule("lambda-package-size", category="quotas")
def lambda_package_size(assembly: CloudAssembly) -> Outcome:
    """A function's deployment package and all its layers, unzipped, are at most 250 MB, and a
    function uses at most 5 layers (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
    Counts the folders the CDK CLI zips (the asset manifest's sources), so a layer of wheels
    (constructs_lib/lambda_deps.py) is weighed with the function that loads it."""
    outcome = Outcome()
    for stack in assembly:
        folders = _asset_folders(stack)
        for logical_id, function in stack.resources("AWS::Lambda::Function"):
            layers = function["Properties"].get("Layers", [])
            name = f"{stack.stack_name}/{logical_id}"
            outcome.check(
                len(layers) <= LAMBDA_LAYERS_MAX, f"{name}: {len(layers)} layers, Lambda allows {LAMBDA_LAYERS_MAX}"
            )
            keys = [function["Properties"].get("Code", {}).get("S3Key")]
            for layer in layers:
                resource = stack.resources_by_id.get(layer.get("Ref", "") if isinstance(layer, dict) else "", {})
                keys.append(resource.get("Properties", {}).get("Content", {}).get("S3Key"))
            sizes = [_unzipped_bytes(folders[key]) for key in keys if isinstance(key, str) and key in folders]
            if sizes:
                outcome.check(
                    sum(sizes) <= LAMBDA_UNZIPPED_MAX_BYTES,
                    f"{name}: code and layers unzip to {sum(sizes):,} bytes, Lambda allows {LAMBDA_UNZIPPED_MAX_BYTES:,}",
                )
    return outcome
