"""Signing-key rotation end to end: the minter on a moto server (as the Lambda runs it), the keys
delivered to each service the way External Secrets renders the chart's templates, Kong's Lua in
LuaJIT, the JWTs checked by a real verifier, and the request they authorize run on PostgreSQL 17.

What is real: the minter's code and its Secrets Manager calls (moto over HTTP), the rendered
ExternalSecret templates and kong.yml, Kong's expressions (LuaJIT), ES256/HS256 verification
(PyJWT + cryptography) and the database side of a PostgREST request (role switch, claims, RLS).

What is a rehearsal of a documented rule:
* PostgREST's `jwt-secret` may be a JWKS; it picks the key by the token's `kid`, and a token
  whose key is not in the set is refused (https://docs.postgrest.org/en/v14/references/auth.html
  #jwt-secret, "JWKS"). The verifier below does the same with PyJWT.
* GoTrue signs with the one key of GOTRUE_JWT_KEYS whose key_ops hold "sign", puts its kid in
  the header and sets `iss` from GOTRUE_JWT_ISSUER (supabase/auth internal/conf/jwk.go,
  internal/tokens/service.go); the session token below is signed that way.
* External Secrets refreshes the Kubernetes Secrets from the newest secret version; consumers
  restart between steps (ops/mint_api_keys/handler.py's runbook).
"""

from __future__ import annotations

import hashlib
import json
import re

import jwt
import psycopg
import pytest
from lupa import luajit21

from config import yamlio
from ops.mint_api_keys import handler
from tests.integration import test_mint_api_keys_moto as moto_minter
from tests.integration.conftest import bootstrapped_database
from tests.integration.test_postgrest_roles import pgrst_request
from tests.unit.test_kong_lua import HARNESS, to_lua
from tests.unit.test_supabase_keys import render

aws_env = moto_minter.aws_env
stack_secrets = moto_minter.stack_secrets

DBNAME = "key_rotation"
# Kong's basic-auth credentials, from a secret this test does not mint.
DASHBOARD = {"dashboard_username": "ops", "dashboard_password": "pw"}
_ACTION = re.compile(r"\{\{ \.([a-z_]+)( \| (toJson|sha256sum|urlquery))? \}\}")


def eso_render(template: str, values: dict[str, str]) -> str:
    """The ESO v2 engine for the actions the chart uses."""

    def action(match: re.Match) -> str:
        value = values[match.group(1)]
        fn = match.group(3)
        if fn == "toJson":
            return json.dumps(value)
        if fn == "sha256sum":
            return hashlib.sha256(value.encode()).hexdigest()
        assert fn is None, fn  # urlquery: database URLs, not used here
        return value

    out = _ACTION.sub(action, template)
    assert "{{" not in out
    return out


