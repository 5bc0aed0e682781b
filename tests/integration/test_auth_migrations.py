"""GoTrue's own migrations (supabase/auth at the pinned image's tag) on the bootstrapped database.

The files under tests/fixtures/upstream/auth/ are upstream's, unmodified (see SOURCE there).
GoTrue's `migrate` command (cmd/migrate_cmd.go) hands them to gobuffalo/pop v6.1.1; the
runner below does what pop's Migrator.UpTo does with them, so that the SQL meets the
database exactly as GoTrue sends it:

- pop's `exec` first makes the migration table when `select * from schema_migrations`
  fails: fizz's Postgres rendering of newSchemaMigrations (version VARCHAR(14), primary key,
  unique index), unqualified, so it lands in the login role's search_path (`auth`).
- file names match `^(\\d+)_([^.]+)(\\.[a-z0-9]+)?\\.(up|down)\\.(sql|fizz)$`; up migrations
  are sorted by the version string;
- a version already in schema_migrations is skipped; each other one runs in its own
  transaction, rendered as a Go text/template with the connection details (the only
  template construct the files use is `{{ index .Options "Namespace" }}`, GoTrue's
  GOTRUE_DB_NAMESPACE, default `auth`), followed by `insert into schema_migrations`.

It connects as the manifest's GOTRUE_DB_DATABASE_URL says (user, sslmode, application_name
added by GoTrue), with the password as ESO renders it into that URL.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.integration.conftest import bootstrapped_database

MIGRATIONS = Path(__file__).resolve().parents[1] / "fixtures" / "upstream" / "auth" / "migrations"
_POP_FILE = re.compile(r"^(\d+)_([^.]+)(\.[a-z0-9]+)?\.(up|down)\.(sql|fizz)$")
_NAMESPACE_TEMPLATE = re.compile(r'\{\{\s*index \.Options "Namespace"\s*\}\}')
NAMESPACE = "auth"  # GOTRUE_DB_NAMESPACE's default; the manifest leaves it unset
DBNAME = "auth_runtime"

_SCHEMA_MIGRATIONS_DDL = (
    'CREATE TABLE "schema_migrations" (\n"version" VARCHAR (14) NOT NULL,\nPRIMARY KEY("version")\n);\n'
    'CREATE UNIQUE INDEX "schema_migrations_version_idx" ON "schema_migrations" (version);'
)


@dataclass(frozen=True)
class PopMigration:
    version: str
    name: str
    path: Path

    def render(self) -> str:
        sql = _NAMESPACE_TEMPLATE.sub(NAMESPACE, self.path.read_text(encoding="utf-8"))
        assert "{{" not in sql, f"{self.path.name}: template construct this runner does not render"
        return sql


def up_migrations() -> list[PopMigration]:
    found = []
    for path in MIGRATIONS.iterdir():
        match = _POP_FILE.match(path.name)
        if match and match.group(4) == "up":
            found.append(PopMigration(version=match.group(1), name=match.group(2), path=path))
    return sorted(found, key=lambda m: m.version)


def pop_up(conninfo: str) -> list[str]:
    """pop Migrator.UpTo(0): the versions it applied."""
    applied = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        try:
            conn.execute("select * from schema_migrations")
        except psycopg.errors.UndefinedTable:
            with conn.transaction():
                conn.execute(_SCHEMA_MIGRATIONS_DDL)
        for migration in up_migrations():
            if conn.execute(
                "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = %s)", (migration.version,)
            ).fetchone()[0]:
                continue
            with conn.transaction():
                sql = migration.render()
                if sql.strip():
                    conn.execute(sql.encode())
                conn.execute(f"insert into schema_migrations (version) values ('{migration.version}')".encode())
            applied.append(migration.version)
    return applied


@pytest.fixture(scope="module")
def auth_db(postgres_server, service_db):
    passwords = bootstrapped_database(postgres_server, DBNAME)
    url = service_db("auth", "GOTRUE_DB_DATABASE_URL")
    conninfo = url.conninfo(postgres_server, passwords, DBNAME) + "&application_name=auth_migrations"
    first = pop_up(conninfo)
    second = pop_up(conninfo)
    return url, conninfo, passwords, first, second


def test_migrations_run_as_the_manifests_role_over_tls(auth_db, report):
    url, conninfo, _, first, second = auth_db
    assert url.user == "supabase_auth_admin" and url.sslmode == "require"
    assert len(first) == len(up_migrations()) > 60
    assert second == []
    with psycopg.connect(conninfo) as conn:
        assert conn.execute("SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (
            "supabase_auth_admin",
            True,
        )
        recorded = {r[0] for r in conn.execute("SELECT version FROM auth.schema_migrations").fetchall()}
    assert recorded == {m.version for m in up_migrations()}
    report(
        "supabase runtime: auth",
        f"{len(first)} GoTrue v2.189.0 migrations applied by a pop-faithful runner as {url.user} "
        f"(sslmode={url.sslmode}); rerun applied {len(second)}; sign-up insert and RLS-side helpers tried",
    )


def test_auth_objects_are_owned_by_supabase_auth_admin(postgres_server, auth_db):
    with psycopg.connect(postgres_server.conninfo(dbname=DBNAME)) as conn:
        owners = dict(
            conn.execute(
                "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c "
                "WHERE c.relnamespace = 'auth'::regnamespace AND c.relkind IN ('r', 'p')"
            ).fetchall()
        )
        outside = conn.execute(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE pg_get_userbyid(c.relowner) = 'supabase_auth_admin' AND n.nspname NOT IN ('auth', 'pg_toast')"
        ).fetchall()
    for table in (
        "users",
        "identities",
        "sessions",
        "refresh_tokens",
        "mfa_factors",
        "schema_migrations",
        "audit_log_entries",
        "flow_state",
        "sso_providers",
        "one_time_tokens",
    ):
        assert owners[table] == "supabase_auth_admin", table
    assert set(owners.values()) == {"supabase_auth_admin"}
    assert outside == []


def test_sign_up_like_insert_and_jwt_helpers(auth_db):
    _, conninfo, _, _, _ = auth_db
    user_id = uuid.uuid4()
    with psycopg.connect(conninfo) as conn:
        # What GoTrue's signup writes first (models.NewUser + Identity), unqualified names
        # resolving through the role's search_path as GoTrue's do. GoTrue hashes passwords
        # in Go, so no database function is involved; any bcrypt-shaped text stands in.
        conn.execute(
            "INSERT INTO users (instance_id, id, aud, role, email, encrypted_password, raw_app_meta_data, "
            "raw_user_meta_data, created_at, updated_at, is_sso_user, is_anonymous) VALUES "
            "('00000000-0000-0000-0000-000000000000', %s, 'authenticated', 'authenticated', 'new@example.com', "
            "%s, '{\"provider\":\"email\"}', '{}', now(), now(), false, false)",
            (user_id, "$2a$10$" + "x" * 53),
        )
        conn.execute(
            "INSERT INTO identities (provider_id, user_id, identity_data, provider, created_at, updated_at) "
            "VALUES (%s, %s, %s, 'email', now(), now())",
            (str(user_id), user_id, f'{{"sub":"{user_id}","email":"new@example.com"}}'),
        )
        # identities.email is generated from identity_data by an upstream migration.
        row = conn.execute(
            "SELECT u.email, i.email FROM users u JOIN identities i ON i.user_id = u.id WHERE u.id = %s", (user_id,)
        ).fetchone()
        assert row == ("new@example.com", "new@example.com")
        conn.execute(
            "SELECT set_config('request.jwt.claims', %s, true)", (f'{{"sub":"{user_id}","role":"authenticated"}}',)
        )
        assert conn.execute("SELECT auth.uid(), auth.role()").fetchone() == (user_id, "authenticated")
        conn.rollback()


def test_api_roles_call_auth_helpers_but_cannot_read_users(postgres_server, auth_db):
    _, _, passwords, _, _ = auth_db
    with psycopg.connect(
        postgres_server.conninfo(user="authenticator", password=passwords["authenticator"], dbname=DBNAME)
    ) as conn:
        conn.execute("SET LOCAL ROLE authenticated")
        conn.execute(
            "SELECT set_config('request.jwt.claims', '{\"sub\":\"00000000-0000-0000-0000-000000000001\"}', true)"
        )
        assert str(conn.execute("SELECT auth.uid()").fetchone()[0]) == "00000000-0000-0000-0000-000000000001"
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM auth.users")
