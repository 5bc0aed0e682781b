"""CloudFormation intrinsic functions, resolved offline.

Two uses: `worst_case(value, template)` replaces every value CloudFormation only knows at
deploy time with a placeholder of the longest length it can realistically have, so a size
estimate is conservative; `resolve(value, ...)` resolves exactly what can be known offline
(literals, pseudo parameters of a stack's environment, joins and subs over them) and
returns None for anything that needs a deployed resource. Across the whole assembly,
`render(assembly, stack, value)` gives the string CloudFormation would produce, following
exports and cross-region references, with unknown resource attributes as `{LogicalId.Attr}`,
and `target(assembly, stack, value)` names the resource a value points at, in any stack.

Intrinsics: https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference.html
Pseudo parameters: https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/pseudo-parameter-reference.html
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from tests.deploy.cloud_assembly import CloudAssembly, Stack

# Longest realistic value of each pseudo parameter: aws-us-gov is the longest partition,
# ap-southeast-5 among the longest region names, stack names are at most 128 characters.
PSEUDO_MAX_LENGTH = {
    "AWS::AccountId": 12,
    "AWS::Partition": len("aws-us-gov"),
    "AWS::Region": len("ap-southeast-5"),
    "AWS::URLSuffix": len("amazonaws.com.cn"),
    "AWS::StackName": 128,
    "AWS::StackId": len("arn:aws-us-gov:cloudformation:ap-southeast-5:123456789012:stack//") + 128 + 36,
    "AWS::NotificationARNs": 256,
}
# A physical name or id (Ref) and an ARN (GetAtt ...Arn) of a resource created at deploy time:
# IAM role and policy names are at most 64/128 characters, generated names stay below 128,
# and the ARNs this platform references (roles, keys, topics, queues, buckets) below 256.
REF_MAX_LENGTH = 128
ARN_MAX_LENGTH = 256
IMPORT_MAX_LENGTH = 256
PLACEHOLDER = "x"

_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


def worst_case(value: Any, template: Mapping[str, Any]) -> Any:
    """`value` with every intrinsic replaced by its longest realistic resolution."""
    if isinstance(value, list):
        return [worst_case(item, template) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        return {key: worst_case(item, template) for key, item in value.items()}
    ((function, argument),) = value.items()
    if function == "Ref":
        if argument in PSEUDO_MAX_LENGTH:
            return PLACEHOLDER * PSEUDO_MAX_LENGTH[argument]
        if argument == "AWS::NoValue":
            return ""
        parameter = template.get("Parameters", {}).get(argument)
        if (
            parameter is not None
            and "Default" in parameter
            and not str(parameter.get("Type", "")).startswith("AWS::SSM")
        ):
            return str(parameter["Default"])
        return PLACEHOLDER * REF_MAX_LENGTH
    if function == "Fn::GetAtt":
        attribute = argument[1] if isinstance(argument, list) else str(argument).split(".", 1)[1]
        return PLACEHOLDER * (ARN_MAX_LENGTH if str(attribute).endswith("Arn") else REF_MAX_LENGTH)
    if function == "Fn::ImportValue":
        return PLACEHOLDER * IMPORT_MAX_LENGTH
    if function == "Fn::Join":
        delimiter, items = argument
        resolved = worst_case(items, template)
        if not isinstance(resolved, list):
            return PLACEHOLDER * ARN_MAX_LENGTH
        return delimiter.join(str(item) for item in resolved)
    if function == "Fn::Sub":
        text, variables = (argument, {}) if isinstance(argument, str) else argument

        def substitute(match: re.Match) -> str:
            name = match.group(1)
            if name in variables:
                return str(worst_case(variables[name], template))
            if name in PSEUDO_MAX_LENGTH:
                return PLACEHOLDER * PSEUDO_MAX_LENGTH[name]
            return PLACEHOLDER * (ARN_MAX_LENGTH if name.endswith(".Arn") else REF_MAX_LENGTH)

        return _SUB_VARIABLE.sub(substitute, text)
    if function == "Fn::If":
        _, when_true, when_false = argument
        options = [json.dumps(worst_case(when_true, template)), json.dumps(worst_case(when_false, template))]
        return json.loads(max(options, key=len))
    if function == "Fn::Select":
        index, items = argument
        resolved = worst_case(items, template)
        if isinstance(resolved, list) and isinstance(index, int) and index < len(resolved):
            return resolved[index]
        return PLACEHOLDER * REF_MAX_LENGTH
    if function == "Fn::Base64":
        return PLACEHOLDER * (4 * ((len(str(worst_case(argument, template))) + 2) // 3))
    if function in ("Fn::Split", "Fn::GetAZs", "Fn::Cidr"):
        return [PLACEHOLDER * REF_MAX_LENGTH]
    if function.startswith("Fn::"):
        return PLACEHOLDER * ARN_MAX_LENGTH
    return {function: worst_case(argument, template)}


def pseudo_parameters(*, account: str, region: str, partition: str = "aws", stack_name: str = "") -> dict[str, str]:
    """The pseudo parameter values of one stack's environment, where they are known offline."""
    suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    values = {"AWS::AccountId": account, "AWS::Region": region, "AWS::Partition": partition, "AWS::URLSuffix": suffix}
    if stack_name:
        values["AWS::StackName"] = stack_name
    return values


