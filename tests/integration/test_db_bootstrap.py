"""database/bootstrap.sql applied to a real PostgreSQL by a non-superuser master, twice.

psql gets exactly the arguments the Kubernetes Job gets (bootstrap.psql_args), with
`$(VAR)` expanded from the environment the way the kubelet does it.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

import psycopg
import pytest

from database.bootstrap import psql_args
from database.roles import DATABASE_LOGIN_ROLES, LOGIN_ROLES
from tests.integration.conftest import apply_bootstrap, make_passwords


@dataclass(frozen=True)
class Applied:
    passwords: dict[str, str]
    runs: list[subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def applied(postgres_server) -> Applied:
    passwords = make_passwords("first")
    first = apply_bootstrap(postgres_server, passwords)
    assert first.returncode == 0, first.stderr
    passwords = make_passwords("second")
    second = apply_bootstrap(postgres_server, passwords)
    assert second.returncode == 0, second.stderr
    return Applied(passwords=passwords, runs=[first, second])


@pytest.fixture(scope="module")
def master(postgres_server, applied):
    with psycopg.connect(postgres_server.conninfo(), autocommit=True) as conn:
        yield conn


def connect(server, role: str, password: str) -> psycopg.Connection:
    return psycopg.connect(server.conninfo(user=role, password=password), autocommit=True)


def test_applies_twice_without_errors(applied):
    for run in applied.runs:
        assert "ERROR" not in run.stderr


def test_psql_args_pass_every_database_role_password_from_env():
    args = psql_args("/bootstrap/bootstrap.sql")
    assert "--single-transaction" in args and "--set=ON_ERROR_STOP=1" in args
    for role in DATABASE_LOGIN_ROLES:
        assert f"{role.name}_password=$({role.name.upper()}_PASSWORD)" in args
    assert not any("pgbouncer_password" in a for a in args)
    assert {r.name for r in LOGIN_ROLES} - {r.name for r in DATABASE_LOGIN_ROLES} == {"pgbouncer"}


@pytest.mark.parametrize(
    ("role", "login", "inherit"),
    [
        ("anon", False, False),
        ("authenticated", False, False),
        ("service_role", False, False),
        ("postgres", False, True),
        ("authenticator", True, False),
        ("supabase_auth_admin", True, False),
        ("supabase_storage_admin", True, False),
        ("supabase_functions_admin", True, False),
        ("supabase_replication_admin", True, False),
        ("supabase_read_only_user", True, True),
        ("dashboard_user", True, True),
    ],
)
def test_role_attributes(master, role, login, inherit):
    row = master.execute(
        "SELECT rolcanlogin, rolinherit, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = %s", (role,)
    ).fetchone()
    assert row == (login, inherit, False, False)


def test_bootstrap_creates_no_replication_role(master):
    # RDS refuses `CREATE ROLE ... REPLICATION` to its master (replication goes through
    # rds_replication); the harness's master carries the attribute only to stand in for that
    # membership, so this guards what it cannot refuse.
    rows = master.execute(
        "SELECT rolname FROM pg_roles WHERE rolreplication AND rolname NOT IN ('supabase_admin', 'rdsadmin')"
    ).fetchall()
    assert rows == []


def test_only_service_role_and_read_only_user_can_bypass_rls(master):
    rows = master.execute(
        "SELECT rolname FROM pg_roles WHERE rolbypassrls AND rolname NOT IN ('supabase_admin', 'rdsadmin')"
    ).fetchall()
    assert {r[0] for r in rows} <= {"service_role", "supabase_read_only_user"}


def test_memberships(master):
    def members_of(role: str) -> set[str]:
        rows = master.execute(
            "SELECT m.rolname FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid "
            "JOIN pg_roles m ON m.oid = a.member WHERE r.rolname = %s",
            (role,),
        ).fetchall()
        return {r[0] for r in rows}

    def can_set(role: str) -> set[str]:
        rows = master.execute(
            "SELECT pg_get_userbyid(member) FROM pg_auth_members WHERE roleid = %s::regrole AND set_option", (role,)
        ).fetchall()
        return {r[0] for r in rows}

    for api_role in ("anon", "authenticated", "service_role"):
        # Exactly the services that act as the caller's role: PostgREST, Storage, and
        # Realtime (which connects as the master).
        assert can_set(api_role) == {"authenticator", "supabase_storage_admin", "supabase_admin"}
    assert members_of("rds_replication") >= {"supabase_replication_admin"}
    assert "supabase_read_only_user" in members_of("pg_monitor")
    granted_to_authenticator = master.execute(
        "SELECT r.rolname FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid "
        "WHERE a.member = 'authenticator'::regrole"
    ).fetchall()
    assert {r[0] for r in granted_to_authenticator} == {"anon", "authenticated", "service_role"}


def test_schema_owners(master):
    rows = dict(
        master.execute(
            "SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace "
            "WHERE nspname IN ('extensions', 'auth', 'storage', '_realtime', 'graphql_public')"
        ).fetchall()
    )
    assert rows == {
        "extensions": "supabase_admin",
        "auth": "supabase_auth_admin",
        "storage": "supabase_storage_admin",
        "_realtime": "supabase_admin",
        "graphql_public": "supabase_admin",
    }


def test_extensions_in_extensions_schema(master, postgres_server, applied):
    rows = dict(master.execute("SELECT extname, extnamespace::regnamespace::text FROM pg_extension").fetchall())
    assert rows["uuid-ossp"] == "extensions"
    assert rows["pgcrypto"] == "extensions"
    # Untrusted, not superuser, not on RDS: skipped rather than failing the run.
    assert "pg_stat_statements" not in rows
    with connect(postgres_server, "authenticator", applied.passwords["authenticator"]) as conn:
        conn.execute("SET ROLE authenticated")
        assert len(conn.execute("SELECT extensions.gen_random_uuid()::text").fetchone()[0]) == 36


def test_schema_usage_grants(master):
    for role in ("anon", "authenticated", "service_role"):
        for schema in ("public", "graphql_public", "storage", "extensions"):
            assert master.execute("SELECT has_schema_privilege(%s, %s, 'USAGE')", (role, schema)).fetchone()[0], (
                role,
                schema,
            )
        assert not master.execute("SELECT has_schema_privilege(%s, 'public', 'CREATE')", (role,)).fetchone()[0]
        assert not master.execute("SELECT has_schema_privilege(%s, '_realtime', 'USAGE')", (role,)).fetchone()[0]


def test_tables_created_later_are_granted_and_rls_still_filters(master, postgres_server, applied):
    master.execute("CREATE TABLE public.notes (id int PRIMARY KEY, visible boolean NOT NULL)")
    master.execute("ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY")
    master.execute("CREATE POLICY notes_visible ON public.notes FOR SELECT TO authenticated USING (visible)")
    master.execute("INSERT INTO public.notes VALUES (1, true), (2, false)")
    master.execute("SET ROLE postgres")
    master.execute("CREATE TABLE public.made_by_postgres (id int)")
    master.execute("RESET ROLE")

    with connect(postgres_server, "authenticator", applied.passwords["authenticator"]) as conn:
        # NOINHERIT: nothing until PostgREST switches role.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM public.notes")
        conn.execute("SET ROLE authenticated")
        assert conn.execute("SELECT id FROM public.notes").fetchall() == [(1,)]
        conn.execute("SELECT * FROM public.made_by_postgres")
        conn.execute("SET ROLE anon")
        assert conn.execute("SELECT id FROM public.notes").fetchall() == []
        conn.execute("SELECT * FROM public.made_by_postgres")


def test_api_roles_cannot_read_auth_tables(postgres_server, applied):
    # As GoTrue's migrations do: unqualified names land in auth through the role's search_path.
    with connect(postgres_server, "supabase_auth_admin", applied.passwords["supabase_auth_admin"]) as conn:
        conn.execute("CREATE TABLE users (id uuid PRIMARY KEY, encrypted_password text)")
        assert (
            conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'auth' AND tablename = 'users'").fetchone()[
                0
            ]
            == 1
        )
    with connect(postgres_server, "authenticator", applied.passwords["authenticator"]) as conn:
        for role in ("anon", "authenticated"):
            conn.execute(f"SET ROLE {role}")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT * FROM auth.users")
            conn.execute("RESET ROLE")
    with connect(postgres_server, "dashboard_user", applied.passwords["dashboard_user"]) as conn:
        assert conn.execute("SELECT count(*) FROM auth.users").fetchone()[0] == 0


def test_authenticator_switches_only_to_api_roles(postgres_server, applied):
    with connect(postgres_server, "authenticator", applied.passwords["authenticator"]) as conn:
        for role in ("anon", "authenticated", "service_role"):
            conn.execute(f"SET ROLE {role}")
            assert conn.execute("SELECT current_user").fetchone()[0] == role
            conn.execute("RESET ROLE")
        for forbidden in ("supabase_admin", "supabase_auth_admin", "dashboard_user"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SET ROLE {forbidden}")


def test_publication_for_realtime(master):
    assert master.execute("SELECT count(*) FROM pg_publication WHERE pubname = 'supabase_realtime'").fetchone()[0] == 1


def test_statement_timeouts_and_search_paths(master):
    rows = dict(
        master.execute(
            "SELECT r.rolname, s.setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole "
            "WHERE s.setdatabase = 0"
        ).fetchall()
    )
    assert "statement_timeout=3s" in rows["anon"]
    assert "statement_timeout=8s" in rows["authenticated"]
    assert "search_path=auth" in rows["supabase_auth_admin"]
    assert "search_path=storage" in rows["supabase_storage_admin"]


def test_every_login_role_logs_in_with_its_password(postgres_server, applied):
    for role in DATABASE_LOGIN_ROLES:
        with connect(postgres_server, role.name, applied.passwords[role.name]) as conn:
            assert conn.execute("SELECT current_user").fetchone()[0] == role.name
        with pytest.raises(psycopg.OperationalError):
            connect(postgres_server, role.name, "not-" + applied.passwords[role.name]).close()


def test_database_search_path_reaches_extensions(postgres_server, applied):
    with connect(postgres_server, "supabase_read_only_user", applied.passwords["supabase_read_only_user"]) as conn:
        assert "extensions" in conn.execute("SHOW search_path").fetchone()[0]
        assert len(conn.execute("SELECT uuid_generate_v4()::text").fetchone()[0]) == 36


def test_missing_password_aborts_and_changes_nothing(postgres_server, applied):
    broken = dict(make_passwords("third"))
    del broken["dashboard_user"]  # its env var is absent: the kubelet leaves "$(DASHBOARD_USER_PASSWORD)"
    run = apply_bootstrap(postgres_server, broken)
    assert run.returncode != 0
    assert "password for dashboard_user is missing" in run.stderr
    # One transaction: the passwords set before the failure were rolled back too.
    with connect(postgres_server, "authenticator", applied.passwords["authenticator"]) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_service_role_bypasses_rls(postgres_server, applied):
    """service_role sees every row: the master's own run gives BYPASSRLS (PostgreSQL 16+)."""
    with psycopg.connect(postgres_server.conninfo(), autocommit=True) as conn:
        flags = dict(
            conn.execute(
                "SELECT rolname, rolbypassrls FROM pg_roles WHERE rolname IN ('service_role', 'supabase_read_only_user')"
            ).fetchall()
        )
        assert flags == {"service_role": True, "supabase_read_only_user": True}
        owner = conn.execute(
            "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'extensions'"
        ).fetchone()[0]
        assert owner == "supabase_admin"
    with connect(postgres_server, "authenticator", applied.passwords["authenticator"]) as conn:
        conn.execute("SET ROLE service_role")
        assert sorted(conn.execute("SELECT id FROM public.notes").fetchall()) == [(1,), (2,)]


