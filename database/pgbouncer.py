"""PgBouncer configuration sized from the RDS instance class.

RDS sets max_connections to LEAST(DBInstanceClassMemory / 9531392, 5000). From that budget
we keep headroom for the connections that do not go through PgBouncer, then share the
rest between the PgBouncer pods, counting one extra pod for the rolling update's surge
(old and new pods hold pools at the same time).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from config.model import RDS_INSTANCE_CLASSES

GIB = 1024**3
MIB = 1024**2

# Total memory (GiB) of each class in config.model.RDS_INSTANCE_CLASSES.
INSTANCE_MEMORY_GIB: dict[str, int] = {
    "db.t4g.micro": 1,
    "db.t4g.small": 2,
    "db.t4g.medium": 4,
    "db.t4g.large": 8,
    "db.t4g.xlarge": 16,
    "db.t4g.2xlarge": 32,
    **{
        f"db.{f}.{s}": g
        for f in ("m7g", "m8g")
        for s, g in (("large", 8), ("xlarge", 16), ("2xlarge", 32), ("4xlarge", 64), ("8xlarge", 128))
    },
    **{
        f"db.{f}.{s}": g
        for f in ("r7g", "r8g")
        for s, g in (("large", 16), ("xlarge", 32), ("2xlarge", 64), ("4xlarge", 128), ("8xlarge", 256))
    },
}

# DBInstanceClassMemory is the memory left to PostgreSQL after the OS and RDS agents, so
# below the class's total: observed max_connections are ~75% of the nominal figure on
# db.*.micro and ~90-95% on 8 GiB and up. 0.9 x total - 200 MiB stays at or below those
# observations on every size; erring low only leaves spare connections.
CLASS_MEMORY_FACTOR = 0.9
CLASS_MEMORY_RESERVED_BYTES = 200 * MIB
BYTES_PER_CONNECTION = 9531392
RDS_CONNECTION_CAP = 5000

# Connections that never go through PgBouncer:
SUPERUSER_RESERVED = 3  # superuser_reserved_connections: rdsadmin's monitoring and backups
DIRECT_CLIENTS = 40  # Realtime (its pool and WAL polling), migrations of GoTrue/Storage/Realtime
# (session advisory locks), Studio/postgres-meta, operators' psql, the bootstrap Job
DIRECT_CLIENTS_SHARE = 0.25  # small servers cannot spare 40: a quarter of them is kept instead
ROLLOUT_SURGE_PODS = 1  # the chart's Deployment must use maxSurge: 1


@dataclass(frozen=True, kw_only=True)
class PoolSizes:
    server_max_connections: int  # the server's max_connections
    headroom: int  # kept for superusers and direct clients
    per_pod_server_connections: int  # max_db_connections: every pool of one database, one pod
    default_pool_size: int  # per user/database pair
    reserve_pool_size: int  # extra connections for a pool whose clients wait > reserve_pool_timeout
    pods: int  # PgBouncer replicas the budget is shared by (surge pod excluded)

    @property
    def worst_case_server_connections(self) -> int:
        """Server connections held by all pods of one database during a rolling update."""
        return self.per_pod_server_connections * (self.pods + ROLLOUT_SURGE_PODS)


def max_connections(instance_class: str) -> int:
    """RDS's default max_connections for `instance_class`."""
    try:
        memory_gib = INSTANCE_MEMORY_GIB[instance_class]
    except KeyError:
        raise ValueError(
            f"unknown RDS instance class '{instance_class}'; fix: one of {', '.join(sorted(INSTANCE_MEMORY_GIB))}"
        ) from None
    class_memory = memory_gib * GIB * CLASS_MEMORY_FACTOR - CLASS_MEMORY_RESERVED_BYTES
    return min(int(class_memory // BYTES_PER_CONNECTION), RDS_CONNECTION_CAP)


def pool_sizes(*, instance_class: str, pgbouncer_replicas: int, server_max_connections: int | None = None) -> PoolSizes:
    """Pool sizes for one database of `instance_class` shared by `pgbouncer_replicas` pods.

    `server_max_connections` replaces the class default when a parameter group sets
    max_connections explicitly (or for a test server).
    """
    if pgbouncer_replicas < 1:
        raise ValueError(f"pgbouncer_replicas must be at least 1, got {pgbouncer_replicas}")
    limit = max_connections(instance_class) if server_max_connections is None else server_max_connections
    headroom = SUPERUSER_RESERVED + min(DIRECT_CLIENTS, math.ceil(limit * DIRECT_CLIENTS_SHARE))
    per_pod = (limit - headroom) // (pgbouncer_replicas + ROLLOUT_SURGE_PODS)
    if per_pod < 2:
        raise ValueError(
            f"max_connections {limit} leaves {per_pod} server connections per PgBouncer pod for "
            f"{pgbouncer_replicas} replicas; fix: a larger instance class or fewer replicas"
        )
    # The API user (authenticator) carries most traffic; a quarter is left for the other
    # users' pools and the reserve, all capped together by max_db_connections.
    default_pool = max(1, per_pod * 3 // 4)
    reserve = max(1, per_pod // 10)
    return PoolSizes(
        server_max_connections=limit,
        headroom=headroom,
        per_pod_server_connections=per_pod,
        default_pool_size=default_pool,
        reserve_pool_size=reserve,
        pods=pgbouncer_replicas,
    )


def render_ini(
    *,
    primary_host: str,
    replica_host: str,
    port: int,
    dbname: str,
    instance_class: str,
    replicas: int,
    listen_port: int = 6432,
    auth_file: str = "/etc/pgbouncer/userlist.txt",
    server_tls_sslmode: str = "require",
    max_client_conn: int | None = None,
    listen_addr: str = "*",
    server_max_connections: int | None = None,
) -> str:
    """pgbouncer.ini: `<dbname>` on the primary, `<dbname>_ro` on the read replica endpoint.

    Transaction pooling, so clients must not rely on session state across transactions:
    PostgREST needs PGRST_DB_PREPARED_STATEMENTS=false; Realtime, and the migrations of
    GoTrue and Storage, connect to the database directly.
    """
    sizes = pool_sizes(
        instance_class=instance_class, pgbouncer_replicas=replicas, server_max_connections=server_max_connections
    )
    client_limit = max_client_conn if max_client_conn is not None else max(1000, 20 * sizes.per_pod_server_connections)
    settings: list[tuple[str, object, str]] = [
        ("listen_addr", listen_addr, ""),
        ("listen_port", listen_port, ""),
        ("unix_socket_dir", "", "no socket: the root filesystem is read-only and clients come over TCP"),
        ("pool_mode", "transaction", "a server connection per transaction, not per client: many clients, few backends"),
        ("auth_type", "scram-sha-256", "the RDS users' own verifier type; no md5 anywhere"),
        (
            "auth_file",
            auth_file,
            "rendered from Secrets Manager; the RDS master cannot read pg_authid, so no auth_query",
        ),
        ("admin_users", "pgbouncer", "PAUSE/RESUME/RELOAD during maintenance"),
        ("stats_users", "pgbouncer", "the exporter reads SHOW STATS/POOLS with it"),
        ("max_client_conn", client_limit, "client sockets are cheap; the pod's nofile limit must exceed this"),
        ("default_pool_size", sizes.default_pool_size, "derived from the instance class (database.pgbouncer)"),
        ("reserve_pool_size", sizes.reserve_pool_size, "absorbs bursts before clients queue"),
        ("reserve_pool_timeout", 3, ""),
        (
            "max_db_connections",
            sizes.per_pod_server_connections,
            "hard cap per database and pod: the pods together stay inside max_connections",
        ),
        ("server_tls_sslmode", server_tls_sslmode, "RDS enforces TLS (rds.force_ssl=1)"),
        ("server_tls_protocols", "secure", ""),
        ("server_connect_timeout", 5, "an in-VPC connect is milliseconds; fail over quickly instead of waiting 15 s"),
        ("server_login_retry", 3, ""),
        ("server_idle_timeout", 300, "give idle backends back within minutes after a burst"),
        ("server_lifetime", 1800, "rotate backends so a failover or DNS change is picked up"),
        ("dns_max_ttl", 5, "the private-zone CNAME moves on failover or restore"),
        ("query_wait_timeout", 30, "a request queued 30 s for a backend has already failed for its user"),
        ("idle_transaction_timeout", 60, "a client idle in a transaction pins a backend; cut it loose"),
        ("client_login_timeout", 15, ""),
        (
            "ignore_startup_parameters",
            "extra_float_digits,search_path",
            "sent by JDBC/Node clients and some Supabase URLs; roles carry their search_path server-side",
        ),
        ("application_name_add_host", 1, "shows the client pod in pg_stat_activity"),
        ("log_connections", 0, "per-connection lines drown the log at API connection rates; the exporter counts them"),
        ("log_disconnections", 0, ""),
        ("log_pooler_errors", 1, ""),
        ("stats_period", 60, ""),
    ]
    lines = [
        "; Rendered by database.pgbouncer.render_ini: edit the code, not this file.",
        f"; {instance_class}: max_connections {sizes.server_max_connections}, headroom {sizes.headroom}, "
        f"{sizes.per_pod_server_connections} server connections per pod over {replicas} pods + {ROLLOUT_SURGE_PODS} surge.",
        "[databases]",
        f"{dbname} = host={primary_host} port={port} dbname={dbname}",
        f"{dbname}_ro = host={replica_host} port={port} dbname={dbname}",
        "",
        "[pgbouncer]",
    ]
    for key, value, why in settings:
        if why:
            lines.append(f"; {why}")
        lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"


def render_userlist(users: dict[str, str]) -> str:
    """auth_file lines `"user" "password"`; a double quote inside is written twice."""

    def quote(value: str) -> str:
        return '"' + value.replace('"', '""') + '"'

    return "".join(f"{quote(user)} {quote(password)}\n" for user, password in sorted(users.items()))


def _check_table() -> None:
    missing = RDS_INSTANCE_CLASSES - INSTANCE_MEMORY_GIB.keys()
    if missing:
        raise RuntimeError(f"database.pgbouncer.INSTANCE_MEMORY_GIB lacks {sorted(missing)}")


_check_table()
