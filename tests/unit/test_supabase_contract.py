"""Each component's environment against the contract in SUPABASE.md, and the secret scan.

The expected variable lists are SUPABASE.md's, copied here on purpose: the test fails when
the code drifts from the contract, not when the contract is edited.
"""

from __future__ import annotations

import re
import urllib.parse

import pytest

from config.loader import load_config
from config.model import PUBLIC_DEMO_VALUES
from k8s_charts.aws_values import from_config
from tests import rendered as rendered_charts
from tests.conftest import ENVIRONMENTS

CONTRACT = {
    "auth": [
        "GOTRUE_API_HOST",
        "GOTRUE_API_PORT",
        "API_EXTERNAL_URL",
        "GOTRUE_DB_DRIVER",
        "GOTRUE_DB_DATABASE_URL",
        "GOTRUE_SITE_URL",
        "GOTRUE_URI_ALLOW_LIST",
        "GOTRUE_DISABLE_SIGNUP",
        "GOTRUE_JWT_SECRET",
        "GOTRUE_JWT_EXP",
        "GOTRUE_JWT_AUD",
        "GOTRUE_JWT_ADMIN_ROLES",
        "GOTRUE_JWT_DEFAULT_GROUP_NAME",
        "GOTRUE_SMTP_HOST",
        "GOTRUE_SMTP_PORT",
        "GOTRUE_SMTP_USER",
        "GOTRUE_SMTP_PASS",
        "GOTRUE_SMTP_ADMIN_EMAIL",
        "GOTRUE_MAILER_URLPATHS_INVITE",
        "GOTRUE_MAILER_URLPATHS_CONFIRMATION",
        "GOTRUE_MAILER_URLPATHS_RECOVERY",
        "GOTRUE_MAILER_URLPATHS_EMAIL_CHANGE",
        "GOTRUE_MAILER_AUTOCONFIRM",
        "GOTRUE_SMS_AUTOCONFIRM",
        "GOTRUE_PASSWORD_MIN_LENGTH",
        "GOTRUE_SAML_ENABLED",
        "GOTRUE_TRACING_ENABLED",
        "GOTRUE_METRICS_ENABLED",
        "GOTRUE_METRICS_EXPORTER",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ],
    "rest": [
        "PGRST_DB_URI",
        "PGRST_DB_SCHEMAS",
        "PGRST_DB_ANON_ROLE",
        "PGRST_JWT_SECRET",
        "PGRST_DB_USE_LEGACY_GUCS",
        "PGRST_APP_SETTINGS_JWT_SECRET",
        "PGRST_APP_SETTINGS_JWT_EXP",
        "PGRST_DB_MAX_ROWS",
        "PGRST_ADMIN_SERVER_PORT",
    ],
    "realtime": [
        "PORT",
        "DB_HOST",
        "DB_PORT",
        "DB_NAME",
        "DB_USER",
        "DB_PASSWORD",
        "DB_AFTER_CONNECT_QUERY",
        "DB_ENC_KEY",
        "API_JWT_SECRET",
        "METRICS_JWT_SECRET",
        "SECRET_KEY_BASE",
        "ERL_AFLAGS",
        "DNS_NODES",
        "RLIMIT_NOFILE",
        "APP_NAME",
        "SEED_SELF_HOST",
        "RUN_JANITOR",
        "SELF_HOST_TENANT_NAME",
    ],
    "storage": [
        "ANON_KEY",
        "SERVICE_KEY",
        "POSTGREST_URL",
        "PGRST_JWT_SECRET",
        "DATABASE_URL",
        "STORAGE_PUBLIC_URL",
        "REQUEST_ALLOW_X_FORWARDED_PATH",
        "FILE_SIZE_LIMIT",
        "STORAGE_BACKEND",
        "GLOBAL_S3_BUCKET",
        "REGION",
        "TENANT_ID",
        "ENABLE_IMAGE_TRANSFORMATION",
        "IMGPROXY_URL",
    ],
    "meta": [
        "PG_META_PORT",
        "PG_META_DB_HOST",
        "PG_META_DB_PORT",
        "PG_META_DB_NAME",
        "PG_META_DB_USER",
        "PG_META_DB_PASSWORD",
        "CRYPTO_KEY",
    ],
    "studio": [
        "STUDIO_PG_META_URL",
        "POSTGRES_PASSWORD",
        "PG_META_CRYPTO_KEY",
        "DEFAULT_ORGANIZATION_NAME",
        "DEFAULT_PROJECT_NAME",
        "SUPABASE_URL",
        "SUPABASE_PUBLIC_URL",
        "SUPABASE_ANON_KEY",
        "SUPABASE_SERVICE_KEY",
        "AUTH_JWT_SECRET",
        "POSTGRES_HOST",
        "POSTGRES_PORT",
        "POSTGRES_DB",
        "POSTGRES_USER_READ_WRITE",
    ],
    "functions": [
        "JWT_SECRET",
        "SUPABASE_URL",
        "SUPABASE_ANON_KEY",
        "SUPABASE_SERVICE_ROLE_KEY",
        "SUPABASE_DB_URL",
        "VERIFY_JWT",
    ],
    "kong": [
        "KONG_DATABASE",
        "KONG_DECLARATIVE_CONFIG",
        "KONG_DNS_ORDER",
        "KONG_PLUGINS",
        "KONG_NGINX_PROXY_PROXY_BUFFER_SIZE",
        "KONG_NGINX_PROXY_PROXY_BUFFERS",
    ],
}
CONTRACT["rest-ro"] = CONTRACT["rest"]
ENVS = ENVIRONMENTS
SECRET_NAME = re.compile(
    r"(PASSWORD|SECRET|_KEY|TOKEN|_PASS|DB_URI|DATABASE_URL|DB_URL|POOL_URL|CONNECTION_STRING|KEY_BASE|COOKIE)$"
)
JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")


