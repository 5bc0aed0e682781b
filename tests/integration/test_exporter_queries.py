"""The postgres exporter's own queries, run on PostgreSQL 17 as the role the manifests give it.

Every `pg_*` series that the Supabase / Database dashboard and the PostgreSQL alerts read comes
from a collector of postgres_exporter v0.20.1, the pinned image. Those collectors' Go files are
kept unmodified under tests/fixtures/upstream/postgres_exporter/; this module extracts each
query from them, formats it the way the collector does with the flags of the rendered
Deployment, and runs it over TLS as the login that the rendered ExternalSecret names, on the
primary and on a streaming replica. The extension comes from the bootstrap, run with the
privilege that creates it on RDS (the superuser stands in for rds.extensions).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg.rows import dict_row

from config import load_config
from database.parameters import SLOW_STATEMENT_MS
from database.roles import DATABASE_LOGIN_ROLES
from k8s_charts.monitoring.dashboards import DASHBOARDS
from k8s_charts.monitoring.rules import ALERTS
from tests.integration.conftest import (
    PostgresServer,
    apply_bootstrap,
    bootstrapped_database,
    start_replica,
)
from tests.rendered import manifests

# Waits for a statement slower than the slow-query threshold, and for replication.
pytestmark = pytest.mark.waits

COLLECTORS = Path(__file__).resolve().parents[1] / "fixtures" / "upstream" / "postgres_exporter" / "collector"
DBNAME = "exporter_app"
# The slow statement: longer than the slow-query log threshold, so one statement proves both.
SLOW_SECONDS = SLOW_STATEMENT_MS / 1000 + 0.2


@dataclass(frozen=True)
class Source:
    """Where a series' SQL lives upstream: the collector file and the Go constant."""

    file: str
    constant: str
    subsystem: str  # the collector's BuildFQName subsystem
    column: str  # the result column the series' value is read from


# Every pg_* series a panel or an alert reads, and the collector query that produces it.
SERIES: dict[str, Source] = {
    "pg_stat_statements_seconds_total": Source(
        "pg_stat_statements.go", "pgStatStatementsQuery_PG17", "stat_statements", "seconds_total"
    ),
    "pg_stat_statements_calls_total": Source(
        "pg_stat_statements.go", "pgStatStatementsQuery_PG17", "stat_statements", "calls_total"
    ),
    "pg_stat_activity_count": Source("pg_stat_activity.go", "statActivityQuery", "stat_activity", "count"),
    "pg_settings_max_connections": Source("pg_setting.go", "pgSettingsQuery", "settings", "setting"),
    "pg_replication_lag_seconds": Source("pg_replication.go", "pgReplicationQuery", "replication", "lag"),
    "pg_locks_count": Source("pg_locks.go", "pgLocksQuery", "locks", "count"),
}
# pg_up is the exporter's own: 1 when its connection answers the version query.
UP_SERIES = "pg_up"


def go_source(file: str) -> str:
    return (COLLECTORS / file).read_text(encoding="utf-8")


def go_constant(file: str, name: str) -> str:
    """A Go string constant, raw (`...`) or interpreted ("...", no escapes used upstream)."""
    found = re.search(rf"\b{name}\s*=\s*(?:`([^`]*)`|\"([^\"\\]*)\")", go_source(file))
    assert found, f"{name} not found in {file}: the fixture changed"
    return found.group(1) if found.group(1) is not None else found.group(2)


def go_sprintf(template: str, *args: object) -> str:
    """fmt.Sprintf for the verbs the collectors use: %s, %d, %t."""
    values = iter(args)

    def verb(m: re.Match[str]) -> str:
        value = next(values)
        if m.group(1) == "t":
            return "true" if value else "false"
        return str(value)

    out = re.sub(r"%([sdt])", verb, template)
    assert next(values, None) is None, "more arguments than verbs"
    return out


def _series_in(expr: str) -> set[str]:
    return {m for m in re.findall(r"\bpg_[a-z_]+", expr) if not m.startswith("pgbouncer")}


