"""Kong's generated declarative config: each route's protection level, as Kong will load it.

The config is parsed from the ExternalSecret template after substituting values the way
the ESO engine does, so what is asserted is the file Kong receives.
"""

from __future__ import annotations

import pytest

from config import yamlio
from config.loader import load_config
from k8s_charts.aws_values import from_config
from k8s_charts.supabase import kong
from k8s_charts.supabase.props import SupabaseProps
from tests import rendered
from tests.conftest import ENVIRONMENT_KINDS

FAKE = {
    "anon_key": "anon.jwt.value",
    "service_role_key": "service.jwt.value",
    "publishable_key": "sb_publishable_value",
    "secret_key": "sb_secret_value",
    "anon_key_asymmetric": "anon.es256.value",
    "service_role_key_asymmetric": "service.es256.value",
    "dashboard_username": "ops",
    "dashboard_password": "p'a\"ss: {x} #1",
}


@pytest.fixture(scope="module", params=ENVIRONMENT_KINDS)
def env(request):
    cfg = load_config()
    values = from_config(cfg, request.param)
    props = SupabaseProps.from_config(cfg, request.param, values)
    objects = rendered.supabase(request.param)["supabase"]
    es = next(o for o in objects if o["kind"] == "ExternalSecret" and o["metadata"]["name"] == "kong-config")
    template = es["spec"]["target"]["template"]["data"]["kong.yml"]
    config = yamlio.load(kong.render_template(template, FAKE))
    return props, objects, es, config


def _service(config, route_name):
    matches = [s for s in config["services"] if any(r["name"] == route_name for r in s["routes"])]
    assert len(matches) == 1, route_name
    return matches[0]


def _plugins(service):
    return {p["name"]: p.get("config", {}) for p in service["plugins"]}


OPEN_PATHS = [
    "/auth/v1/verify",
    "/auth/v1/callback",
    "/auth/v1/authorize",
    "/auth/v1/.well-known/jwks.json",
    "/auth/v1/sso/saml/acs",
    "/auth/v1/sso/saml/metadata",
]


def _by_path(config, path):
    return [s for s in config["services"] if path in s["routes"][0]["paths"]]


def test_secret_values_survive_yaml_quoting(env):
    _, _, _, config = env
    dash = next(c for c in config["consumers"] if c["username"] == "DASHBOARD")
    assert dash["basicauth_credentials"][0]["password"] == FAKE["dashboard_password"]


def test_consumers_and_acl_groups(env):
    _, _, _, config = env
    consumers = {c["username"]: c for c in config["consumers"]}
    # The default config keeps the legacy keys beside the opaque ones (test_kong_lua: switched off).
    assert consumers["anon"]["keyauth_credentials"] == [{"key": FAKE["publishable_key"]}, {"key": FAKE["anon_key"]}]
    assert consumers["anon"]["acls"] == [{"group": "anon"}]
    assert consumers["service_role"]["keyauth_credentials"] == [
        {"key": FAKE["secret_key"]},
        {"key": FAKE["service_role_key"]},
    ]
    assert consumers["service_role"]["acls"] == [{"group": "admin"}]


@pytest.mark.parametrize("path", OPEN_PATHS)
def test_open_routes_have_only_cors(env, path):
    _, _, _, config = env
    (service,) = _by_path(config, path)
    assert list(_plugins(service)) == ["cors"]
    assert service["host"].startswith("auth.")


@pytest.mark.parametrize("path", ["/auth/v1/", "/realtime/v1/", "/realtime/v1/api"])
def test_key_auth_routes_allow_anon_and_admin(env, path):
    _, _, _, config = env
    for service in _by_path(config, path):
        plugins = _plugins(service)
        assert "key-auth" in plugins and "acl" in plugins
        assert sorted(plugins["acl"]["allow"]) == ["admin", "anon"]


def test_rest_reads_go_to_replica_writes_to_primary(env):
    _, _, _, config = env
    by_methods = {tuple(s["routes"][0]["methods"]): s for s in _by_path(config, "/rest/v1/")}
    (openapi,) = _by_path(config, kong.OPENAPI_ROOT)
    assert openapi["routes"][0]["methods"] == ["GET", "HEAD"] and _plugins(openapi)["acl"]["allow"] == ["admin"]
    read = by_methods[("GET", "HEAD")]
    assert read["host"].startswith("rest-ro.")
    writes = [s for m, s in by_methods.items() if m != ("GET", "HEAD")]
    assert len(writes) == 1 and writes[0]["host"].startswith("rest.")
    assert {"POST", "PATCH", "DELETE"} <= set(writes[0]["routes"][0]["methods"])
    for service in by_methods.values():
        assert sorted(_plugins(service)["acl"]["allow"]) == ["admin", "anon"]


