"""Fixtures of the deploy rehearsal: the cloud assembly of each organization config."""

from __future__ import annotations

import pytest

from tests.conftest import ORG_CONFIGS
from tests.deploy.cloud_assembly import CloudAssembly


@pytest.fixture(scope="session", params=sorted(ORG_CONFIGS))
def cloud_assembly(request, synthesized) -> CloudAssembly:
    """Each organization's synthesized assembly, read back from cdk.out as JSON."""
    return synthesized(request.param).cloud