@pytest.fixture(scope="module", params=ENVS)
def rendered(request):
    charts = rendered_charts.supabase(request.param)
    return from_config(load_config(), request.param), [o for objs in charts.values() for o in objs]


def _deployment(objects, name):
    return next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == name)


def _env(objects, name, container=0):
    return {
        e["name"]: e for e in _deployment(objects, name)["spec"]["template"]["spec"]["containers"][container]["env"]
    }


def _secret_template(objects, name):
    es = next(o for o in objects if o["kind"] == "ExternalSecret" and o["metadata"]["name"] == name)
    return es["spec"]["target"]["template"]["data"]


@pytest.mark.parametrize("component", sorted(CONTRACT))
def test_env_covers_contract(rendered, component):
    _, objects = rendered
    missing = set(CONTRACT[component]) - set(_env(objects, component))
    assert not missing, f"{component} lacks {sorted(missing)}"


def test_secret_env_refs_exist_in_their_external_secret(rendered):
    _, objects = rendered
    produced = {
        o["spec"]["target"]["name"]: set(o["spec"]["target"]["template"]["data"])
        for o in objects
        if o["kind"] == "ExternalSecret"
    }
    for deploy in (o for o in objects if o["kind"] in ("Deployment", "Job")):
        for container in deploy["spec"]["template"]["spec"]["containers"]:
            for e in container.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in produced[ref["name"]], (deploy["metadata"]["name"], e["name"])


def test_no_public_demo_value_anywhere(rendered):
    _, objects = rendered
    text = repr(objects)
    assert not [d for d in PUBLIC_DEMO_VALUES if d in text]


def test_no_literal_secret_in_configmaps_or_env(rendered):
    _, objects = rendered
    assert not [o for o in objects if o["kind"] == "Secret"], "secrets come from External Secrets only"
    literals = [v for o in objects if o["kind"] == "ConfigMap" for v in o["data"].values()]
    literals += [
        e["value"]
        for o in objects
        if o["kind"] in ("Deployment", "Job")
        for c in o["spec"]["template"]["spec"]["containers"]
        for e in c.get("env", [])
        if "value" in e
    ]
    assert not [v for v in literals if JWT_LIKE.search(v)]
    secretish = re.compile(r"(?i)(password|secret|token|_key)\s*[:=]\s*['\"]?[A-Za-z0-9+/=_-]{12,}")
    assert not [v for v in literals if secretish.search(v)]
    for o in objects:
        if o["kind"] in ("Deployment", "Job"):
            for c in o["spec"]["template"]["spec"]["containers"]:
                for e in c.get("env", []):
                    if SECRET_NAME.search(e["name"]):
                        assert "valueFrom" in e, f"{o['metadata']['name']}: {e['name']} is a literal"


def test_service_role_key_only_server_side(rendered):
    _, objects = rendered
    holders = {
        o["metadata"]["name"]
        for o in objects
        if o["kind"] == "ExternalSecret"
        and any(".service_role_key" in v for v in o["spec"]["target"]["template"]["data"].values())
    }
    assert holders == {"kong-config", "storage-secrets", "studio-secrets", "functions-secrets"}
    for o in objects:
        if o["kind"] == "Deployment":
            for c in o["spec"]["template"]["spec"]["containers"]:
                # Next.js bundles NEXT_PUBLIC_* into browser code: only Studio's logs switch, a literal.
                public = [e for e in c.get("env", []) if e["name"].startswith("NEXT_PUBLIC_")]
                assert public in ([], [{"name": "NEXT_PUBLIC_ENABLE_LOGS", "value": "false"}])


def test_external_secrets_read_only_this_environment(rendered):
    values, objects = rendered
    for es in (o for o in objects if o["kind"] == "ExternalSecret"):
        assert es["spec"]["secretStoreRef"] == {"kind": "ClusterSecretStore", "name": "aws-secrets-manager"}
        for d in es["spec"]["data"]:
            if not d["secretKey"].startswith("oauth_"):
                assert d["remoteRef"]["key"].startswith(values.secret_prefix)


