"""Snapshots of one environment's templates and the top-level stacks: a refactoring aid that
shows any change to what gets deployed in review. They guard no behaviour on their own (every
behaviour has an assertion elsewhere), so one environment is enough: the production one, which
has every feature on. Asset hashes and the CDK's analytics string are normalised, so upgrading
a Lambda's code, a vendored chart or aws-cdk-lib does not churn them. Update deliberately, after reading the diff:
`make test PYTEST_ARGS="tests/snapshot --snapshot-update"`."""

from __future__ import annotations

import json
import re

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from config.loader import load_config
from config.model import ORG_STACK_ID, PIPELINE_STACK_ID

ASSET_HASH = re.compile(r"[0-9a-f]{64}")
# AWS::CDK::Metadata's compressed list of the constructs used: it changes with every CDK release.
ANALYTICS = re.compile(r'"Analytics": "v2:deflate64:[A-Za-z0-9+/=]+"')
SNAPSHOT_ENV = next(name for name, env in load_config().environments.items() if env.production)


def normalised(template: dict) -> dict:
    text = ASSET_HASH.sub("<asset-hash>", json.dumps(template, sort_keys=True))
    return json.loads(ANALYTICS.sub('"Analytics": "<construct analytics>"', text))


def _snapshotted(assembly) -> list[str]:
    """Construct paths of the organization-level stacks and of SNAPSHOT_ENV's own stacks.

    CDK Pipelines' generated support stacks are left out: their names carry the tooling
    account and region.
    """
    paths = []
    for stack in assembly.stacks():
        path = stack.display_name
        organization_level = path in (ORG_STACK_ID, PIPELINE_STACK_ID)
        if organization_level or path.startswith(f"{SNAPSHOT_ENV}/") or path == f"{SNAPSHOT_ENV}-deploy-access":
            paths.append(path)
    return sorted(paths)


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


def test_template_snapshots(assembly, snapshot_json):
    paths = _snapshotted(assembly)
    assert any(p.startswith(f"{SNAPSHOT_ENV}/") for p in paths)
    for path in paths:
        assert normalised(assembly.template_json(path)) == snapshot_json(name=path.replace("/", "-"))