def test_exporter_role_reads_other_sessions_statistics(postgres_server, applied):
    """pg_monitor takes effect for the exporter's login: another role's query text in
    pg_stat_activity reads as '<insufficient privilege>' without it (or without INHERIT)."""
    with psycopg.connect(postgres_server.conninfo(), autocommit=True) as other:
        other.execute("SELECT 'exporter-visibility-marker'")
        pid = other.info.backend_pid
        with connect(postgres_server, "supabase_read_only_user", applied.passwords["supabase_read_only_user"]) as conn:
            query = conn.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0]
            assert "exporter-visibility-marker" in query
            assert conn.execute("SELECT current_setting('data_directory')").fetchone()[0]


# What RDS refuses its master must be refused here too, or a bootstrap that passes these
# tests could still fail on RDS. Sources are in tests/integration/conftest.py's docstring.
@pytest.mark.parametrize(
    "statement",
    [
        "CREATE ROLE rds_test_su SUPERUSER",
        "ALTER ROLE supabase_admin SUPERUSER",
        # Predefined roles rds_superuser does not administer.
        "GRANT pg_read_server_files TO dashboard_user",
        "GRANT pg_write_server_files TO dashboard_user",
        "GRANT pg_execute_server_program TO dashboard_user",
        "GRANT pg_read_all_data TO dashboard_user",
        "GRANT pg_write_all_data TO dashboard_user",
        # Superuser-only parameters, per session or per role (RDS: parameter group only).
        "SET log_min_messages = 'debug1'",
        "SET log_statement = 'all'",
        "ALTER ROLE anon SET log_min_messages = 'debug1'",
        "ALTER SYSTEM SET log_min_messages = 'debug1'",
        "COPY (SELECT 1) TO PROGRAM 'true'",
        "SELECT pg_read_file('postgresql.conf')",
        "SELECT rolpassword FROM pg_authid",
    ],
)
def test_master_is_refused_what_rds_refuses(master, statement):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        master.execute(statement)


