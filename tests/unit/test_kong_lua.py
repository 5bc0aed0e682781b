"""Kong's API-key mapping, executed: the rendered kong.yml's Lua runs in LuaJIT 2.1 (lupa), the
Lua Kong runs on (OpenResty).

The harness does what Kong's request-transformer does with it (kong/plugins/request-transformer/
access.lua): it splits each `name:value` pair with the plugin's own Lua pattern, renders
`$(expr)` in a read-only environment of `headers`, `query_params` and `type` as Penlight's
template engine (which the plugin uses) does, `tostring(expr or '')`, then applies remove, replace (only if
present) and add (only if absent) in that order. The post-function snippet runs against a
`kong` PDK table over the same headers. Keys are real: ES256 JWTs and opaque keys from the
minter, checked afterwards with PyJWT against the minted JWKS.
"""

from __future__ import annotations

import json

import jwt
import pytest
from lupa import luajit21

from config import yamlio
from config.loader import load_config
from k8s_charts.aws_values import from_config
from k8s_charts.supabase import kong, kong_lua
from k8s_charts.supabase.chart import render_supabase
from ops.mint_api_keys import handler, keyset

ENV = "dev"
JWT_SECRET = "q" * 48

HARNESS = r"""
local function readonly(t)
  return setmetatable({}, {__index = t, __newindex = function() error("read-only") end})
end

-- ngx.req.get_headers(): lower-case names, and lookups normalise case and "_" to "-".
local function header_table(raw)
  local t = {}
  for k, v in pairs(raw) do t[k:lower()] = v end
  return setmetatable(t, {__index = function(self, k)
    return rawget(self, (k:lower():gsub("_", "-")))
  end})
end

local function render(value, env)
  local expr = value:match("^%$%((.*)%)$")
  assert(expr, "not a $(...) template: " .. value)
  local fn = assert(loadstring("return " .. expr))
  setfenv(fn, env)
  -- Penlight compiles $(expr) to tostring(expr or ''): nil and false render empty.
  return tostring(fn() or "")
end

local function pairs_of(list, env)
  local out = {}
  for _, pair in ipairs(list or {}) do
    local name, value = pair:match("^([^:]+):*(.-)$")
    if value ~= "" then value = render(value, env) else value = nil end
    out[#out + 1] = {name, value}
  end
  return out
end

return function(conf, raw_headers, raw_query, snippets)
  local headers = header_table(raw_headers)
  local query = {}
  for k, v in pairs(raw_query) do query[k] = v end
  local env = readonly({headers = readonly(headers), query_params = readonly(query), type = type})
  local remove = conf.remove or {}
  local replace = conf.replace or {}
  local add = conf.add or {}
  for _, p in ipairs(pairs_of(remove.headers, env)) do headers[p[1]:lower()] = nil end
  for _, p in ipairs(pairs_of(replace.headers, env)) do
    local name = p[1]:lower()
    if headers[name] then headers[name] = p[2] end
  end
  for _, p in ipairs(pairs_of(add.headers, env)) do
    if not headers[p[1]] and p[1]:lower() ~= "host" then rawset(headers, p[1]:lower(), p[2]) end
  end
  for _, p in ipairs(pairs_of(replace.querystring, env)) do
    if query[p[1]] then query[p[1]] = p[2] end
  end
  local pdk = {
    request = {get_header = function(name) return headers[name] end},
    service = {request = {clear_header = function(name) headers[name:lower()] = nil end}},
  }
  for _, code in ipairs(snippets) do
    local fn = assert(loadstring(code))
    setfenv(fn, {kong = pdk})
    fn()
  end
  return headers, query
end
"""


def to_lua(lua, value):
    if isinstance(value, dict):
        return lua.table_from({k: to_lua(lua, v) for k, v in value.items()})
    if isinstance(value, list):
        return lua.table_from([to_lua(lua, v) for v in value])
    return value