def test_graphql_is_not_routed_because_rds_lacks_pg_graphql(env):
    _, _, _, config = env
    assert not _by_path(config, "/graphql/v1")
    assert not any("graphql" in s.get("path", "") for s in config["services"])


def test_realtime_websocket_and_tenant(env):
    _, _, _, config = env
    (ws,) = _by_path(config, "/realtime/v1/")
    assert ws["protocol"] == "ws" and ws["path"] == "/socket"
    assert ws["read_timeout"] >= 3_600_000
    # Realtime's tenant is the first label of the Host Kong sends.
    assert ws["host"].split(".")[0] == "realtime"
    assert any("query_params.apikey" in h for h in _plugins(ws)["request-transformer"]["add"]["headers"])


@pytest.mark.parametrize("path", ["/realtime/v1/api/tenants", "/realtime/v1/api/openapi", "/api/mcp", "/mcp"])
def test_forbidden_routes_return_403_only(env, path):
    _, _, _, config = env
    (service,) = _by_path(config, path)
    plugins = _plugins(service)
    assert list(plugins) == ["request-termination"]
    assert plugins["request-termination"]["status_code"] == 403


def test_pg_meta_is_admin_only(env):
    _, _, _, config = env
    (service,) = _by_path(config, "/pg/")
    plugins = _plugins(service)
    assert plugins["acl"]["allow"] == ["admin"] and "key-auth" in plugins


def test_studio_behind_basic_auth_on_studio_host_only(env):
    props, _, _, config = env
    (service,) = _by_path(config, "/")
    plugins = _plugins(service)
    assert "basic-auth" in plugins and plugins["basic-auth"]["hide_credentials"] is True
    assert service["routes"][0]["hosts"] == [props.values.studio_host]


def test_storage_and_functions(env):
    _, _, _, config = env
    (storage,) = _by_path(config, "/storage/v1/")
    # Storage verifies JWTs itself: no key-auth, only the key mapping (test_kong_lua runs it).
    assert list(_plugins(storage)) == ["cors", "request-transformer", "post-function"]
    (functions,) = _by_path(config, "/functions/v1/")
    assert functions["read_timeout"] >= 150_000
    assert functions["host"].startswith("functions.")


def test_every_route_has_a_protection_decision(env):
    """No route is reachable without an explicit, tested protection."""
    _, _, _, config = env
    tested = set(OPEN_PATHS) | {
        "/auth/v1/",
        "/realtime/v1/",
        "/realtime/v1/api",
        "/rest/v1/",
        kong.OPENAPI_ROOT,
        "/realtime/v1/api/tenants",
        "/realtime/v1/api/openapi",
        "/api/mcp",
        "/mcp",
        "/pg/",
        "/",
        "/storage/v1/",
        "/storage/v1/object/public/",
        "/functions/v1/",
    }
    assert {p for s in config["services"] for r in s["routes"] for p in r["paths"]} == tested


