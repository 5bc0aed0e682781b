"""Every way the local Compose stack differs from the cluster, in one table.

The renderer (`scripts.local`) applies these and nothing else; tests/unit/test_local_compose.py
compares each service's environment with its Kubernetes manifest and fails on any difference
not claimed here, and on any claim that no longer matches a real difference.
"""

from __future__ import annotations

from dataclasses import dataclass

# Host ports, bound to 127.0.0.1 only; the numbers are the supabase CLI's, so client
# libraries' local defaults and habits carry over.
API_PORT = 54321
DB_PORT = 54322
STUDIO_PORT = 54323
MAIL_UI_PORT = 54324
LOCAL_API_URL = f"http://localhost:{API_PORT}"

MAIL_SERVICE = "mail"
MAIL_SMTP_PORT = 1025

# A fixed subnet so Realtime can be given the address its Erlang node name needs (below).
SUBNET = "172.30.54.0/24"
REALTIME_ADDRESS = "172.30.54.40"


@dataclass(frozen=True, kw_only=True)
class Difference:
    name: str
    cluster: str
    local: str
    why: str
    # (component, env var, local value) where the value differs from the rendered manifest; None
    # when it follows from another difference (the public URL inside a value, a $(VAR) expansion)
    env: tuple[tuple[str, str, str | None], ...] = ()


