"""The database bootstrap as the Supabase chart runs it.

A Kubernetes Job (image postgres:17) mounts `BOOTSTRAP_SQL` from a ConfigMap and runs
`psql` with `psql_args(<mount path>)`. Its env carries PGHOST, PGPORT, PGDATABASE, PGUSER
(supabase_admin), PGPASSWORD, PGSSLMODE=require and one `<ROLE>_PASSWORD` per database
login role from Secrets Manager. Kubernetes expands `$(VAR)` in container args from the
container's own env, so the passwords reach psql without a shell and never appear in the
Pod spec.
"""

from __future__ import annotations

from pathlib import Path

from database.roles import DATABASE_LOGIN_ROLES

BOOTSTRAP_SQL_PATH = Path(__file__).with_name("bootstrap.sql")
BOOTSTRAP_SQL: str = BOOTSTRAP_SQL_PATH.read_text(encoding="utf-8")


def password_env_var(variable: str) -> str:
    """Container env var that carries the psql variable `variable`."""
    return variable.upper()


def psql_args(sql_path: str) -> list[str]:
    """psql arguments that apply the bootstrap file at `sql_path` all-or-nothing."""
    args = [
        "--no-psqlrc",
        "--set=ON_ERROR_STOP=1",
        # A failure halfway leaves the database as it was, so the Job can simply retry.
        "--single-transaction",
        f"--file={sql_path}",
    ]
    for role in DATABASE_LOGIN_ROLES:
        args += ["-v", f"{role.password_variable}=$({password_env_var(role.password_variable)})"]
    return args
