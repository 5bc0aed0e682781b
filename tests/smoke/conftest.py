"""Live smoke suite settings, from the environment the pipeline step sets.

SUPABASE_URL       API base URL, e.g. https://api.staging.supabase.example.com (required)
SUPABASE_ENV       the environment name: Studio's URL from the config, and the keys from
                   Secrets Manager (<project>/<env>/api-keys, every key kind it holds)
SUPABASE_CONFIG    optionally the organization config that names the project
SUPABASE_PUBLISHABLE_KEY + SUPABASE_SECRET_KEY, or SUPABASE_ANON_KEY + SUPABASE_SERVICE_ROLE_KEY
                   keys given directly instead of Secrets Manager
SUPABASE_STUDIO_URL  Studio's base URL when there is no SUPABASE_ENV (its probes are skipped without)
SMOKE_OPENAPI_ROOT "public" or "secret-only": who may read PostgREST's OpenAPI root
                   (default: what ops.smoke.client.OPENAPI_ROOT_PUBLIC says the gateway does)
SMOKE_TIMEOUT      seconds each wait may take (default 10)
"""

from __future__ import annotations

import os

import pytest

from ops.smoke.client import (
    DEFAULT_TIMEOUT_SECONDS,
    KEY_FIELDS,
    OPENAPI_ROOT_PUBLIC,
    ApiKeys,
    SmokeClient,
    api_keys_from_environment,
    api_keys_from_secrets_manager,
    target_from_config,
)


@pytest.fixture(scope="session")
def smoke_target() -> tuple[str, str | None, list[ApiKeys]]:
    url = os.environ.get("SUPABASE_URL")
    if not url:
        pytest.skip(
            "SUPABASE_URL is not set: the live smoke suite runs against a deployed environment "
            "(pipeline: SUPABASE_URL=https://api.<domain> SUPABASE_ENV=<env> pytest -m smoke tests/smoke)"
        )
    studio_url = os.environ.get("SUPABASE_STUDIO_URL")
    keysets = api_keys_from_environment()
    env_name = os.environ.get("SUPABASE_ENV")
    if env_name:
        target = target_from_config(os.environ.get("SUPABASE_CONFIG"), env_name)
        studio_url = studio_url or target.studio_url
        keysets = keysets or api_keys_from_secrets_manager(target.secret_id)
    if not keysets:
        pytest.skip("no key pair given and no SUPABASE_ENV to read them from Secrets Manager")
    return url, studio_url, keysets


@pytest.fixture(scope="session", params=sorted(KEY_FIELDS))
def smoke_client(request, smoke_target) -> SmokeClient:
    """One client per key kind; a kind the platform does not hand out is skipped."""
    url, studio_url, keysets = smoke_target
    keys = next((k for k in keysets if k.kind == request.param), None)
    if keys is None:
        pytest.skip(f"no {request.param} key pair on this platform")
    root = os.environ.get("SMOKE_OPENAPI_ROOT", "public" if OPENAPI_ROOT_PUBLIC else "secret-only")
    return SmokeClient(
        base_url=url,
        keys=keys,
        studio_url=studio_url,
        openapi_root_public=root == "public",
        timeout_seconds=float(os.environ.get("SMOKE_TIMEOUT", DEFAULT_TIMEOUT_SECONDS)),
    )
