"""The local stack's database init, run the way the postgres image runs it, on PostgreSQL 17.

`make local` mounts database/bootstrap.sql and an init script holding the bootstrap Job's psql
arguments; the image runs the script once, as POSTGRES_USER, with the db service's
environment. Here the same script runs with that environment against the RDS-like test server
(a fresh database; the master is not a superuser here, stricter than the local image), and
the services then log in with the URLs and passwords their Compose environment carries.
"""

from __future__ import annotations

import os
import subprocess
from urllib.parse import unquote, urlsplit

import psycopg
import pytest

from config.loader import load_config
from scripts import local

DBNAME = "local_init"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    return out / "project", local.write_project(load_config(), out / "project", state_dir=out / "state")


@pytest.fixture(scope="module")
def initialised(postgres_server, project):
    outdir, rendered = project
    with psycopg.connect(postgres_server.conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DBNAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DBNAME}"')
    db = rendered.compose["services"][local.DB_SERVICE]
    mounts = dict(reversed(v.split(":")[:2]) for v in db["volumes"])
    script_host_path = outdir / mounts[local.INIT_SCRIPT].removeprefix("./")
    sql_host_dir = outdir / mounts[local.SQL_DIR].removeprefix("./")
    # The mounted script and SQL file, with the container's mount path pointed at the host copy.
    script = script_host_path.read_text().replace(local.BOOTSTRAP_SQL_MOUNT, str(sql_host_dir / "bootstrap.sql"))
    env = postgres_server.libpq_env(dbname=DBNAME)
    env.update({k: v.replace("$$", "$") for k, v in db["environment"].items()})
    # The image's own database is its POSTGRES_DB; here a fresh one on the shared test server.
    env["POSTGRES_DB"] = DBNAME
    env["PATH"] = f"{postgres_server.bindir}{os.pathsep}{env.get('PATH', '')}"
    run = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return rendered


def test_the_init_script_is_the_jobs_psql_call(project):
    from database.bootstrap import psql_args

    _, rendered = project
    script = rendered.files["files/db/init/10-supabase-bootstrap.sh"]
    for arg in psql_args(local.BOOTSTRAP_SQL_MOUNT):
        assert (arg if "$(" not in arg else arg.replace("$(", "${").replace(")", "}")) in script


def _url_conninfo(url: str, server) -> str:
    parts = urlsplit(url.replace("$$", "$"))
    return psycopg.conninfo.make_conninfo(
        host=server.host,
        port=server.port,
        dbname=DBNAME,
        user=parts.username,
        password=unquote(parts.password or "").replace("+", " "),
        sslmode="require",
    )


@pytest.mark.parametrize(
    ("service", "variable"),
    [
        ("auth", "GOTRUE_DB_DATABASE_URL"),
        ("storage", "DATABASE_URL"),
        ("storage", "DATABASE_POOL_URL"),
        ("rest", "PGRST_DB_URI"),
        ("functions", "SUPABASE_DB_URL"),
    ],
)
def test_services_log_in_with_the_urls_their_compose_env_carries(postgres_server, initialised, service, variable):
    url = initialised.compose["services"][service]["environment"][variable]
    with psycopg.connect(_url_conninfo(url, postgres_server)) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == urlsplit(url).username


def test_postgres_meta_logs_in_with_its_password(postgres_server, initialised):
    env = initialised.compose["services"]["meta"]["environment"]
    conninfo = postgres_server.conninfo(user=env["PG_META_DB_USER"], password=env["PG_META_DB_PASSWORD"], dbname=DBNAME)
    with psycopg.connect(conninfo) as conn:
        assert (
            conn.execute(
                "SELECT count(*) FROM pg_namespace WHERE nspname IN ('auth', 'storage', 'extensions')"
            ).fetchone()[0]
            == 3
        )


def test_bootstrapped_like_rds(postgres_server, initialised):
    with psycopg.connect(postgres_server.conninfo(dbname=DBNAME)) as conn:
        assert conn.execute("SELECT 1 FROM pg_publication WHERE pubname = 'supabase_realtime'").fetchone()
        assert conn.execute("SELECT rolbypassrls FROM pg_roles WHERE rolname = 'service_role'").fetchone()[0]


def test_every_database_flag_is_a_postgresql_17_setting(postgres_server, project):
    """`postgres --describe-config` of the same major version lists every settable parameter."""
    _, rendered = project
    command = rendered.compose["services"][local.DB_SERVICE]["command"]
    names = {command[i + 1].split("=", 1)[0] for i, a in enumerate(command) if a == "-c"}
    described = subprocess.run(
        [str(postgres_server.server_bindir / "postgres"), "--describe-config"],
        capture_output=True,
        text=True,
        check=True,
        **postgres_server.daemon_user_kwargs(),
    ).stdout
    known = {line.split("\t", 1)[0] for line in described.splitlines()}
    assert names <= known, names - known
    assert {"wal_level", "ssl", "hba_file", "shared_preload_libraries"} <= names
    assert "pg_tle" not in " ".join(command)
