"""Supabase Realtime v2.102.3 against PostgreSQL 17 the way RDS runs it.

Upstream files (tests/fixtures/upstream/realtime, see SOURCE) are used unmodified: the
image's run.sh is executed next to the manifest's start script, Realtime's own migrations
run for real (ecto_migrations renders them), in a database prepared by database/bootstrap.sql
as the non-superuser master, with role, search_path and tenant user taken from the rendered
manifest. Then the statements Realtime's runtime sends (replication slot, publication,
private-channel authorization) are replayed from its source.
"""

from __future__ import annotations

import datetime
import os
import re
import stat
import subprocess
from pathlib import Path

import psycopg
import pytest

from tests.integration import ecto_migrations
from tests.integration.test_db_bootstrap import apply_bootstrap, make_passwords
from tests.rendered import manifests

UPSTREAM = Path(__file__).resolve().parents[1] / "fixtures" / "upstream" / "realtime"
METADATA_MIGRATIONS = UPSTREAM / "priv" / "repo" / "migrations"
TENANT_MIGRATIONS = UPSTREAM / "lib" / "realtime" / "tenants" / "repo" / "migrations"
# Realtime.Tenants.Migrations.migrate/2: `prefix: "realtime"`.
TENANT_PREFIX = "realtime"
DATABASE = "realtime_it"


@pytest.fixture(scope="module")
def container() -> dict:
    objects = manifests("dev")["supabase"]
    deploy = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "realtime")
    return deploy["spec"]["template"]["spec"]["containers"][0]


@pytest.fixture(scope="module")
def env(container) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


@pytest.fixture(scope="module")
def database(postgres_server):
    with psycopg.connect(postgres_server.conninfo(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    run = apply_bootstrap(postgres_server, make_passwords("realtime"), dbname=DATABASE)
    assert run.returncode == 0, run.stderr
    return DATABASE


def _connect(server, env: dict[str, str], dbname: str) -> psycopg.Connection:
    """A session like Realtime.Repo's: DB_USER, then DB_AFTER_CONNECT_QUERY."""
    assert env["DB_USER"] == server.master_user
    conn = psycopg.connect(server.conninfo(user=env["DB_USER"], dbname=dbname), autocommit=True)
    conn.execute(env["DB_AFTER_CONNECT_QUERY"])
    return conn


def _no_settings_to_rename(_args: list) -> list[str]:
    # Realtime.Api.rename_settings_field/2 rewrites postgres_cdc_rls settings in Elixir;
    # on a fresh database it finds no extension row, which this statement asserts.
    return [
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM extensions) THEN "
        "RAISE EXCEPTION 'rename_settings_field would rewrite rows'; END IF; END $$"
    ]


@pytest.fixture(scope="module")
def metadata(postgres_server, env, database):
    migrations = [
        ecto_migrations.parse(p, prefix=None, calls={"rename_settings_field": _no_settings_to_rename})
        for p in sorted(METADATA_MIGRATIONS.glob("[0-9]*_*.exs"))
    ]
    with _connect(postgres_server, env, database) as conn:
        return migrations, ecto_migrations.migrate(conn, migrations, prefix=None)


@pytest.fixture(scope="module")
def tenant(postgres_server, env, database):
    migrations = [ecto_migrations.parse(p, prefix=TENANT_PREFIX) for p in sorted(TENANT_MIGRATIONS.glob("*.ex"))]
    # The seeded tenant's db_user is DB_USER (priv/repo/seeds.exs) and its session has no
    # after-connect query (Realtime.Database.connect_db).
    with psycopg.connect(postgres_server.conninfo(user=env["DB_USER"], dbname=database), autocommit=True) as conn:
        return migrations, ecto_migrations.migrate(conn, migrations, prefix=TENANT_PREFIX)


# --- start-up -------------------------------------------------------------------------


def _fake_app(root: Path, log: Path) -> None:
    for name in ("migrate", "realtime", "server"):
        path = root / "app" / "bin" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'#!/bin/bash\necho "{name} $* | nofile=$(ulimit -Sn) dump=$ERL_CRASH_DUMP" >> {log}\n')
        path.chmod(path.stat().st_mode | stat.S_IEXEC)


