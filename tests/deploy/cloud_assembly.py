"""The synthesized cloud assembly as the CDK CLI and CloudFormation see it: plain JSON.

The deploy rehearsal reads `cdk.out` (manifest.json, nested stage assemblies, templates)
rather than the CDK construct tree, so that it checks exactly what would be deployed. A
`CloudAssembly` can also be built from hand-written templates, which is how each rule is
proven to fail on a broken fixture.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STACK_TYPE = "aws:cloudformation:stack"
NESTED_ASSEMBLY_TYPE = "cdk:cloud-assembly"


@dataclass(frozen=True)
class Stack:
    """One deployable stack artifact."""

    artifact_id: str
    stack_name: str
    account: str
    region: str
    template: Mapping[str, Any]
    # Artifact ids of the stacks that deploy before this one (asset manifests left out).
    depends_on: tuple[str, ...] = ()
    # The manifest's properties: assumeRoleArn, cloudFormationExecutionRoleArn,
    # requiresBootstrapStackVersion, stackTemplateAssetObjectUrl, terminationProtection, ...
    properties: Mapping[str, Any] = field(default_factory=dict)
    # The cdk.Stage the stack belongs to ("" for top-level stacks).
    stage: str = ""
    template_path: Path | None = None
    # The stack's construct path: "staging/network", "pipeline".
    display_name: str = ""

    @property
    def tags(self) -> Mapping[str, str]:
        """The stack-level tags CloudFormation puts on every resource it can tag."""
        return self.properties.get("tags", {})

    @property
    def termination_protection(self) -> bool:
        return bool(self.properties.get("terminationProtection"))

    @property
    def resources_by_id(self) -> Mapping[str, Mapping[str, Any]]:
        return self.template.get("Resources", {})

    def resources(self, *types: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
        """(logical id, resource) pairs, optionally only of the given CloudFormation types."""
        for logical_id, resource in self.resources_by_id.items():
            if not types or resource.get("Type") in types:
                yield logical_id, resource

    @property
    def env(self) -> str:
        return f"aws://{self.account}/{self.region}"

    @property
    def needs_bootstrap(self) -> bool:
        """True when deploying it needs the CDK bootstrap stack of its account and region.

        Any synthesizer that names a template asset URL (stackTemplateAssetObjectUrl) makes
        the CLI upload the template to the bootstrap bucket first; only the legacy synthesizer
        without assets inlines the template in the CreateStack call.
        """
        return bool(self.properties.get("stackTemplateAssetObjectUrl")) or bool(
            self.properties.get("requiresBootstrapStackVersion")
        )

    @property
    def template_size(self) -> int:
        if self.template_path is not None:
            return self.template_path.stat().st_size
        return len(json.dumps(self.template))


@dataclass
class CloudAssembly:
    """Every stack of one synthesized app, nested stage assemblies flattened."""

    name: str
    stacks: dict[str, Stack]
    root: Path | None = None

    @classmethod
    def load(cls, outdir: Path, *, name: str) -> CloudAssembly:
        stacks: dict[str, Stack] = {}
        _load_into(stacks, Path(outdir), stage="")
        return cls(name=name, stacks=stacks, root=Path(outdir))

    @classmethod
    def from_templates(
        cls,
        templates: Mapping[str, Mapping[str, Any]],
        *,
        name: str = "fixture",
        account: str = "123456789012",
        region: str = "us-east-1",
        **stack_kwargs: Mapping[str, Any],
    ) -> CloudAssembly:
        """A hand-written assembly for rule fixtures: {artifact id: template}.

        `stack_kwargs[artifact_id]` overrides any Stack field (account, region, depends_on,
        properties, ...).
        """
        stacks = {}
        for artifact_id, template in templates.items():
            fields: dict[str, Any] = {
                "artifact_id": artifact_id,
                "stack_name": artifact_id,
                "account": account,
                "region": region,
                "template": template,
            }
            fields.update(stack_kwargs.get(artifact_id, {}))
            stacks[artifact_id] = Stack(**fields)
        return cls(name=name, stacks=stacks)

    def __iter__(self) -> Iterator[Stack]:
        return iter(self.stacks.values())

    def by_name(self, stack_name: str) -> Stack:
        return next(s for s in self if s.stack_name == stack_name)

    def by_path(self, construct_path: str) -> Stack:
        """By construct path: "org", "staging/network", "dev-deploy-access"."""
        found = [s for s in self if s.display_name == construct_path]
        if not found:
            raise KeyError(f"no stack {construct_path!r} in {self.name}: {sorted(s.display_name for s in self)}")
        (stack,) = found
        return stack

    def resources(self, *types: str) -> Iterator[tuple[Stack, str, Mapping[str, Any]]]:
        """(stack, logical id, resource) over every stack."""
        for stack in self:
            for logical_id, resource in stack.resources(*types):
                yield stack, logical_id, resource

    def deploy_order(self) -> list[Stack]:
        """A topological order of the stacks by their manifest dependencies (the CLI's order)."""
        done: dict[str, Stack] = {}
        visiting: set[str] = set()

        def visit(artifact_id: str) -> None:
            if artifact_id in done:
                return
            if artifact_id in visiting:
                raise ValueError(f"dependency cycle through {artifact_id}")
            visiting.add(artifact_id)
            for dep in self.stacks[artifact_id].depends_on:
                if dep in self.stacks:
                    visit(dep)
            visiting.discard(artifact_id)
            done[artifact_id] = self.stacks[artifact_id]

        for artifact_id in self.stacks:
            visit(artifact_id)
        return list(done.values())


def _load_into(stacks: dict[str, Stack], directory: Path, *, stage: str) -> None:
    manifest = json.loads((directory / "manifest.json").read_text())
    artifacts = manifest.get("artifacts", {})
    for artifact_id, artifact in artifacts.items():
        kind = artifact.get("type")
        if kind == NESTED_ASSEMBLY_TYPE:
            props = artifact["properties"]
            _load_into(stacks, directory / props["directoryName"], stage=props.get("displayName", artifact_id))
        elif kind == STACK_TYPE:
            props = artifact.get("properties", {})
            _, _, env = artifact["environment"].partition("aws://")
            account, _, region = env.partition("/")
            path = directory / props["templateFile"]
            stacks[artifact_id] = Stack(
                artifact_id=artifact_id,
                stack_name=props.get("stackName", artifact.get("displayName", artifact_id)),
                account=account,
                region=region,
                template=json.loads(path.read_text()),
                depends_on=tuple(
                    d for d in artifact.get("dependencies", []) if artifacts.get(d, {}).get("type") == STACK_TYPE
                ),
                properties=props,
                stage=stage,
                template_path=path,
                display_name=artifact.get("displayName", artifact_id),
            )
