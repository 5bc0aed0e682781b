"""Storage API's own tenant migrations (supabase/storage at the pinned image's tag), then its
request path as anon, authenticated and service_role.

Fixtures under tests/fixtures/upstream/storage/ are upstream's files, unmodified (see SOURCE).
The migrator below follows storage's src/internal/database/migrations/migrate.ts
(`runMigrationsOnTenant` -> `connectAndMigrate` -> `runMigrations`) around the npm package
postgres-migrations 5.3.0 it uses:

- connect with startup option `-c search_path=storage,public,extensions` (pool.ts
  `searchPath`, DB_SEARCH_PATH unset), `SET statement_timeout TO '12h'`, then
  `pg_try_advisory_lock(-8525285245963000605)`;
- `SET search_path TO storage,public,extensions`; if `storage.migrations` exists, read the
  applied rows, else `CREATE SCHEMA IF NOT EXISTS storage` when missing;
- postgres-migrations' loadMigrationFiles: its own `0_create-migrations-table.sql` first,
  ids consecutive, hash = sha1(file name + contents); validateMigrationHashes refuses a
  changed file that already ran;
- before the first pending migration, the `storage.*` settings (set_config, session-wide)
  from storage's config: DB_INSTALL_ROLES as the manifest sets it, roles and DB_SUPER_USER
  at their defaults;
- each pending migration: START TRANSACTION, the file, INSERT INTO migrations (id, name,
  hash), COMMIT; a file marked `-- postgres-migrations disable-transaction` (CREATE INDEX
  CONCURRENTLY) runs outside one, as a single simple-protocol query like node-postgres sends.

The per-request part copies TenantConnection (connection.ts): a transaction on the pooled
URL's login, `set_config('search_path', ...)`, then `setScope`'s set_config('role', ...),
request.jwt.* settings, all transaction-local.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.integration.conftest import bootstrapped_database

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "upstream" / "storage"
SEARCH_PATH = ("storage", "public", "extensions")
ADVISORY_LOCK = -8525285245963000605
DBNAME = "storage_runtime"
_FILE = re.compile(r"^(\d+)[-_](.+)\.sql$")
_DISABLE_TRANSACTION = "-- postgres-migrations disable-transaction"
_IGNORE = "-- postgres-migrations ignore"


@dataclass(frozen=True)
class Migration:
    id: int
    name: str
    file_name: str
    sql: str

    @property
    def hash(self) -> str:
        return hashlib.sha1((self.file_name + self.sql).encode()).hexdigest()


def load_migrations() -> list[Migration]:
    paths = [
        FIXTURES / "postgres-migrations" / "0_create-migrations-table.sql",
        *sorted((FIXTURES / "migrations" / "tenant").glob("*.sql")),
    ]
    found = []
    for path in paths:
        match = _FILE.match(path.name)
        found.append(
            Migration(
                id=int(match.group(1)), name=match.group(2), file_name=path.name, sql=path.read_text(encoding="utf-8")
            )
        )
    found.sort(key=lambda m: m.id)
    assert [m.id for m in found] == list(range(len(found))), "postgres-migrations: ids must be consecutive"
    return found


def storage_settings(manifest_env: dict[str, str]) -> dict[str, str]:
    return {
        "storage.install_roles": manifest_env.get("DB_INSTALL_ROLES", "false"),
        "storage.multitenant": "false",
        "storage.anon_role": manifest_env.get("DB_ANON_ROLE", "anon"),
        "storage.authenticated_role": manifest_env.get("DB_AUTHENTICATED_ROLE", "authenticated"),
        "storage.service_role": manifest_env.get("DB_SERVICE_ROLE", "service_role"),
        "storage.super_user": manifest_env.get("DB_SUPER_USER", "postgres"),
        "storage.iceberg_default_shard": "",
        "storage.iceberg_shards": "{}",
        "storage.vector_bucket_provider": manifest_env.get("VECTOR_BUCKET_PROVIDER", "s3"),
    }


def run_tenant_migrations(conninfo: str, settings: dict[str, str]) -> list[str]:
    intended = load_migrations()
    done = []
    options = f"-c search_path={','.join(SEARCH_PATH)}"
    with psycopg.connect(conninfo, options=options, autocommit=True) as conn:
        conn.execute("SET statement_timeout TO '12h'")
        assert conn.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_LOCK,)).fetchone()[0]
        try:
            conn.execute(f"SET search_path TO {','.join(SEARCH_PATH)}")
            exists = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                "ON n.oid = c.relnamespace WHERE c.relname = 'migrations' AND c.relkind = 'r' "
                "AND n.nspname = 'storage')"
            ).fetchone()[0]
            applied: dict[int, str] = {}
            if exists:
                applied = dict(
                    conn.execute(
                        "SELECT id, hash FROM migrations WHERE id <= %s ORDER BY id", (intended[-1].id,)
                    ).fetchall()
                )
            elif not conn.execute(
                "SELECT EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = 'storage')"
            ).fetchone()[0]:
                conn.execute("CREATE SCHEMA IF NOT EXISTS storage")
            changed = [m.file_name for m in intended if m.id in applied and applied[m.id] != m.hash]
            assert not changed, f"postgres-migrations: hashes don't match for {changed}"
            pending = [m for m in intended if m.id not in applied]
            if pending:
                conn.execute(
                    "SELECT " + ", ".join("set_config(%s, %s, false)" for _ in settings),
                    [v for kv in settings.items() for v in kv],
                )
            for migration in pending:
                sql = "SELECT 1;" if _IGNORE in migration.sql else migration.sql
                with conn.transaction() if _DISABLE_TRANSACTION not in sql else nullcontext():
                    conn.execute(sql.encode())
                    conn.execute(
                        'INSERT INTO migrations ("id", "name", "hash") VALUES (%s, %s, %s)',
                        (migration.id, migration.name, migration.hash),
                    )
                done.append(migration.file_name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK,))
    return done


@pytest.fixture(scope="module")
def storage_db(postgres_server, service_db, manifest_env):
    passwords = bootstrapped_database(postgres_server, DBNAME)
    migration_url = service_db("storage", "DATABASE_URL")
    pool_url = service_db("storage", "DATABASE_POOL_URL")
    settings = storage_settings(manifest_env("storage"))
    first = run_tenant_migrations(migration_url.conninfo(postgres_server, passwords, DBNAME), settings)
    second = run_tenant_migrations(migration_url.conninfo(postgres_server, passwords, DBNAME), settings)
    return migration_url, pool_url, passwords, first, second


def request(conn: psycopg.Connection, role: str, sub: str | None) -> None:
    """TenantConnection.transaction() + setScope() for one request."""
    payload = {"role": role, **({"sub": sub} if sub else {})}
    conn.execute("SELECT set_config('search_path', %s, true)", (", ".join(SEARCH_PATH),))
    conn.execute(
        "SELECT set_config('role', %s, true), set_config('request.jwt.claim.role', %s, true), "
        "set_config('request.jwt', %s, true), set_config('request.jwt.claim.sub', %s, true), "
        "set_config('request.jwt.claims', %s, true), set_config('request.headers', %s, true), "
        "set_config('request.method', %s, true), set_config('request.path', %s, true), "
        "set_config('storage.operation', %s, true), set_config('storage.allow_delete_query', 'true', true)",
        (role, role, "", sub or "", json.dumps(payload), "{}", "POST", "/object/avatars/x", "storage.object.upload"),
    )


def test_migrations_run_as_the_manifests_role(storage_db, report):
    migration_url, pool_url, _, first, second = storage_db
    assert migration_url.user == pool_url.user == "supabase_storage_admin"
    assert migration_url.sslmode in {"require", "verify-ca", "verify-full"}
    assert first == [m.file_name for m in load_migrations()]
    assert second == []
    report(
        "supabase runtime: storage",
        f"{len(first)} migrations (postgres-migrations table + storage v1.60.4 tenant) applied as "
        f"{migration_url.user} (sslmode={migration_url.sslmode}), rerun applied {len(second)} with hash check; "
        "requests: upload+list as authenticated (own rows), anon (refused/empty), service_role (all rows)",
    )


def test_storage_objects_owned_and_protected(postgres_server, storage_db):
    with psycopg.connect(postgres_server.conninfo(dbname=DBNAME)) as conn:
        rows = {
            name: (owner, rls)
            for name, owner, rls in conn.execute(
                "SELECT relname, pg_get_userbyid(relowner), relrowsecurity FROM pg_class "
                "WHERE relnamespace = 'storage'::regnamespace AND relname IN ('objects', 'buckets', 'migrations')"
            ).fetchall()
        }
    assert rows["objects"] == ("supabase_storage_admin", True)
    assert rows["buckets"][0] == "supabase_storage_admin"
    assert rows["migrations"][0] == "supabase_storage_admin"


def test_request_path_switches_roles_and_rls_decides(postgres_server, storage_db):
    _, pool_url, passwords, _, _ = storage_db
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    # A project's policy, written the way Studio's storage policy editor does it, by the
    # master (which administers supabase_storage_admin, the tables' owner).
    with psycopg.connect(postgres_server.conninfo(dbname=DBNAME), autocommit=True) as conn:
        conn.execute(
            "CREATE POLICY own_objects ON storage.objects FOR ALL TO authenticated "
            "USING (bucket_id = 'avatars' AND owner_id = current_setting('request.jwt.claims', true)::json->>'sub') "
            "WITH CHECK (bucket_id = 'avatars' AND owner_id = current_setting('request.jwt.claims', true)::json->>'sub')"
        )

    with psycopg.connect(pool_url.conninfo(postgres_server, passwords, DBNAME)) as conn:
        with conn.transaction():
            request(conn, "service_role", None)
            assert conn.execute("SELECT current_user").fetchone()[0] == "service_role"
            conn.execute("INSERT INTO buckets (id, name, public) VALUES ('avatars', 'avatars', false)")
        for owner in (alice, bob):
            with conn.transaction():
                request(conn, "authenticated", owner)
                assert conn.execute("SELECT current_user").fetchone()[0] == "authenticated"
                conn.execute(
                    "INSERT INTO objects (bucket_id, name, owner_id, metadata) VALUES ('avatars', %s, %s, '{}')",
                    (f"{owner}/face.png", owner),
                )
        with conn.transaction():
            request(conn, "authenticated", alice)
            assert conn.execute("SELECT name FROM objects").fetchall() == [(f"{alice}/face.png",)]
        with conn.transaction():
            request(conn, "anon", None)
            assert conn.execute("SELECT count(*) FROM objects").fetchone()[0] == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"), conn.transaction():
            request(conn, "anon", None)
            conn.execute("INSERT INTO objects (bucket_id, name, metadata) VALUES ('avatars', 'anon.png', '{}')")
        with conn.transaction():
            request(conn, "service_role", None)
            assert conn.execute("SELECT count(*) FROM objects").fetchone()[0] == 2
        # Transaction-local: the next transaction is the login role again.
        assert conn.execute("SELECT current_user").fetchone()[0] == "supabase_storage_admin"


def test_storage_admin_switches_only_to_api_roles(postgres_server, storage_db):
    _, pool_url, passwords, _, _ = storage_db
    with psycopg.connect(pool_url.conninfo(postgres_server, passwords, DBNAME)) as conn:
        for forbidden in ("supabase_admin", "supabase_auth_admin", "authenticator", "postgres"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute("SELECT set_config('role', %s, true)", (forbidden,))