def test_global_plugins(env):
    props, objects, _, config = env
    plugins = {p["name"]: p["config"] for p in config["plugins"]}
    redis = plugins["rate-limiting"]["redis"]
    assert plugins["rate-limiting"]["policy"] == "redis"
    assert redis["host"] == props.values.redis_host and redis["ssl"] is True
    assert redis["password"] == "{vault://env/kong-rate-limit-redis-password}"
    assert plugins["opentelemetry"]["traces_endpoint"] == "http://otel-collector.observability.svc:4318/v1/traces"
    assert "prometheus" in plugins
    kong_deploy = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "kong")
    env_names = {e["name"]: e for e in kong_deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
    # Kong's env vault maps kong-rate-limit-redis-password to this variable.
    assert env_names["KONG_RATE_LIMIT_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "kong-secrets"


def test_every_plugin_used_is_enabled(env):
    _, objects, _, config = env
    used = {p["name"] for s in config["services"] for p in s["plugins"]} | {p["name"] for p in config["plugins"]}
    kong_deploy = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "kong")
    env_vars = {e["name"]: e.get("value") for e in kong_deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert used <= set(env_vars["KONG_PLUGINS"].split(","))
    assert env_vars["KONG_DATABASE"] == "off"
    assert env_vars["KONG_DECLARATIVE_CONFIG"] == "/kong-config/kong.yml"


def test_kong_config_is_a_secret_not_a_configmap(env):
    _, objects, es, _ = env
    assert es["spec"]["target"]["name"] == "kong-config"
    assert not [o for o in objects if o["kind"] == "ConfigMap" and "kong" in o["metadata"]["name"]]
    deploy = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "kong")
    volumes = deploy["spec"]["template"]["spec"]["volumes"]
    assert {"name": "kong-config", "secret": {"secretName": "kong-config", "defaultMode": 0o440}} in volumes


def test_route_table_rejects_unprotected_key_auth():
    with pytest.raises(ValueError, match="ACL groups"):
        kong.Route(name="x", path="/x", component="rest", protection=kong.Protection.KEY_AUTH)


def test_route_table_rejects_a_component_kong_does_not_call():
    # pgbouncer is in the catalog, but not among Kong's calls: its NetworkPolicy would drop the route.
    with pytest.raises(ValueError, match="kong does not call 'pgbouncer'"):
        kong.Route(name="x", path="/x", component="pgbouncer", protection=kong.Protection.UPSTREAM)


# --- the gateway cache ---------------------------------------------------------------------------


def kong_route_for(config, path: str, method: str, headers: dict[str, str]):
    """The service Kong's router picks: longest matching path prefix, then a route whose header
    conditions all match over one without (Kong's documented routing priority; "~*" values are
    case-insensitive regexes)."""
    import re

    candidates = []
    for service in config["services"]:
        for route in service["routes"]:
            if method not in route.get("methods", [method]):
                continue
            prefix = next((p for p in route["paths"] if path.startswith(p)), None)
            if prefix is None or route.get("hosts"):
                continue
            wanted = route.get("headers", {})
            lowered = {k.lower(): v for k, v in headers.items()}
            if all(
                name in lowered
                and any(
                    re.search(v[2:], lowered[name], re.I) if v.startswith("~*") else v == lowered[name] for v in values
                )
                for name, values in wanted.items()
            ):
                candidates.append((len(prefix), len(wanted), service))
    assert candidates, path
    best = max(c[:2] for c in candidates)
    winners = [c[2] for c in candidates if c[:2] == best]
    return winners[0]


PUBLIC_OBJECT = "/storage/v1/object/public/avatars/a.png"


def test_anonymous_public_object_requests_hit_the_gateway_cache(env):
    _, _, _, config = env
    for method in ("GET", "HEAD"):
        service = kong_route_for(config, PUBLIC_OBJECT, method, {})
        cache = _plugins(service)["proxy-cache"]
        assert cache == kong.GATEWAY_CACHE
        assert service["path"] == "/object/public/" and service["host"].startswith("storage.")


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.user.sig"},
        {"Cookie": "sb-access-token=abc"},
        {"apikey": "service.jwt.value"},
        {"apikey": "anon.jwt.value", "Authorization": "Bearer anon.jwt.value"},
    ],
)
def test_requests_with_a_credential_bypass_the_gateway_cache(env, headers):
    _, _, _, config = env
    service = kong_route_for(config, PUBLIC_OBJECT, "GET", headers)
    assert "proxy-cache" not in _plugins(service)
    # Same upstream as the cached route: only the cache differs.
    assert service["path"] == "/object/public/" and service["host"].startswith("storage.")


def test_only_public_objects_are_cached_at_the_gateway(env):
    _, _, _, config = env
    cached = {s["name"] for s in config["services"] if "proxy-cache" in _plugins(s)}
    assert cached == {"storage-v1-public"}
    for path in ("/rest/v1/todos", "/auth/v1/user", "/storage/v1/object/authenticated/a.png", "/functions/v1/hello"):
        assert "proxy-cache" not in _plugins(kong_route_for(config, path, "GET", {}))
    assert "proxy-cache" in kong.PLUGINS


def test_cache_bypass_header_route_is_needed():
    """Without its twins, a request with a user's JWT would be answered from the cache."""
    route = next(r for r in kong.routes(_props()) if r.cached)
    assert [t.match_headers for t in kong.cached_route_variants(route)[1:]] == [
        ((h, "~*."),) for h in kong.CACHE_BYPASS_HEADERS
    ]
    config = {
        "services": [
            {
                "name": route.name,
                "routes": [{"paths": [route.path], "methods": list(route.methods)}],
                "plugins": [{"name": "proxy-cache", "config": {}}],
            }
        ]
    }
    assert "proxy-cache" in _plugins(kong_route_for(config, PUBLIC_OBJECT, "GET", {"Authorization": "Bearer x"}))


@pytest.mark.parametrize(
    "bad",
    [
        {"protection": kong.Protection.KEY_AUTH, "groups": kong.KEY_GROUPS, "methods": kong.READ_METHODS},
        {"protection": kong.Protection.UPSTREAM, "methods": ("GET", "POST")},
        {"protection": kong.Protection.UPSTREAM, "methods": ()},
    ],
)
def test_cache_is_refused_on_keyed_or_writable_routes(bad):
    with pytest.raises(ValueError, match="only anonymous GET/HEAD"):
        kong.Route(name="x", path="/x/", component="storage", cached=True, **bad)


def _props():
    cfg = load_config()
    return SupabaseProps.from_config(cfg, "dev", from_config(cfg, "dev"))
