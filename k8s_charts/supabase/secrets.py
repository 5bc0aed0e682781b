"""External Secrets: the only way a secret value reaches the cluster.

Each component gets its own ExternalSecret whose template emits exactly the variables that
component needs (least privilege: Studio's Secret has no PgBouncer userlist, Kong's has no
database password). Values are read from AWS Secrets Manager through the ClusterSecretStore
`aws-secrets-manager` that the cluster stack installs.

Database URLs are assembled here, in the ESO template (engine v2 = Go text/template + Sprig),
so the password never passes through config or code. `urlquery` is Go's built-in
`url.QueryEscape`: it percent-encodes every reserved character; it would turn a space into
`+`, which is why the data stack's generated passwords exclude spaces (Secrets Manager's
default).
"""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct

from config.naming import SecretKeys
from database.roles import LOGIN_ROLES, MASTER_USER
from k8s_charts.supabase.k8s import api_object, labels
from k8s_charts.supabase.props import SECRET_STORE, SupabaseProps

API_VERSION = "external-secrets.io/v1"
REFRESH_INTERVAL = "1h"


@dataclass(frozen=True, kw_only=True)
class RemoteValue:
    """One JSON field of one Secrets Manager secret, exposed to templates as `.<var>`."""

    var: str
    key: str
    property: str | None = None
    absolute: bool = False  # key is a full secret name, not relative to the environment prefix


JWT_SECRET = RemoteValue(var="jwt_secret", key=SecretKeys.JWT, property="secret")
ANON_KEY = RemoteValue(var="anon_key", key=SecretKeys.API_KEYS, property="anon_key")
SERVICE_ROLE_KEY = RemoteValue(var="service_role_key", key=SecretKeys.API_KEYS, property="service_role_key")
MASTER_PASSWORD = RemoteValue(var="master_password", key=SecretKeys.DB_MASTER, property="password")
# The instance endpoint, written by the data stack's SecretTargetAttachment: the only name the
# RDS certificate carries, so the one a host-name check (verify-full) can pass; the db.<zone>
# alias is a CNAME to it.
MASTER_HOST = RemoteValue(var="master_host", key=SecretKeys.DB_MASTER, property="host")
REALTIME_SECRET_KEY_BASE = RemoteValue(var="secret_key_base", key=SecretKeys.REALTIME, property="secret_key_base")
REALTIME_DB_ENC_KEY = RemoteValue(var="db_enc_key", key=SecretKeys.REALTIME, property="db_enc_key")
REALTIME_METRICS_JWT = RemoteValue(var="metrics_jwt_secret", key=SecretKeys.REALTIME, property="metrics_jwt_secret")
META_CRYPTO_KEY = RemoteValue(var="crypto_key", key=SecretKeys.META, property="crypto_key")
DASHBOARD_USERNAME = RemoteValue(var="dashboard_username", key=SecretKeys.DASHBOARD, property="username")
DASHBOARD_PASSWORD = RemoteValue(var="dashboard_password", key=SecretKeys.DASHBOARD, property="password")
SMTP_USERNAME = RemoteValue(var="smtp_username", key=SecretKeys.SMTP, property="username")
SMTP_PASSWORD = RemoteValue(var="smtp_password", key=SecretKeys.SMTP, property="password")
REDIS_AUTH_TOKEN = RemoteValue(var="redis_auth_token", key=SecretKeys.REDIS, property="auth_token")
SAML_PRIVATE_KEY = RemoteValue(var="saml_private_key", key=SecretKeys.SAML, property="private_key")
# Minted next to the API keys by ops/mint_api_keys (HS256 with the realtime secret's
# metrics_jwt_secret): ESO templates have no signing function.
REALTIME_METRICS_TOKEN = RemoteValue(var="metrics_token", key=SecretKeys.API_KEYS, property="metrics_token")
# The new key kinds, minted into the same secret by ops/mint_api_keys (fields named there).
PUBLISHABLE_KEY = RemoteValue(var="publishable_key", key=SecretKeys.API_KEYS, property="publishable_key")
SECRET_KEY = RemoteValue(var="secret_key", key=SecretKeys.API_KEYS, property="secret_key")
ANON_KEY_ASYMMETRIC = RemoteValue(var="anon_key_asymmetric", key=SecretKeys.API_KEYS, property="anon_key_asymmetric")
SERVICE_ROLE_KEY_ASYMMETRIC = RemoteValue(
    var="service_role_key_asymmetric", key=SecretKeys.API_KEYS, property="service_role_key_asymmetric"
)
# Public keys only; with legacy keys on it also holds the JWT secret as an HS256 `oct` key.
JWKS = RemoteValue(var="jwks", key=SecretKeys.API_KEYS, property="jwks")
# GoTrue's signing keys: the only consumer of a private signing key.
GOTRUE_JWT_KEYS = RemoteValue(var="jwt_keys", key=SecretKeys.API_KEYS, property="jwt_keys")


