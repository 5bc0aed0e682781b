"""The Lua Kong runs to map opaque API keys to the pre-signed JWTs, all of it in one place.

Upstream's approach (supabase/supabase docker/volumes/api/kong.yml and kong-entrypoint.sh):
request-transformer values of the form `$(<Lua expression>)` rewrite `Authorization`, and a
post-function drops the header where the expression left it empty. Kong renders such values
with Penlight's template engine, which writes `tostring(expr or '')`, so an expression whose every
clause fails (`nil` or `false`) leaves the header empty; it runs inside a sandbox that
offers `headers`, `query_params` and `type` (Kong kong/plugins/request-transformer/access.lua).

The expressions embed the keys as Lua string literals. Each `literals[var]` below is what the
chart puts there: an External Secrets action `{{ .var | toJson }}`, which renders a JSON
string. A JSON string is a Lua string literal as long as it needs no `\\u` escape; every value
here is base64url text with dots and underscores (ops/mint_api_keys), which needs none.

tests/unit/test_kong_lua.py executes these expressions and the snippet in LuaJIT (Kong's Lua)
against the rendered kong.yml.
"""

from __future__ import annotations

from collections.abc import Mapping

from k8s_charts.supabase import secrets

# The opaque key each pre-signed JWT stands for: (apikey value, JWT Kong substitutes).
KEY_MAP = (
    (secrets.SECRET_KEY, secrets.SERVICE_ROLE_KEY_ASYMMETRIC),
    (secrets.PUBLISHABLE_KEY, secrets.ANON_KEY_ASYMMETRIC),
)

# A user's session JWT (or a legacy key as a bearer) passes through untouched; supabase-js
# sends the opaque key itself as `Bearer sb_...` when there is no session.
_USER_TOKEN = (
    "(type(headers.authorization) == 'string' and headers.authorization:sub(1, 10) ~= 'Bearer sb_'"
    " and headers.authorization)"
)


def authorization(literals: Mapping[str, str], *, legacy: bool) -> str:
    """Value of `Authorization` towards the upstream, as a request-transformer template."""
    clauses = [_USER_TOKEN]
    clauses += [f"(headers.apikey == {literals[key.var]} and 'Bearer ' .. {literals[jwt.var]})" for key, jwt in KEY_MAP]
    if legacy:
        # A legacy apikey is itself a JWT; Kong's key-auth has already matched it to a consumer.
        clauses.append(
            "(type(headers.apikey) == 'string' and headers.apikey:sub(1, 3) ~= 'sb_' and 'Bearer ' .. headers.apikey)"
        )
    return _template(clauses)


def realtime_api_key(literals: Mapping[str, str], *, legacy: bool) -> str:
    """Value of Realtime's `x-api-key` (and `apikey` query parameter) for the WebSocket.

    Browsers cannot set headers on a WebSocket: supabase-js sends `?apikey=`, and Realtime
    reads `x-api-key` first."""
    clauses = [f"(query_params.apikey == {literals[key.var]} and {literals[jwt.var]})" for key, jwt in KEY_MAP]
    if legacy:
        clauses.append(
            "(type(query_params.apikey) == 'string' and query_params.apikey:sub(1, 3) ~= 'sb_' and query_params.apikey)"
        )
    return _template(clauses)


def _template(clauses: list[str]) -> str:
    return "$(" + " or ".join(clauses) + ")"


# post-function (access phase) after the transformer: an Authorization the expression left
# empty (no key, no user token: a public object or an S3 pre-signed URL) must not reach the
# upstream at all, or Storage tries to read a signature from it.
CLEAR_EMPTY_AUTHORIZATION = """local auth = kong.request.get_header("authorization")
if auth == nil or auth:find("^%s*$") then
  kong.service.request.clear_header("authorization")
end
"""
