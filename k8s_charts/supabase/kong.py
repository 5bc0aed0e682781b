"""Kong's declarative configuration, generated from one route table.

Every externally reachable path is one `Route` below with an explicit protection level;
`declarative_config` turns the table into Kong's DB-less format. Consumer keys and the
dashboard password are secrets, so the config is emitted as an External Secrets template
(`kong_yml_template`) with `{{ .var | toJson }}` placeholders, rendered by the operator into
a Secret; JSON strings are valid YAML double-quoted scalars, so any password stays intact.

API keys: the `anon` consumer holds the publishable key, `service_role` the secret key, and
each also its legacy JWT while `auth.legacy_api_keys` is on (off, Kong answers a legacy key
with 401). On every route that forwards a key, the Lua in kong_lua.py turns the opaque key into
`Authorization: Bearer <pre-signed ES256 JWT>` unless the request carries a user's token.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass
from typing import Any

from config import yamlio
from k8s_charts.catalog import CATALOG
from k8s_charts.supabase import kong_lua, secrets
from k8s_charts.supabase.props import AUTH_PATH, OTLP_TRACES_ENDPOINT, SupabaseProps, service_host

GROUP_ANON = "anon"
GROUP_ADMIN = "admin"

PROXY_PORT = CATALOG["kong"].port
# The status listener serves /status, /status/ready and /metrics read-only. The Admin API
# (which in DB-less mode accepts POST /config, i.e. a full takeover) is not opened at all.
STATUS_PORT = CATALOG["kong"].scrape_port()
# The team's contract names Kong's metrics port 8001 on the Service; it targets STATUS_PORT.
METRICS_SERVICE_PORT = 8001
REDIS_PASSWORD_ENV = "KONG_RATE_LIMIT_REDIS_PASSWORD"

PLUGINS = (
    "request-transformer",
    "cors",
    "key-auth",
    "acl",
    "basic-auth",
    "request-termination",
    "ip-restriction",
    "prometheus",
    "opentelemetry",
    "rate-limiting",
    # Upstream's snippet that drops an emptied Authorization (kong_lua.CLEAR_EMPTY_AUTHORIZATION).
    "post-function",
    "file-log",
    "proxy-cache",
)

# One JSON line per request on stdout (file-log writes kong.log.serialize(), Kong kong/pdk/log.lua):
# what Fluent Bit ships and the saved Logs Insights queries read (route.name, response.status,
# latencies.request). kong.log.serialize() redacts only the Authorization headers, so every field
# that can carry a key or a session is removed (a nil value deletes the field, per
# kong.log.set_serialize_value), and the URI is logged without its query string: the Realtime
# socket carries the API key as ?apikey=.
ACCESS_LOG_REDACTIONS = {
    "request.headers": "return nil",
    "request.querystring": "return nil",
    "request.url": "return nil",
    "request.uri": "return kong.request.get_path()",
    "upstream_uri": "return nil",
    "response.headers": "return nil",
}


class Protection(enum.Enum):
    OPEN = "open"  # cors only: endpoints browsers and IdPs reach without an API key
    KEY_AUTH = "key-auth"  # apikey of a consumer in one of `groups`
    ADMIN_ONLY = "admin-only"  # service_role key only
    BASIC_AUTH = "basic-auth"  # dashboard credentials
    FORBIDDEN = "forbidden"  # 403 whatever the caller presents
    UPSTREAM = "upstream"  # the upstream authenticates (Storage verifies JWTs / S3 signatures)


@dataclass(frozen=True, kw_only=True)
class Route:
    name: str
    path: str
    component: str
    upstream_path: str = "/"
    protection: Protection
    groups: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    strip_path: bool = True
    upstream_protocol: str = "http"  # "ws" for the Realtime socket
    hosts: tuple[str, ...] = ()
    read_timeout_ms: int = 60_000
    write_timeout_ms: int = 60_000
    connect_timeout_ms: int = 5_000
    add_headers: tuple[str, ...] = ()
    # Turn an opaque apikey into the pre-signed JWT for the upstream; off where the upstream
    # reads no JWT (postgres-meta).
    maps_api_key: bool = True
    # Route only requests carrying these headers (Kong header matching; "~*" values are regexes).
    match_headers: tuple[tuple[str, str], ...] = ()
    # Cache anonymous responses at the gateway (GATEWAY_CACHE); see cached_route_variants.
    cached: bool = False

    @property
    def port(self) -> int:
        return CATALOG[self.component].port

    def __post_init__(self) -> None:
        # Kong's NetworkPolicy egress and the upstreams' AuthorizationPolicies admit the
        # catalog's calls only; a route elsewhere would be refused at runtime.
        if self.component not in CATALOG["kong"].calls:
            raise ValueError(f"{self.name}: kong does not call {self.component!r} in k8s_charts/catalog.py")
        if self.protection is Protection.KEY_AUTH and not self.groups:
            raise ValueError(f"{self.name}: key-auth needs ACL groups")
        if self.protection is Protection.ADMIN_ONLY and self.groups not in ((), (GROUP_ADMIN,)):
            raise ValueError(f"{self.name}: admin-only allows the admin group alone")
        if self.cached and (
            self.protection is not Protection.UPSTREAM or not self.methods or set(self.methods) - set(READ_METHODS)
        ):
            raise ValueError(f"{self.name}: only anonymous GET/HEAD routes the upstream serves to anyone are cached")


KEY_GROUPS = (GROUP_ADMIN, GROUP_ANON)
# Exactly /rest/v1 and /rest/v1/ (Kong 3 marks regex paths with "~").
OPENAPI_ROOT = "~/rest/v1/?$"
READ_METHODS = ("GET", "HEAD")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE", "OPTIONS")

# A request carrying any of these may be personalised (a user's JWT, a session cookie, any API
# key: Kong cannot tell the anon key from another without the key in the route): it never
# reaches the cache. Each cached route gets one twin per header, with the same path and methods
# and no cache; Kong's router prefers a route that also matches headers
# (https://docs.konghq.com/gateway/latest/key-concepts/routes/ "Routing priority").
CACHE_BYPASS_HEADERS = ("authorization", "cookie", "apikey")
# Kong OSS's proxy-cache keeps entries in the node's memory (the `memory` strategy; the Redis
# strategy is Enterprise-only). Its key is route, consumer, method, path, every query parameter
# and the vary_headers. Storage's Cache-Control is not honoured (proxy-cache's cache_control mode
# caches only responses marked `public`, which Storage does not send), so the TTL is short and
# the content types are those Storage serves for public assets; any other type passes through.
GATEWAY_CACHE = {
    "strategy": "memory",
    "request_method": list(READ_METHODS),
    "response_code": [200],
    "content_type": [
        "image/png",
        "image/jpeg",
        "image/webp",
        "image/avif",
        "image/gif",
        "image/svg+xml",
        "text/css",
        "application/javascript",
        "font/woff2",
    ],
    "cache_ttl": 60,
    "cache_control": False,
    "vary_headers": ["accept", "accept-encoding"],
    "memory": {"dictionary_name": "kong_db_cache"},
}


def cached_route_variants(route: Route) -> tuple[Route, ...]:
    """The cached route and its uncached twins for requests that carry a credential."""
    if not route.cached:
        return (route,)
    twins = tuple(
        dataclasses.replace(route, name=f"{route.name}-with-{header}", match_headers=((header, "~*."),), cached=False)
        for header in CACHE_BYPASS_HEADERS
    )
    return (route, *twins)


def routes(props: SupabaseProps) -> tuple[Route, ...]:
    open_auth = [
        ("auth-v1-open-verify", f"{AUTH_PATH}/verify", "/verify"),
        ("auth-v1-open-callback", f"{AUTH_PATH}/callback", "/callback"),
        ("auth-v1-open-authorize", f"{AUTH_PATH}/authorize", "/authorize"),
        ("auth-v1-open-jwks", f"{AUTH_PATH}/.well-known/jwks.json", "/.well-known/jwks.json"),
        # GoTrue publishes its SAML endpoints under API_EXTERNAL_URL, which ends in /auth/v1;
        # identity providers post there without an API key.
        ("auth-v1-open-sso-acs", f"{AUTH_PATH}/sso/saml/acs", "/sso/saml/acs"),
        ("auth-v1-open-sso-metadata", f"{AUTH_PATH}/sso/saml/metadata", "/sso/saml/metadata"),
    ]
    table = [
        Route(name=n, path=p, component="auth", upstream_path=u, protection=Protection.OPEN) for n, p, u in open_auth
    ]
    table += [
        Route(
            name="auth-v1",
            path=f"{AUTH_PATH}/",
            component="auth",
            protection=Protection.KEY_AUTH,
            groups=KEY_GROUPS,
        ),
        # The OpenAPI description of every exposed table: secret keys only, as upstream's
        # gateway does. A regex path: Kong evaluates regex paths before prefix paths
        # (https://developer.konghq.com/gateway/routing/traditional/#evaluation-order).
        Route(
            name="rest-v1-openapi",
            path=OPENAPI_ROOT,
            component="rest-ro",
            protection=Protection.ADMIN_ONLY,
            groups=(GROUP_ADMIN,),
            methods=READ_METHODS,
        ),
        Route(
            name="rest-v1-read",
            path="/rest/v1/",
            component="rest-ro",
            protection=Protection.KEY_AUTH,
            groups=KEY_GROUPS,
            methods=READ_METHODS,
        ),
        Route(
            name="rest-v1-write",
            path="/rest/v1/",
            component="rest",
            protection=Protection.KEY_AUTH,
            groups=KEY_GROUPS,
            methods=WRITE_METHODS,
        ),
        # No /graphql/v1: upstream serves it through pg_graphql, which RDS does not offer, so
        # the route could only answer errors (README: what RDS does not allow).
        # Realtime takes its tenant from the first label of the Host header: Kong sends the
        # upstream host (realtime.supabase.svc...), so the tenant is "realtime".
        Route(
            name="realtime-v1-ws",
            path="/realtime/v1/",
            component="realtime",
            upstream_path="/socket",
            upstream_protocol="ws",
            protection=Protection.KEY_AUTH,
            groups=KEY_GROUPS,
            read_timeout_ms=3_600_000,
            write_timeout_ms=3_600_000,
        ),
        Route(
            name="realtime-v1-api-tenants",
            path="/realtime/v1/api/tenants",
            component="realtime",
            upstream_path="/api/tenants",
            protection=Protection.FORBIDDEN,
        ),
        Route(
            name="realtime-v1-api-openapi",
            path="/realtime/v1/api/openapi",
            component="realtime",
            upstream_path="/api/openapi",
            protection=Protection.FORBIDDEN,
        ),
        Route(
            name="realtime-v1-api",
            path="/realtime/v1/api",
            component="realtime",
            upstream_path="/api",
            protection=Protection.KEY_AUTH,
            groups=KEY_GROUPS,
        ),
        # Public objects: Storage serves them to anyone, so anonymous requests share a short
        # gateway cache (its credentialed twins bypass it: cached_route_variants).
        Route(
            name="storage-v1-public",
            path="/storage/v1/object/public/",
            component="storage",
            upstream_path="/object/public/",
            protection=Protection.UPSTREAM,
            methods=READ_METHODS,
            read_timeout_ms=300_000,
            write_timeout_ms=300_000,
            cached=True,
        ),
        Route(
            name="storage-v1",
            path="/storage/v1/",
            component="storage",
            protection=Protection.UPSTREAM,
            read_timeout_ms=300_000,
            write_timeout_ms=300_000,
        ),
        # Edge functions may run up to the runtime's wall clock limit (150 s).
        Route(
            name="functions-v1",
            path="/functions/v1/",
            component="functions",
            protection=Protection.UPSTREAM,
            read_timeout_ms=150_000,
        ),
        Route(
            name="meta",
            path="/pg/",
            component="meta",
            protection=Protection.ADMIN_ONLY,
            groups=(GROUP_ADMIN,),
            maps_api_key=False,
        ),
        Route(
            name="studio-mcp",
            path="/api/mcp",
            component="studio",
            upstream_path="/api/mcp",
            protection=Protection.FORBIDDEN,
            hosts=(props.values.studio_host,),
        ),
        # Upstream's gateway also refuses /mcp, its alias of Studio's MCP server.
        Route(
            name="studio-mcp-alias",
            path="/mcp",
            component="studio",
            upstream_path="/api/mcp",
            protection=Protection.FORBIDDEN,
            hosts=(props.values.studio_host,),
        ),
        # Studio lives on its own host only, so the API host never serves the dashboard.
        Route(
            name="studio",
            path="/",
            component="studio",
            protection=Protection.BASIC_AUTH,
            hosts=(props.values.studio_host,),
        ),
    ]
    return tuple(variant for route in table for variant in cached_route_variants(route))


def _plugins(route: Route, props: SupabaseProps, literals: dict[str, str]) -> list[dict[str, Any]]:
    if route.protection is Protection.FORBIDDEN:
        return [{"name": "request-termination", "config": {"status_code": 403, "message": "Access is forbidden."}}]
    plugins: list[dict[str, Any]] = [{"name": "cors"}]
    if route.protection in (Protection.KEY_AUTH, Protection.ADMIN_ONLY):
        plugins.append({"name": "key-auth", "config": {"hide_credentials": False, "key_names": ["apikey"]}})
        plugins.append(
            {"name": "acl", "config": {"hide_groups_header": True, "allow": list(route.groups or (GROUP_ADMIN,))}}
        )
    if route.protection is Protection.BASIC_AUTH:
        plugins.append({"name": "basic-auth", "config": {"hide_credentials": True}})
    legacy = props.auth.legacy_api_keys
    maps_key = route.maps_api_key and route.protection in (
        Protection.KEY_AUTH,
        Protection.ADMIN_ONLY,
        Protection.UPSTREAM,
    )
    transform: dict[str, Any] = {}
    headers = list(route.add_headers)
    if maps_key and route.upstream_protocol == "ws":
        key = kong_lua.realtime_api_key(literals, legacy=legacy)
        headers.append(f"x-api-key:{key}")
        transform["replace"] = {"querystring": [f"apikey:{key}"]}
    elif maps_key:
        authorization = f"Authorization:{kong_lua.authorization(literals, legacy=legacy)}"
        headers.append(authorization)
        transform["replace"] = {"headers": [authorization]}
    if headers:
        transform["add"] = {"headers": headers}
    if transform:
        plugins.append({"name": "request-transformer", "config": transform})
    if maps_key and route.protection is Protection.UPSTREAM and route.upstream_protocol != "ws":
        # No key-auth in front: a request may carry neither key nor token (a public object).
        plugins.append({"name": "post-function", "config": {"access": [kong_lua.CLEAR_EMPTY_AUTHORIZATION]}})
    if route.cached:
        plugins.append({"name": "proxy-cache", "config": dict(GATEWAY_CACHE)})
    return plugins


def declarative_config(props: SupabaseProps, placeholders: dict[str, str]) -> dict[str, Any]:
    """Kong config with `placeholders[var]` where a secret value goes (as a whole YAML value,
    or as a Lua string literal inside the key-mapping expressions)."""
    services = []
    for route in routes(props):
        kong_route: dict[str, Any] = {
            "name": route.name,
            "paths": [route.path],
            "strip_path": route.strip_path,
            "protocols": ["http", "https"],
            "preserve_host": False,
        }
        if route.methods:
            kong_route["methods"] = list(route.methods)
        if route.hosts:
            kong_route["hosts"] = list(route.hosts)
        if route.match_headers:
            kong_route["headers"] = {name: [value] for name, value in route.match_headers}
        services.append(
            {
                "name": route.name,
                "protocol": route.upstream_protocol,
                "host": service_host(route.component),
                "port": route.port,
                "path": route.upstream_path,
                "connect_timeout": route.connect_timeout_ms,
                "read_timeout": route.read_timeout_ms,
                "write_timeout": route.write_timeout_ms,
                "retries": 1,
                "routes": [kong_route],
                "plugins": _plugins(route, props, placeholders),
            }
        )
    values = props.values
    return {
        "_format_version": "3.0",
        "_transform": True,
        "consumers": [
            {
                "username": "anon",
                "keyauth_credentials": _credentials(props, placeholders, secrets.PUBLISHABLE_KEY, secrets.ANON_KEY),
                "acls": [{"group": GROUP_ANON}],
            },
            {
                "username": "service_role",
                "keyauth_credentials": _credentials(props, placeholders, secrets.SECRET_KEY, secrets.SERVICE_ROLE_KEY),
                "acls": [{"group": GROUP_ADMIN}],
            },
            {
                "username": "DASHBOARD",
                "basicauth_credentials": [
                    {
                        "username": placeholders[secrets.DASHBOARD_USERNAME.var],
                        "password": placeholders[secrets.DASHBOARD_PASSWORD.var],
                    }
                ],
            },
        ],
        "services": services,
        "plugins": [
            {
                "name": "prometheus",
                "config": {
                    "status_code_metrics": True,
                    "latency_metrics": True,
                    "bandwidth_metrics": True,
                    "upstream_health_metrics": True,
                },
            },
            {
                "name": "opentelemetry",
                "config": {
                    "traces_endpoint": OTLP_TRACES_ENDPOINT,
                    "resource_attributes": {"service.name": "kong"},
                    # Every request: the collector samples (see props.OTLP_HTTP_ENDPOINT).
                    "sampling_rate": 1.0,
                },
            },
            {
                "name": "file-log",
                "config": {"path": "/dev/stdout", "reopen": False, "custom_fields_by_lua": dict(ACCESS_LOG_REDACTIONS)},
            },
            {
                "name": "rate-limiting",
                "config": {
                    "minute": props.rate_limit_per_minute,
                    "limit_by": "ip",
                    "policy": "redis",
                    # A Redis outage must not take the API down with it.
                    "fault_tolerant": True,
                    "redis": {
                        "host": values.redis_host,
                        "port": values.redis_port,
                        "ssl": True,
                        # The certificate names the ElastiCache endpoint, not our private CNAME;
                        # verification against the CNAME would always fail. Traffic stays in the VPC.
                        "ssl_verify": False,
                        "password": "{vault://env/" + REDIS_PASSWORD_ENV.lower().replace("_", "-") + "}",
                        "timeout": 2000,
                    },
                },
            },
        ],
    }


def _credentials(
    props: SupabaseProps, placeholders: dict[str, str], opaque: secrets.RemoteValue, legacy: secrets.RemoteValue
) -> list[dict[str, str]]:
    keys = [opaque, legacy] if props.auth.legacy_api_keys else [opaque]
    return [{"key": placeholders[k.var]} for k in keys]


def secret_values(props: SupabaseProps) -> tuple[secrets.RemoteValue, ...]:
    """Every secret kong.yml embeds; the legacy keys only while they are switched on."""
    keys = [key for pair in kong_lua.KEY_MAP for key in pair]
    if props.auth.legacy_api_keys:
        keys += [secrets.ANON_KEY, secrets.SERVICE_ROLE_KEY]
    return (*keys, secrets.DASHBOARD_USERNAME, secrets.DASHBOARD_PASSWORD)


def kong_yml_template(props: SupabaseProps) -> str:
    sentinels = {v.var: f"__secret_{v.var}__" for v in secret_values(props)}
    text = yamlio.dump(declarative_config(props, sentinels), sort_keys=False, width=1000)
    for var, sentinel in sentinels.items():
        if sentinel not in text:
            raise AssertionError(f"placeholder {sentinel} is fetched but never used")
        text = text.replace(sentinel, "{{ ." + var + " | toJson }}")
    return text


def render_template(template: str, values: dict[str, str]) -> str:
    """What the ESO engine produces for this template's `{{ .var | toJson }}` actions."""
    out = template
    for var, value in values.items():
        out = out.replace("{{ ." + var + " | toJson }}", json.dumps(value))
    if "{{" in out:
        raise ValueError("unrendered template action left in kong.yml")
    return out