def test_master_grants_only_what_rds_superuser_administers(master):
    # pg_monitor and rds_replication are what the bootstrap hands out; both come through
    # rds_superuser's ADMIN OPTION, not from the master's own role.
    rows = dict(
        master.execute(
            "SELECT pg_get_userbyid(roleid), admin_option FROM pg_auth_members WHERE member = 'rds_superuser'::regrole"
        ).fetchall()
    )
    assert rows == {"pg_monitor": True, "pg_signal_backend": True, "rds_replication": True, "rds_password": True}
    master.execute("CREATE ROLE rds_test_monitor NOLOGIN")
    try:
        master.execute("GRANT pg_monitor, pg_signal_backend TO rds_test_monitor")
    finally:
        master.execute("DROP ROLE rds_test_monitor")


def test_createrole_on_16_gives_admin_not_membership(master):
    """PostgreSQL 16+: the creator administers the new role but is not a member, so it
    cannot hand objects to it or act as it until it grants itself the role."""
    master.execute("CREATE ROLE rds_test_owner NOLOGIN")
    master.execute("GRANT CREATE ON SCHEMA public TO rds_test_owner")
    try:
        master.execute("CREATE TABLE public.rds_test_owned (id int)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="must be able to SET ROLE"):
            master.execute("ALTER TABLE public.rds_test_owned OWNER TO rds_test_owner")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            master.execute("SET ROLE rds_test_owner")
        master.execute("GRANT rds_test_owner TO supabase_admin")
        master.execute("ALTER TABLE public.rds_test_owned OWNER TO rds_test_owner")
    finally:
        master.execute("DROP TABLE IF EXISTS public.rds_test_owned")
        master.execute("REVOKE CREATE ON SCHEMA public FROM rds_test_owner")
        master.execute("DROP ROLE rds_test_owner")


def test_master_cannot_touch_roles_it_does_not_administer(master, postgres_server):
    postgres_server.superuser_sql("CREATE ROLE rds_test_foreign NOLOGIN", dbname="postgres")
    try:
        for statement in (
            "ALTER ROLE rds_test_foreign PASSWORD 'x-long-enough-password'",
            "GRANT rds_test_foreign TO dashboard_user",
            "DROP ROLE rds_test_foreign",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                master.execute(statement)
    finally:
        postgres_server.superuser_sql("DROP ROLE rds_test_foreign", dbname="postgres")


def test_event_triggers_are_refused_here_though_rds_allows_them(master):
    """Stricter than RDS (see conftest): nothing in the bootstrap may rely on them."""
    master.execute(
        "CREATE OR REPLACE FUNCTION public.rds_test_evt() RETURNS event_trigger "
        "LANGUAGE plpgsql AS $$ BEGIN NULL; END $$"
    )
    try:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            master.execute(
                "CREATE EVENT TRIGGER rds_test_evt ON ddl_command_end EXECUTE FUNCTION public.rds_test_evt()"
            )
    finally:
        master.execute("DROP FUNCTION public.rds_test_evt()")
