"""The Supabase services: environment contract, secrets, probes and sizing of each.

Queries go through PgBouncer (`pgbouncer:6432`, database `postgres`, or `postgres_ro` for
the read-only PostgREST). Session-level work connects to the RDS primary with TLS: Realtime
(logical replication), GoTrue (runs its migrations at start-up on its one database URL),
Storage's migration URL (DATABASE_URL; its queries use DATABASE_POOL_URL) and postgres-meta,
which runs Studio's SQL and table editors (DDL, multi-statement scripts, session settings).
The Node clients (Storage, postgres-meta) verify the server against the region's RDS CAs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from constructs import Construct

from database.migrations import migrations_digest
from database.pgbouncer import render_ini
from database.roles import LOGIN_ROLES, MASTER_USER
from k8s_charts.catalog import CATALOG
from k8s_charts.hardening import SKIP_DIGEST, Probe, Resources
from k8s_charts.supabase import contract, images, kong, rds_ca, secrets
from k8s_charts.supabase.k8s import api_object, labels, plain_env, secret_env
from k8s_charts.supabase.props import (
    NAMESPACE,
    OTLP_HTTP_ENDPOINT,
    SupabaseProps,
    service_host,
)
from k8s_charts.supabase.workload import Container, ServicePort, Workload, add_workload

AUTH = CATALOG["auth"]
REALTIME = CATALOG["realtime"]
STORAGE = CATALOG["storage"]
IMGPROXY = CATALOG["imgproxy"]
META = CATALOG["meta"]
STUDIO = CATALOG["studio"]
FUNCTIONS = CATALOG["functions"]
PGBOUNCER_PORT = CATALOG["pgbouncer"].port
PGBOUNCER_EXPORTER_PORT = CATALOG["pgbouncer"].scrape_port()
PGBOUNCER_HOST = service_host("pgbouncer")
REALTIME_TENANT = "realtime"  # == Service name: Kong reaches realtime.supabase.svc...
REALTIME_HEADLESS = "realtime-headless"
EPMD_PORT, ERL_DIST_PORT, GEN_RPC_PORT = REALTIME.peer_ports
IMGPROXY_METRICS_PORT = IMGPROXY.scrape_port()
FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"
# postgres-meta's own login and the one Studio hands it for every request.
DASHBOARD_DB_USER = "dashboard_user"
FUNCTIONS_MOUNT = "/home/deno/functions"
STUDIO_SNIPPETS_DIR = "/app/snippets"
STUDIO_FUNCTIONS_DIR = "/app/edge-functions"

SMALL = Resources(cpu_request="100m", memory_request="128Mi", cpu_limit="500m", memory_limit="256Mi")
MEDIUM = Resources(cpu_request="250m", memory_request="256Mi", cpu_limit="1", memory_limit="512Mi")
LARGE = Resources(cpu_request="500m", memory_request="512Mi", cpu_limit="2", memory_limit="1Gi")


def _url(component: str) -> str:
    return f"http://{service_host(component)}:{CATALOG[component].port}"


def _pooled_url(user: str, dbname: str = "postgres", scheme: str = "postgres") -> str:
    # In-cluster hop to PgBouncer; PgBouncer -> RDS is TLS (server_tls_sslmode=require).
    return secrets.postgres_url(
        user=user, host=PGBOUNCER_HOST, port=PGBOUNCER_PORT, dbname=dbname, sslmode="disable", scheme=scheme
    )


def _direct_url(user: str, props: SupabaseProps, *, verify: bool = False) -> str:
    # Schema migrations take session-level advisory locks, which transaction pooling breaks.
    # verify: node-postgres reads the CA file named by sslrootcert itself, and the URL's TLS
    # settings override any the service passes alongside, so the CA must be in the URL. The
    # chain only (libpq's verify-ca): services connect by the private alias db.<zone>, which the
    # RDS certificate does not name (it names the instance endpoint), so a host-name check
    # would refuse every connection.
    values = props.values
    return secrets.postgres_url(
        user=user,
        host=values.db_host,
        port=values.db_port,
        dbname=values.db_name,
        sslmode="verify-ca" if verify else "require",
        sslrootcert=rds_ca.FILE if verify else None,
        libpq_compat=verify,
    )


def _secret_name(component: str) -> str:
    return f"{component}-secrets"


def _env_from_secret(component: str, names: list[str]) -> tuple[dict[str, Any], ...]:
    return tuple(secret_env(n, _secret_name(component)) for n in names)


def _component_secret(
    scope: Construct,
    props: SupabaseProps,
    component: str,
    image: images.Image,
    remote: list[secrets.RemoteValue],
    template: dict[str, str],
) -> list[str]:
    secrets.external_secret(
        scope,
        name=_secret_name(component),
        component=component,
        version=image.tag,
        props=props,
        remote=remote,
        template=template,
    )
    return list(template)


def _otel_env(service: str) -> dict[str, str]:
    # parentbased: a span whose caller (Kong) sent it unsampled stays unsampled; see OTLP_HTTP_ENDPOINT.
    return {
        "OTEL_SERVICE_NAME": service,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": OTLP_HTTP_ENDPOINT,
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
    }


def kong_workload(scope: Construct, props: SupabaseProps) -> Workload:
    template = kong.kong_yml_template(props)
    secrets.external_secret(
        scope,
        name="kong-config",
        component="kong",
        version=images.KONG.tag,
        props=props,
        remote=list(kong.secret_values(props)),
        template={"kong.yml": template},
    )
    names = _component_secret(
        scope,
        props,
        "kong",
        images.KONG,
        [secrets.REDIS_AUTH_TOKEN],
        {kong.REDIS_PASSWORD_ENV: secrets.ref(secrets.REDIS_AUTH_TOKEN)},
    )
    status = Probe(path="/status", port=kong.STATUS_PORT)
    return Workload(
        component="kong",
        containers=(
            Container(
                name="kong",
                image=images.KONG,
                ports=(("http", kong.PROXY_PORT), ("status", kong.STATUS_PORT)),
                env=tuple(plain_env(kong.kong_env(props))) + _env_from_secret("kong", names),
                liveness=status,
                readiness=Probe(path="/status/ready", port=kong.STATUS_PORT),
                startup=Probe(path="/status", port=kong.STATUS_PORT, period=5, failure_threshold=24),
                resources=MEDIUM,
                writable_paths=("/tmp", "/kong_prefix"),
                mounts=({"name": "kong-config", "mountPath": "/kong-config", "readOnly": True},),
            ),
        ),
        service_ports=(
            ServicePort(name="http", port=kong.PROXY_PORT, target_port=kong.PROXY_PORT),
            ServicePort(name="metrics", port=kong.METRICS_SERVICE_PORT, target_port=kong.STATUS_PORT),
        ),
        volumes=({"name": "kong-config", "secret": {"secretName": "kong-config", "defaultMode": 0o440}},),
        # Config changes reach Kong by rolling the pods: the template hash is in the pod spec.
        pod_annotations={"supabase.io/kong-config-sha256": hashlib.sha256(template.encode()).hexdigest()},
        scaling=props.scaling["kong"],
        production=props.values.production,
    )


def auth_workload(scope: Construct, props: SupabaseProps) -> Workload:
    a = props.auth
    values = props.values
    remote = [
        secrets.JWT_SECRET,
        secrets.GOTRUE_JWT_KEYS,
        secrets.role_password("supabase_auth_admin"),
        secrets.SMTP_USERNAME,
        secrets.SMTP_PASSWORD,
    ]
    template = {
        "GOTRUE_DB_DATABASE_URL": _direct_url("supabase_auth_admin", props),
        # Signs with the one key whose key_ops hold "sign"; verifies every key listed.
        "GOTRUE_JWT_KEYS": secrets.ref(secrets.GOTRUE_JWT_KEYS),
        "GOTRUE_JWT_SECRET": secrets.hs256_secret(legacy=a.legacy_api_keys),
        "GOTRUE_SMTP_USER": secrets.ref(secrets.SMTP_USERNAME),
        "GOTRUE_SMTP_PASS": secrets.ref(secrets.SMTP_PASSWORD),
    }
    if a.saml_enabled:
        remote.append(secrets.SAML_PRIVATE_KEY)
        template["GOTRUE_SAML_PRIVATE_KEY"] = secrets.ref(secrets.SAML_PRIVATE_KEY)
    env = {
        "GOTRUE_API_HOST": "0.0.0.0",
        "GOTRUE_API_PORT": str(AUTH.port),
        "API_EXTERNAL_URL": props.auth_url,
        "GOTRUE_JWT_ISSUER": props.auth_url,
        "GOTRUE_DB_DRIVER": "postgres",
        "GOTRUE_SITE_URL": a.site_url,
        "GOTRUE_URI_ALLOW_LIST": ",".join((a.site_url, *a.additional_redirect_urls)),
        "GOTRUE_DISABLE_SIGNUP": str(a.disable_signup).lower(),
        "GOTRUE_JWT_EXP": str(a.jwt_expiry_seconds),
        "GOTRUE_JWT_AUD": "authenticated",
        "GOTRUE_JWT_ADMIN_ROLES": "service_role",
        "GOTRUE_JWT_DEFAULT_GROUP_NAME": "authenticated",
        "GOTRUE_EXTERNAL_EMAIL_ENABLED": "true",
        "GOTRUE_MAILER_AUTOCONFIRM": "false",
        "GOTRUE_SMS_AUTOCONFIRM": "false",
        "GOTRUE_PASSWORD_MIN_LENGTH": str(a.password_min_length),
        "GOTRUE_SMTP_HOST": f"email-smtp.{values.region}.amazonaws.com",
        "GOTRUE_SMTP_PORT": "587",
        "GOTRUE_SMTP_ADMIN_EMAIL": a.smtp_sender,
        "GOTRUE_SMTP_SENDER_NAME": a.smtp_sender_name,
        "GOTRUE_MAILER_URLPATHS_INVITE": "/auth/v1/verify",
        "GOTRUE_MAILER_URLPATHS_CONFIRMATION": "/auth/v1/verify",
        "GOTRUE_MAILER_URLPATHS_RECOVERY": "/auth/v1/verify",
        "GOTRUE_MAILER_URLPATHS_EMAIL_CHANGE": "/auth/v1/verify",
        "GOTRUE_SAML_ENABLED": str(a.saml_enabled).lower(),
        "GOTRUE_METRICS_ENABLED": "true",
        "GOTRUE_METRICS_EXPORTER": "prometheus",
        "OTEL_EXPORTER_PROMETHEUS_HOST": "0.0.0.0",
        "OTEL_EXPORTER_PROMETHEUS_PORT": str(AUTH.scrape_port()),
        "GOTRUE_TRACING_ENABLED": "true",
        "GOTRUE_TRACING_EXPORTER": "opentelemetry",
        **_otel_env("auth"),
    }
    for provider in a.oauth_providers:
        key = provider.name.upper()
        env[f"GOTRUE_EXTERNAL_{key}_ENABLED"] = "true"
        env[f"GOTRUE_EXTERNAL_{key}_CLIENT_ID"] = provider.client_id
        env[f"GOTRUE_EXTERNAL_{key}_REDIRECT_URI"] = f"{props.auth_url}/callback"
        value = secrets.RemoteValue(var=f"oauth_{provider.name}_secret", key=provider.secret_name, absolute=True)
        remote.append(value)
        template[f"GOTRUE_EXTERNAL_{key}_SECRET"] = secrets.ref(value)
    names = _component_secret(scope, props, "auth", images.AUTH, remote, template)
    return Workload(
        component="auth",
        containers=(
            Container(
                name="auth",
                image=images.AUTH,
                ports=(("http", AUTH.port), ("metrics", AUTH.scrape_port())),
                env=tuple(plain_env(env)) + _env_from_secret("auth", names),
                liveness=Probe(path="/health", port=AUTH.port),
                readiness=Probe(path="/health", port=AUTH.port),
                startup=Probe(path="/health", port=AUTH.port, period=5, failure_threshold=60),
                resources=SMALL,
            ),
        ),
        service_ports=(
            ServicePort(name="http", port=AUTH.port, target_port=AUTH.port),
            ServicePort(name="metrics", port=AUTH.scrape_port(), target_port=AUTH.scrape_port()),
        ),
        scaling=props.scaling["auth"],
        production=props.values.production,
    )


def rest_workload(scope: Construct, props: SupabaseProps, *, read_only: bool) -> Workload:
    component = "rest-ro" if read_only else "rest"
    rest = CATALOG[component]
    user = "authenticator"
    remote = [secrets.JWT_SECRET, secrets.JWKS, secrets.role_password(user)]
    template = {
        "PGRST_DB_URI": _pooled_url(user, dbname="postgres_ro" if read_only else "postgres"),
        # PostgREST takes a JWKS in jwt-secret and picks the key by the token's kid
        # (https://docs.postgrest.org/en/v14/references/auth.html#jwt-secret).
        "PGRST_JWT_SECRET": secrets.ref(secrets.JWKS),
        "PGRST_APP_SETTINGS_JWT_SECRET": secrets.hs256_secret(legacy=props.auth.legacy_api_keys),
    }
    names = _component_secret(scope, props, component, images.REST, remote, template)
    env = {
        "PGRST_SERVER_PORT": str(rest.port),
        "PGRST_ADMIN_SERVER_PORT": str(rest.scrape_port()),
        "PGRST_DB_SCHEMAS": "public,storage,graphql_public",
        "PGRST_DB_ANON_ROLE": "anon",
        "PGRST_DB_USE_LEGACY_GUCS": "false",
        "PGRST_APP_SETTINGS_JWT_EXP": str(props.auth.jwt_expiry_seconds),
        "PGRST_DB_MAX_ROWS": str(props.pgrst_max_rows),
        # Transaction pooling: no server-side prepared statements, and LISTEN (schema reload
        # notifications) cannot work through PgBouncer; reload by rolling the Deployment.
        "PGRST_DB_PREPARED_STATEMENTS": "false",
        "PGRST_DB_CHANNEL_ENABLED": "false",
        "PGRST_DB_POOL": "10",
        "PGRST_LOG_LEVEL": "warn",
    }
    return Workload(
        component=component,
        containers=(
            Container(
                name=component,
                image=images.REST,
                ports=(("http", rest.port), ("metrics", rest.scrape_port())),
                env=tuple(plain_env(env)) + _env_from_secret(component, names),
                liveness=Probe(path="/live", port=rest.scrape_port()),
                readiness=Probe(path="/ready", port=rest.scrape_port()),
                startup=Probe(path="/live", port=rest.scrape_port(), period=5, failure_threshold=24),
                resources=SMALL,
                writable_paths=(),
            ),
        ),
        service_ports=(
            ServicePort(name="http", port=rest.port, target_port=rest.port),
            ServicePort(name="metrics", port=rest.scrape_port(), target_port=rest.scrape_port()),
        ),
        scaling=props.scaling[component],
        production=props.values.production,
        # New migrations roll PostgREST, which reloads its schema cache only on start here.
        pod_annotations={"supabase.io/migrations-sha256": migrations_digest()},
    )


REALTIME_METADATA_SCHEMA = "_realtime"
# Upstream's self-host seed (priv/repo/seeds.exs) writes ssl_enforced=false into the tenant's
# settings, and Realtime connects to the tenant database (migrations, replication, RLS checks)
# with exactly that flag; RDS refuses connections without TLS (rds.force_ssl=1). Nothing in
# the environment changes the flag, so it is turned on in Realtime's own metadata right after
# the seed. Unqualified: Realtime.Repo connects with DB_AFTER_CONNECT_QUERY's search_path.
REALTIME_TENANT_TLS_SQL = (
    "UPDATE extensions SET settings = settings || jsonb_build_object($1::text, true) "
    "WHERE type = $2 AND tenant_external_id = $3"
)
_REALTIME_TENANT_TLS_EVAL = (
    "Application.load(:realtime); {:ok, _, _} = Ecto.Migrator.with_repo(Realtime.Repo, fn repo -> "
    f'repo.query!("{REALTIME_TENANT_TLS_SQL}", ["ssl_enforced", "postgres_cdc_rls", '
    'System.fetch_env!("SELF_HOST_TENANT_NAME")]) end)'
)
# The image's ENTRYPOINT (tini, then run.sh) migrates and seeds through `sudo -u nobody`,
# which a non-root container without privilege escalation cannot run, and run.sh exits under
# `set -e`. These are run.sh's steps without sudo (tests/integration/test_realtime.py runs
# both scripts side by side); its S3 crash-dump upload and cluster-certificate generation
# are off unless ENABLE_ERL_CRASH_DUMP / GENERATE_CLUSTER_CERTS are set, which they are not.
REALTIME_START_SCRIPT = f"""set -euo pipefail
if [ -n "${{RLIMIT_NOFILE:-}}" ]; then
    ulimit -Sn "$RLIMIT_NOFILE"