def used_series() -> set[str]:
    exprs = [e for d in DASHBOARDS for p in d.panels for e, _ in p.exprs] + [a.expr for a in ALERTS]
    return set().union(*(_series_in(e) for e in exprs))


# --- The exporter as rendered ------------------------------------------------------------------


@dataclass(frozen=True)
class Exporter:
    role: str
    args: tuple[str, ...]
    primary_uri: str
    replica_uri: str | None

    def flag(self, name: str, default: str) -> str:
        for arg in self.args:
            if arg.startswith(f"--{name}="):
                return arg.split("=", 1)[1]
        return default

    def enabled(self, collector: str) -> bool:
        return f"--collector.{collector}" in self.args


@pytest.fixture(scope="module")
def exporter() -> Exporter:
    """The exporter Deployments and credentials of an environment with read replicas."""
    cfg = load_config()
    env = next(name for name, e in cfg.environments.items() if e.database.read_replicas)
    objs = manifests(env)["monitoring"]

    def container(name: str) -> dict:
        (deploy,) = [o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == name]
        return deploy["spec"]["template"]["spec"]["containers"][0]

    def uri(c: dict) -> str:
        return next(e["value"] for e in c["env"] if e["name"] == "DATA_SOURCE_URI")

    (secret,) = [o for o in objs if o["kind"] == "ExternalSecret" and o["metadata"]["name"] == "postgres-exporter"]
    (username_ref,) = [d["remoteRef"] for d in secret["spec"]["data"] if d["secretKey"] == "username"]
    # The secret is named after the login it holds (<prefix>db/<role>).
    role = username_ref["key"].rsplit("/", 1)[1]
    assert role in {r.name for r in DATABASE_LOGIN_ROLES}
    primary, replica = container("postgres-exporter"), container("postgres-exporter-replica")
    assert primary["args"] == replica["args"]
    return Exporter(role=role, args=tuple(primary["args"]), primary_uri=uri(primary), replica_uri=uri(replica))


@pytest.fixture(scope="module")
def monitored(postgres_server: PostgresServer) -> dict[str, str]:
    """A database bootstrapped as on RDS, the login passwords. The master runs it first (so the
    roles are the master's, as on RDS); a second run as the superuser stands in for
    rds.extensions, which lets the RDS master create pg_stat_statements through the
    bootstrap's own CREATE EXTENSION clause."""
    passwords = bootstrapped_database(postgres_server, DBNAME)
    run = apply_bootstrap(postgres_server, passwords, superuser=True, dbname=DBNAME)
    assert run.returncode == 0, run.stderr
    schema = postgres_server.superuser_sql(
        "SELECT extnamespace::regnamespace FROM pg_extension WHERE extname = 'pg_stat_statements'", dbname=DBNAME
    )
    assert schema == "extensions"
    return passwords


def _as_exporter(server: PostgresServer, exporter: Exporter, passwords: dict[str, str], uri: str) -> psycopg.Connection:
    """The exporter's connection: its DATA_SOURCE_URI's sslmode and the secret's login, aimed at
    the test server and database."""
    sslmode = re.search(r"sslmode=(\w[\w-]*)", urlsplit("postgresql://" + uri).query)
    assert sslmode and sslmode.group(1) == "require"
    return psycopg.connect(
        server.conninfo(user=exporter.role, password=passwords[exporter.role], dbname=DBNAME),
        autocommit=True,
        row_factory=dict_row,
    )


@pytest.fixture()
def as_exporter(postgres_server, exporter, monitored) -> Iterator[psycopg.Connection]:
    with _as_exporter(postgres_server, exporter, monitored, exporter.primary_uri) as conn:
        yield conn


def statements_query(exporter: Exporter, server_version_num: int) -> str:
    """pg_stat_statements.go's Update(): the PG17 text from 17 on, flags from the Deployment."""
    assert exporter.enabled("stat_statements"), "the stat_statements collector is disabled by default upstream"
    assert server_version_num >= 170000
    include_query = exporter.flag("collector.stat_statements.include_query", "false") == "true"
    assert not include_query, "include_query adds a column; extend this test before enabling it"
    limit = exporter.flag(
        "collector.stat_statements.limit", go_constant("pg_stat_statements.go", "defaultStatementLimit")
    )
    return go_sprintf(go_constant("pg_stat_statements.go", "pgStatStatementsQuery_PG17"), "", False, "", "", limit)