class Gateway:
    """One rendered kong.yml and the minted keys behind it."""

    def __init__(self, *, legacy: bool):
        cfg = load_config()
        env = cfg.environments[ENV]
        envs = {
            **cfg.environments,
            ENV: env.model_copy(update={"auth": env.auth.model_copy(update={"legacy_api_keys": legacy})}),
        }
        cfg = cfg.model_copy(update={"environments": envs})
        objects = render_supabase(cfg, ENV, from_config(cfg, ENV))["supabase"]
        es = next(o for o in objects if o["kind"] == "ExternalSecret" and o["metadata"]["name"] == "kong-config")
        signing = handler.SigningKeys(current=keyset.SigningKey.generate())
        now = 1_700_000_000
        claims = {"iss": "supabase", "iat": now, "exp": now + 86400 * 3650}
        self.keys = {
            "publishable_key": keyset.opaque_key(keyset.PUBLISHABLE_PREFIX),
            "secret_key": keyset.opaque_key(keyset.SECRET_PREFIX),
            "anon_key_asymmetric": keyset.sign_es256({"role": "anon", **claims}, signing.current),
            "service_role_key_asymmetric": keyset.sign_es256({"role": "service_role", **claims}, signing.current),
            **handler.mint_keys(JWT_SECRET, issuer="supabase", expiry_days=3650, now=now),
            "dashboard_username": "ops",
            "dashboard_password": "pw",
        }
        self.jwks = signing.jwks(JWT_SECRET if legacy else None)
        self.user_token = jwt.encode(
            {"sub": "alice", "role": "authenticated"},
            jwt.PyJWK(signing.current.jwk(private=True)).key,
            algorithm="ES256",
            headers={"kid": signing.current.kid},
        )
        self.config = yamlio.load(kong.render_template(es["spec"]["target"]["template"]["data"]["kong.yml"], self.keys))
        self.legacy = legacy
        self.lua = luajit21.LuaRuntime(unpack_returned_tuples=True)
        self.transform = self.lua.execute(HARNESS)

    def service(self, route_name: str) -> dict:
        (service,) = [s for s in self.config["services"] if s["name"] == route_name]
        return service

    def upstream(self, route_name: str, headers: dict, query: dict | None = None) -> tuple[dict, dict]:
        """What reaches the upstream of `route_name` for a request already admitted by key-auth."""
        plugins = {p["name"]: p.get("config", {}) for p in self.service(route_name)["plugins"]}
        conf = plugins.get("request-transformer", {})
        snippets = plugins.get("post-function", {}).get("access", [])
        out_headers, out_query = self.transform(
            to_lua(self.lua, conf), to_lua(self.lua, headers), to_lua(self.lua, query or {}), to_lua(self.lua, snippets)
        )
        return dict(out_headers.items()), dict(out_query.items())

    def consumer_keys(self, username: str) -> list[str]:
        (consumer,) = [c for c in self.config["consumers"] if c["username"] == username]
        return [c["key"] for c in consumer["keyauth_credentials"]]

    def verified(self, authorization: str) -> dict:
        scheme, token = authorization.split(" ")
        assert scheme == "Bearer"
        kid = jwt.get_unverified_header(token).get("kid")
        keys = jwt.PyJWKSet.from_dict(json.loads(self.jwks)).keys
        # A verifier picks by kid; legacy tokens carry none and match the kid-less oct key.
        matching = [k for k in keys if k.key_id == kid]
        if not matching:
            raise ValueError(f"no key for kid {kid} in the JWKS")
        (key,) = matching
        return jwt.decode(token, key.key, algorithms=[key.algorithm_name], options={"verify_exp": False})


@pytest.fixture(scope="module", params=[True, False], ids=["legacy-on", "legacy-off"])
def gateway(request) -> Gateway:
    return Gateway(legacy=request.param)


KEYED_ROUTES = [
    "auth-v1",
    "rest-v1-read",
    "rest-v1-write",
    "rest-v1-openapi",
    "realtime-v1-api",
    "storage-v1",
    "functions-v1",
]


