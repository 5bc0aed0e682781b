"""Live smoke suite settings, from the environment the pipeline step sets.

SUPABASE_URL       API base URL, e.g. https://api.staging.supabase.example.com (required)
SUPABASE_ANON_KEY  the anon key; when unset it is read from Secrets Manager, which needs
SUPABASE_ENV       the environment name (secret <project>/<env>/api-keys), and
SUPABASE_CONFIG    optionally the organization config that names the project
SMOKE_TIMEOUT      seconds each check may wait (default 10)
"""

from __future__ import annotations

import os

import pytest

from ops.smoke.client import DEFAULT_TIMEOUT_SECONDS, SmokeClient, anon_key_from_secrets_manager, target_from_config


@pytest.fixture(scope="session")
def smoke_client() -> SmokeClient:
    url = os.environ.get("SUPABASE_URL")
    if not url:
        pytest.skip(
            "SUPABASE_URL is not set: the live smoke suite runs against a deployed environment "
            "(pipeline: SUPABASE_URL=https://api.<domain> SUPABASE_ENV=<env> pytest -m smoke tests/smoke)"
        )
    anon_key = os.environ.get("SUPABASE_ANON_KEY")
    if not anon_key:
        env_name = os.environ.get("SUPABASE_ENV")
        if not env_name:
            pytest.skip("neither SUPABASE_ANON_KEY nor SUPABASE_ENV is set: cannot find the anon key")
        _, secret_id = target_from_config(os.environ.get("SUPABASE_CONFIG"), env_name)
        anon_key = anon_key_from_secrets_manager(secret_id)
    timeout = float(os.environ.get("SMOKE_TIMEOUT", DEFAULT_TIMEOUT_SECONDS))
    return SmokeClient(base_url=url, anon_key=anon_key, timeout_seconds=timeout)