# --- Coverage: no panel or alert reads a series without a proven query --------------------------


def test_every_pg_series_read_by_panels_and_alerts_has_a_collector_query():
    used = used_series()
    assert {"pg_stat_statements_seconds_total", "pg_locks_count", "pg_replication_lag_seconds"} <= used
    assert used - {UP_SERIES} <= set(SERIES), (
        f"series without a proven exporter query: {used - set(SERIES) - {UP_SERIES}}"
    )
    for name, source in SERIES.items():
        code = go_source(source.file)
        # The series name is BuildFQName("pg", <subsystem>, <suffix>) in the collector.
        assert re.search(rf'Subsystem\s*=\s*"{source.subsystem}"', code), name
        suffix = name.removeprefix(f"pg_{source.subsystem}_")
        if source.subsystem != "settings":  # settings are named after the row: pg_settings_<name>
            assert f'"{suffix}"' in code, f"{name}: {source.file} does not build that name"


def test_exporter_connects_as_the_manifest_role(as_exporter, exporter, postgres_server):
    """pg_up: the connection answers the version query, and the version picks the PG17 query."""
    version = as_exporter.execute("SELECT version();").fetchone()
    assert re.match(r"PostgreSQL 17\.", version["version"])
    assert as_exporter.execute("SELECT current_user AS u").fetchone()["u"] == exporter.role
    assert 'QueryRow("SELECT version();")' in go_source("instance.go")


def test_slow_statement_tops_the_top_queries(postgres_server, as_exporter, exporter, monitored):
    postgres_server.superuser_sql("SELECT pg_stat_statements_reset()", dbname=DBNAME)
    marker = os.urandom(4).hex()
    log_offset = postgres_server.log_file.stat().st_size
    with psycopg.connect(
        postgres_server.conninfo(user="authenticator", password=monitored["authenticator"], dbname=DBNAME),
        autocommit=True,
    ) as app:
        for n in range(3):
            app.execute(f"SELECT {n} AS quick /* {marker} */")
        app.execute(f"SELECT pg_sleep({SLOW_SECONDS}) /* slow {marker} */")
    query = statements_query(exporter, postgres_server.server_version_num)
    assert query.rstrip().endswith(f"LIMIT {exporter.flag('collector.stat_statements.limit', '')};")
    rows = as_exporter.execute(query).fetchall()
    slow_id = int(
        postgres_server.superuser_sql(
            f"SELECT queryid FROM pg_stat_statements WHERE query LIKE '%slow {marker}%'", dbname=DBNAME
        )
    )
    top = rows[0]
    assert (top["queryid"], top["user"], top["datname"], top["calls_total"]) == (slow_id, "authenticator", DBNAME, 1)
    # The panel's mean seconds per call: seconds_total / calls_total.
    assert float(top["seconds_total"]) / top["calls_total"] >= SLOW_SECONDS
    assert set(top) >= {"calls_total", "seconds_total"}

    # The same statement in the slow-query log: its duration (log_min_duration_statement) and its
    # plan (auto_explain), as the parameter group configures RDS.
    with open(postgres_server.log_file, encoding="utf-8", errors="replace") as log:
        log.seek(log_offset)
        text = log.read()
    assert re.search(rf"duration: [\d.]+ ms\s+(statement|execute [^:]*): SELECT pg_sleep.*slow {marker}", text), text
    assert "auto_explain" in postgres_server.preloaded
    assert re.search(rf"duration: [\d.]+ ms\s+plan:\s*\n\s*Query Text: SELECT pg_sleep.*slow {marker}", text), text