def resolve(value: Any, *, pseudo: Mapping[str, str]) -> Any:
    """`value` resolved exactly, or None when any part needs a deployed resource."""
    if isinstance(value, list):
        items = [resolve(item, pseudo=pseudo) for item in value]
        return None if any(item is None for item in items) else items
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        resolved = {key: resolve(item, pseudo=pseudo) for key, item in value.items()}
        return None if any(item is None for item in resolved.values()) else resolved
    ((function, argument),) = value.items()
    if function == "Ref":
        return pseudo.get(argument)
    if function == "Fn::Join":
        delimiter, items = argument
        resolved = resolve(items, pseudo=pseudo)
        return None if resolved is None else delimiter.join(str(item) for item in resolved)
    if function == "Fn::Sub":
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        missing = False

        def substitute(match: re.Match) -> str:
            nonlocal missing
            name = match.group(1)
            known = resolve(variables[name], pseudo=pseudo) if name in variables else pseudo.get(name)
            if known is None:
                missing = True
                return ""
            return str(known)

        result = _SUB_VARIABLE.sub(substitute, text)
        return None if missing else result
    if function.startswith("Fn::"):
        return None
    resolved = resolve(argument, pseudo=pseudo)
    return None if resolved is None else {function: resolved}


def policy_length(document: Any, template: Mapping[str, Any], *, count_whitespace: bool = False) -> int:
    """Characters of a policy document once CloudFormation resolved it, at worst.

    IAM does not count white space against its size quotas; Organizations counts the
    document as stored.
    """
    text = json.dumps(worst_case(document, template), separators=(",", ":"))
    return len(text) if count_whitespace else sum(1 for char in text if not char.isspace())


# --- values across the whole assembly (exports, cross-region references) -----------------------

CROSS_REGION_READER = "Custom::CrossRegionExportReader"
CROSS_REGION_WRITER = "Custom::CrossRegionExportWriter"


def _export(assembly: CloudAssembly, name: str) -> tuple[Stack, Any] | None:
    for stack in assembly:
        for output in stack.template.get("Outputs", {}).values():
            if output.get("Export", {}).get("Name") == name:
                return stack, output["Value"]
    return None


def _cross_region_export(assembly: CloudAssembly, parameter: str) -> tuple[Stack, Any] | None:
    for stack, _, writer in assembly.resources(CROSS_REGION_WRITER):
        exports = writer["Properties"]["WriterProps"]["exports"]
        if parameter in exports:
            return stack, exports[parameter]
    return None


def target(assembly: CloudAssembly, stack: Stack, value: Any) -> tuple[Stack, str] | None:
    """(stack, logical id) of the resource `value` refers to: Ref, GetAtt, exports, alias ARNs."""
    if isinstance(value, dict) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Ref" and arg in stack.resources_by_id:
            return stack, arg
        if fn == "Fn::GetAtt":
            logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            resource = stack.resources_by_id.get(logical_id, {})
            if resource.get("Type") == CROSS_REGION_READER:
                found = _cross_region_export(assembly, attribute)
                return target(assembly, *found) if found else None
            return (stack, logical_id) if resource else None
        if fn == "Fn::ImportValue":
            found = _export(assembly, render(assembly, stack, arg))
            return target(assembly, *found) if found else None
    rendered = render(assembly, stack, value)
    if isinstance(rendered, str):
        return by_arn(assembly, rendered)
    return None


