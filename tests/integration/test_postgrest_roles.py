"""What one PostgREST 14 request does in the database, as the manifest's login.

PostgREST opens a transaction per request and makes every request setting transaction-scoped
with set_config(..., true): the role from the JWT's `role` claim (PGRST_DB_ANON_ROLE without
a JWT), `request.jwt.claims`, `request.method`, `request.path`, `request.headers`,
`search_path` from PGRST_DB_SCHEMAS (https://docs.postgrest.org/en/v14/references/transactions.html,
https://docs.postgrest.org/en/v14/references/auth.html). Everything is gone at COMMIT, so a
pooled connection (PgBouncer, transaction mode) carries nothing to the next request.

Schema cache reload: the manifest turns the LISTEN channel off (PGRST_DB_CHANNEL_ENABLED=false,
LISTEN does not survive transaction pooling), so no `NOTIFY pgrst` event trigger is installed;
a schema change is picked up by restarting the Deployment
(https://docs.postgrest.org/en/v14/references/schema_cache.html).
"""

from __future__ import annotations

import json

import psycopg
import pytest

from tests.integration.conftest import bootstrapped_database

DBNAME = "rest_runtime"


@pytest.fixture(scope="module")
def rest_db(postgres_server, service_db, manifest_env):
    passwords = bootstrapped_database(postgres_server, DBNAME)
    url = service_db("rest", "PGRST_DB_URI")
    env = manifest_env("rest")
    with psycopg.connect(postgres_server.conninfo(dbname=DBNAME), autocommit=True) as conn:
        # A project's table as the dashboard creates it: RLS on, one owner-only policy.
        conn.execute("CREATE TABLE public.todos (id int PRIMARY KEY, owner text NOT NULL, task text)")
        conn.execute("ALTER TABLE public.todos ENABLE ROW LEVEL SECURITY")
        conn.execute(
            "CREATE POLICY own_todos ON public.todos TO authenticated "
            "USING (owner = current_setting('request.jwt.claims', true)::json->>'sub') "
            "WITH CHECK (owner = current_setting('request.jwt.claims', true)::json->>'sub')"
        )
        conn.execute("INSERT INTO public.todos VALUES (1, 'alice', 'a'), (2, 'bob', 'b')")
    return url, env, url.conninfo(postgres_server, passwords, DBNAME)


def impersonated_role_settings(conn: psycopg.Connection) -> dict[str, list[tuple[str, str]]]:
    """What PostgREST reads into its config cache: the `ALTER ROLE ... SET` values of every
    role the login is a member of; ALTER ROLE settings apply only at login, so PostgREST
    applies them itself after switching role
    (https://docs.postgrest.org/en/v14/references/transactions.html#impersonated-role-settings)."""
    rows = conn.execute(
        "SELECT r.rolname, unnest(r.rolconfig) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
        "WHERE m.member = current_user::regrole"
    ).fetchall()
    settings: dict[str, list[tuple[str, str]]] = {}
    for role, setting in rows:
        name, _, value = setting.partition("=")
        settings.setdefault(role, []).append((name, value))
    conn.rollback()
    return settings


def pgrst_request(
    conn: psycopg.Connection, env: dict[str, str], claims: dict | None, sql: str, method: str = "GET"
) -> list[tuple]:
    role = (claims or {}).get("role", env["PGRST_DB_ANON_ROLE"])
    role_settings = impersonated_role_settings(conn).get(role, [])
    with conn.transaction():
        for name, value in role_settings:
            conn.execute("SELECT set_config(%s, %s, true)", (name, value))
        conn.execute(
            "SELECT set_config('search_path', %s, true), set_config('role', %s, true), "
            "set_config('request.jwt.claims', %s, true), set_config('request.method', %s, true), "
            "set_config('request.path', '/todos', true), set_config('request.headers', '{}', true)",
            (env["PGRST_DB_SCHEMAS"].replace(",", ", "), role, json.dumps(claims or {"role": role}), method),
        )
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else []


def test_requests_as_each_role(rest_db, report):
    url, env, conninfo = rest_db
    assert url.user == "authenticator"
    with psycopg.connect(conninfo) as conn:
        assert pgrst_request(conn, env, None, "SELECT current_user, id FROM todos") == []
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            pgrst_request(conn, env, None, "INSERT INTO todos VALUES (3, 'anon', 'x')", "POST")
        alice = {"role": "authenticated", "sub": "alice"}
        assert pgrst_request(conn, env, alice, "SELECT current_user, id FROM todos") == [("authenticated", 1)]
        pgrst_request(conn, env, alice, "INSERT INTO todos VALUES (3, 'alice', 'c')", "POST")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            pgrst_request(conn, env, alice, "INSERT INTO todos VALUES (4, 'bob', 'forged')", "POST")
        service = {"role": "service_role"}
        assert [r[0] for r in pgrst_request(conn, env, service, "SELECT id FROM todos ORDER BY id")] == [1, 2, 3]
        # Transaction-scoped: the pooled connection is back to the NOINHERIT login.
        assert conn.execute("SELECT current_user, current_setting('request.jwt.claims', true)").fetchone() == (
            "authenticator",
            "",
        )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM public.todos")
    report(
        "supabase runtime: rest",
        f"as {url.user}: set_config role/request.jwt.claims per transaction (PostgREST v14) for anon "
        "(0 rows, insert refused), authenticated (own rows, forged owner refused), service_role (all rows); "
        "schema reload by restart (PGRST_DB_CHANNEL_ENABLED=false)",
    )


def test_statement_timeouts_follow_the_switched_role(rest_db):
    _, env, conninfo = rest_db
    with psycopg.connect(conninfo) as conn:
        assert pgrst_request(conn, env, None, "SHOW statement_timeout") == [("3s",)]
        assert pgrst_request(conn, env, {"role": "authenticated"}, "SHOW statement_timeout") == [("8s",)]


def test_jwt_role_outside_the_api_roles_is_refused(rest_db):
    _, env, conninfo = rest_db
    with psycopg.connect(conninfo) as conn:
        for forged in ("supabase_admin", "supabase_auth_admin", "postgres", "dashboard_user"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                pgrst_request(conn, env, {"role": forged}, "SELECT 1")


def test_schema_reload_needs_no_event_trigger(rest_db, postgres_server):
    _, env, _ = rest_db
    assert env["PGRST_DB_CHANNEL_ENABLED"] == "false"
    with psycopg.connect(postgres_server.conninfo(dbname=DBNAME)) as conn:
        assert conn.execute("SELECT count(*) FROM pg_event_trigger").fetchone()[0] == 0