def test_connections_by_state_and_max_connections(postgres_server, as_exporter, monitored):
    """RdsConnectionsNearLimit and the connection panels: other roles' sessions counted by state."""
    sessions = [
        psycopg.connect(
            postgres_server.conninfo(user="authenticator", password=monitored["authenticator"], dbname=DBNAME),
            autocommit=True,
        )
        for _ in range(3)
    ]
    try:
        rows = as_exporter.execute(go_constant("pg_stat_activity.go", "statActivityQuery")).fetchall()
    finally:
        for s in sessions:
            s.close()
    mine = [r for r in rows if r["datname"] == DBNAME]
    # One row per state even when nobody is in it: the series exist at 0.
    assert {r["state"] for r in mine} >= {"active", "idle", "idle in transaction"}
    idle_authenticator = sum(r["count"] for r in mine if r["state"] == "idle" and r["usename"] == "authenticator")
    # Without pg_monitor another role's state reads NULL and these sessions would not count.
    assert idle_authenticator >= 3

    settings = {r["name"]: r for r in as_exporter.execute(go_constant("pg_setting.go", "pgSettingsQuery")).fetchall()}
    assert int(settings["max_connections"]["setting"]) == postgres_server.max_connections


def test_locks_by_mode(postgres_server, as_exporter, monitored):
    holder = psycopg.connect(postgres_server.conninfo(dbname=DBNAME))
    try:
        holder.execute("CREATE TABLE IF NOT EXISTS lock_probe (id int)")
        holder.commit()
        holder.execute("LOCK TABLE lock_probe IN ACCESS EXCLUSIVE MODE")
        rows = as_exporter.execute(go_constant("pg_locks.go", "pgLocksQuery")).fetchall()
    finally:
        holder.rollback()
        holder.close()
    mine = {r["mode"]: r["count"] for r in rows if r["datname"] == DBNAME}
    assert len(mine) == 9, mine
    assert mine["accessexclusivelock"] >= 1


def test_long_running_transactions_query_runs(postgres_server, as_exporter, exporter, monitored):
    """Enabled by the Deployment's flags; it must not fail the scrape."""
    assert exporter.enabled("long_running_transactions")
    holder = psycopg.connect(postgres_server.conninfo(dbname=DBNAME))
    try:
        holder.execute("SELECT txid_current()")
        time.sleep(0.1)
        row = as_exporter.execute(
            go_constant("pg_long_running_transactions.go", "longRunningTransactionsQuery")
        ).fetchone()
    finally:
        holder.rollback()
        holder.close()
    assert row["transactions"] >= 1 and row["oldest_timestamp_seconds"] > 0


def test_replication_lag_on_primary_and_replica(postgres_server, exporter, monitored):
    """PostgresReplicaLagHigh reads pg_replication_lag_seconds from the replica exporter; the
    primary exporter runs the same collector, which must answer 0 there, not fail."""
    assert exporter.replica_uri and exporter.replica_uri != exporter.primary_uri
    lag_sql = go_constant("pg_replication.go", "pgReplicationQuery")
    with _as_exporter(postgres_server, exporter, monitored, exporter.primary_uri) as conn:
        on_primary = conn.execute(lag_sql).fetchone()
    assert (float(on_primary["lag"]), on_primary["is_replica"]) == (0.0, 0)

    with start_replica(postgres_server) as replica:
        with psycopg.connect(postgres_server.conninfo(dbname=DBNAME), autocommit=True) as writer:
            writer.execute("CREATE TABLE IF NOT EXISTS replicated_marker (v text)")
            marker = os.urandom(4).hex()
            writer.execute("INSERT INTO replicated_marker VALUES (%s)", (marker,))
        with _as_exporter(replica, exporter, monitored, exporter.replica_uri) as conn:
            deadline = time.monotonic() + 20

            def replayed() -> bool:
                if conn.execute("SELECT to_regclass('public.replicated_marker') AS t").fetchone()["t"] is None:
                    return False
                return conn.execute("SELECT FROM replicated_marker WHERE v = %s", (marker,)).fetchone() is not None

            while not replayed():
                assert time.monotonic() < deadline, "the replica did not replay the primary's write"
                time.sleep(0.2)
            on_replica = conn.execute(lag_sql).fetchone()
    assert on_replica["is_replica"] == 1
    # The collector scans lag into a float64: NULL would fail the scrape.
    assert on_replica["lag"] is not None and float(on_replica["lag"]) >= 0