def by_arn(assembly: CloudAssembly, arn: str) -> tuple[Stack, str] | None:
    """A literal ARN to the resource that creates it, for the names CloudFormation derives ARNs from."""
    match = re.fullmatch(r"arn:[^:]+:(?P<service>[^:]+):(?P<region>[^:]*):(?P<account>\d*):(?P<resource>.+)", arn)
    if not match:
        return None
    service, region, account, resource = match.group("service", "region", "account", "resource")
    for stack in assembly:
        if stack.account != account or (region and stack.region != region):
            continue
        for logical_id, res in stack.resources():
            props = res.get("Properties", {})
            if (
                service == "kms"
                and res["Type"] == "AWS::KMS::Alias"
                and resource == render(assembly, stack, props.get("AliasName"))
            ):
                return target(assembly, stack, props["TargetKeyId"])
            if (
                service == "iam"
                and res["Type"] == "AWS::IAM::Role"
                and resource == (f"role{props.get('Path', '/')}{render(assembly, stack, props.get('RoleName'))}")
            ):
                return stack, logical_id
            if (
                service == "sns"
                and res["Type"] == "AWS::SNS::Topic"
                and resource == render(assembly, stack, props.get("TopicName"))
            ):
                return stack, logical_id
    return None


def render(assembly: CloudAssembly, stack: Stack, value: Any) -> Any:
    """The value as CloudFormation would render it; resource attributes stay `{LogicalId.Attr}`."""
    if isinstance(value, list):
        return [render(assembly, stack, item) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1 or not next(iter(value)).startswith(("Ref", "Fn::")):
        return {key: render(assembly, stack, item) for key, item in value.items()}
    ((fn, arg),) = value.items()
    if fn == "Ref":
        if arg == "AWS::NoValue":
            return None
        pseudo = pseudo_parameters(account=stack.account, region=stack.region, stack_name=stack.stack_name)
        if arg in pseudo:
            return pseudo[arg]
        parameter = stack.template.get("Parameters", {}).get(arg)
        return parameter.get("Default", f"{{{arg}}}") if parameter else f"{{{arg}}}"
    if fn == "Fn::GetAtt":
        logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
        resource = stack.resources_by_id.get(logical_id, {})
        if resource.get("Type") == CROSS_REGION_READER:
            found = _cross_region_export(assembly, attribute)
            return render(assembly, *found) if found else f"{{{logical_id}.{attribute}}}"
        if attribute == "CidrBlock" and resource.get("Type") in ("AWS::EC2::VPC", "AWS::EC2::Subnet"):
            return render(assembly, stack, resource["Properties"]["CidrBlock"])
        return f"{{{logical_id}.{attribute}}}"
    if fn == "Fn::ImportValue":
        name = render(assembly, stack, arg)
        found = _export(assembly, name)
        return render(assembly, *found) if found else f"{{import:{name}}}"
    if fn == "Fn::Join":
        separator, parts = arg
        rendered = render(assembly, stack, parts)
        return separator.join(str(p) for p in rendered) if isinstance(rendered, list) else f"{{{fn}}}"
    if fn == "Fn::Sub":
        text, variables = (arg, {}) if isinstance(arg, str) else arg
        rendered_vars = {k: render(assembly, stack, v) for k, v in variables.items()}

        def substitute(match: re.Match) -> str:
            name = match.group(1)
            if name in rendered_vars:
                return str(rendered_vars[name])
            ref = {"Ref": name} if "." not in name else {"Fn::GetAtt": name.split(".", 1)}
            return str(render(assembly, stack, ref))

        return re.sub(r"\$\{([^!}][^}]*)\}", substitute, text)
    if fn == "Fn::Select":
        index, items = arg
        items = render(assembly, stack, items)
        return items[int(index)] if isinstance(items, list) else f"{{{fn}}}"
    return f"{{{fn}}}"