def _render_url(template: str, password: str) -> str:
    """ESO's `urlquery` is Go's url.QueryEscape; quote_plus is the same function."""
    return re.sub(r"\{\{ \.\w+ \| urlquery \}\}", urllib.parse.quote_plus(password), template)


# sslmode of each direct URL: Go's pgx follows libpq (require encrypts without verifying);
# node-postgres verifies on any mode, so Node clients name the RDS CA file and ask for libpq's
# verify-ca (uselibpqcompat): the chain, not the host name, since they dial the db.<zone> alias.
@pytest.mark.parametrize(
    "secret,key,user,pooled,dbname,sslmode",
    [
        ("auth-secrets", "GOTRUE_DB_DATABASE_URL", "supabase_auth_admin", False, "postgres", "require"),
        ("rest-secrets", "PGRST_DB_URI", "authenticator", True, "postgres", "disable"),
        ("rest-ro-secrets", "PGRST_DB_URI", "authenticator", True, "postgres_ro", "disable"),
        ("storage-secrets", "DATABASE_URL", "supabase_storage_admin", False, "postgres", "verify-ca"),
        ("storage-secrets", "DATABASE_POOL_URL", "supabase_storage_admin", True, "postgres", "disable"),
        ("functions-secrets", "SUPABASE_DB_URL", "supabase_functions_admin", True, "postgres", "disable"),
    ],
)
def test_database_urls_encode_passwords(rendered, secret, key, user, pooled, dbname, sslmode):
    values, objects = rendered
    template = _secret_template(objects, secret)[key]
    assert "| urlquery" in template
    nasty = "p@ss:w/rd?#%&=+ü"
    url = urllib.parse.urlsplit(_render_url(template, nasty))
    assert urllib.parse.unquote(url.password) == nasty
    assert url.username == user and url.path == f"/{dbname}"
    query = urllib.parse.parse_qs(url.query)
    if pooled:
        assert url.hostname.startswith("pgbouncer.supabase.svc") and url.port == 6432
    else:
        # Direct connections go to the RDS primary, which requires TLS.
        assert (url.hostname, url.port) == (values.db_host, values.db_port)
    assert query["sslmode"] == [sslmode]


def test_realtime_connects_directly_to_rds_with_tls(rendered):
    values, objects = rendered
    env = _env(objects, "realtime")
    assert env["DB_HOST"]["value"] == values.db_host and env["DB_SSL"]["value"] == "true"
    assert env["DB_AFTER_CONNECT_QUERY"]["value"] == "SET search_path TO _realtime"
    assert env["SELF_HOST_TENANT_NAME"]["value"] == "realtime"
    headless = next(o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == "realtime-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert env["DNS_NODES"]["value"].split(".")[0] == "realtime-headless"
    assert env["CLUSTER_STRATEGIES"]["value"] == "DNS"
    assert env["ERL_AFLAGS"]["value"].startswith("-proto_dist inet_tcp")


def test_storage_uses_s3_with_pod_identity(rendered):
    values, objects = rendered
    env = _env(objects, "storage")
    assert env["STORAGE_BACKEND"]["value"] == "s3"
    assert env["GLOBAL_S3_BUCKET"]["value"] == values.storage_bucket
    assert env["REGION"]["value"] == values.region
    forbidden = {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "NODE_TLS_REJECT_UNAUTHORIZED",
        "GLOBAL_S3_ENDPOINT",
        "GLOBAL_S3_FORCE_PATH_STYLE",
    }
    assert not forbidden & set(env)
    assert _deployment(objects, "storage")["spec"]["template"]["spec"]["serviceAccountName"] == "storage"


def test_auth_smtp_saml_oauth(rendered):
    values, objects = rendered
    env = _env(objects, "auth")
    assert env["GOTRUE_SMTP_HOST"]["value"] == f"email-smtp.{values.region}.amazonaws.com"
    assert env["GOTRUE_SMTP_PORT"]["value"] == "587"
    # Upstream's layout: GoTrue's public URL (and issuer) is the API URL plus /auth/v1.
    assert env["API_EXTERNAL_URL"]["value"] == f"https://{values.api_host}/auth/v1"
    assert env["GOTRUE_JWT_ISSUER"]["value"] == env["API_EXTERNAL_URL"]["value"]
    assert int(env["GOTRUE_PASSWORD_MIN_LENGTH"]["value"]) >= 8
    cfg_env = load_config().environments[values.env_name]
    assert env["GOTRUE_SAML_ENABLED"]["value"] == str(cfg_env.auth.saml_enabled).lower()
    assert ("GOTRUE_SAML_PRIVATE_KEY" in env) == cfg_env.auth.saml_enabled
    for provider in cfg_env.auth.oauth_providers:
        key = provider.name.upper()
        assert env[f"GOTRUE_EXTERNAL_{key}_CLIENT_ID"]["value"] == provider.client_id
        assert env[f"GOTRUE_EXTERNAL_{key}_REDIRECT_URI"]["value"] == f"https://{values.api_host}/auth/v1/callback"
        assert "valueFrom" in env[f"GOTRUE_EXTERNAL_{key}_SECRET"]