def hs256_secret(*, legacy: bool) -> str:
    """Template for an HS256 secret a service's config requires (GoTrue, Realtime, Storage).

    With legacy keys off it is a value derived from the JWT secret that signed none of the
    legacy keys or sessions, so those services refuse every HS256 token while their config
    still validates; the JWKS (without its `oct` key then) verifies everything else."""
    return ref(JWT_SECRET) if legacy else "{{ .jwt_secret | sha256sum }}"


def role_password(role: str) -> RemoteValue:
    if role == MASTER_USER:
        return MASTER_PASSWORD
    known = {r.name: r for r in LOGIN_ROLES}
    if role not in known:
        raise ValueError(f"{role} is not one of database.roles.LOGIN_ROLES")
    return RemoteValue(var=known[role].password_variable, key=known[role].secret_key, property="password")


def ref(value: RemoteValue) -> str:
    return "{{ ." + value.var + " }}"


def url_password(value: RemoteValue) -> str:
    return "{{ ." + value.var + " | urlquery }}"


def postgres_url(
    *,
    user: str,
    host: str,
    port: int,
    dbname: str,
    sslmode: str,
    scheme: str = "postgres",
    sslrootcert: str | None = None,
    libpq_compat: bool = False,
) -> str:
    """libpq_compat: node-postgres reads sslmode as libpq does (verify-ca checks the chain only);
    without it, every mode but disable and no-verify means verify-full there."""
    password = url_password(role_password(user))
    query = ("uselibpqcompat=true&" if libpq_compat else "") + f"sslmode={sslmode}"
    query += f"&sslrootcert={sslrootcert}" if sslrootcert else ""
    return f"{scheme}://{user}:{password}@{host}:{port}/{dbname}?{query}"


def external_secret(
    scope: Construct,
    *,
    name: str,
    component: str,
    version: str,
    props: SupabaseProps,
    remote: list[RemoteValue],
    template: dict[str, str],
) -> None:
    """ExternalSecret `name` producing Secret `name` whose keys are `template`'s keys."""
    unique = {v.var: v for v in remote}
    used = {var for var in unique if any(f".{var} " in t or f".{var}}}" in t for t in template.values())}
    unused = set(unique) - used
    if unused:
        raise ValueError(f"{name}: remote values fetched but never used: {sorted(unused)}")
    data = []
    for value in unique.values():
        remote_ref = {
            "key": value.key if value.absolute else props.remote_key(value.key),
            # Pin the newest version explicitly: rotation is picked up on the next refresh.
            "version": "AWSCURRENT",
            "conversionStrategy": "Default",
            "decodingStrategy": "None",
        }
        if value.property:
            remote_ref["property"] = value.property
        data.append({"secretKey": value.var, "remoteRef": remote_ref})
    api_object(
        scope,
        api_version=API_VERSION,
        kind="ExternalSecret",
        name=name,
        labels=labels(component, version),
        body={
            "spec": {
                "refreshInterval": REFRESH_INTERVAL,
                "secretStoreRef": {"kind": "ClusterSecretStore", "name": SECRET_STORE},
                "target": {
                    "name": name,
                    "creationPolicy": "Owner",
                    "deletionPolicy": "Retain",
                    "template": {
                        "engineVersion": "v2",
                        "mergePolicy": "Replace",
                        "type": "Opaque",
                        "metadata": {"labels": labels(component, version)},
                        "data": template,
                    },
                },
                "data": data,
            }
        },
    )
