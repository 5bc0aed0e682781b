"""Which service gets which key, under upstream's variable names, with legacy keys on and off.

Variable names as upstream reads them: GoTrue GOTRUE_JWT_KEYS and GOTRUE_JWT_ISSUER
(supabase/auth internal/conf), PostgREST PGRST_JWT_SECRET holding a JWKS (docs.postgrest.org
v14 auth), Realtime API_JWT_JWKS, Storage JWT_JWKS, edge runtime SUPABASE_JWKS /
SUPABASE_PUBLISHABLE_KEYS / SUPABASE_SECRET_KEYS, Studio SUPABASE_PUBLISHABLE_KEY /
SUPABASE_SECRET_KEY, SNIPPETS_MANAGEMENT_FOLDER, EDGE_FUNCTIONS_MANAGEMENT_FOLDER
(supabase/supabase docker/docker-compose.yml, docker/utils/add-new-auth-keys.sh), imgproxy
IMGPROXY_AUTO_WEBP (imgproxy config: IMGPROXY_ENABLE_WEBP_DETECTION is deprecated for it).
"""

from __future__ import annotations

import json

import pytest

from config.loader import load_config
from config.naming import SecretKeys
from k8s_charts.aws_values import from_config
from k8s_charts.supabase import kong
from k8s_charts.supabase.chart import render_supabase

ENV = "dev"

JWKS_VARIABLES = {
    "auth": ("GOTRUE_JWT_KEYS", "jwt_keys"),
    "rest": ("PGRST_JWT_SECRET", "jwks"),
    "rest-ro": ("PGRST_JWT_SECRET", "jwks"),
    "realtime": ("API_JWT_JWKS", "jwks"),
    "storage": ("JWT_JWKS", "jwks"),
    "functions": ("SUPABASE_JWKS", "jwks"),
}


def render(*, legacy: bool) -> list[dict]:
    cfg = load_config()
    env = cfg.environments[ENV]
    auth = env.auth.model_copy(update={"legacy_api_keys": legacy})
    cfg = cfg.model_copy(update={"environments": {**cfg.environments, ENV: env.model_copy(update={"auth": auth})}})
    return render_supabase(cfg, ENV, from_config(cfg, ENV))["supabase"]


@pytest.fixture(scope="module", params=[True, False], ids=["legacy-on", "legacy-off"])
def rendered(request) -> tuple[bool, list[dict]]:
    return request.param, render(legacy=request.param)


def secret_of(objects: list[dict], name: str) -> dict:
    return next(o for o in objects if o["kind"] == "ExternalSecret" and o["metadata"]["name"] == name)


def template(objects, component: str) -> dict[str, str]:
    return secret_of(objects, f"{component}-secrets")["spec"]["target"]["template"]["data"]


def fetched(objects, name: str) -> dict[str, dict]:
    """var -> remoteRef of one ExternalSecret."""
    return {d["secretKey"]: d["remoteRef"] for d in secret_of(objects, name)["spec"]["data"]}


def env_of(objects, component: str) -> dict[str, dict]:
    deploy = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == component)
    return {e["name"]: e for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}


@pytest.mark.parametrize("component", sorted(JWKS_VARIABLES))
def test_every_verifier_gets_the_minted_jwks_through_external_secrets(rendered, component):
    _, objects = rendered
    variable, field = JWKS_VARIABLES[component]
    assert template(objects, component)[variable] == "{{ ." + field + " }}"
    ref = fetched(objects, f"{component}-secrets")[field]
    assert ref["key"].endswith("/" + SecretKeys.API_KEYS) and ref["property"] == field
    assert env_of(objects, component)[variable]["valueFrom"]["secretKeyRef"]["name"] == f"{component}-secrets"


def test_only_gotrue_holds_a_private_signing_key(rendered):
    _, objects = rendered
    holders = {
        o["metadata"]["name"]
        for o in objects
        if o["kind"] == "ExternalSecret"
        and any(d["remoteRef"].get("property") == "jwt_keys" for d in o["spec"]["data"])
    }
    assert holders == {"auth-secrets"}


