"""Deployment order: what must exist before each stack, following the README's journey
(`From nothing to a running platform`) and the manifest's dependencies (the CLI's and the
pipeline waves' order)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from tests.deploy.cloud_assembly import CloudAssembly, Stack
from tests.deploy.registry import Outcome, rule

README = Path(__file__).resolve().parents[3] / "README.md"
JOURNEY_HEADING = "## From nothing to a running platform"
_STEP = re.compile(r"^(\d+)\. \*\*(.+?)\*\*", re.MULTILINE)
_DEPLOY = re.compile(r"make deploy ENV=([\w<>-]+)")
_BOOTSTRAP = "make bootstrap"


@dataclass(frozen=True)
class JourneyStep:
    number: int
    title: str
    # `make deploy ENV=...` targets; `<env>` stands for any environment name.
    deploys: tuple[str, ...]
    bootstraps: bool

    def deploys_stack(self, stack: Stack) -> bool:
        return any(
            re.fullmatch(re.escape(target).replace(re.escape("<env>"), r"[\w-]+"), stack.artifact_id)
            for target in self.deploys
        )


def journey(readme: str) -> list[JourneyStep]:
    """The numbered steps of the README's journey, in order."""
    section = readme.split(JOURNEY_HEADING, 1)[1].split("\n## ", 1)[0]
    starts = list(_STEP.finditer(section))
    steps = []
    for index, match in enumerate(starts):
        body = section[match.start() : starts[index + 1].start() if index + 1 < len(starts) else len(section)]
        # A list item ends at the first unindented paragraph after it (the text after the last step).
        body = re.split(r"\n\s*\n(?=\S)", body, maxsplit=1)[0]
        steps.append(
            JourneyStep(
                number=int(match.group(1)),
                title=match.group(2).rstrip(".:"),
                deploys=tuple(_DEPLOY.findall(body)),
                bootstraps=_BOOTSTRAP in body,
            )
        )
    return steps


def _assets(stack: Stack) -> list[str]:
    """File and Docker image assets the stack needs published to the bootstrap resources."""
    found = [
        f"{logical_id} ({resource['Metadata']['aws:asset:path']})"
        for logical_id, resource in stack.resources()
        if "aws:asset:path" in resource.get("Metadata", {})
    ]
    if stack.template_path is not None:
        manifest_path = stack.template_path.with_name(f"{stack.artifact_id}.assets.json")
        if manifest_path.exists():
            manifest = json.loads(manifest_path.read_text())
            found += [
                source["source"].get("path", asset_id)
                for asset_id, source in manifest.get("files", {}).items()
                if source["source"].get("path") != stack.template_path.name
            ]
            found += list(manifest.get("dockerImages", {}))
    return found


def check_journey(assembly: CloudAssembly, steps: list[JourneyStep]) -> Outcome:
    outcome = Outcome()
    bootstrap_step = next((s.number for s in steps if s.bootstraps), None)
    outcome.check(bootstrap_step is not None, "the README journey has no `make bootstrap` step")
    deployed_by_cli = {}
    for step in steps:
        for stack in assembly:
            if step.deploys_stack(stack):
                deployed_by_cli.setdefault(stack.artifact_id, step)
    for stack in assembly:
        step = deployed_by_cli.get(stack.artifact_id)
        if stack.stage:
            # Environments deploy through the pipeline, which assumes the bootstrap roles.
            outcome.check(
                bool(stack.properties.get("assumeRoleArn")) and stack.needs_bootstrap,
                f"{stack.stack_name}: deployed by the pipeline but names no bootstrap deploy role",
            )
            continue
        dependents = [s for s in assembly if stack.artifact_id in s.depends_on and s.artifact_id in deployed_by_cli]
        outcome.check(
            step is not None or bool(dependents),
            f"{stack.stack_name}: no README step deploys it (`make deploy ENV={stack.artifact_id}`)",
        )
        if step is None or bootstrap_step is None or step.number >= bootstrap_step:
            continue
        early = f"{stack.stack_name}: deployed in README step {step.number} ({step.title}), before `make bootstrap`"
        outcome.check(
            not stack.properties.get("stackTemplateAssetObjectUrl"),
            f"{early}, but its template is uploaded to the bootstrap bucket (stackTemplateAssetObjectUrl)",
        )
        outcome.check(
            not stack.properties.get("requiresBootstrapStackVersion") and not stack.properties.get("assumeRoleArn"),
            f"{early}, but it needs the bootstrap stack's version or roles",
        )
        assets = _assets(stack)
        outcome.check(not assets, f"{early}, but it has assets to publish: {', '.join(assets)}")
    return outcome


