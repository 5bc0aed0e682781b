"""cfn-lint and checkov over every synthesized template.

Both run once per session, in the background (tests/compliance/scanners.py): started by the
controller early in the session when `make synth` left the assembly, or here otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.compliance import scanners


@pytest.fixture(scope="session")
def scanner_runs(assembly):
    by_region = scanners.templates_by_region(assembly.stacks())
    runs = scanners.start(assembly.stacks())
    templates = sorted(str(t) for paths in by_region.values() for t in paths)
    return {"templates": templates, "regions": by_region, **runs}


@pytest.fixture(scope="session")
def cfn_lint(scanner_runs):
    """The per-region runs together: the highest exit status, every finding, every stderr."""
    codes, findings, errs = [], [], []
    for region in scanner_runs["regions"]:
        code, out, err = scanners.result(scanner_runs[scanners.cfn_lint_run(region)])
        codes.append(code)
        findings += json.loads(out or "[]")
        errs.append(err)
    return max(codes), findings, "".join(errs)


@pytest.fixture(scope="session")
def checkov_report(scanner_runs):
    _code, out, _err = scanners.result(scanner_runs[scanners.CHECKOV_RUN])
    reports = json.loads(out)
    reports = reports if isinstance(reports, list) else [reports]
    return [r for r in reports if r.get("check_type") == "cloudformation"]


def test_cfn_lint_has_no_errors(cfn_lint, scanner_runs, assembly, report):
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
    # Grouped by the manifests' regions, the runs still cover every template the assembly holds.
    assert scanner_runs["templates"] == sorted(str(t) for t in assembly.template_files())
    regions = scanner_runs["regions"]
    report(
        "cfn-lint",
        f"{len(scanner_runs['templates'])} templates, each against its own region ("
        + ", ".join(f"{len(paths)} {region}" for region, paths in regions.items())
        + f"), 0 errors, {len(findings)} warnings, "
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