def _run(script: str, root: Path, *, sudo_works: bool, seed: bool) -> tuple[int, list[str]]:
    log = root / f"calls-{sudo_works}-{seed}.log"
    log.write_text("")
    _fake_app(root, log)
    shims = root / f"shims-{sudo_works}"
    shims.mkdir(exist_ok=True)
    # The image's sudo as root would drop to nobody; as uid 10001 without privilege
    # escalation it cannot, and fails.
    (shims / "sudo").write_text('#!/bin/bash\nshift 3\nexec "$@"\n' if sudo_works else "#!/bin/bash\nexit 1\n")
    (shims / "sudo").chmod(0o755)
    env = {"PATH": f"{shims}:/usr/bin:/bin", "RLIMIT_NOFILE": "1000"}
    if seed:
        env["SEED_SELF_HOST"] = "true"
    body = script.replace("/app/", f"{root}/app/")
    proc = subprocess.run(
        ["/bin/bash", "-c", body, "run.sh", f"{root}/app/bin/server"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return proc.returncode, [line.replace(str(root), "") for line in log.read_text().splitlines()]


@pytest.mark.parametrize("seed", [True, False])
def test_start_script_does_what_run_sh_does_without_sudo(container, tmp_path, seed, report):
    run_sh = (UPSTREAM / "run.sh").read_text()
    dockerfile = (UPSTREAM / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["/usr/bin/tini", "-s", "-g", "--", "/app/run.sh"]' in dockerfile
    assert 'CMD ["/app/bin/server"]' in dockerfile
    command, args = container["command"], container["args"]
    assert command[:4] == ["/usr/bin/tini", "-s", "-g", "--"] and args == ["/app/bin/server"]
    script = command[command.index("-c") + 1]

    code, upstream_calls = _run(run_sh, tmp_path, sudo_works=True, seed=seed)
    assert code == 0
    failing, _ = _run(run_sh, tmp_path, sudo_works=False, seed=seed)
    assert failing != 0, "run.sh should stop where sudo fails"
    code, ours = _run(script, tmp_path, sudo_works=False, seed=seed)
    assert code == 0

    sudo_steps = re.findall(r"sudo -E -u nobody (.+)", run_sh)
    assert len(sudo_steps) == 2
    tls_eval = [c for c in ours if "ssl_enforced" in c]
    assert len(tls_eval) == (1 if seed else 0)
    assert [c for c in ours if c not in tls_eval] == upstream_calls
    assert all("nofile=1000 dump=/tmp/erl_crash.dump" in c for c in ours)
    assert ours[-1].startswith("server ")
    report(
        f"supabase runtime: realtime start ({'seed' if seed else 'no seed'})",
        f"run.sh exits {failing} where sudo fails; manifest script ran {len(ours)} steps = run.sh's "
        f"{len(upstream_calls)} + {len(tls_eval)} tenant-TLS step",
    )


def test_no_optional_run_sh_branch_is_enabled(env):
    # run.sh's other branches (S3 crash dumps, cluster certificates from Secrets Manager)
    # are left out of the start script; they only run when these are set.
    run_sh = (UPSTREAM / "run.sh").read_text()
    assert 'if [ "${ENABLE_ERL_CRASH_DUMP:-false}" = true ]' in run_sh
    assert 'if [[ -n "${GENERATE_CLUSTER_CERTS:-}" ]]' in run_sh
    assert "ENABLE_ERL_CRASH_DUMP" not in env and "GENERATE_CLUSTER_CERTS" not in env


# --- migrations ------------------------------------------------------------------------


def test_metadata_migrations_all_apply_into_the_after_connect_schema(postgres_server, env, database, metadata):
    migrations, applied = metadata
    assert [a.version for a in applied] == sorted(m.version for m in migrations)
    schema = re.fullmatch(r"SET search_path TO (\w+)", env["DB_AFTER_CONNECT_QUERY"]).group(1)
    with _connect(postgres_server, env, database) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))}
    assert {"tenants", "extensions", "feature_flags", "schema_migrations"} <= tables


