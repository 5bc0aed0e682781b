"""cfn-lint and checkov over every synthesized template.

Both run once per session, side by side, on the shared cloud assembly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.compliance.checkov_kubernetes import CHECKOV, CHECKOV_ENV

# cfn-lint and checkov over every template.
pytestmark = pytest.mark.long

ROOT = Path(__file__).resolve().parents[2]
CFN_LINT = Path(sys.executable).with_name("cfn-lint")


@pytest.fixture(scope="session")
def scanner_runs(assembly):
    templates = [str(p) for p in assembly.template_files()]
    lint = subprocess.Popen(
        [str(CFN_LINT), "--non-zero-exit-code", "error", "--format", "json", *templates],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    checkov = subprocess.Popen(
        [
            str(CHECKOV),
            # The templates alone: given the folder, checkov also parses every JSON and YAML file
            # among the assets (Helm charts, Lambda packages) as a would-be template.
            *(arg for template in templates for arg in ("-f", template)),
            "--framework",
            "cloudformation",
            "--skip-download",
            "--compact",
            "-o",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # In one process: forking parsers and pickling their templates back costs more CPU than
        # it saves beside cfn-lint and the other worker (same report, 12% less CPU when measured).
        env={**os.environ, **CHECKOV_ENV, "CHECKOV_PARALLELIZATION_TYPE": "none"},
    )
    return {"templates": templates, "cfn-lint": lint, "checkov": checkov}


@pytest.fixture(scope="session")
def cfn_lint(scanner_runs):
    out, err = scanner_runs["cfn-lint"].communicate(timeout=600)
    return scanner_runs["cfn-lint"].returncode, json.loads(out or "[]"), err


@pytest.fixture(scope="session")
def checkov_report(scanner_runs):
    out, _err = scanner_runs["checkov"].communicate(timeout=600)
    reports = json.loads(out)
    reports = reports if isinstance(reports, list) else [reports]
    return [r for r in reports if r.get("check_type") == "cloudformation"]


def test_cfn_lint_has_no_errors(cfn_lint, scanner_runs, report):
    code, findings, err = cfn_lint
    errors = [f for f in findings if f["Level"] == "Error"]
    assert not errors, json.dumps(errors, indent=1)[:4000]
    assert code == 0, err
    assert len(scanner_runs["templates"]) >= 7
    ignores = [
        (Path(path).name, logical_id, rule)
        for path in scanner_runs["templates"]
        for logical_id, resource in json.loads(Path(path).read_text()).get("Resources", {}).items()
        for rule in resource.get("Metadata", {}).get("cfn-lint", {}).get("config", {}).get("ignore_checks", [])
    ]
    assert all(rule == "E3703" and logical_id.startswith("Pipeline") for _, logical_id, rule in ignores), ignores
    report(
        "cfn-lint",
        f"{len(scanner_runs['templates'])} templates, 0 errors, {len(findings)} warnings, "
        f"{len(ignores)} resource-level ignore (E3703 on the CDK Pipelines pipeline)",
    )


def test_checkov_has_no_failed_checks(checkov_report, scanner_runs):
    assert checkov_report, "checkov produced no CloudFormation report"
    # Every template read whole: no parse error, and each of its resources counted.
    assert [r["summary"]["parsing_errors"] for r in checkov_report] == [0] * len(checkov_report)
    resources = sum(len(json.loads(Path(t).read_text()).get("Resources", {})) for t in scanner_runs["templates"])
    assert sum(r["summary"]["resource_count"] for r in checkov_report) == resources
    failed = [
        f"{c['check_id']} {c['resource']} in {c['file_path']}: {c['check_name']}"
        for report in checkov_report
        for c in report["results"].get("failed_checks", [])
    ]
    assert not failed, "\n".join(failed)


def test_checkov_skips_are_justified(checkov_report, report):
    skipped = [c for report in checkov_report for c in report["results"].get("skipped_checks", [])]
    vague = [c for c in skipped if len((c.get("check_result", {}).get("suppress_comment") or "").strip()) < 40]
    assert not vague, [(c["check_id"], c["resource"]) for c in vague]
    passed = sum(r["summary"]["passed"] for r in checkov_report)
    by_id: dict[str, int] = {}
    for c in skipped:
        by_id[c["check_id"]] = by_id.get(c["check_id"], 0) + 1
    report(
        "checkov cloudformation",
        f"{passed} passed, 0 failed, {len(skipped)} skipped ("
        + ", ".join(f"{k}={v}" for k, v in sorted(by_id.items()))
        + ")",
    )