fi
export ERL_CRASH_DUMP=/tmp/erl_crash.dump
/app/bin/migrate
if [ "${{SEED_SELF_HOST-}}" = true ]; then
    /app/bin/realtime eval 'Realtime.Release.seeds(Realtime.Repo)'
    /app/bin/realtime eval '{_REALTIME_TENANT_TLS_EVAL}'
fi
exec "$@"
"""
REALTIME_COMMAND = ("/usr/bin/tini", "-s", "-g", "--", "/bin/bash", "-c", REALTIME_START_SCRIPT, "run.sh")
REALTIME_ARGS = ("/app/bin/server",)


def realtime_workload(scope: Construct, props: SupabaseProps) -> Workload:
    values = props.values
    remote = [
        secrets.JWT_SECRET,
        secrets.JWKS,
        secrets.MASTER_PASSWORD,
        secrets.REALTIME_SECRET_KEY_BASE,
        secrets.REALTIME_DB_ENC_KEY,
        secrets.REALTIME_METRICS_JWT,
    ]
    template = {
        "DB_PASSWORD": secrets.ref(secrets.MASTER_PASSWORD),
        "API_JWT_JWKS": secrets.ref(secrets.JWKS),
        "API_JWT_SECRET": secrets.hs256_secret(legacy=props.auth.legacy_api_keys),
        "METRICS_JWT_SECRET": secrets.ref(secrets.REALTIME_METRICS_JWT),
        "SECRET_KEY_BASE": secrets.ref(secrets.REALTIME_SECRET_KEY_BASE),
        "DB_ENC_KEY": secrets.ref(secrets.REALTIME_DB_ENC_KEY),
        # Nodes of one cluster share the Erlang cookie; derived, so nothing else to store.
        "RELEASE_COOKIE": "{{ .secret_key_base | sha256sum }}",
    }
    names = _component_secret(scope, props, "realtime", images.REALTIME, remote, template)
    # Its own Secret: Prometheus' operator reads it, and must see nothing but the scrape token.
    secrets.external_secret(
        scope,
        name=contract.REALTIME_METRICS_TOKEN_SECRET,
        component="realtime",
        version=images.REALTIME.tag,
        props=props,
        remote=[secrets.REALTIME_METRICS_TOKEN],
        template={contract.REALTIME_METRICS_TOKEN_KEY: secrets.ref(secrets.REALTIME_METRICS_TOKEN)},
    )
    env: list[dict[str, Any]] = [
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        *plain_env(
            {
                "PORT": str(REALTIME.port),
                "DB_HOST": values.db_host,
                "DB_PORT": str(values.db_port),
                "DB_NAME": values.db_name,
                "DB_USER": MASTER_USER,
                "DB_SSL": "true",
                "DB_IP_VERSION": "ipv4",
                "DB_AFTER_CONNECT_QUERY": f"SET search_path TO {REALTIME_METADATA_SCHEMA}",
                "APP_NAME": "realtime",
                "SEED_SELF_HOST": "true",
                "RUN_JANITOR": "true",
                "SELF_HOST_TENANT_NAME": REALTIME_TENANT,
                "REGION": values.region,
                # The HPA may add replicas in any environment, so clustering is always on.
                "CLUSTER_STRATEGIES": "DNS",
                "DNS_NODES": f"{REALTIME_HEADLESS}.{NAMESPACE}.svc.cluster.local",
                "RELEASE_DISTRIBUTION": "name",
                "RELEASE_NODE": "realtime@$(POD_IP)",
                "ERL_AFLAGS": f"-proto_dist inet_tcp -kernel inet_dist_listen_min {ERL_DIST_PORT} inet_dist_listen_max {ERL_DIST_PORT}",
                "GEN_RPC_TCP_SERVER_PORT": str(GEN_RPC_PORT),
                "GEN_RPC_TCP_CLIENT_PORT": str(GEN_RPC_PORT),
                "RLIMIT_NOFILE": "65536",
                "RELEASE_TMP": "/tmp",
                "DISABLE_HEALTHCHECK_LOGGING": "true",
            }
        ),
    ]
    # /api/ping resolves the tenant from the Host header, like Kong's requests do.
    ping = Probe(path="/api/ping", port=REALTIME.port, headers=(("Host", service_host("realtime")),))
    return Workload(
        component="realtime",
        containers=(
            Container(
                name="realtime",
                image=images.REALTIME,
                command=REALTIME_COMMAND,
                args=REALTIME_ARGS,
                ports=(
                    ("http", REALTIME.port),
                    ("epmd", EPMD_PORT),
                    ("erl-dist", ERL_DIST_PORT),
                    ("gen-rpc", GEN_RPC_PORT),
                ),
                env=tuple(env) + _env_from_secret("realtime", names),
                liveness=Probe(port=REALTIME.port),
                readiness=ping,
                startup=Probe(port=REALTIME.port, period=5, failure_threshold=60),
                resources=LARGE,
            ),
        ),
        service_ports=(ServicePort(name="metrics", port=REALTIME.port, target_port=REALTIME.port),),
        extra_metrics=(
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": contract.REALTIME_CONNECTIONS_METRIC},
                    "target": {"type": "AverageValue", "averageValue": "5000"},
                },
            },
        ),
        termination_grace_seconds=60,
        scaling=props.scaling["realtime"],
        production=props.values.production,
    )


def realtime_headless_service(scope: Construct) -> None:
    api_object(
        scope,
        api_version="v1",
        kind="Service",
        name=REALTIME_HEADLESS,
        labels=labels("realtime", images.REALTIME.tag),
        body={
            "spec": {
                "clusterIP": "None",
                # Peers must find each other before they are Ready (Ready needs the cluster).
                "publishNotReadyAddresses": True,
                "selector": {"app.kubernetes.io/name": "realtime", "app.kubernetes.io/part-of": "supabase"},
                "ports": [
                    {"name": "tcp-epmd", "port": EPMD_PORT, "targetPort": EPMD_PORT, "protocol": "TCP"},
                    {"name": "tcp-erl-dist", "port": ERL_DIST_PORT, "targetPort": ERL_DIST_PORT, "protocol": "TCP"},
                    {"name": "tcp-gen-rpc", "port": GEN_RPC_PORT, "targetPort": GEN_RPC_PORT, "protocol": "TCP"},
                ],
            }
        },
    )


def storage_workload(scope: Construct, props: SupabaseProps) -> Workload:
    values = props.values
    legacy = props.auth.legacy_api_keys
    # Storage signs its internal calls with these: legacy JWTs while they live, else the ES256 ones.
    anon, service = (
        (secrets.ANON_KEY, secrets.SERVICE_ROLE_KEY)
        if legacy
        else (secrets.ANON_KEY_ASYMMETRIC, secrets.SERVICE_ROLE_KEY_ASYMMETRIC)
    )
    remote = [
        secrets.JWT_SECRET,
        secrets.JWKS,
        anon,
        service,
        secrets.role_password("supabase_storage_admin"),
    ]
    template = {
        "ANON_KEY": secrets.ref(anon),
        "SERVICE_KEY": secrets.ref(service),
        "JWT_JWKS": secrets.ref(secrets.JWKS),
        "PGRST_JWT_SECRET": secrets.hs256_secret(legacy=legacy),
        "AUTH_JWT_SECRET": secrets.hs256_secret(legacy=legacy),
        "DATABASE_URL": _direct_url("supabase_storage_admin", props, verify=True),
        "DATABASE_POOL_URL": _pooled_url("supabase_storage_admin"),
    }
    names = _component_secret(scope, props, "storage", images.STORAGE, remote, template)
    # No AWS keys: the EKS Pod Identity association of ServiceAccount `storage` supplies
    # credentials through the container credential provider.
    env = {
        "SERVER_PORT": str(STORAGE.port),
        "POSTGREST_URL": _url("rest"),
        "STORAGE_PUBLIC_URL": props.api_url,
        "REQUEST_ALLOW_X_FORWARDED_PATH": "true",
        "FILE_SIZE_LIMIT": str(props.file_size_limit_bytes),
        "STORAGE_BACKEND": "s3",
        "GLOBAL_S3_BUCKET": values.storage_bucket,
        "REGION": values.region,
        "TENANT_ID": "stub",
        "ENABLE_IMAGE_TRANSFORMATION": "true",
        "IMGPROXY_URL": _url("imgproxy"),
        "FILE_STORAGE_BACKEND_PATH": "/tmp/storage",
        "DB_INSTALL_ROLES": "false",
        # The S3 protocol endpoint, /storage/v1/s3 through Kong's storage route: on by default
        # upstream, stated so a changed default cannot remove it. Clients authenticate with a
        # user's JWT as the session token; no static S3 access key is configured.
        "S3_PROTOCOL_ENABLED": "true",
    }
    return Workload(
        component="storage",
        containers=(
            Container(
                name="storage",
                image=images.STORAGE,
                ports=(("http", STORAGE.port),),
                env=tuple(plain_env(env)) + _env_from_secret("storage", names),
                liveness=Probe(path="/status", port=STORAGE.port),
                readiness=Probe(path="/status", port=STORAGE.port),
                startup=Probe(path="/status", port=STORAGE.port, period=5, failure_threshold=60),
                resources=MEDIUM,
                mounts=(rds_ca.mount(),),
            ),
        ),
        service_ports=(ServicePort(name="http", port=STORAGE.port, target_port=STORAGE.port),),
        volumes=(rds_ca.volume(),),
        scaling=props.scaling["storage"],
        production=props.values.production,
    )


def imgproxy_workload(props: SupabaseProps) -> Workload:
    env = {
        "IMGPROXY_BIND": f":{IMGPROXY.port}",
        "IMGPROXY_PROMETHEUS_BIND": f":{IMGPROXY_METRICS_PORT}",
        "IMGPROXY_USE_ETAG": "true",
        # imgproxy renamed IMGPROXY_ENABLE_WEBP_DETECTION (deprecated, still read) to this.
        "IMGPROXY_AUTO_WEBP": "true",
        "IMGPROXY_LOCAL_FILESYSTEM_ROOT": "/tmp",
        "IMGPROXY_MAX_SRC_RESOLUTION": "50",
    }
    health = Probe(path="/health", port=IMGPROXY.port)
    return Workload(
        component="imgproxy",
        containers=(
            Container(
                name="imgproxy",
                image=images.IMGPROXY,
                ports=(("http", IMGPROXY.port), ("metrics", IMGPROXY_METRICS_PORT)),
                env=tuple(plain_env(env)),
                liveness=health,
                readiness=health,
                startup=Probe(path="/health", port=IMGPROXY.port, period=5, failure_threshold=24),
                resources=MEDIUM,
            ),
        ),
        service_ports=(
            ServicePort(name="http", port=IMGPROXY.port, target_port=IMGPROXY.port),
            ServicePort(name="metrics", port=IMGPROXY_METRICS_PORT, target_port=IMGPROXY_METRICS_PORT),
        ),
        checkov_skips=(SKIP_DIGEST,),
        scaling=props.scaling["imgproxy"],
        production=props.values.production,
    )


def meta_workload(scope: Construct, props: SupabaseProps) -> Workload:
    values = props.values
    user = DASHBOARD_DB_USER
    remote = [secrets.role_password(user), secrets.META_CRYPTO_KEY, secrets.MASTER_HOST]
    template = {
        "PG_META_DB_PASSWORD": secrets.ref(secrets.role_password(user)),
        "CRYPTO_KEY": secrets.ref(secrets.META_CRYPTO_KEY),
        # postgres-meta has no chain-only mode (dist/lib/db.js: rejectUnauthorized only for
        # verify-full), so it dials the name the RDS certificate carries, not the db.<zone> alias.
        "PG_META_DB_HOST": secrets.ref(secrets.MASTER_HOST),
    }
    names = _component_secret(scope, props, "meta", images.META, remote, template)
    env = {
        "PG_META_PORT": str(META.port),
        "PG_META_HOST": "0.0.0.0",
        "PG_META_DB_PORT": str(values.db_port),
        "PG_META_DB_NAME": values.db_name,
        "PG_META_DB_USER": user,
        "PG_META_DB_SSL_MODE": "verify-full",
    }
    health = Probe(path="/health", port=META.port)
    return Workload(
        component="meta",
        containers=(
            Container(
                name="meta",
                image=images.META,
                ports=(("http", META.port),),
                # postgres-meta takes the CA as PEM text and applies it to Studio's connections too.
                env=(*plain_env(env), rds_ca.pem_env("PG_META_DB_SSL_ROOT_CERT"), *_env_from_secret("meta", names)),
                liveness=health,
                readiness=health,
                startup=Probe(path="/health", port=META.port, period=5, failure_threshold=24),
                resources=SMALL,
            ),
        ),
        service_ports=(ServicePort(name="http", port=META.port, target_port=META.port),),
        scaling=props.scaling["meta"],
        production=props.values.production,
    )


def studio_workload(scope: Construct, props: SupabaseProps) -> Workload:
    values = props.values
    user = DASHBOARD_DB_USER
    remote = [
        secrets.role_password(user),
        secrets.META_CRYPTO_KEY,
        secrets.PUBLISHABLE_KEY,
        secrets.SECRET_KEY,
        secrets.MASTER_HOST,
    ]
    # Server-side variables only: none of these is NEXT_PUBLIC_*, so Next.js never bundles
    # them into browser code.
    template = {
        "POSTGRES_PASSWORD": secrets.ref(secrets.role_password(user)),
        # Studio builds the connection string pg-meta opens for each request from POSTGRES_HOST/
        # PORT/DB (lib/api/self-hosted/util.ts; unset, it sends supabase_admin@db:5432), and
        # pg-meta verifies it with verify-full: the instance endpoint, as for meta's own.
        "POSTGRES_HOST": secrets.ref(secrets.MASTER_HOST),
        "PG_META_CRYPTO_KEY": secrets.ref(secrets.META_CRYPTO_KEY),
        "SUPABASE_PUBLISHABLE_KEY": secrets.ref(secrets.PUBLISHABLE_KEY),
        "SUPABASE_SECRET_KEY": secrets.ref(secrets.SECRET_KEY),
    }
    if props.auth.legacy_api_keys:
        remote += [secrets.ANON_KEY, secrets.SERVICE_ROLE_KEY, secrets.JWT_SECRET]
        template |= {
            "SUPABASE_ANON_KEY": secrets.ref(secrets.ANON_KEY),
            "SUPABASE_SERVICE_KEY": secrets.ref(secrets.SERVICE_ROLE_KEY),
            "AUTH_JWT_SECRET": secrets.ref(secrets.JWT_SECRET),
        }
    names = _component_secret(scope, props, "studio", images.STUDIO, remote, template)
    env = {
        "HOSTNAME": "0.0.0.0",
        "PORT": str(STUDIO.port),
        "STUDIO_PG_META_URL": _url("meta"),
        "POSTGRES_PORT": str(values.db_port),
        "POSTGRES_DB": values.db_name,
        "POSTGRES_USER_READ_WRITE": user,
        # Studio sends the one POSTGRES_PASSWORD for this user too, so its read-only requests
        # (AI assistant and MCP, neither enabled here) fail to log in rather than run with
        # dashboard_user's write access.
        "POSTGRES_USER_READ_ONLY": "supabase_read_only_user",
        "POSTGRES_SSL": "verify-full",
        "DEFAULT_ORGANIZATION_NAME": props.organization_name,
        "DEFAULT_PROJECT_NAME": props.project_name,
        "SUPABASE_URL": _url("kong"),
        "SUPABASE_PUBLIC_URL": props.api_url,
        "NEXT_TELEMETRY_DISABLED": "1",
        # Where Studio keeps saved SQL snippets and the functions edited in it (upstream's
        # paths). An emptyDir: they live as long as the pod; the repository's functions/ is
        # what the edge runtime serves.
        "SNIPPETS_MANAGEMENT_FOLDER": STUDIO_SNIPPETS_DIR,
        "EDGE_FUNCTIONS_MANAGEMENT_FOLDER": STUDIO_FUNCTIONS_DIR,
        # Upstream's flag for Studio's Logs pages (supabase/supabase docker/docker-compose.yml sets it
        # with LOGFLARE_URL and NEXT_ANALYTICS_BACKEND_PROVIDER when the analytics service runs).
        # No analytics backend is deployed (config observability.studio_log_explorer, which the
        # loader refuses to turn on), so the pages are off and no LOGFLARE_* variable is set.
        "NEXT_PUBLIC_ENABLE_LOGS": "false",
    }
    probe = Probe(path="/api/platform/profile", port=STUDIO.port, timeout=5)
    return Workload(
        component="studio",
        containers=(
            Container(
                name="studio",
                image=images.STUDIO,
                ports=(("http", STUDIO.port),),
                env=tuple(plain_env(env)) + _env_from_secret("studio", names),
                liveness=probe,
                readiness=probe,
                startup=Probe(
                    path="/api/platform/profile", port=STUDIO.port, period=5, timeout=5, failure_threshold=60
                ),
                resources=LARGE,
                writable_paths=("/tmp", "/app/apps/studio/.next/cache", STUDIO_SNIPPETS_DIR, STUDIO_FUNCTIONS_DIR),
            ),
        ),
        service_ports=(ServicePort(name="http", port=STUDIO.port, target_port=STUDIO.port),),
        scaling=props.scaling["studio"],
        production=props.values.production,
    )


def function_files() -> dict[str, str]:
    """functions/<name>/<file> -> ConfigMap key `<name>__<file>` (keys cannot hold '/')."""
    files = {}
    for path in sorted(FUNCTIONS_DIR.rglob("*")):
        if path.is_file():
            rel = path.relative_to(FUNCTIONS_DIR).as_posix()
            files[rel] = path.read_text()
    if "main/index.ts" not in files:
        raise FileNotFoundError(f"{FUNCTIONS_DIR}/main/index.ts is the edge runtime's main service")
    return files


def functions_workload(scope: Construct, props: SupabaseProps) -> Workload:
    files = function_files()
    keys = {rel: rel.replace("/", "__") for rel in files}
    api_object(
        scope,
        api_version="v1",
        kind="ConfigMap",
        name="functions-source",
        labels=labels("functions", images.FUNCTIONS.tag),
        body={"data": {keys[rel]: text for rel, text in files.items()}},
    )
    remote = [
        secrets.JWKS,
        secrets.PUBLISHABLE_KEY,
        secrets.SECRET_KEY,
        secrets.role_password("supabase_functions_admin"),
    ]
    # The names the edge runtime gives functions on Supabase's platform: a JWKS to verify
    # locally, and JSON maps of named keys ("default" here).
    template = {
        "SUPABASE_JWKS": secrets.ref(secrets.JWKS),
        "SUPABASE_PUBLISHABLE_KEYS": '{"default":{{ .publishable_key | toJson }}}',
        "SUPABASE_SECRET_KEYS": '{"default":{{ .secret_key | toJson }}}',
        "SUPABASE_DB_URL": _pooled_url("supabase_functions_admin", scheme="postgresql"),
    }
    if props.auth.legacy_api_keys:
        remote += [secrets.JWT_SECRET, secrets.ANON_KEY, secrets.SERVICE_ROLE_KEY]
        template |= {
            "JWT_SECRET": secrets.ref(secrets.JWT_SECRET),
            "SUPABASE_ANON_KEY": secrets.ref(secrets.ANON_KEY),
            "SUPABASE_SERVICE_ROLE_KEY": secrets.ref(secrets.SERVICE_ROLE_KEY),
        }
    names = _component_secret(scope, props, "functions", images.FUNCTIONS, remote, template)
    env = {
        "SUPABASE_URL": _url("kong"),
        "VERIFY_JWT": "true",
        "DENO_DIR": "/tmp/deno",
    }
    health = Probe(path="/_internal/health", port=FUNCTIONS.port)
    digest = hashlib.sha256("".join(f"{k}\0{v}\0" for k, v in files.items()).encode()).hexdigest()
    return Workload(
        component="functions",
        containers=(
            Container(
                name="functions",
                image=images.FUNCTIONS,
                ports=(("http", FUNCTIONS.port),),
                args=("start", "--main-service", f"{FUNCTIONS_MOUNT}/main"),
                env=tuple(plain_env(env)) + _env_from_secret("functions", names),
                liveness=health,
                readiness=health,
                startup=Probe(path="/_internal/health", port=FUNCTIONS.port, period=5, failure_threshold=24),
                resources=MEDIUM,
                mounts=({"name": "functions-source", "mountPath": FUNCTIONS_MOUNT, "readOnly": True},),
            ),
        ),
        service_ports=(ServicePort(name="http", port=FUNCTIONS.port, target_port=FUNCTIONS.port),),
        volumes=(
            {
                "name": "functions-source",
                "configMap": {
                    "name": "functions-source",
                    "defaultMode": 0o444,
                    "items": [{"key": keys[rel], "path": rel} for rel in files],
                },
            },
        ),
        pod_annotations={"supabase.io/functions-sha256": digest},
        scaling=props.scaling["functions"],
        production=props.values.production,
    )


def pgbouncer_workload(scope: Construct, props: SupabaseProps) -> Workload:
    values = props.values
    scaling = props.scaling["pgbouncer"]
    ini = render_ini(
        primary_host=values.db_host,
        replica_host=values.db_read_host,
        port=values.db_port,
        dbname=values.db_name,
        instance_class=values.db_instance_class,
        replicas=scaling.replicas,
        listen_port=PGBOUNCER_PORT,
        auth_file="/etc/pgbouncer/userlist.txt",
        server_tls_sslmode="require",
    )
    version = images.PGBOUNCER.tag
    api_object(
        scope,
        api_version="v1",
        kind="ConfigMap",
        name="pgbouncer-config",
        labels=labels("pgbouncer", version),
        body={"data": {"pgbouncer.ini": ini}},
    )
    roles = [r.name for r in LOGIN_ROLES]
    remote = [secrets.role_password(r) for r in roles]
    # userlist.txt format: "user" "password", a literal double quote doubled.
    userlist = "".join(f'"{r}" "{{{{ .{secrets.role_password(r).var} | replace "\\"" "\\"\\"" }}}}"\n' for r in roles)
    template = {
        "userlist.txt": userlist,
        "PGBOUNCER_EXPORTER_CONNECTION_STRING": f"postgres://pgbouncer:{secrets.url_password(secrets.role_password('pgbouncer'))}"
        f"@127.0.0.1:{PGBOUNCER_PORT}/pgbouncer?sslmode=disable",
    }
    secrets.external_secret(
        scope,
        name=_secret_name("pgbouncer"),
        component="pgbouncer",
        version=version,
        props=props,
        remote=remote,
        template=template,
    )
    return Workload(
        component="pgbouncer",
        containers=(
            Container(
                name="pgbouncer",
                image=images.PGBOUNCER,
                ports=(("postgres", PGBOUNCER_PORT),),
                command=("pgbouncer", "/etc/pgbouncer/pgbouncer.ini"),
                liveness=Probe(port=PGBOUNCER_PORT),
                readiness=Probe(port=PGBOUNCER_PORT, period=5),
                startup=Probe(port=PGBOUNCER_PORT, period=2, failure_threshold=30),
                resources=MEDIUM,
                mounts=({"name": "pgbouncer-config", "mountPath": "/etc/pgbouncer", "readOnly": True},),
            ),
            Container(
                name="exporter",
                image=images.PGBOUNCER_EXPORTER,
                ports=(("metrics", PGBOUNCER_EXPORTER_PORT),),
                args=(f"--web.listen-address=:{PGBOUNCER_EXPORTER_PORT}",),
                env=(secret_env("PGBOUNCER_EXPORTER_CONNECTION_STRING", _secret_name("pgbouncer")),),
                liveness=Probe(port=PGBOUNCER_EXPORTER_PORT),
                readiness=Probe(path="/metrics", port=PGBOUNCER_EXPORTER_PORT),
                startup=Probe(port=PGBOUNCER_EXPORTER_PORT, period=2, failure_threshold=30),
                resources=Resources(cpu_request="25m", memory_request="32Mi", cpu_limit="200m", memory_limit="64Mi"),
                writable_paths=(),
            ),
        ),
        service_ports=(
            ServicePort(name="postgres", port=PGBOUNCER_PORT, target_port=PGBOUNCER_PORT, app_protocol="postgresql"),
            ServicePort(name="metrics", port=PGBOUNCER_EXPORTER_PORT, target_port=PGBOUNCER_EXPORTER_PORT),
        ),
        # A projected volume (not subPath) so rotated passwords and ini changes reach the pod.
        volumes=(
            {
                "name": "pgbouncer-config",
                "projected": {
                    "defaultMode": 0o440,
                    "sources": [
                        {
                            "configMap": {
                                "name": "pgbouncer-config",
                                "items": [{"key": "pgbouncer.ini", "path": "pgbouncer.ini"}],
                            }
                        },
                        {
                            "secret": {
                                "name": _secret_name("pgbouncer"),
                                "items": [{"key": "userlist.txt", "path": "userlist.txt"}],
                            }
                        },
                    ],
                },
            },
        ),
        pod_annotations={"supabase.io/pgbouncer-ini-sha256": hashlib.sha256(ini.encode()).hexdigest()},
        scaling=scaling,
        production=values.production,
    )


def add_components(scope: Construct, props: SupabaseProps) -> None:
    rds_ca.add_config_map(scope, region=props.values.region, labels=labels("rds-ca", rds_ca.package_pin()))
    for workload in (
        kong_workload(scope, props),
        auth_workload(scope, props),
        rest_workload(scope, props, read_only=False),
        rest_workload(scope, props, read_only=True),
        realtime_workload(scope, props),
        storage_workload(scope, props),
        imgproxy_workload(props),
        meta_workload(scope, props),
        studio_workload(scope, props),
        functions_workload(scope, props),
        pgbouncer_workload(scope, props),
    ):
        add_workload(scope, workload)
    realtime_headless_service(scope)
