"""CloudFormation intrinsic functions, resolved offline.

Two uses: `worst_case(value, template)` replaces every value CloudFormation only knows at
deploy time with a placeholder of the longest length it can realistically have, so a size
estimate is conservative; `resolve(value, ...)` resolves exactly what can be known offline
(literals, pseudo parameters of a stack's environment, joins and subs over them) and
returns None for anything that needs a deployed resource.

Intrinsics: https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference.html
Pseudo parameters: https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/pseudo-parameter-reference.html
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

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
