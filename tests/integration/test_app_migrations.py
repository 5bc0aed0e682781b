"""The application's migrations, applied as the rendered db-migrate Job applies them, on the
RDS-like PostgreSQL 17 as its non-superuser master.

node-pg-migrate (node_modules, the version the Job's `npm ci` installs) runs with the Job
container's own command, `/tool` and `/migrations` mapped to node_modules and a migrations
folder, and with the Job's DATABASE_URL as the ExternalSecret renders it: the master's
password filled in, host/port/database swapped for the test server's and the RDS CA for the
test server's certificate (verify-ca: the chain is checked for real, and a server that
CA did not sign is refused). Then: the samples apply;
a second run changes nothing; a failing migration is rolled back whole and stops the run
(non-zero exit, so the Job fails); two runs at once serialise on the advisory lock; and the
drift check finds a change made by hand.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from config.loader import load_config
from database.migrations import HISTORY_SCHEMA, HISTORY_TABLE, MIGRATIONS_DIR, load_migrations
from k8s_charts.supabase import rds_ca
from k8s_charts.supabase.chart import MIGRATE_CHART_ID
from k8s_charts.supabase.migrate import (
    COMPONENT,
    CREDENTIALS,
    MIGRATIONS_CONFIG_MAP,
    MIGRATIONS_MOUNT,
    TOOL_CONFIG_MAP,
    TOOL_DIR,
    TOOL_SOURCE,
)
from scripts.appdev.connection import ca_file
from scripts.appdev.scratch import ROOT, clean_env
from tests.integration.conftest import MANIFEST_ENV, bootstrapped_database
from tests.rendered import manifests

# Seventeen node-pg-migrate runs and four migra comparisons on PostgreSQL 17.
pytestmark = pytest.mark.long

HISTORY = f"{HISTORY_SCHEMA}.{HISTORY_TABLE}"
SAMPLES = [m.name for m in load_migrations()]
LOCKED_WAIT = (
    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND NOT l.granted AND a.datname = current_database()"
)


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    return manifests(MANIFEST_ENV)[MIGRATE_CHART_ID]


@pytest.fixture(scope="module")
def job(rendered) -> tuple[list[str], str]:
    """(container command, DATABASE_URL template) of the rendered db-migrate Job."""
    objects = rendered
    job = next(o for o in objects if o["kind"] == "Job")
    container = next(c for c in job["spec"]["template"]["spec"]["containers"] if c["name"] == COMPONENT)
    secret = next(o for o in objects if o["kind"] == "ExternalSecret" and o["metadata"]["name"] == CREDENTIALS)
    return container["command"], secret["spec"]["target"]["template"]["data"]["DATABASE_URL"]


class Runner:
    def __init__(self, job: tuple[list[str], str], server, dbname: str) -> None:
        command, template = job
        self.server, self.dbname = server, dbname
        self.command = [a.replace(f"{TOOL_DIR}/node_modules", str(ROOT / "node_modules")) for a in command]
        rendered = template.replace("{{ .master_password | urlquery }}", quote(server.master_password, safe=""))
        head, query = rendered.split("?", 1)
        user_part = head.split("@", 1)[0]
        self.url = f"{user_part}@localhost:{server.port}/{dbname}?" + query.replace(
            f"sslrootcert={rds_ca.FILE}", f"sslrootcert={server.ca_file}"
        )
        assert "uselibpqcompat=true&sslmode=verify-ca&sslrootcert=" in self.url

    def args(self, migrations: Path) -> list[str]:
        return [a if a != MIGRATIONS_MOUNT else str(migrations) for a in self.command]

    def start(self, migrations: Path) -> subprocess.Popen[str]:
        env = {**clean_env(), "DATABASE_URL": self.url}
        return subprocess.Popen(
            self.args(migrations), env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    def run(self, migrations: Path = MIGRATIONS_DIR) -> subprocess.CompletedProcess[str]:
        env = {**clean_env(), "DATABASE_URL": self.url}
        return subprocess.run(self.args(migrations), env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)

    def sql(self, query: str) -> list[tuple]:
        with psycopg.connect(self.server.conninfo(dbname=self.dbname)) as conn:
            return conn.execute(query).fetchall()

    def history(self) -> list[tuple]:
        return self.sql(f"SELECT name, run_on FROM {HISTORY} ORDER BY id")


@pytest.fixture
def fresh(job, postgres_server, request):
    """A Runner on a database of its own, bootstrapped as the platform's bootstrap Job does."""
    dbname = f"app_{request.node.name[5:30].lower()}"
    bootstrapped_database(postgres_server, dbname)
    return Runner(job, postgres_server, dbname)


def folder(tmp_path: Path, extra: dict[str, str]) -> Path:
    """The sample migrations plus `extra` files."""
    target = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, target)
    for name, sql in extra.items():
        (target / name).write_text(sql)
    return target


