"""Post-deploy cases against a live environment, each with every key kind the platform hands
out; what each case proves is listed in the README (Smoke tests)."""

from __future__ import annotations

import pytest

from ops.smoke.client import CASES

pytestmark = pytest.mark.smoke


@pytest.mark.parametrize("case", CASES)
def test_case_passes_through_the_gateway(smoke_client, case):
    result = getattr(smoke_client, case)()
    assert result.ok, f"{smoke_client.keys.kind}/{result.name} failed after {result.latency_ms} ms: {result.detail}"