def test_secret_key_stays_server_side(rendered):
    _, objects = rendered
    holders = {
        o["metadata"]["name"]
        for o in objects
        if o["kind"] == "ExternalSecret"
        and any(d["remoteRef"].get("property") == "secret_key" for d in o["spec"]["data"])
    }
    assert holders == {"kong-config", "studio-secrets", "functions-secrets"}


def test_legacy_keys_reach_services_only_while_switched_on(rendered):
    legacy, objects = rendered
    readers = {
        o["metadata"]["name"]
        for o in objects
        if o["kind"] == "ExternalSecret"
        and any(d["remoteRef"].get("property") in ("anon_key", "service_role_key") for d in o["spec"]["data"])
    }
    raw_secret = {
        o["metadata"]["name"]
        for o in objects
        if o["kind"] == "ExternalSecret"
        and any("{{ .jwt_secret }}" in v for v in o["spec"]["target"]["template"]["data"].values())
    }
    if legacy:
        assert readers == {"kong-config", "storage-secrets", "studio-secrets", "functions-secrets"}
        assert {"auth-secrets", "rest-secrets", "realtime-secrets", "storage-secrets"} <= raw_secret
        assert template(objects, "functions")["SUPABASE_ANON_KEY"] == "{{ .anon_key }}"
    else:
        assert readers == set()
        # Services whose config demands an HS256 secret get one that signed nothing.
        assert raw_secret == set()
        assert template(objects, "auth")["GOTRUE_JWT_SECRET"] == "{{ .jwt_secret | sha256sum }}"
        assert template(objects, "storage")["SERVICE_KEY"] == "{{ .service_role_key_asymmetric }}"
        for component in ("studio", "functions"):
            assert not {"SUPABASE_ANON_KEY", "SUPABASE_SERVICE_KEY", "SUPABASE_SERVICE_ROLE_KEY", "JWT_SECRET"} & set(
                template(objects, component)
            )


def test_edge_runtime_key_maps_are_json(rendered):
    _, objects = rendered
    data = template(objects, "functions")
    values = {"publishable_key": "sb_publishable_x", "secret_key": "sb_secret_y"}
    maps = {
        k: json.loads(kong.render_template(data[k], values))
        for k in ("SUPABASE_PUBLISHABLE_KEYS", "SUPABASE_SECRET_KEYS")
    }
    assert maps == {
        "SUPABASE_PUBLISHABLE_KEYS": {"default": "sb_publishable_x"},
        "SUPABASE_SECRET_KEYS": {"default": "sb_secret_y"},
    }


def test_studio_new_keys_and_writable_folders(rendered):
    _, objects = rendered
    data = template(objects, "studio")
    assert data["SUPABASE_PUBLISHABLE_KEY"] == "{{ .publishable_key }}"
    assert data["SUPABASE_SECRET_KEY"] == "{{ .secret_key }}"
    env = env_of(objects, "studio")
    deploy = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "studio")
    mounts = {m["mountPath"] for m in deploy["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    for variable in ("SNIPPETS_MANAGEMENT_FOLDER", "EDGE_FUNCTIONS_MANAGEMENT_FOLDER"):
        assert env[variable]["value"] in mounts  # the root filesystem is read-only


def test_renamed_and_new_settings(rendered):
    _, objects = rendered
    imgproxy = env_of(objects, "imgproxy")
    assert imgproxy["IMGPROXY_AUTO_WEBP"]["value"] == "true" and "IMGPROXY_ENABLE_WEBP_DETECTION" not in imgproxy
    assert env_of(objects, "storage")["S3_PROTOCOL_ENABLED"]["value"] == "true"
    auth = env_of(objects, "auth")
    assert auth["API_EXTERNAL_URL"]["value"].endswith("/auth/v1")
    assert auth["GOTRUE_JWT_ISSUER"]["value"] == auth["API_EXTERNAL_URL"]["value"]
