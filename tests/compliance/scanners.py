"""The scanners' command lines, and the CloudFormation scans of an assembly as background runs.

cfn-lint and checkov read only the templates and take some twenty CPU-seconds between them.
When the assembly is on disk before the session starts (`make synth`'s), the controller starts both
once a worker has collected the suite (tests/conftest.py); they run beside the workers' tests,
taking the CPU a test leaves while it waits on a server, and tests/compliance/test_cfn_scanners.py
reads their reports. Otherwise the first test that needs them starts them.

They scan the organization's own stacks and one environment of each kind (tests/conftest.py's
`environment_kinds`: the first non-production and the first production one). Another environment
of the same kind is built by the same constructs from values the loader has checked (sizes against
each region's offerings, retention periods, bounds), and cdk-nag and the deploy rehearsal still
judge all of its stacks; scanning it again is a third of both scanners' time for findings the
kinds already show. tests/compliance/test_cfn_scanners.py fails if an environment left out holds
a resource property, or a switch's value, that the scanned templates lack.

cfn-lint judges a template against the resource schemas of the regions it is given, and without
`--regions` that is us-east-1 (or AWS_DEFAULT_REGION) for every template; what a resource
accepts can differ by region (instance classes, engine versions, whole resource types). So each
region's templates get their own cfn-lint run against that region, the one their stacks deploy to.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

from tests import gc_tuning, shared
from tests.deploy.cloud_assembly import Stack

ROOT = Path(__file__).resolve().parents[2]
CFN_LINT = Path(sys.executable).with_name("cfn-lint")
# The checkov every scan runs (its own venv, requirements-checkov.txt), offline: BC_SKIP_MAPPING
# stops it fetching Bridgecrew's guideline mapping.
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
CHECKOV_ENV = {"BC_SKIP_MAPPING": "TRUE"}
CFN_LINT_RUN, CHECKOV_RUN = "cfn-lint", "checkov"
TIMEOUT_SECONDS = 600


def scanned(stacks: Iterable[Stack], kinds: Iterable[str]) -> list[Stack]:
    """The stacks the scans read: the organization's own (no stage) and those of the `kinds` environments."""
    keep = {"", *kinds}
    return [stack for stack in stacks if stack.stage in keep]


def templates_by_region(stacks: Iterable[Stack]) -> dict[str, list[Path]]:
    """Each region the stacks deploy to -> their templates, in a stable order."""
    regions: dict[str, list[Path]] = {}
    for stack in stacks:
        assert stack.template_path is not None, stack.artifact_id
        regions.setdefault(stack.region, []).append(stack.template_path)
    return {region: sorted(paths) for region, paths in sorted(regions.items())}


def cfn_lint_run(region: str) -> str:
    return f"{CFN_LINT_RUN} {region}"


def start(stacks: Iterable[Stack]) -> dict[str, Path]:
    """cfn-lint (one run per region) and checkov over the stacks' templates, started once per
    session: run name -> its directory."""
    by_region = templates_by_region(stacks)
    files = [str(t) for paths in by_region.values() for t in paths]
    commands = {
        cfn_lint_run(region): (
            [
                *gc_tuning.python_tool(CFN_LINT),
                *("--regions", region, "--non-zero-exit-code", "error", "--format", "json"),
                *(str(t) for t in paths),
            ],
            {},
        )
        for region, paths in by_region.items()
    }
    commands[CHECKOV_RUN] = (
        [
            *gc_tuning.python_tool(CHECKOV),
            # The templates alone: given the folder, checkov also parses every JSON and YAML file
            # among the assets (Helm charts, Lambda packages) as a would-be template.
            *(arg for file in files for arg in ("-f", file)),
            *("--framework", "cloudformation", "--skip-download", "--compact", "-o", "json"),
        ],
        # In one process: forking parsers and pickling their templates back costs more CPU than
        # it saves beside cfn-lint and the workers (same report, 12% less CPU when measured).
        {**CHECKOV_ENV, "CHECKOV_PARALLELIZATION_TYPE": "none"},
    )
    return {
        name: shared.spawn(shared.key_of("cfn-scan", *argv), argv, env={**os.environ, **env})
        for name, (argv, env) in commands.items()
    }


def result(run: Path) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of a run `start` returned, once it has ended."""
    return shared.spawned(run, timeout=TIMEOUT_SECONDS)
