"""cdk-nag (v3) wiring and the only sanctioned way to acknowledge a finding.

Every acknowledgement goes through `acknowledge`, on the narrowest construct, with a reason a
reviewer can check; the tests count them and reject vague reasons.
"""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks
from constructs import IConstruct

MIN_REASON_LENGTH = 40


def nag_packs() -> list:
    return [AwsSolutionsChecks(), NIST80053R5Checks()]


def enable_nag(app: cdk.App) -> None:
    """Run the packs on every synth: violations fail `cdk synth`."""
    cdk.Validations.of(app).add_plugins(*nag_packs())


def acknowledge(construct: IConstruct, *findings: tuple[str, str]) -> None:
    """Acknowledge (rule id, reason) pairs on one construct.

    Rule ids may carry a finding suffix, e.g. "AwsSolutions-IAM5[Action::s3:*]".
    """
    for rule_id, reason in findings:
        if len(reason.strip()) < MIN_REASON_LENGTH:
            raise ValueError(f"acknowledgement of {rule_id} on {construct.node.path} needs a specific reason")
        cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=rule_id, reason=reason))


def nag_label(value) -> str:
    """Renders a resolved CloudFormation value the way cdk-nag prints it in finding ids."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        resource, attribute = value["Fn::GetAtt"]
        return f"<{resource}.{attribute}>"
    if "Fn::ImportValue" in value and isinstance(value["Fn::ImportValue"], str):
        return value["Fn::ImportValue"]
    if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        return value["Fn::Sub"].replace("${", "<").replace("}", ">")
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(nag_label(part) for part in parts)
    raise ValueError(f"cannot label {value!r}")


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def acknowledge_generated_grants(
    policy: cdk.CfnResource,
    *,
    reason: str,
    allowed_actions: frozenset[str],
    allowed_resources: tuple[str, ...],
) -> int:
    """Acknowledges the IAM5 findings of a policy that CDK generates (grant helpers, CDK Pipelines).

    Only wildcards from `allowed_actions`, and wildcard resources matching one of the
    `allowed_resources` regular expressions, are acknowledged; anything else raises, so a new
    wildcard in a generated policy is reviewed rather than waved through. Returns the count.
    """
    import re

    stack = cdk.Stack.of(policy)
    document = stack.resolve(policy.policy_document)
    findings: list[str] = []
    for statement in document["Statement"]:
        for action in _listed(statement.get("Action", [])):
            if "*" in action:
                if action not in allowed_actions:
                    raise ValueError(f"{policy.node.path}: unreviewed wildcard action {action}")
                findings.append(f"Action::{action}")
        for resource in _listed(statement.get("Resource", [])):
            label = nag_label(resource)
            if "*" in label:
                if not any(re.fullmatch(pattern, label) for pattern in allowed_resources):
                    raise ValueError(f"{policy.node.path}: unreviewed wildcard resource {label}")
                findings.append(f"Resource::{label}")
    unique = sorted(set(findings))
    acknowledge(policy, *[(f"AwsSolutions::AwsSolutions-IAM5[{f}]", reason) for f in unique])
    return len(unique)


# New member accounts start with a Lambda concurrency quota of 10 and Lambda keeps 100
# unreserved (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html), so any
# reservation fails the deploy in exactly the accounts the org stack creates (deploy rehearsal
# rule lambda-reserved-concurrency).
NO_RESERVED_CONCURRENCY = (
    "no reserved concurrency: new member accounts start with a concurrency quota of 10 and Lambda keeps 100 "
    "unreserved, so any reservation fails the deploy (rehearsal rule lambda-reserved-concurrency)"
)


def acknowledge_unreserved_concurrency(function: cdk.CfnResource, *, why_safe: str) -> None:
    """cdk-nag's and checkov's concurrency-limit checks, answered once for a function."""
    from constructs_lib.checkov import skip

    reason = f"{NO_RESERVED_CONCURRENCY}; {why_safe}"
    acknowledge(function, ("NIST.800.53.R5::NIST.800.53.R5-LambdaConcurrency", reason))
    skip(function, ("CKV_AWS_115", reason))