def test_tenant_migrations_apply_in_realtimes_order(postgres_server, env, database, metadata, tenant, report):
    migrations, applied = tenant
    listed = [
        int(v.replace("_", ""))
        for v in re.findall(r"\{(\d[\d_]+), \w+\}", (UPSTREAM / "lib/realtime/tenants/migrations.ex").read_text())
    ]
    assert listed == sorted(m.version for m in migrations)
    set_log = {
        m.version for m in migrations if any(re.search(r"set log_min_messages", s, re.IGNORECASE) for s in m.statements)
    }
    with psycopg.connect(postgres_server.conninfo(dbname=database), autocommit=True) as conn:
        recorded = {r[0] for r in conn.execute("SELECT version FROM realtime.schema_migrations")}
        functions = {
            r[0] for r in conn.execute("SELECT proname FROM pg_proc WHERE pronamespace = 'realtime'::regnamespace")
        }
        owner = conn.execute(
            "SELECT tableowner FROM pg_tables WHERE schemaname = 'realtime' AND tablename = 'messages'"
        ).fetchone()[0]
    assert recorded == set(listed)
    assert {a.version for a in applied} == set(listed) - set_log
    assert {"send", "topic", "apply_rls", "subscription_check_filters", "broadcast_changes"} <= functions
    assert "list_changes" not in functions
    assert owner == "supabase_realtime_admin"
    report(
        "supabase runtime: realtime",
        f"v2.102.3 migrations applied as {env['DB_USER']} on PG17: {len(metadata[1])} _realtime, "
        f"{len(applied)} tenant; "
        f"{sorted(set_log)} recorded by the bootstrap (SET log_min_messages, realtime#1326): "
        "Postgres Changes unavailable on RDS; tenant TLS flag, private-channel RLS role switch replayed",
    )


def test_skipped_migrations_are_exactly_those_a_non_superuser_cannot_run(postgres_server, database, tenant):
    migrations, _ = tenant
    by_version = {m.version: m for m in migrations}
    with psycopg.connect(postgres_server.conninfo(dbname=database), autocommit=True) as conn:
        recorded_by_bootstrap = {
            r[0]
            for r in conn.execute(
                "SELECT version FROM realtime.schema_migrations WHERE version = ANY(%s)",
                ([v for v in by_version if any("log_min_messages" in s.lower() for s in by_version[v].statements)],),
            )
        }
        for version in recorded_by_bootstrap:
            stmt = next(s for s in by_version[version].statements if "log_min_messages" in s.lower())
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="log_min_messages"), conn.transaction():
                conn.execute("DROP FUNCTION IF EXISTS realtime.list_changes(name, name, int, int)")
                conn.execute(stmt, prepare=False)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="log_min_messages"):
            conn.execute("GRANT SET ON PARAMETER log_min_messages TO CURRENT_USER")
    assert len(recorded_by_bootstrap) == 3


def test_owner_change_needs_the_bootstrap_membership(postgres_server, database, tenant):
    # Without the bootstrap's GRANT, a role the master creates cannot receive ownership.
    with psycopg.connect(postgres_server.conninfo(dbname=database), autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS realtime_owner_probe")
        conn.execute("CREATE ROLE realtime_owner_probe NOLOGIN")
        try:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="SET ROLE"), conn.transaction():
                conn.execute("CREATE TABLE realtime.owner_probe ()")
                conn.execute("ALTER TABLE realtime.owner_probe OWNER TO realtime_owner_probe")
        finally:
            conn.execute("DROP ROLE realtime_owner_probe")


# --- the seeded tenant's TLS ----------------------------------------------------------------