def test_job_runs_the_pinned_tool_with_a_lock_that_waits(job):
    command, _ = job
    assert command[:2] == ["node", f"{TOOL_DIR}/node_modules/node-pg-migrate/bin/node-pg-migrate.js"]
    assert (ROOT / "node_modules" / "node-pg-migrate" / "bin" / "node-pg-migrate.js").exists()
    assert command[command.index("--advisory-lock-mode") + 1] == "wait"


def config_map_volume(target: Path, data: dict[str, str]) -> Path:
    """A folder laid out as the kubelet mounts a ConfigMap volume (its atomic writer,
    kubernetes pkg/volume/util/atomic_writer.go): the files in a hidden timestamped directory,
    `..data` linking to it, and one symlink per key into `..data`."""
    payload = target / "..2026_12_01_00_00_00.000000000"
    payload.mkdir(parents=True)
    for key, value in data.items():
        (payload / key).write_text(value)
    (target / "..data").symlink_to(payload.name)
    for key in data:
        (target / key).symlink_to(f"..data/{key}")
    return target


def test_job_refuses_a_server_its_ca_did_not_sign(fresh):
    """verify-ca checks the chain: with the rendered RDS roots instead of the test server's own
    certificate, the Job's connection is refused."""
    fresh.url = fresh.url.replace(
        str(fresh.server.ca_file), str(ca_file(load_config().environments[MANIFEST_ENV].region))
    )
    result = fresh.run()
    assert result.returncode != 0
    assert "certificate" in (result.stdout + result.stderr).lower(), result.stdout + result.stderr


