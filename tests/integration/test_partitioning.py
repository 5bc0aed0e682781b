"""The partitioning templates (database/partitioning/) on PostgreSQL 17, run by psql as the RDS
master in a bootstrapped database: create, attach, detach concurrently and archive a
partition, and queries pruned to the partitions their time range needs.

pg_partman and pg_cron are not in the npm server package. pg_partman 5 is PL/pgSQL, so its
upstream SQL (tests/fixtures/upstream/pg_partman, unmodified) is loaded into schema `partman`
of a second database as the master, where the template takes its pg_partman branch and
`run_maintenance_proc` runs; pg_cron (C) cannot run here, docs/partitioning.md says so.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from database.parameters import SHARED_PRELOAD_LIBRARIES
from tests.integration.conftest import PostgresServer, bootstrapped_database

TEMPLATES = Path(__file__).resolve().parents[2] / "database" / "partitioning"
DBNAME = "partition_app"
PARTMAN_DB = "partman_app"
PARTMAN_SQL = Path(__file__).resolve().parents[1] / "fixtures" / "upstream" / "pg_partman" / "sql"
TABLE = "events"
PREMAKE = 3


def psql(
    server: PostgresServer, template: str, *, dbname: str = DBNAME, **variables: str | int
) -> subprocess.CompletedProcess[str]:
    """The template as an operator runs it: psql as the master, variables on the command line."""
    args = [str(server.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(TEMPLATES / template)]
    for name, value in {"schema": "public", "table": TABLE, **variables}.items():
        args += ["-v", f"{name}={value}"]
    return subprocess.run(args, capture_output=True, text=True, env=server.libpq_env(dbname=dbname), timeout=60)


def partman_install_sql() -> str:
    """pg_partman's extension script as its Makefile builds it (types, tables, functions,
    procedures), for schema `partman`, without the CREATE EXTENSION-only config-dump calls."""
    parts = [
        p.read_text(encoding="utf-8")
        for d in ("types", "tables", "functions", "procedures")
        for p in sorted((PARTMAN_SQL / d).glob("*.sql"))
    ]
    script = "\n".join(parts).replace("@extschema@", "partman")
    return "\n".join(line for line in script.splitlines() if "pg_extension_config_dump" not in line)


@pytest.fixture(scope="module")
def db(postgres_server: PostgresServer) -> PostgresServer:
    bootstrapped_database(postgres_server, DBNAME)
    with psycopg.connect(postgres_server.conninfo(dbname=DBNAME), autocommit=True) as conn:
        available = {r[0] for r in conn.execute("SELECT name FROM pg_available_extensions").fetchall()}
    # Were they here, the template would take its pg_partman branch and this module would
    # need to exercise it; the parameter group preloads pg_cron for RDS.
    assert not {"pg_partman", "pg_cron"} & available
    assert "pg_cron" in SHARED_PRELOAD_LIBRARIES
    run = psql(postgres_server, "001_partitioned_table.sql", interval="1 month", premake=PREMAKE, retention="12 months")
    assert run.returncode == 0, run.stderr
    return postgres_server


@pytest.fixture()
def conn(db: PostgresServer):
    with psycopg.connect(db.conninfo(dbname=DBNAME), autocommit=True) as c:
        yield c


def partitions(conn: psycopg.Connection) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass ORDER BY 1",
            (TABLE,),
        ).fetchall()
    ]


def month(offset: int) -> datetime:
    now = datetime.now(UTC)
    index = now.year * 12 + now.month - 1 + offset
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def scanned(conn: psycopg.Connection, sql: str) -> set[str]:
    """Relations the plan reads, from EXPLAIN (FORMAT JSON)."""
    plan = conn.execute("EXPLAIN (FORMAT JSON) " + sql).fetchone()[0]
    plan = plan if isinstance(plan, list) else json.loads(plan)
    found: set[str] = set()

    def walk(node: dict) -> None:
        if "Relation Name" in node:
            found.add(node["Relation Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return found


def test_create_makes_the_current_period_and_premade_ones(conn):
    expected = [f"{TABLE}_p{month(n):%Y%m%d}" for n in range(PREMAKE + 1)]
    assert partitions(conn) == expected
    for n in range(PREMAKE + 1):
        conn.execute(f"INSERT INTO {TABLE} (created_at) VALUES (%s)", (month(n).replace(day=15),))
    # No DEFAULT partition: a row outside every range is refused, not hidden.
    with pytest.raises(psycopg.errors.CheckViolation, match="no partition"):
        conn.execute(f"INSERT INTO {TABLE} (created_at) VALUES (%s)", (month(PREMAKE + 24),))


def test_queries_are_pruned_to_their_range(conn):
    this, following = month(0), month(1)
    assert scanned(
        conn,
        f"SELECT count(*) FROM {TABLE} WHERE created_at >= '{this.isoformat()}' AND created_at < '{following.isoformat()}'",
    ) == {f"{TABLE}_p{this:%Y%m%d}"}
    # now() is only known at execution: pruned when the executor starts, shown as removed subplans.
    plan = conn.execute(
        f"EXPLAIN (FORMAT JSON) SELECT * FROM {TABLE} WHERE created_at >= now() + interval '62 days'"
    ).fetchone()[0]
    text = json.dumps(plan)
    assert '"Subplans Removed": ' in text and '"Subplans Removed": 0' not in text
    # Without a predicate on the key every partition is read: the check above can fail.
    assert len(scanned(conn, f"SELECT count(*) FROM {TABLE}")) == PREMAKE + 1


def test_attach_detach_and_archive(db, conn):
    old = f"{TABLE}_p20200101"
    conn.execute(f"CREATE TABLE {old} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    conn.execute(
        f"INSERT INTO {old} (id, created_at) SELECT n, '2020-01-01'::timestamptz + n * interval '1 hour' FROM generate_series(1, 50) n"
    )

    run = psql(db, "attach_partition.sql", partition=old, **{"from": "2020-01-01", "to": "2020-02-01"})
    assert run.returncode == 0, run.stderr
    assert old in partitions(conn)
    assert conn.execute(f"SELECT count(*) FROM {TABLE} WHERE created_at < '2020-02-01'").fetchone()[0] == 50
    assert scanned(conn, f"SELECT * FROM {TABLE} WHERE created_at < '2020-02-01'") == {old}

    # A table whose rows fall outside the bounds is refused before it becomes a partition.
    bad = f"{TABLE}_p20200201"
    conn.execute(f"CREATE TABLE {bad} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    conn.execute(f"INSERT INTO {bad} (id, created_at) VALUES (1, '2021-06-01')")
    refused = psql(db, "attach_partition.sql", partition=bad, **{"from": "2020-02-01", "to": "2020-03-01"})
    assert refused.returncode != 0 and "attach_bounds" in refused.stderr
    assert bad not in partitions(conn)

    run = psql(db, "archive_partition.sql", partition=old)
    assert run.returncode == 0, run.stderr
    assert old not in partitions(conn)
    assert conn.execute("SELECT to_regclass(%s)", (f"public.{old}",)).fetchone()[0] is None
    assert conn.execute(f"SELECT count(*) FROM archive.{TABLE}").fetchone()[0] == 50
    assert conn.execute(f"SELECT count(*) FROM {TABLE} WHERE created_at < '2020-02-01'").fetchone()[0] == 0
    # Archived rows are out of the API roles' reach: no grant on the archive schema.
    assert not conn.execute("SELECT has_schema_privilege('anon', 'archive', 'USAGE')").fetchone()[0]


def test_detach_concurrently_is_refused_with_a_default_partition(db, conn):
    """Why the template has no DEFAULT partition."""
    conn.execute("CREATE TABLE with_default (created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at)")
    conn.execute(
        "CREATE TABLE with_default_2020 PARTITION OF with_default FOR VALUES FROM ('2020-01-01') TO ('2021-01-01')"
    )
    conn.execute("CREATE TABLE with_default_rest PARTITION OF with_default DEFAULT")
    run = psql(db, "detach_partition.sql", table="with_default", partition="with_default_2020")
    assert run.returncode != 0 and "default partition" in run.stderr


@pytest.fixture(scope="module")
def partman_db(postgres_server: PostgresServer) -> PostgresServer:
    bootstrapped_database(postgres_server, PARTMAN_DB)
    with psycopg.connect(postgres_server.conninfo(dbname=PARTMAN_DB), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA partman")
        conn.execute(partman_install_sql())
    return postgres_server


def test_pg_partman_branch_creates_premade_partitions_and_maintenance_runs(partman_db):
    run = psql(
        partman_db,
        "001_partitioned_table.sql",
        dbname=PARTMAN_DB,
        interval="1 month",
        premake=PREMAKE,
        retention="12 months",
    )
    assert run.returncode == 0, run.stderr
    with psycopg.connect(partman_db.conninfo(dbname=PARTMAN_DB), autocommit=True) as conn:
        config = conn.execute(
            "SELECT partition_interval, premake, retention, retention_keep_table, infinite_time_partitions "
            "FROM partman.part_config WHERE parent_table = %s",
            (f"public.{TABLE}",),
        ).fetchone()
        assert config[1:] == (PREMAKE, "12 months", True, True)
        made = partitions(conn)
        # pg_partman names monthly partitions <table>_pYYYYMMDD, like the native branch.
        assert {f"{TABLE}_p{month(n):%Y%m%d}" for n in range(PREMAKE + 1)} <= set(made)
        assert f"{TABLE}_default" not in made
        conn.execute(f"INSERT INTO {TABLE} (created_at) VALUES (now())")
        # What pg_cron runs every hour (002_maintenance_schedule.sql).
        conn.execute("CALL partman.run_maintenance_proc()")
        assert set(made) <= set(partitions(conn))
    # No default partition here either, so partitions detach concurrently.
    oldest = sorted(made)[0]
    run = psql(partman_db, "detach_partition.sql", dbname=PARTMAN_DB, partition=oldest)
    assert run.returncode == 0, run.stderr
