"""Snapshot of every synthesized template, so any change to what gets deployed shows up in
review. Asset hashes are normalised: upgrading a Lambda's code must not churn every snapshot.
Update deliberately with `make test PYTEST_ARGS="tests/snapshot --snapshot-update"`."""

from __future__ import annotations

import json
import re

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

ASSET_HASH = re.compile(r"[0-9a-f]{64}")
STACKS = [
    "org", "pipeline", "dev-deploy-access", "staging-deploy-access", "prod-deploy-access",
    *[f"{env}/{unit}" for env in ("dev", "staging", "prod")
      for unit in ("network", "dr", "edge", "storage", "data", "alerts", "cluster", "platform",
                   "observability", "cost", "security", "flags")],
]
# CDK Pipelines' support stack for the DR region (replication bucket): generated, so its name
# carries the tooling account and region.
GENERATED_STACKS = {"cross-region-stack-222222222222:us-west-2"}


def normalised(template: dict) -> dict:
    return json.loads(ASSET_HASH.sub("<asset-hash>", json.dumps(template, sort_keys=True)))


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("path", STACKS)
def test_template_snapshot(assembly, snapshot_json, path):
    assert normalised(assembly.template_json(path)) == snapshot_json


def test_every_stack_has_a_snapshot(assembly):
    missing = {s.node.path for s in assembly.stacks()} - set(STACKS) - GENERATED_STACKS
    assert not missing, f"add these stacks to STACKS: {sorted(missing)}"
