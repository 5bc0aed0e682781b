"""cdk-nag AwsSolutions and NIST 800-53 R5 over every stack: zero unacknowledged findings.

`NagPack.validate_scope` reports raw findings; acknowledgements live in construct metadata
(what `cdk.Validations.acknowledge` writes and `cdk synth` honours), so this test applies
them the same way: a finding is acknowledged when the violating construct or one of its
ancestors acknowledges "<pack>::<finding id>".
"""

from __future__ import annotations

import re

import aws_cdk as cdk
import pytest
from constructs import IConstruct

from constructs_lib.nag import MIN_REASON_LENGTH, nag_packs

PACK_PREFIX = {"AwsSolutions": "AwsSolutions", "NIST.800.53.R5": "NIST.800.53.R5"}
VAGUE = re.compile(r"^(n/?a|todo|tbd|fixme|false positive|not needed|ok|needed|required|suppressed?)\b", re.I)
ACK_KEY = cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY


def acknowledgements(construct: IConstruct) -> dict[str, str]:
    found: dict[str, str] = {}
    for entry in construct.node.metadata:
        if entry.type == ACK_KEY:
            found.update(entry.data)
    return found


def all_acknowledgements(app: cdk.App) -> list[tuple[IConstruct, str, str]]:
    return [
        (c, rule, reason)
        for c in app.node.find_all()
        for rule, reason in acknowledgements(c).items()
        if rule.split("::")[0] in PACK_PREFIX
    ]


@pytest.fixture(scope="session")
def acks(assembly) -> list[tuple[IConstruct, str, str]]:
    # One walk of the whole construct tree through jsii costs seconds; the tests share it.
    return all_acknowledgements(assembly.app)


def is_acknowledged(app: cdk.App, path: str, rule: str) -> bool:
    construct = app.node.find_child(path.split("/")[0])
    for part in path.split("/")[1:]:
        if rule in acknowledgements(construct):
            return True
        construct = construct.node.find_child(part)
    return rule in acknowledgements(construct)


def pack_prefix(pack) -> str:
    return "AwsSolutions" if type(pack).__name__ == "AwsSolutionsChecks" else "NIST.800.53.R5"


@pytest.fixture(scope="session")
def nag_findings(assembly) -> dict[str, list[str]]:
    results: dict[str, list[str]] = {}
    for stack in assembly.stacks():
        open_findings = []
        for pack in nag_packs():
            for violation in pack.validate_scope(stack).violations:
                rule = f"{pack_prefix(pack)}::{violation.rule_name}"
                for resource in violation.violating_resources:
                    if not is_acknowledged(assembly.app, resource.construct_path, rule):
                        open_findings.append(f"{resource.construct_path}: {rule}: {violation.description[:120]}")
        results[stack.node.path] = open_findings
    return results


def test_every_stack_is_checked(assembly, nag_findings):
    assert {"org", "dev/network", "staging/network", "prod/network", "prod-deploy-access"} <= set(nag_findings)


def test_no_unacknowledged_findings(nag_findings):
    open_findings = [f for findings in nag_findings.values() for f in findings]
    assert not open_findings, "\n".join(open_findings)


def test_acknowledgements_have_specific_reasons(acks, report):
    assert acks, "expected the documented acknowledgements to be found"
    weak = [
        (construct.node.path, rule, reason)
        for construct, rule, reason in acks
        if len(reason.strip()) < MIN_REASON_LENGTH or VAGUE.match(reason.strip())
    ]
    assert not weak, weak
    by_rule: dict[str, int] = {}
    for _, rule, _ in acks:
        base = rule.split("[")[0]
        by_rule[base] = by_rule.get(base, 0) + 1
    report(
        "cdk-nag acknowledgements",
        f"{len(acks)} (" + ", ".join(f"{rule.split('::')[1]}={count}" for rule, count in sorted(by_rule.items())) + ")",
    )


def test_acknowledgements_sit_on_resources_not_stacks(acks):
    broad = [
        (construct.node.path, rule) for construct, rule, _ in acks if isinstance(construct, (cdk.Stack, cdk.Stage))
    ]
    assert not broad, f"acknowledge on the narrowest construct, not a stack: {broad}"


def test_the_ack_filter_really_filters(assembly, acks):
    """Guard against a filter that accepts everything: a known acknowledged finding is matched,
    a made-up rule on the same construct is not."""
    construct, rule, _ = acks[0]
    path = construct.node.path
    assert is_acknowledged(assembly.app, path, rule)
    assert not is_acknowledged(assembly.app, path, "AwsSolutions::AwsSolutions-NOPE1")
