"""Post-deploy checks of a live environment, one per service behind the API gateway."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.smoke

CHECKS = ["auth_health", "rest_root", "storage_status", "storage_buckets", "function_hello", "realtime_join"]


@pytest.mark.parametrize("check", CHECKS)
def test_service_answers_through_the_gateway(smoke_client, check):
    result = getattr(smoke_client, check)()
    assert result.ok, f"{result.name} failed after {result.latency_ms} ms: {result.detail}"
