"""What the deploying principals may do: the CloudFormation execution policy of each member
account, and the organization's SCPs evaluated against every role that creates, updates or
rolls back a stack.

The API calls CloudFormation makes for a resource type are the `handlers` permissions of its
registry schema (https://docs.aws.amazon.com/cloudformation-cli/latest/userguide/resource-type-schema.html),
read from the schemas cfn-lint bundles. Types without a registry schema fall back to the
service prefix of their type name (SERVICE_PREFIX).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from config.naming import EXECUTION_POLICY_NAME
from tests.deploy.cloud_assembly import CloudAssembly, Stack
from tests.deploy.iam_policy import Request, allowed_by, denied_by, listed
from tests.deploy.intrinsics import pseudo_parameters, resolve
from tests.deploy.registry import Outcome, rule

# cfn-lint's copy of the CloudFormation resource schemas, found without importing cfn-lint (its
# import loads every lint rule: over a second of each worker's collection).
_CFNLINT = importlib.util.find_spec("cfnlint")
assert _CFNLINT is not None and _CFNLINT.origin is not None, "cfn-lint is not installed (requirements-dev.txt)"
SCHEMAS = Path(_CFNLINT.origin).parent / "data" / "schemas"
# Handlers a deployment, an update and a rollback or stack deletion run.
DEPLOY_HANDLERS = ("create", "update", "delete")
# IAM service prefix of a CloudFormation type's service segment where it is not the segment
# lowercased (https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html).
SERVICE_PREFIX = {
    "ApplicationAutoScaling": "application-autoscaling",
    "CertificateManager": "acm",
    "CodeStarNotifications": "codestar-notifications",
    "ElasticLoadBalancingV2": "elasticloadbalancing",
    "InspectorV2": "inspector2",
    "StepFunctions": "states",
}
# Types CloudFormation handles itself or through a Lambda function it invokes.
NO_SERVICE_CALLS = {"AWS::CDK::Metadata", "AWS::CloudFormation::WaitConditionHandle"}
CUSTOM_RESOURCE_CALLS = ("lambda:InvokeFunction",)
# The role the README's CLI steps deploy with in a member account: the one AWS Organizations
# creates in every account it creates (the org stack names it), assumed from the management account.
MEMBER_ADMIN_ROLE = "OrganizationAccountAccessRole"
# What the bootstrap deploy role calls to run a deployment (the CDK CLI and CDK Pipelines):
# https://docs.aws.amazon.com/cdk/v2/guide/bootstrapping-env.html
DEPLOY_ROLE_CALLS = (
    "cloudformation:CreateChangeSet",
    "cloudformation:ExecuteChangeSet",
    "cloudformation:DescribeStacks",
    "cloudformation:DescribeChangeSet",
    "cloudformation:DeleteChangeSet",
    "cloudformation:DescribeStackEvents",
    "cloudformation:GetTemplate",
    "cloudformation:DeleteStack",
    "cloudformation:RollbackStack",
    "cloudformation:ContinueUpdateRollback",
    "s3:GetObject",
    "s3:PutObject",
    "ssm:GetParameter",
    "ssm:GetParameters",
    "iam:PassRole",
    "kms:Decrypt",
)


def service_prefix(resource_type: str) -> str:
    """AWS::Pipes::Pipe -> pipes, AWS::ElasticLoadBalancingV2::LoadBalancer -> elasticloadbalancing."""
    segment = resource_type.split("::")[1]
    return SERVICE_PREFIX.get(segment, segment.lower())


@cache
def _schema_index() -> Mapping[str, str]:
    return json.loads((SCHEMAS / "providers" / "us-east-1.json").read_text())


@cache
def deploy_calls(resource_type: str) -> tuple[str, ...]:
    """Every API call CloudFormation makes to create, update and delete one resource of this type."""
    if resource_type in NO_SERVICE_CALLS:
        return ()
    if resource_type.startswith("Custom::") or resource_type == "AWS::CloudFormation::CustomResource":
        return CUSTOM_RESOURCE_CALLS
    schema_file = _schema_index().get(resource_type)
    handlers = {}
    if schema_file is not None:
        handlers = json.loads((SCHEMAS / "resources" / f"{schema_file}.json").read_text()).get("handlers", {})
    calls = sorted({p for h in DEPLOY_HANDLERS for p in handlers.get(h, {}).get("permissions", [])})
    return tuple(calls) or (f"{service_prefix(resource_type)}:*",)


# --- a small IAM policy evaluator ------------------------------------------------------------


# --- the deploying principals ------------------------------------------------------------------


def _manifest_arn(stack: Stack, key: str) -> str | None:
    arn = stack.properties.get(key)
    return arn.replace("${AWS::Partition}", "aws") if arn else None


def _iam_resource(stack: Stack, action: str) -> str:
    """The resource an IAM call of this stack names: CloudFormation names the roles and
    policies it generates `<stack name>-<logical id>-<suffix>`."""
    if not action.lower().startswith("iam:"):
        return "*"
    return f"arn:aws:iam::{stack.account}:role/{stack.stack_name}-generated"


def _execution_policies(assembly: CloudAssembly) -> dict[str, list[Mapping[str, Any]]]:
    """Account -> statements of its CloudFormation execution policy (the deploy-access stack)."""
    policies = {}
    for stack, _, resource in assembly.resources("AWS::IAM::ManagedPolicy"):
        props = resource["Properties"]
        if props.get("ManagedPolicyName") == EXECUTION_POLICY_NAME:
            pseudo = pseudo_parameters(account=stack.account, region=stack.region)
            document = resolve(props["PolicyDocument"], pseudo=pseudo)
            policies[stack.account] = document["Statement"] if document else []
    return policies


def own_service_calls(resource_type: str) -> tuple[str, ...]:
    """The calls of `deploy_calls` to the type's own service. Handlers also list the calls of
    optional features (log delivery to Firehose, S3 Tables, VPC Lattice) that only some
    properties use, so calls to other services are not required of the execution policy."""
    calls = deploy_calls(resource_type)
    if resource_type.startswith("Custom::") or resource_type == "AWS::CloudFormation::CustomResource":
        return calls
    prefix = f"{service_prefix(resource_type)}:"
    return tuple(call for call in calls if call.lower().startswith(prefix))


@rule("execution-policy-covers-resources", category="permissions")
def execution_policy_coverage(assembly: CloudAssembly) -> Outcome:
    """Every resource type a stack deploys through the CloudFormation execution role is allowed
    by the execution policy its account was bootstrapped with (`cdk bootstrap
    --cloudformation-execution-policies`, https://docs.aws.amazon.com/cdk/v2/guide/bootstrapping-env.html):
    the calls of its create/update/delete handlers to its own service
    (https://docs.aws.amazon.com/cloudformation-cli/latest/userguide/resource-type-schema.html),
    IAM calls against the stack-named ARNs CloudFormation generates."""
    outcome = Outcome()
    policies = _execution_policies(assembly)
    for stack in assembly:
        statements = policies.get(stack.account)
        if statements is None or not stack.properties.get("cloudFormationExecutionRoleArn"):
            continue
        for resource_type in sorted({r["Type"] for _, r in stack.resources()}):
            missing = [
                call
                for call in own_service_calls(resource_type)
                if not allowed_by(statements, Request(call, _iam_resource(stack, call)))
            ]
            outcome.check(
                not missing,
                f"{stack.stack_name}: {resource_type} needs {', '.join(missing)}, "
                f"which the execution policy {EXECUTION_POLICY_NAME} does not allow",
            )
    return outcome


@rule("execution-policy-names-own-iam", category="permissions")
def execution_policy_iam_names(assembly: CloudAssembly) -> Outcome:
    """Roles, managed policies and instance profiles with an explicit name or path must still
    fall under the execution policy's stack-prefixed IAM resources; an IAM ARN carries the path
    before the name (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html)."""
    outcome = Outcome()
    policies = _execution_policies(assembly)
    kinds = {
        "AWS::IAM::Role": ("role", "RoleName", "iam:CreateRole"),
        "AWS::IAM::ManagedPolicy": ("policy", "ManagedPolicyName", "iam:CreatePolicy"),
        "AWS::IAM::InstanceProfile": ("instance-profile", "InstanceProfileName", "iam:CreateInstanceProfile"),
    }
    for stack in assembly:
        statements = policies.get(stack.account)
        if statements is None or not stack.properties.get("cloudFormationExecutionRoleArn"):
            continue
        pseudo = pseudo_parameters(account=stack.account, region=stack.region, stack_name=stack.stack_name)
        for logical_id, resource in stack.resources(*kinds):
            kind, name_property, action = kinds[resource["Type"]]
            props = resource.get("Properties", {})
            name = resolve(props.get(name_property, f"{stack.stack_name}-{logical_id}"), pseudo=pseudo)
            path = resolve(props.get("Path", "/"), pseudo=pseudo)
            if name is None or path is None:
                outcome.check(
                    False,
                    f"{stack.stack_name}/{logical_id}: {name_property} or Path is only known at "
                    "deploy time; the execution policy's IAM scope cannot be proven",
                )
                continue
            arn = f"arn:aws:iam::{stack.account}:{kind}{path}{name}"
            outcome.check(
                allowed_by(statements, Request(action, arn)),
                f"{stack.stack_name}/{logical_id}: {arn} is outside the execution policy's IAM scope",
            )
    return outcome


def _service_control_policies(assembly: CloudAssembly) -> tuple[set[str], list[tuple[str, Mapping[str, Any]]]]:
    """(management accounts, [(policy id, statement)]) of every SCP attached somewhere."""
    management, statements = set(), []
    for stack, logical_id, resource in assembly.resources("AWS::Organizations::Policy"):
        props = resource["Properties"]
        if props.get("Type") == "SERVICE_CONTROL_POLICY" and props.get("TargetIds"):
            management.add(stack.account)
            statements += [(logical_id, s) for s in listed(props["Content"].get("Statement"))]
    return management, statements


def _deploying_principals(stack: Stack) -> list[tuple[str, Sequence[str]]]:
    """(principal ARN, calls it makes) for everyone who deploys, updates or rolls back `stack`."""
    resource_calls = sorted({call for _, r in stack.resources() for call in deploy_calls(r["Type"])})
    execution_role = _manifest_arn(stack, "cloudFormationExecutionRoleArn")
    if execution_role is None:
        return [(f"arn:aws:iam::{stack.account}:role/{MEMBER_ADMIN_ROLE}", resource_calls + list(DEPLOY_ROLE_CALLS))]
    principals = [(execution_role, resource_calls)]
    deploy_role = _manifest_arn(stack, "assumeRoleArn")
    if deploy_role is not None:
        principals.append((deploy_role, DEPLOY_ROLE_CALLS))
    return principals


@rule("scp-allows-deployers", category="permissions")
def scps_allow_deployers(assembly: CloudAssembly) -> Outcome:
    """No SCP denies a call the roles that deploy a member-account stack make: the
    CloudFormation execution role (create, update, rollback, delete of each resource), the
    bootstrap deploy role the CLI and CDK Pipelines assume, or the admin role of the CLI steps.
    SCPs apply to every principal of member accounts, not the management account
    (https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_scps.html);
    conditions on aws:PrincipalArn and aws:RequestedRegion are evaluated
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html)."""
    outcome = Outcome()
    management, statements = _service_control_policies(assembly)
    if not statements:
        return outcome
    for stack in assembly:
        if stack.account in management:
            continue
        for principal, calls in _deploying_principals(stack):
            context = {"aws:PrincipalArn": principal, "aws:RequestedRegion": stack.region}
            denied = {}
            for call in calls:
                for policy_id, statement in statements:
                    sid = denied_by([statement], Request(call, "*", context))
                    if sid is not None:
                        denied[call] = f"{policy_id}/{sid}"
                        break
            outcome.check(
                not denied,
                f"{stack.stack_name}: {principal.rsplit('/', 1)[-1]} in {stack.region} is denied "
                + ", ".join(f"{call} by {by}" for call, by in sorted(denied.items())),
            )
    return outcome