@pytest.mark.parametrize("route", KEYED_ROUTES)
@pytest.mark.parametrize(("key", "role"), [("publishable_key", "anon"), ("secret_key", "service_role")])
def test_opaque_key_reaches_the_upstream_as_its_presigned_jwt(gateway, route, key, role):
    headers, _ = gateway.upstream(route, {"apikey": gateway.keys[key]})
    assert gateway.verified(headers["authorization"])["role"] == role
    # supabase-js without a session also sends the key as the bearer.
    headers, _ = gateway.upstream(route, {"apikey": gateway.keys[key], "Authorization": f"Bearer {gateway.keys[key]}"})
    assert gateway.verified(headers["authorization"])["role"] == role


@pytest.mark.parametrize("route", KEYED_ROUTES)
def test_a_user_session_token_passes_untouched(gateway, route):
    bearer = f"Bearer {gateway.user_token}"
    headers, _ = gateway.upstream(route, {"apikey": gateway.keys["publishable_key"], "Authorization": bearer})
    assert headers["authorization"] == bearer and gateway.verified(bearer)["sub"] == "alice"


def test_a_repeated_authorization_header_does_not_break_the_expression(gateway):
    headers, _ = gateway.upstream(
        "rest-v1-read", {"apikey": gateway.keys["publishable_key"], "Authorization": ["Bearer a", "Bearer b"]}
    )
    assert gateway.verified(headers["authorization"])["role"] == "anon"


def test_legacy_keys_only_while_switched_on(gateway):
    legacy = gateway.keys["anon_key"]
    assert gateway.consumer_keys("anon")[0] == gateway.keys["publishable_key"]
    assert gateway.consumer_keys("service_role")[0] == gateway.keys["secret_key"]
    headers, _ = gateway.upstream("rest-v1-read", {"apikey": legacy})
    if gateway.legacy:
        # key-auth admits it (a consumer credential); it travels as the bearer and the JWKS's oct key verifies it.
        assert gateway.consumer_keys("anon") == [gateway.keys["publishable_key"], legacy]
        assert gateway.verified(headers["authorization"])["role"] == "anon"
    else:
        # Not a credential, so key-auth answers 401 before any transformer; even past it, nothing maps it,
        # and the JWKS has no key that would verify it.
        assert gateway.consumer_keys("anon") == [gateway.keys["publishable_key"]]
        assert gateway.consumer_keys("service_role") == [gateway.keys["secret_key"]]
        assert headers.get("authorization") in (None, "")
        with pytest.raises(ValueError, match="no key"):
            gateway.verified(f"Bearer {legacy}")


def test_storage_without_key_or_token_sends_no_authorization(gateway):
    headers, _ = gateway.upstream("storage-v1", {})
    assert "authorization" not in headers
    sigv4 = "AWS4-HMAC-SHA256 Credential=abc/20261201/eu-west-1/s3/aws4_request, SignedHeaders=host, Signature=00"
    headers, _ = gateway.upstream("storage-v1", {"Authorization": sigv4})
    assert headers["authorization"] == sigv4  # the S3 protocol endpoint verifies the signature itself


@pytest.mark.parametrize(("key", "role"), [("publishable_key", "anon"), ("secret_key", "service_role")])
def test_realtime_socket_gets_the_presigned_jwt(gateway, key, role):
    headers, query = gateway.upstream("realtime-v1-ws", {}, {"apikey": gateway.keys[key], "vsn": "1.0.0"})
    assert gateway.verified(f"Bearer {headers['x-api-key']}")["role"] == role
    assert query["apikey"] == headers["x-api-key"] and query["vsn"] == "1.0.0"


def test_the_key_values_are_lua_literals_not_code(gateway):
    """A value reaches the Lua only as a JSON string from `toJson`; the minted shapes need no escapes."""
    for name in ("publishable_key", "secret_key", "anon_key_asymmetric", "service_role_key_asymmetric"):
        value = gateway.keys[name]
        assert json.dumps(value) == f'"{value}"'
        assert gateway.lua.eval(json.dumps(value)) == value
    assert [v.var for pair in kong_lua.KEY_MAP for v in pair] == [
        "secret_key",
        "service_role_key_asymmetric",
        "publishable_key",
        "anon_key_asymmetric",
    ]
