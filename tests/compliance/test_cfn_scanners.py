"""cfn-lint and checkov over the organization's stacks and one environment of each kind.

Both run once per session, in the background (tests/compliance/scanners.py, which says why one
environment of each kind): started by the controller early in the session when `make synth` left
the assembly, or here otherwise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compliance import scanners
from tests.conftest import environment_kinds


@pytest.fixture(scope="session")
def scanner_runs(assembly):
    kinds = environment_kinds(assembly.cfg)
    stacks = scanners.scanned(assembly.stacks(), kinds)
    by_region = scanners.templates_by_region(stacks)
    runs = scanners.start(stacks)
    templates = sorted(str(t) for paths in by_region.values() for t in paths)
    return {"templates": templates, "regions": by_region, "kinds": kinds, "stacks": stacks, **runs}


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
    regions = scanner_runs["regions"]
    report(
        "cfn-lint",
        f"{len(scanner_runs['templates'])} of {len(assembly.template_files())} templates (the organization's stacks "
        f"and {', '.join(scanner_runs['kinds'])}), each against its own region ("
        + ", ".join(f"{len(paths)} {region}" for region, paths in regions.items())
        + f"), 0 errors, {len(findings)} warnings, "
        f"{len(ignores)} resource-level ignore (E3703 on the CDK Pipelines pipeline)",
    )


# A property name as CloudFormation spells them; other keys (tags, policy conditions, export
# names) are data, and carry names that differ between environments.
PROPERTY_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*$")


def _shapes(node: object, path: tuple[object, ...] = ()) -> Iterator[tuple[object, ...]]:
    """Each leaf's path through a resource's properties; a boolean leaf keeps its value (a switch
    decides what the scanners check), other values and every intrinsic stand for any value."""
    if isinstance(node, dict):
        if len(node) == 1 and next(iter(node)).startswith(("Fn::", "Ref")):
            yield (*path, "<intrinsic>")
            return
        for key, value in node.items():
            yield from _shapes(value, (*path, key if PROPERTY_NAME.match(key) else "*"))
    elif isinstance(node, list):
        for value in node:
            yield from _shapes(value, (*path, "[]"))
    elif isinstance(node, bool):
        yield (*path, node)
    else:
        yield path


def test_environments_left_unscanned_hold_nothing_the_scanned_lack(scanner_runs, assembly, report):
    """What scanning one environment of each kind rests on: every resource property (and every
    switch's value) of the environments left out occurs in the scanned templates."""
    scanned = {stack.artifact_id for stack in scanner_runs["stacks"]}
    left = [stack for stack in assembly.stacks() if stack.artifact_id not in scanned]
    assert all(stack.stage in assembly.cfg.environments for stack in left), [s.artifact_id for s in left]

    def shapes(stacks) -> set[tuple[object, ...]]:
        return {
            (resource["Type"], *path)
            for stack in stacks
            for resource in stack.template.get("Resources", {}).values()
            for path in _shapes(resource.get("Properties", {}))
        }

    lacking = shapes(left) - shapes(scanner_runs["stacks"])
    assert not lacking, "scan those environments too; the scanned ones lack:\n" + "\n".join(
        map(str, sorted(lacking, key=str))
    )
    report(
        "scanned environments",
        f"{', '.join(scanner_runs['kinds'])} and the organization's stacks; "
        f"{', '.join(sorted({s.stage for s in left})) or 'none'} left out, holding no resource property or switch "
        "value those lack",
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