LOCAL_DIFFERENCES: tuple[Difference, ...] = (
    Difference(
        name="database",
        cluster="RDS for PostgreSQL 17 (primary db.<private zone>, replicas db-ro.<private zone>)",
        local="service `db`: the pinned official postgres image of the bootstrap Job, with both "
        "endpoint names as network aliases, so every URL, PgBouncer's ini and the env stay as rendered",
        why="no RDS locally; one server plays primary and replica",
    ),
    Difference(
        name="database-master",
        cluster="supabase_admin is the RDS master: rds_superuser member, never a superuser",
        local="supabase_admin is the image's POSTGRES_USER, a superuser",
        why="the official image creates its first user as superuser; the bootstrap runs unchanged "
        "(its superuser branch replaces rds_replication) and still records Realtime's superuser-only "
        "migrations as applied, so Realtime behaves as on RDS",
    ),
    Difference(
        name="database-parameters",
        cluster="the RDS parameter group (constructs_lib.database.parameters)",
        local="the same settings as `postgres -c` flags: rds.logical_replication=1 -> wal_level=logical, "
        "rds.force_ssl=1 -> ssl=on with a hostssl-only pg_hba.conf; pg_tle and pg_cron (and cron.* "
        "settings) left out of shared_preload_libraries",
        why="rds.* parameters exist only on RDS; the official image has neither pg_tle nor pg_cron, so "
        "the bootstrap skips pg_tle as it does wherever it is not preloaded, and partition "
        "maintenance (database/partitioning) is scheduled by pg_cron on RDS only",
    ),
    Difference(
        name="database-ca",
        cluster="the region's Amazon RDS root CAs (ConfigMap rds-ca)",
        local="a CA minted at the first render (kept in .local/secrets.json); it signs the db "
        "certificate for both endpoint names and is mounted at the same path",
        why="clients keep verify-full and sslmode=require against a local server",
        env=(("meta", "PG_META_DB_SSL_ROOT_CERT", None),),
    ),
    Difference(
        name="secrets",
        cluster="AWS Secrets Manager through External Secrets; API keys minted by ops/mint_api_keys",
        local="generated at first render into .local/secrets.json (random passwords, a "
        "local JWT secret, and every API key field minted by ops/mint_api_keys' own functions: "
        "ES256 signing keys, JWKS, publishable/secret keys, the anon/service_role tokens), "
        "filled into the same External Secrets templates; the master secret's `host` (the instance "
        "endpoint, written by the data stack's SecretTargetAttachment) is the db service alias the "
        "local certificate names, rederived on every render",
        why="no AWS; kept across renders because the database keeps the passwords of its first start",
    ),
    Difference(
        name="public-url",
        cluster="https://api.<domain> through the ALB",
        local=f"{LOCAL_API_URL}: Kong published on 127.0.0.1:{API_PORT}",
        why="no load balancer or DNS locally",
        env=(
            ("auth", "API_EXTERNAL_URL", None),
            # GoTrue's issuer is its public URL: tokens it signs locally name the local URL.
            ("auth", "GOTRUE_JWT_ISSUER", None),
            ("storage", "STORAGE_PUBLIC_URL", None),
            ("studio", "SUPABASE_PUBLIC_URL", None),
        ),
    ),
    Difference(
        name="studio",
        cluster="Studio on studio.<domain> through Kong's basic-auth route",
        local=f"Studio published directly on 127.0.0.1:{STUDIO_PORT}, no basic auth",
        why="the studio host does not resolve locally; the port is bound to loopback only",
    ),
    Difference(
        name="storage-backend",
        cluster="S3 bucket, credentials from the storage ServiceAccount's Pod Identity",
        local="STORAGE_BACKEND=file: objects under FILE_STORAGE_BACKEND_PATH, a bind mount of "
        ".local/storage, also mounted read-only into imgproxy (root /) for image transformations",
        why="no S3 or IAM locally; storage hands imgproxy local:// paths instead of presigned URLs",
        # Storage hands imgproxy `local:///<FILE_STORAGE_BACKEND_PATH>/...` for the file backend,
        # resolved under imgproxy's root; upstream's compose sets it to / as well.
        env=(("storage", "STORAGE_BACKEND", "file"), ("imgproxy", "IMGPROXY_LOCAL_FILESYSTEM_ROOT", "/")),
    ),
    Difference(
        name="mail",
        cluster="Amazon SES SMTP (email-smtp.<region>.amazonaws.com:587)",
        local=f"service `{MAIL_SERVICE}` (Mailpit) on port {MAIL_SMTP_PORT}; its inbox on 127.0.0.1:{MAIL_UI_PORT}",
        why="confirmation and magic-link mails stay on the machine",
        env=(("auth", "GOTRUE_SMTP_HOST", MAIL_SERVICE), ("auth", "GOTRUE_SMTP_PORT", str(MAIL_SMTP_PORT))),
    ),
    Difference(
        name="rate-limit-store",
        cluster="Kong's rate-limiting counters in ElastiCache Valkey over TLS",
        local="policy local (counters in Kong's memory); kong.yml otherwise as rendered",
        why="no ElastiCache locally; one Kong needs no shared counters",
    ),
    Difference(
        name="tracing",
        cluster="OTLP to the collector in the observability namespace, on to X-Ray",
        local="no collector: Kong's opentelemetry plugin is left out of kong.yml, GoTrue's tracing is off",
        why="exporters would only log failed sends",
        env=(("auth", "GOTRUE_TRACING_ENABLED", "false"),),
    ),
    Difference(
        name="realtime-node",
        cluster="POD_IP from the downward API names the Erlang node (realtime@$(POD_IP))",
        local=f"POD_IP is the fixed address {REALTIME_ADDRESS} the service gets on the Compose network",
        why="Compose has no downward API; the DNS cluster strategy finds the same address through "
        "the headless Service's name, an alias of the service",
        env=(("realtime", "POD_IP", REALTIME_ADDRESS), ("realtime", "RELEASE_NODE", None)),
    ),
    Difference(
        name="functions",
        cluster="functions/ shipped in ConfigMap functions-source",
        local="the repository's functions/ bind-mounted read-only at the same path: edits apply on the next request",
        why="a local edit loop without re-rendering",
    ),
    Difference(
        name="kubernetes-only",
        cluster="NetworkPolicies, Istio sidecars and mTLS, Ingress and ExternalDNS, HPAs, PDBs, Argo "
        "Rollouts, probes, several replicas",
        local="one container per Deployment container (a pod's second container shares the first's "
        "network, as in a pod), the same user, read-only root, dropped capabilities and limits",
        why="Compose has none of these; the workloads themselves are unchanged",
    ),
)


def env_overrides() -> dict[str, dict[str, str]]:
    """component -> env var -> local value, the set values of the table above."""
    out: dict[str, dict[str, str]] = {}
    for difference in LOCAL_DIFFERENCES:
        for component, var, value in difference.env:
            if value is not None:
                out.setdefault(component, {})[var] = value
    return out
