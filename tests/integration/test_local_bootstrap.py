"""The local stack's database init, run the way the postgres image runs it, on PostgreSQL 17.

`make local` mounts database/bootstrap.sql and an init script holding the bootstrap Job's psql
arguments; the image runs the script once, as POSTGRES_USER, with the db service's
environment. Here the same script runs with that environment against the RDS-like test server
(a fresh database; the master is not a superuser here, stricter than the local image), and
the services then log in with the URLs and passwords their Compose environment carries.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import psycopg
import pytest

from config.loader import load_config
from k8s_charts.supabase import rds_ca
from scripts import local
from tests.integration.conftest import free_port

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
    preloaded = next(a for a in command if a.startswith("shared_preload_libraries="))
    libraries = preloaded.split("=", 1)[1].split(",")
    # A preloaded library's own settings (auto_explain.*) are defined once it loads.
    unknown = {n for n in names - known if n.split(".", 1)[0] not in libraries}
    assert not unknown, unknown
    assert {"wal_level", "ssl", "hba_file", "shared_preload_libraries"} <= names
    assert "pg_tle" not in " ".join(command) and "cron" not in " ".join(command)


# --- The db service itself: its flags, TLS files and hba on a PostgreSQL 17 server -------------


def _unescape(value):
    if isinstance(value, str):
        return value.replace("$$", "$")
    if isinstance(value, list):
        return [_unescape(v) for v in value]
    if isinstance(value, dict):
        return {k: _unescape(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class LocalDb:
    port: int
    ca_file: Path
    project: local.LocalProject
    outdir: Path


@pytest.fixture(scope="module")
def local_db(postgres_server, project):
    """A server started the way the db service starts: initdb with POSTGRES_USER as superuser,
    the entrypoint's key copy, `postgres` with the service's flags (paths mapped to the rendered
    files), then the init script over the socket; torn down after the module."""
    outdir, rendered = project
    db = _unescape(rendered.compose["services"][local.DB_SERVICE])
    env = db["environment"]
    base = postgres_server.make_private_dir("localdb-")
    data, sockets, tls = base / "data", base / "sock", base / "tls"
    for d in (sockets, tls):
        d.mkdir()
        postgres_server.chown_for_daemon(d)
    rendered_tls = outdir / "files" / "db" / "tls"
    for name in ("server.crt", "pg_hba.conf", "server.key"):
        shutil.copy(rendered_tls / name, tls / name)
        postgres_server.chown_for_daemon(tls / name)
    (tls / "server.key").chmod(0o600)
    pwfile = base / "pw"
    pwfile.write_text(env["POSTGRES_PASSWORD"] + "\n")
    postgres_server.chown_for_daemon(pwfile)
    as_daemon = postgres_server.daemon_user_kwargs()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    subprocess.run(
        [
            str(postgres_server.server_bindir / "initdb"),
            "-D",
            str(data),
            f"--username={env['POSTGRES_USER']}",
            f"--pwfile={pwfile}",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        env=clean,
        **as_daemon,
    )
    flags = [
        f.replace(f"{local.DB_TLS_DIR}/", f"{tls}/").replace(local.DB_KEY, str(tls / "server.key"))
        for f in db["command"][1:]
    ]
    port = free_port()
    log = open(base / "server.log", "w")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        [
            str(postgres_server.server_bindir / "postgres"),
            "-D",
            str(data),
            *flags,
            "-c",
            f"port={port}",
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={sockets}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=clean,
        **as_daemon,
    )
    try:
        for _ in range(100):
            ready = subprocess.run(
                [str(postgres_server.bindir / "pg_isready"), "-h", str(sockets), "-p", str(port)], capture_output=True
            )
            if ready.returncode == 0:
                break
            assert proc.poll() is None, (base / "server.log").read_text()
            time.sleep(0.1)
        script = rendered.files["files/db/init/10-supabase-bootstrap.sh"].replace(
            local.BOOTSTRAP_SQL_MOUNT, str(outdir / "files" / "db" / "bootstrap" / "bootstrap.sql")
        )
        run_env = {**clean, **env, "PGHOST": str(sockets), "PGPORT": str(port)}
        run_env["PATH"] = f"{postgres_server.bindir}{os.pathsep}{run_env.get('PATH', '')}"
        init = subprocess.run(["bash", "-c", script], env=run_env, capture_output=True, text=True, timeout=120)
        assert init.returncode == 0, init.stderr
        ca_file = base / "ca.pem"
        ca_file.write_text((outdir / "files" / rds_ca.VOLUME / rds_ca.KEY).read_text())
        yield LocalDb(port=port, ca_file=ca_file, project=rendered, outdir=outdir)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _dial(url: str, db: LocalDb, **overrides: str) -> str:
    """The URL as libpq takes it, dialled at the local server: the host name stays (TLS checks
    it), only the address is the loopback one."""
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    # node-postgres's switch to libpq's sslmode meanings; libpq itself has them already.
    query.pop("uselibpqcompat", None)
    if "sslrootcert" in query:
        query["sslrootcert"] = str(db.ca_file)
    params = {
        "host": parts.hostname,
        "hostaddr": "127.0.0.1",
        "port": db.port,
        "dbname": parts.path.lstrip("/"),
        "user": parts.username,
        "password": unquote(parts.password or "").replace("+", " "),
        **query,
    }
    return psycopg.conninfo.make_conninfo(**{**params, **overrides})


def test_db_service_refuses_connections_without_tls(local_db):
    url = local_db.project.compose["services"]["auth"]["environment"]["GOTRUE_DB_DATABASE_URL"]
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(_dial(_unescape(url), local_db, sslmode="disable"))


@pytest.mark.parametrize(
    ("service", "variable"),
    [("auth", "GOTRUE_DB_DATABASE_URL"), ("storage", "DATABASE_URL")],
)
def test_services_reach_the_db_service_by_the_rds_name_with_their_tls_mode(local_db, service, variable):
    url = _unescape(local_db.project.compose["services"][service]["environment"][variable])
    with psycopg.connect(_dial(url, local_db)) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == urlsplit(url).username
        assert conn.info.pgconn.ssl_in_use


def test_verify_full_fails_for_a_name_the_certificate_does_not_carry(local_db):
    url = _unescape(local_db.project.compose["services"]["storage"]["environment"]["DATABASE_URL"])
    with pytest.raises(psycopg.OperationalError, match="server certificate"):
        psycopg.connect(_dial(url, local_db, host="db.elsewhere.internal", sslmode="verify-full"))


def test_postgres_meta_and_realtime_log_in_with_their_compose_env(local_db):
    services = _unescape(local_db.project.compose["services"])
    meta = services["meta"]["environment"]
    pem = local_db.ca_file.with_name("meta-ca.pem")
    pem.write_text(meta["PG_META_DB_SSL_ROOT_CERT"])
    with psycopg.connect(
        host=meta["PG_META_DB_HOST"],
        hostaddr="127.0.0.1",
        port=local_db.port,
        dbname=meta["PG_META_DB_NAME"],
        user=meta["PG_META_DB_USER"],
        password=meta["PG_META_DB_PASSWORD"],
        sslmode=meta["PG_META_DB_SSL_MODE"],
        sslrootcert=str(pem),
    ) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == "dashboard_user"
    rt = services["realtime"]["environment"]
    with psycopg.connect(
        host=rt["DB_HOST"],
        hostaddr="127.0.0.1",
        port=local_db.port,
        dbname=rt["DB_NAME"],
        user=rt["DB_USER"],
        password=rt["DB_PASSWORD"],
        sslmode="require",
    ) as conn:
        conn.execute(rt["DB_AFTER_CONNECT_QUERY"])
        assert conn.execute("SHOW search_path").fetchone()[0] == "_realtime"


def test_db_service_runs_with_the_rds_parameters(local_db):
    env = _unescape(local_db.project.compose["services"][local.DB_SERVICE]["environment"])
    conninfo = psycopg.conninfo.make_conninfo(
        host=local_db.project.values.db_host,
        hostaddr="127.0.0.1",
        port=local_db.port,
        dbname=env["POSTGRES_DB"],
        user=env["POSTGRES_USER"],
        password=env["POSTGRES_PASSWORD"],
        sslmode="verify-full",
        sslrootcert=str(local_db.ca_file),
    )
    with psycopg.connect(conninfo) as conn:
        assert conn.execute("SHOW wal_level").fetchone()[0] == "logical"
        assert conn.execute("SHOW ssl_min_protocol_version").fetchone()[0] == "TLSv1.2"
        # Preloaded, and created in `extensions` by the bootstrap: the view answers.
        assert conn.execute("SELECT count(*) >= 0 FROM extensions.pg_stat_statements").fetchone()[0]
        installed = {r[0] for r in conn.execute("SELECT extname FROM pg_extension")}
        assert {"uuid-ossp", "pgcrypto", "pg_stat_statements"} <= installed
        assert conn.execute("SELECT 1 FROM pg_publication WHERE pubname = 'supabase_realtime'").fetchone()