def test_seeded_tenant_gets_tls_turned_on(postgres_server, env, container, database, metadata):
    script = container["command"][container["command"].index("-c") + 1]
    sql, params = re.search(r'repo\.query!\("([^"]+)", \[(.*)\]\) end\)', script).groups()
    names = re.findall(r'"([^"]+)"', params)
    assert names[:2] == ["ssl_enforced", "postgres_cdc_rls"] and 'System.fetch_env!("SELF_HOST_TENANT_NAME")' in params
    with _connect(postgres_server, env, database) as conn:
        # The rows priv/repo/seeds.exs inserts (settings other than the flag abbreviated).
        conn.execute(
            "INSERT INTO tenants (id, name, external_id, jwt_secret, inserted_at, updated_at) "
            "VALUES (gen_random_uuid(), %(t)s, %(t)s, 'x', now(), now())",
            {"t": env["SELF_HOST_TENANT_NAME"]},
        )
        conn.execute(
            "INSERT INTO extensions (id, type, settings, tenant_external_id, inserted_at, updated_at) "
            "VALUES (gen_random_uuid(), 'postgres_cdc_rls', %s, %s, now(), now())",
            ('{"db_user": "enc", "region": "us-east-1", "ssl_enforced": false}', env["SELF_HOST_TENANT_NAME"]),
        )
        # Postgrex sends $1..$3 as bound parameters whose types the server infers.
        assert re.findall(r"\$\d", sql) == ["$1", "$2", "$3"]
        conn.execute(re.sub(r"\$\d", "%s", sql), (names[0], names[1], env["SELF_HOST_TENANT_NAME"]))
        settings = conn.execute(
            "SELECT settings FROM extensions WHERE tenant_external_id = %s", (env["SELF_HOST_TENANT_NAME"],)
        ).fetchone()[0]
    # Realtime.Database.default_ssl_param/1 takes the flag when it is a boolean.
    assert settings == {"db_user": "enc", "region": "us-east-1", "ssl_enforced": True}
    seeds = (UPSTREAM / "priv/repo/seeds.exs").read_text()
    assert '"ssl_enforced" => false' in seeds and '"type" => "postgres_cdc_rls"' in seeds


# --- what Realtime does at runtime -----------------------------------------------------------


def test_broadcast_replication_slot_and_publication(postgres_server, env, database, tenant):
    source = (UPSTREAM / "lib/realtime/tenants/replication_connection.ex").read_text()
    assert 'output_plugin: "pgoutput"' in source
    slot, publication = "supabase_realtime_messages_replication_slot_it", "supabase_realtime_messages_publication"
    conninfo = postgres_server.conninfo(user=env["DB_USER"], dbname=database) + " replication=database"
    out = subprocess.run(
        [
            str(postgres_server.bindir / "psql"),
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            conninfo,
            "-c",
            f"CREATE_REPLICATION_SLOT {slot} TEMPORARY LOGICAL pgoutput NOEXPORT_SNAPSHOT",
            "-c",
            f"CREATE PUBLICATION {publication} FOR TABLE realtime.messages",
            "-c",
            f"SELECT pubname FROM pg_publication WHERE pubname IN ('{publication}', 'supabase_realtime')",
        ],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("PG")},
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert "supabase_realtime\n" in out.stdout and publication in out.stdout


def test_private_channel_authorization_switches_role(postgres_server, env, database, tenant):
    source = (UPSTREAM / "lib/realtime/tenants/authorization.ex").read_text()
    set_config = re.search(r'"""\n(\s*SELECT\s+set_config\(.*?)\s*"""', source, re.DOTALL).group(1)
    statement = re.sub(r"\$(\d)", lambda m: f"%(p{m.group(1)})s", set_config)
    today = datetime.date.today()
    params = {
        "p1": "authenticated",
        "p2": "room:1",
        "p3": '{"role": "authenticated", "sub": "u1"}',
        "p4": "u1",
        "p5": "authenticated",
        "p6": "{}",
    }
    with psycopg.connect(postgres_server.conninfo(user=env["DB_USER"], dbname=database), autocommit=True) as conn:
        # Realtime.Tenants.Migrations.create_partitions: today's partition of realtime.messages.
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS realtime.messages_{today:%Y_%m_%d} PARTITION OF realtime.messages "
            f"FOR VALUES FROM ('{today}') TO ('{today + datetime.timedelta(days=1)}')"
        )

        def can_read() -> bool:
            with conn.transaction(force_rollback=True):
                conn.execute("INSERT INTO realtime.messages (topic, extension) VALUES ('room:1', 'broadcast')")
                conn.execute(statement, params)
                assert conn.execute("SELECT current_user").fetchone()[0] == "authenticated"
                return conn.execute("SELECT count(*) FROM realtime.messages WHERE topic = 'room:1'").fetchone()[0] == 1

        assert not can_read()
        conn.execute(
            "CREATE POLICY realtime_it_read ON realtime.messages FOR SELECT TO authenticated "
            "USING (realtime.topic() = 'room:1' "
            "AND current_setting('request.jwt.claim.sub', true) = 'u1')"
        )
        try:
            assert can_read()
        finally:
            conn.execute("DROP POLICY realtime_it_read ON realtime.messages")