def kong_env(props: SupabaseProps) -> dict[str, str]:
    return {
        "KONG_DATABASE": "off",
        "KONG_DECLARATIVE_CONFIG": "/kong-config/kong.yml",
        "KONG_DNS_ORDER": "LAST,A,CNAME",
        "KONG_PLUGINS": ",".join(PLUGINS),
        "KONG_NGINX_PROXY_PROXY_BUFFER_SIZE": "160k",
        "KONG_NGINX_PROXY_PROXY_BUFFERS": "64 160k",
        "KONG_PREFIX": "/kong_prefix",
        "KONG_PROXY_LISTEN": f"0.0.0.0:{PROXY_PORT}",
        "KONG_ADMIN_LISTEN": "off",
        "KONG_STATUS_LISTEN": f"0.0.0.0:{STATUS_PORT}",
        # file-log writes the access log (ACCESS_LOG_REDACTIONS); nginx's own line would repeat
        # each request with its query string, API key included.
        "KONG_PROXY_ACCESS_LOG": "off",
        "KONG_PROXY_ERROR_LOG": "/dev/stderr",
        "KONG_ADMIN_ERROR_LOG": "/dev/stderr",
        # The ALB terminates TLS and forwards from inside the VPC: trust its X-Forwarded-*.
        "KONG_TRUSTED_IPS": props.values.vpc_cidr,
        "KONG_REAL_IP_HEADER": "X-Forwarded-For",
        "KONG_LUA_SSL_TRUSTED_CERTIFICATE": "system",
        "KONG_TRACING_INSTRUMENTATIONS": "all",
        "KONG_TRACING_SAMPLING_RATE": "1.0",
        "KONG_NGINX_WORKER_PROCESSES": "2",
    }