class Cluster:
    """The rendered chart, fed from the secrets the minter wrote: what each pod would see."""

    def __init__(self, objects: list[dict], client, keys_arn: str, jwt_arn: str):
        self.objects, self.client, self.keys_arn, self.jwt_arn = objects, client, keys_arn, jwt_arn
        self.lua = luajit21.LuaRuntime(unpack_returned_tuples=True)
        self.transform = self.lua.execute(HARNESS)
        self.refresh()

    def _external_secret(self, name: str) -> dict:
        return next(o for o in self.objects if o["kind"] == "ExternalSecret" and o["metadata"]["name"] == name)

    def refresh(self) -> None:
        """External Secrets' sync plus a rollout restart: every Secret from the newest versions."""
        # The two secrets this test is about; database passwords and the rest are not in moto,
        # so templates needing them are left out.
        stored = {
            suffix: json.loads(self.client.get_secret_value(SecretId=arn)["SecretString"])
            for suffix, arn in (("/api-keys", self.keys_arn), ("/jwt", self.jwt_arn))
        }
        self.secrets: dict[str, dict[str, str]] = {}
        for o in self.objects:
            if o["kind"] != "ExternalSecret":
                continue
            values = dict(DASHBOARD)
            for d in o["spec"]["data"]:
                ref = d["remoteRef"]
                source = next((v for suffix, v in stored.items() if ref["key"].endswith(suffix)), {})
                if ref.get("property") in source:
                    values[d["secretKey"]] = source[ref["property"]]
            data = o["spec"]["target"]["template"]["data"]
            rendered = {}
            for key, template in data.items():
                needed = set(re.findall(r"\{\{ \.([a-z_]+)", template))
                if needed <= set(values):
                    rendered[key] = eso_render(template, values)
            self.secrets[o["metadata"]["name"]] = rendered
        # libyaml's safe loader (Kong reads kong.yml with lyaml, libyaml too): the pure-Python
        # one took a third of a second per read of this file.
        self.kong = yamlio.load(self.secrets["kong-config"]["kong.yml"])

    def gateway(self, route: str, headers: dict) -> dict | None:
        """Upstream headers of an admitted request, or None where key-auth answers 401."""
        service = next(s for s in self.kong["services"] if s["name"] == route)
        plugins = {p["name"]: p.get("config", {}) for p in service["plugins"]}
        if "key-auth" in plugins:
            credentials = {c["key"] for u in self.kong["consumers"] for c in u.get("keyauth_credentials", [])}
            if headers.get("apikey") not in credentials:
                return None
        out, _ = self.transform(
            to_lua(self.lua, plugins.get("request-transformer", {})),
            to_lua(self.lua, headers),
            to_lua(self.lua, {}),
            to_lua(self.lua, plugins.get("post-function", {}).get("access", [])),
        )
        return dict(out.items())

    def postgrest_claims(self, authorization: str) -> dict:
        """PostgREST's check with PGRST_JWT_SECRET as it is now: key by kid, algorithm from the key."""
        token = authorization.removeprefix("Bearer ")
        jwks = json.loads(self.secrets["rest-secrets"]["PGRST_JWT_SECRET"])
        kid = jwt.get_unverified_header(token).get("kid")
        matching = [k for k in jwt.PyJWKSet.from_dict(jwks).keys if k.key_id == kid]
        if not matching:
            raise jwt.InvalidKeyError(f"no key {kid} in PostgREST's JWKS")
        return jwt.decode(
            token, matching[0].key, algorithms=[matching[0].algorithm_name], options={"verify_aud": False}
        )

    def gotrue_session(self, sub: str) -> str:
        """A session access token as GoTrue issues it with the keys and issuer it runs with."""
        keys = json.loads(self.secrets["auth-secrets"]["GOTRUE_JWT_KEYS"])
        (signer,) = [k for k in keys if "sign" in k.get("key_ops", [])]
        issuer = next(
            e["value"]
            for o in self.objects
            if o["kind"] == "Deployment" and o["metadata"]["name"] == "auth"
            for e in o["spec"]["template"]["spec"]["containers"][0]["env"]
            if e["name"] == "GOTRUE_JWT_ISSUER"
        )
        claims = {"sub": sub, "role": "authenticated", "aud": "authenticated", "iss": issuer, "exp": 4_000_000_000}
        return jwt.encode(claims, jwt.PyJWK(signer).key, algorithm="ES256", headers={"kid": signer["kid"]})


@pytest.fixture(scope="module")
def todos_db(postgres_server, service_db, manifest_env):
    passwords = bootstrapped_database(postgres_server, DBNAME)
    url = service_db("rest", "PGRST_DB_URI")
    with psycopg.connect(postgres_server.conninfo(dbname=DBNAME), autocommit=True) as conn:
        conn.execute("CREATE TABLE public.todos (id int PRIMARY KEY, owner text NOT NULL, task text)")
        conn.execute("ALTER TABLE public.todos ENABLE ROW LEVEL SECURITY")
        conn.execute(
            "CREATE POLICY own_todos ON public.todos TO authenticated "
            "USING (owner = current_setting('request.jwt.claims', true)::json->>'sub')"
        )
        conn.execute("INSERT INTO public.todos VALUES (1, 'alice', 'a'), (2, 'bob', 'b')")
    return manifest_env("rest"), url.conninfo(postgres_server, passwords, DBNAME)


def rest_rows(cluster: Cluster, todos_db, authorization: str) -> list[tuple]:
    """A GET /rest/v1/todos that PostgREST admitted: the rows its role and claims may see."""
    env, conninfo = todos_db
    claims = cluster.postgrest_claims(authorization)
    with psycopg.connect(conninfo) as conn:
        return pgrst_request(conn, env, claims, "SELECT id FROM todos ORDER BY id")