def test_samples_apply_as_the_rds_master(fresh, rendered, tmp_path, report):
    data = next(o for o in rendered if o["kind"] == "ConfigMap" and o["metadata"]["name"] == MIGRATIONS_CONFIG_MAP)
    # What the Job's container sees at /migrations: the rendered ConfigMap, mounted.
    result = fresh.run(config_map_volume(tmp_path / "mounted", data["data"]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert [name for name, _ in fresh.history()] == SAMPLES
    owner, rls = fresh.sql(
        "SELECT tableowner, rowsecurity FROM pg_tables WHERE schemaname = 'public' AND tablename = 'todos'"
    )[0]
    assert (owner, rls) == (fresh.server.master_user, True)
    # The bootstrap's default privileges reach the API roles, as PostgREST needs.
    assert fresh.sql("SELECT has_table_privilege('authenticated', 'public.todos', 'INSERT')") == [(True,)]
    # The history is not in a schema PostgREST exposes, and the API roles cannot reach it.
    assert fresh.sql(f"SELECT has_schema_privilege('anon', '{HISTORY_SCHEMA}', 'USAGE')") == [(False,)]
    report(
        "app migrations",
        f"{len(SAMPLES)} sample migrations applied by node-pg-migrate as the RDS-like master over TLS verified against the CA (verify-ca); "
        "re-run no-op, failing migration rolled back, concurrent run waited on the advisory lock, drift found",
    )


def test_second_run_changes_nothing(fresh):
    assert fresh.run().returncode == 0
    before = fresh.history()
    with psycopg.connect(fresh.server.conninfo(dbname=fresh.dbname), autocommit=True) as conn:
        conn.execute("INSERT INTO public.todos (owner_id, title) VALUES (gen_random_uuid(), 'kept')")
    again = fresh.run()
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No migrations to run!" in again.stdout
    assert fresh.history() == before
    assert fresh.sql("SELECT title FROM public.todos") == [("kept",)]


def test_failing_migration_is_rolled_back_whole_and_fails_the_run(fresh, tmp_path):
    broken = folder(
        tmp_path,
        {
            "20260201000000_add_notes.sql": "CREATE TABLE public.notes (id int PRIMARY KEY, body text);\n",
            # Its first statement succeeds, the second fails: nothing of it may remain.
            "20260202000000_broken.sql": (
                "CREATE TABLE public.half_done (id int);\n"
                "ALTER TABLE public.todos ADD COLUMN due date;\n"
                "INSERT INTO public.no_such_table VALUES (1);\n"
            ),
            "20260203000000_after.sql": "CREATE TABLE public.after_broken (id int);\n",
        },
    )
    assert fresh.run().returncode == 0  # the release before: the samples
    result = fresh.run(broken)
    assert result.returncode != 0, result.stdout
    assert "no_such_table" in result.stdout + result.stderr
    # This release's batch is one transaction: the good migration before the broken one, the
    # broken one's first statements and its history rows are all gone; the run stopped there.
    assert [name for name, _ in fresh.history()] == SAMPLES
    tables = {t for (t,) in fresh.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert "todos" in tables and not {"notes", "half_done", "after_broken"} & tables
    assert fresh.sql(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'todos' AND column_name = 'due'"
    ) == [(0,)]
    # The next run fails the same way: the Job keeps failing until the SQL is fixed.
    assert fresh.run(broken).returncode != 0


def test_concurrent_runs_one_waits_for_the_other(fresh, tmp_path):
    """The first run's migration is held at a gate (a table lock this test holds) for as long as
    the test needs, instead of sleeping for a guessed time: the second run starts meanwhile and
    must wait on node-pg-migrate's advisory lock; the gate opens only once it does."""
    with psycopg.connect(fresh.server.conninfo(dbname=fresh.dbname), autocommit=True) as conn:
        conn.execute("CREATE TABLE public.migration_gate (id int)")
    slow = folder(
        tmp_path,
        {
            "20260301000000_slow.sql": "SELECT count(*) FROM public.migration_gate;\nCREATE TABLE public.slow (id int);\n"
        },
    )
    gate = psycopg.connect(fresh.server.conninfo(dbname=fresh.dbname))
    gate.execute("LOCK TABLE public.migration_gate IN ACCESS EXCLUSIVE MODE")
    runs: list[subprocess.Popen[str]] = []
    try:
        first = fresh.start(slow)
        runs.append(first)
        deadline = time.monotonic() + 30
        while not fresh.sql(
            "SELECT 1 FROM pg_stat_activity WHERE query LIKE '%FROM public.migration_gate%' "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        ):
            assert first.poll() is None, first.communicate()[0]
            assert time.monotonic() < deadline, "the first run never reached the slow migration"
            time.sleep(0.05)
        second = fresh.start(slow)
        runs.append(second)
        deadline = time.monotonic() + 30
        while fresh.sql(LOCKED_WAIT) != [(1,)]:
            assert second.poll() is None, f"the second run did not wait: {second.communicate()[0]}"
            assert time.monotonic() < deadline, "the second run never waited on the advisory lock"
            time.sleep(0.05)
        # Both are in: the first holding the advisory lock mid-migration, the second waiting on it.
        gate.rollback()
        out_first, out_second = first.communicate(timeout=60)[0], second.communicate(timeout=60)[0]
    finally:
        gate.close()
        for proc in runs:
            if proc.poll() is None:
                proc.kill()
    assert first.returncode == 0, out_first
    assert second.returncode == 0, out_second
    assert "No migrations to run!" in out_second
    names = [name for name, _ in fresh.history()]
    assert names == [*SAMPLES, "20260301000000_slow"]


def appdev(command: str, database_url: str) -> subprocess.CompletedProcess[str]:
    """`make migrate` / `make drift` (python -m scripts.appdev), connected through DATABASE_URL."""
    env = {**clean_env(), "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "scripts.appdev", command, MANIFEST_ENV],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_make_migrate_applies_the_folder(fresh):
    result = appdev("migrate", fresh.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [name for name, _ in fresh.history()] == SAMPLES
    assert "No migrations to run!" in appdev("migrate", fresh.url).stdout


def test_make_drift_finds_a_change_made_by_hand(fresh, postgres_server):
    assert fresh.run().returncode == 0
    clean = appdev("drift", fresh.url)
    assert clean.returncode == 0 and "no drift" in clean.stdout, clean.stdout + clean.stderr
    with psycopg.connect(postgres_server.conninfo(dbname=fresh.dbname), autocommit=True) as conn:
        conn.execute("ALTER TABLE public.todos ADD COLUMN added_in_studio text")
        conn.execute("DROP POLICY todos_owner ON public.todos")
        conn.execute("CREATE INDEX todos_title ON public.todos (title)")
    found = appdev("drift", fresh.url)
    assert found.returncode == 1, found.stdout + found.stderr
    assert 'drop column "added_in_studio"' in found.stdout
    assert 'create policy "todos_owner"' in found.stdout
    assert '"public"."todos_title"' in found.stdout


def test_the_jobs_own_install_step_yields_a_tool_that_applies_them(rendered, fresh, tmp_path):
    """The init container's script as rendered (only /tool-src and /tool moved into tmp) installs
    node-pg-migrate from the rendered tool ConfigMap with `npm ci`; the Job's command then runs
    from that tree, not from the repository's node_modules. npm may use its local cache."""
    objects = {o["metadata"]["name"]: o for o in rendered if o["kind"] == "ConfigMap"}
    source, tool = tmp_path / "tool-src", tmp_path / "tool"
    source.mkdir()
    tool.mkdir()
    for key, value in objects[TOOL_CONFIG_MAP]["data"].items():
        (source / key).write_text(value)
    pod = next(o for o in rendered if o["kind"] == "Job")["spec"]["template"]["spec"]
    shell, flag, script = pod["initContainers"][0]["command"]
    moved = {TOOL_SOURCE: str(source), TOOL_DIR: str(tool)}
    script = re.sub(rf"({TOOL_SOURCE}|{TOOL_DIR})\b", lambda m: moved[m.group(1)], script)
    env = {**clean_env(), "npm_config_prefer_offline": "true", "npm_config_update_notifier": "false"}
    install = subprocess.run([shell, flag, script], env=env, capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout + install.stderr
    command = [a.replace(TOOL_DIR, str(tool)) for a in pod["containers"][0]["command"]]
    command = [a if a != MIGRATIONS_MOUNT else str(MIGRATIONS_DIR) for a in command]
    result = subprocess.run(
        command, env={**clean_env(), "DATABASE_URL": fresh.url}, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert [name for name, _ in fresh.history()] == SAMPLES