@rule("journey-bootstrap-order", category="order")
def journey_order(assembly: CloudAssembly) -> Outcome:
    """Each stack the README deploys before `make bootstrap` deploys without the bootstrap
    stack: no template asset URL, no bootstrap version or roles, no file or image assets
    (https://docs.aws.amazon.com/cdk/v2/guide/bootstrapping.html: "assets ... are stored in the
    bootstrap resources"; https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.BootstraplessSynthesizer.html).
    Every top-level stack is deployed by a README step (or as a dependency of one); every
    environment stack by the pipeline through its account's bootstrap deploy role."""
    return check_journey(assembly, journey(README.read_text()))


def _depends_transitively(assembly: CloudAssembly, stack: Stack, on: str) -> bool:
    seen, todo = set(), list(stack.depends_on)
    while todo:
        current = todo.pop()
        if current == on:
            return True
        if current not in seen and current in assembly.stacks:
            seen.add(current)
            todo.extend(assembly.stacks[current].depends_on)
    return False


@rule("cross-region-exports-first", category="order")
def cross_region_exports(assembly: CloudAssembly) -> Outcome:
    """A cross-region reference is an SSM parameter the exporting stack writes into the
    importing stack's region (Custom::CrossRegionExportWriter) and the importer reads at deploy
    time (https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.Stack.html#crossregionreferences):
    the writer's stack must be in the same account, write to the importer's region and deploy
    before the importer."""
    outcome = Outcome()
    writers: dict[str, list[tuple[Stack, str]]] = {}
    for stack, _, resource in assembly.resources("Custom::CrossRegionExportWriter"):
        props = resource["Properties"]["WriterProps"]
        for name in props.get("exports", {}):
            writers.setdefault(name, []).append((stack, props["region"]))
    for stack, logical_id, resource in assembly.resources("Custom::CrossRegionExportReader"):
        for name in resource["Properties"]["ReaderProps"].get("imports", {}):
            sources = [
                (w, region)
                for w, region in writers.get(name, [])
                if w.account == stack.account and region == stack.region
            ]
            outcome.check(bool(sources), f"{stack.stack_name}/{logical_id}: no stack writes {name} into {stack.region}")
            for writer, _ in sources:
                outcome.check(
                    _depends_transitively(assembly, stack, writer.artifact_id),
                    f"{stack.stack_name}: imports {name} from {writer.stack_name} ({writer.region}) "
                    "but does not deploy after it",
                )
    return outcome


@rule("cross-stack-exports-first", category="order")
def cross_stack_exports(assembly: CloudAssembly) -> Outcome:
    """Fn::ImportValue reads an export of a stack in the same account and region, which must
    exist when the importer deploys (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-importvalue.html)."""
    outcome = Outcome()
    exporters = {}
    for stack in assembly:
        for output in stack.template.get("Outputs", {}).values():
            name = output.get("Export", {}).get("Name")
            if isinstance(name, str):
                exporters[(stack.env, name)] = stack
    for stack in assembly:
        for name in sorted(set(re.findall(r'"Fn::ImportValue": "([^"]+)"', json.dumps(stack.template)))):
            exporter = exporters.get((stack.env, name))
            outcome.check(
                exporter is not None and _depends_transitively(assembly, stack, exporter.artifact_id),
                f"{stack.stack_name}: imports {name}, which "
                + (
                    "no stack in its account and region exports"
                    if exporter is None
                    else f"{exporter.stack_name} exports but does not deploy first"
                ),
            )
    return outcome


@rule("organizations-accounts-sequential", category="order")
def accounts_sequential(assembly: CloudAssembly) -> Outcome:
    """ "If you include multiple accounts in a single template, you must use the DependsOn
    attribute on each account resource type so that the accounts are created sequentially"
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-organizations-account.html):
    the accounts of one template form a single DependsOn chain."""
    outcome = Outcome()
    for stack in assembly:
        accounts = dict(stack.resources("AWS::Organizations::Account"))
        before = {
            logical_id: {d for d in _listed(resource.get("DependsOn")) if d in accounts}
            for logical_id, resource in accounts.items()
        }
        ancestors = {logical_id: _ancestors(before, logical_id) for logical_id in accounts}
        parallel = sorted(
            {
                tuple(sorted((a, b)))
                for a in accounts
                for b in accounts
                if a != b and a not in ancestors[b] and b not in ancestors[a]
            }
        )
        outcome.check(
            not parallel,
            f"{stack.stack_name}: accounts may be created at the same time: "
            + ", ".join(f"{a} and {b}" for a, b in parallel)
            + "; chain them with DependsOn",
        )
    return outcome


def _listed(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _ancestors(before: dict[str, set[str]], start: str) -> set[str]:
    found, todo = set(), list(before[start])
    while todo:
        current = todo.pop()
        if current not in found:
            found.add(current)
            todo.extend(before[current])
    return found
