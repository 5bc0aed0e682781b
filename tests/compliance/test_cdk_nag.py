"""cdk-nag AwsSolutions and NIST 800-53 R5 over every stack: zero unacknowledged findings.

The packs run as the app's policy validation plugins (`constructs_lib.nag.enable_nag`), during
`cdk synth` itself; the CDK applies the acknowledgements (`cdk.Validations.acknowledge`) and
writes what it found into the cloud assembly's validation-report.json: per pack a conclusion,
the open violations, and every suppressed one with the acknowledgement's id, reason and the
construct it sits on. These tests read that report from each organization's assembly (for
`CONFIG`, `make synth`'s own when `make test` runs): a finding left open fails `cdk synth`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3

from constructs_lib.nag import MIN_REASON_LENGTH, acknowledge, enable_nag
from tests import synth
from tests.conftest import ORG_CONFIGS, Assembly

PACKS = ("AwsSolutions", "NIST.800.53.R5")
VAGUE = re.compile(r"^(n/?a|todo|tbd|fixme|false positive|not needed|ok|needed|required|suppressed?)\b", re.I)
REPORT = "validation-report.json"


def plugin_reports(outdir: Path) -> dict[str, dict]:
    report = json.loads((outdir / REPORT).read_text())
    return {plugin["pluginName"]: plugin for plugin in report["pluginReports"]}


@pytest.fixture(scope="module", params=sorted(ORG_CONFIGS))
def organization(request, synthesized) -> Assembly:
    return synthesized(request.param)


@pytest.fixture(scope="module")
def reports(organization) -> dict[str, dict]:
    return plugin_reports(organization.outdir)


@pytest.fixture(scope="module")
def acknowledged(reports) -> list[dict]:
    """Every suppressed finding: ruleName, reason, acknowledgedId, acknowledgedAt, violatingConstructs."""
    return [finding for name in PACKS for finding in reports[name]["suppressedViolations"]]


def test_synth_leaves_no_warning(organization):
    """A warning the CDK prints on every `cdk synth` (a property it ignores, a feature flag left
    unset) soon goes unread, and the next one with it: the assembly's metadata holds none."""
    # The CDK writes each stack's annotations beside its template; none found would mean the
    # warnings moved elsewhere and this test looked at nothing.
    entries = [
        (path, entry)
        for metadata in sorted(organization.outdir.rglob("*.metadata.json"))
        for path, path_entries in json.loads(metadata.read_text()).items()
        for entry in path_entries
    ]
    assert any(entry["type"] == "aws:cdk:logicalId" for _, entry in entries), "no stack metadata in the assembly"
    warnings = [f"{path}: {entry['data']}" for path, entry in entries if entry["type"] == "aws:cdk:warning"]
    assert not warnings, "\n".join(warnings)


def test_both_packs_judged_every_stack(organization, reports, acknowledged):
    assert set(reports) == set(PACKS)
    stacks = {s.display_name for s in organization.stacks()}
    judged = {
        # A path under no stack shows itself in the failure instead of stopping the comprehension.
        next((s for s in stacks if c["constructPath"].startswith(f"{s}/")), c["constructPath"])
        for finding in acknowledged
        for c in finding["violatingConstructs"]
    }
    environments = organization.cfg.environments
    assert {"org", "pipeline"} | {f"{env}-deploy-access" for env in environments} | {
        f"{env}/network" for env in environments
    } <= judged


def test_no_unacknowledged_findings(reports):
    for name in PACKS:
        open_findings = [
            f"{c['constructPath']}: {v['ruleName']}: {v['description'][:120]}"
            for v in reports[name]["violations"]
            for c in v["violatingConstructs"]
        ]
        assert not open_findings, "\n".join(open_findings)
        assert reports[name]["conclusion"] == "success"


def test_acknowledgements_have_specific_reasons(organization, acknowledged, report):
    assert acknowledged, "expected the documented acknowledgements to be found"
    weak = [
        (f["acknowledgedAt"], f["acknowledgedId"], f["reason"])
        for f in acknowledged
        if len(f["reason"].strip()) < MIN_REASON_LENGTH or VAGUE.match(f["reason"].strip())
    ]
    assert not weak, weak
    by_rule: dict[str, int] = {}
    for f in acknowledged:
        base = f["acknowledgedId"].split("[")[0]
        by_rule[base] = by_rule.get(base, 0) + 1
    report(
        f"cdk-nag acknowledgements ({organization.name})",
        f"{len(acknowledged)} findings acknowledged ("
        + ", ".join(f"{rule.split('::')[1]}={count}" for rule, count in sorted(by_rule.items()))
        + ")",
    )


def test_acknowledgements_sit_on_resources_not_stacks(organization, acknowledged):
    broad = {s.display_name for s in organization.stacks()} | set(organization.cfg.environments)
    too_broad = [(f["acknowledgedAt"], f["acknowledgedId"]) for f in acknowledged if f["acknowledgedAt"] in broad]
    assert not too_broad, f"acknowledge on the narrowest construct, not a stack or stage: {too_broad}"


def test_the_report_separates_acknowledged_from_open_findings(tmp_path):
    """Guard against a report that passes everything: of two buckets breaking the same rule,
    the acknowledged one is suppressed and the other fails the pack."""
    app = synth.app(tmp_path)
    stack = cdk.Stack(app, "probe", env=cdk.Environment(account="111111111111", region="us-east-1"))
    quiet = s3.Bucket(stack, "Acknowledged", enforce_ssl=True)
    s3.Bucket(stack, "Open", enforce_ssl=True)
    reason = "a probe bucket of this test; its access logs are the point of the test"
    acknowledge(quiet, ("AwsSolutions::AwsSolutions-S1", reason))
    enable_nag(app)
    app.synth()
    solutions = plugin_reports(tmp_path)["AwsSolutions"]
    open_paths = {c["constructPath"] for v in solutions["violations"] for c in v["violatingConstructs"]}
    suppressed = {
        (v["ruleName"], c["constructPath"]) for v in solutions["suppressedViolations"] for c in v["violatingConstructs"]
    }
    assert solutions["conclusion"] == "failure"
    assert "probe/Open/Resource" in open_paths
    assert "probe/Acknowledged/Resource" not in open_paths
    assert ("AwsSolutions-S1", "probe/Acknowledged/Resource") in suppressed