def test_rotation_keeps_sessions_and_legacy_keys_until_the_switch(
    stack_secrets, supabase_manifests, todos_db, monkeypatch
):
    client, jwt_arn, keys_arn, _ = stack_secrets
    monkeypatch.setenv("JWT_SECRET_ARN", jwt_arn)
    monkeypatch.setenv("API_KEYS_SECRET_ARN", keys_arn)
    created = handler.on_event(moto_minter.cfn_event("Create", jwt_arn, keys_arn), None)
    old_kid = created["Data"]["SigningKeyId"]
    cluster = Cluster(supabase_manifests, client, keys_arn, jwt_arn)
    keys = json.loads(client.get_secret_value(SecretId=keys_arn)["SecretString"])
    publishable, legacy_anon = keys["publishable_key"], keys["anon_key"]

    alice_old = cluster.gotrue_session("alice")
    assert jwt.get_unverified_header(alice_old)["kid"] == old_kid
    anon_old = cluster.gateway("rest-v1-read", {"apikey": publishable})["authorization"]
    assert rest_rows(cluster, todos_db, anon_old) == []  # anon: RLS shows nothing
    assert rest_rows(cluster, todos_db, f"Bearer {alice_old}") == [(1,)]
    assert rest_rows(cluster, todos_db, cluster.gateway("rest-v1-read", {"apikey": legacy_anon})["authorization"]) == []

    # prepare: verifiers learn the next key; nothing signs with it yet.
    assert handler.on_event({"rotate": "prepare"}, None)["signingKeyId"] == old_kid
    cluster.refresh()
    assert cluster.gateway("rest-v1-read", {"apikey": publishable})["authorization"] == anon_old
    assert rest_rows(cluster, todos_db, f"Bearer {alice_old}") == [(1,)]

    # activate: GoTrue and the gateway sign with the new key; the old one still verifies.
    new_kid = handler.on_event({"rotate": "activate"}, None)["signingKeyId"]
    assert new_kid != old_kid
    cluster.refresh()
    anon_new = cluster.gateway("rest-v1-read", {"apikey": publishable})["authorization"]
    alice_new = cluster.gotrue_session("alice")
    assert jwt.get_unverified_header(anon_new.removeprefix("Bearer "))["kid"] == new_kid
    assert jwt.get_unverified_header(alice_new)["kid"] == new_kid
    assert rest_rows(cluster, todos_db, f"Bearer {alice_old}") == [(1,)]  # the session survives
    assert rest_rows(cluster, todos_db, anon_old) == []  # a Kong pod not yet restarted still works
    assert rest_rows(cluster, todos_db, f"Bearer {alice_new}") == [(1,)]
    # The legacy key keeps working until the switch.
    assert rest_rows(cluster, todos_db, cluster.gateway("rest-v1-read", {"apikey": legacy_anon})["authorization"]) == []

    # retire: tokens of the old key are refused; the new ones and the opaque key carry on.
    handler.on_event({"rotate": "retire"}, None)
    cluster.refresh()
    for token in (alice_old, anon_old.removeprefix("Bearer ")):
        with pytest.raises(jwt.InvalidKeyError):
            cluster.postgrest_claims(f"Bearer {token}")
    assert rest_rows(cluster, todos_db, f"Bearer {alice_new}") == [(1,)]
    assert cluster.gateway("rest-v1-read", {"apikey": publishable})["authorization"] == anon_new

    # The switch: legacy keys off. Kong no longer admits the legacy key, and no verifier accepts
    # an HS256 token; the opaque key and user sessions are untouched.
    update = moto_minter.cfn_event("Update", jwt_arn, keys_arn, keys_arn)
    update["ResourceProperties"]["LegacyApiKeys"] = "false"
    handler.on_event(update, None)
    cluster = Cluster(render(legacy=False), client, keys_arn, jwt_arn)  # the chart with the switch off
    assert cluster.gateway("rest-v1-read", {"apikey": legacy_anon}) is None
    with pytest.raises(jwt.InvalidKeyError):
        cluster.postgrest_claims(f"Bearer {legacy_anon}")
    assert rest_rows(cluster, todos_db, f"Bearer {alice_new}") == [(1,)]
    assert rest_rows(cluster, todos_db, cluster.gateway("rest-v1-read", {"apikey": publishable})["authorization"]) == []


def test_rotating_the_legacy_jwt_secret_keeps_es256_sessions(stack_secrets, supabase_manifests, todos_db, monkeypatch):
    """GoTrue signs sessions with the ES256 key now, so a new JWT secret replaces only the legacy keys."""
    client, jwt_arn, keys_arn, _ = stack_secrets
    monkeypatch.setenv("JWT_SECRET_ARN", jwt_arn)
    monkeypatch.setenv("API_KEYS_SECRET_ARN", keys_arn)
    handler.on_event(moto_minter.cfn_event("Create", jwt_arn, keys_arn), None)
    cluster = Cluster(supabase_manifests, client, keys_arn, jwt_arn)
    old_legacy = json.loads(client.get_secret_value(SecretId=keys_arn)["SecretString"])["anon_key"]
    alice = cluster.gotrue_session("alice")

    client.put_secret_value(SecretId=jwt_arn, SecretString=json.dumps({"secret": "n" * 48}))
    handler.on_event({"source": "aws.secretsmanager", "detail-type": "AWS API Call via CloudTrail"}, None)
    cluster.refresh()
    new_legacy = json.loads(client.get_secret_value(SecretId=keys_arn)["SecretString"])["anon_key"]
    assert new_legacy != old_legacy
    assert rest_rows(cluster, todos_db, f"Bearer {alice}") == [(1,)]
    assert rest_rows(cluster, todos_db, cluster.gateway("rest-v1-read", {"apikey": new_legacy})["authorization"]) == []
    assert cluster.gateway("rest-v1-read", {"apikey": old_legacy}) is None  # no longer a Kong credential
    with pytest.raises(jwt.InvalidSignatureError):
        cluster.postgrest_claims(f"Bearer {old_legacy}")
