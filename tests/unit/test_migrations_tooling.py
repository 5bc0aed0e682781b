"""The migrations folder's rules, the db-migrate chart's wiring and `make migrate`'s connection
(the secret read from moto's Secrets Manager). Applying migrations for real:
tests/integration/test_app_migrations.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3
import cdk8s
import pytest
from moto import mock_aws

from config import naming, yamlio
from config.loader import load_config
from database import migrations
from database.migrations import (
    MigrationError,
    load_migrations,
    migrations_digest,
    tool_args,
    tool_files,
    tool_versions,
)
from k8s_charts.aws_values import from_config
from k8s_charts.falco import rules_yaml
from k8s_charts.supabase.chart import BOOTSTRAP_CHART_ID, CHART_ID, MIGRATE_CHART_ID, supabase_charts
from k8s_charts.supabase.migrate import (
    COMPONENT,
    INSTALL_CONTAINER,
    MIGRATIONS_CONFIG_MAP,
    MIGRATIONS_MOUNT,
    TOOL_CONFIG_MAP,
)
from k8s_charts.supabase.rds_ca import region_roots
from scripts.appdev.connection import database_url, master_secret_name
from stacks.platform_stack import JOB_TIMEOUT

ROOT = Path(__file__).resolve().parents[2]


def test_samples_load_in_version_order():
    names = [m.file_name for m in load_migrations()]
    assert names == sorted(names) and len(names) >= 2


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"create_todos.sql": "select 1;"},
            r"create_todos\.sql.*<UTC yyyymmddhhmmss>_<lowercase_name>\.sql.*fix: rename",
        ),
        ({"20260101000000_Todos.sql": "select 1;"}, r"fix: rename"),
        (
            {"20260101000000_a.sql": "select 1;", "20260101000000_b.sql": "select 2;"},
            r"version 20260101000000 is used by more than one file.*fix",
        ),
        ({"20260101000000_big.sql": "x" * (migrations.MAX_BYTES + 1)}, r"CloudFormation template.*fix: squash"),
    ],
)
def test_folder_rules_name_the_file_and_the_fix(tmp_path, files, message):
    for name, sql in files.items():
        (tmp_path / name).write_text(sql)
    with pytest.raises(MigrationError, match=message):
        load_migrations(tmp_path)


def test_the_jobs_tool_is_the_repositorys_pin():
    """One version in two lockfiles: the tests run the tool node_modules has, the Job the one it installs."""
    root = json.loads((ROOT / "package.json").read_text())["devDependencies"]
    assert tool_versions() == {name: root[name] for name in tool_versions()}
    lock = json.loads(tool_files()["package-lock.json"])["packages"]
    root_lock = json.loads((ROOT / "package-lock.json").read_text())["packages"]
    for name in tool_versions():
        assert lock[f"node_modules/{name}"]["version"] == root_lock[f"node_modules/{name}"]["version"] == root[name]
        assert lock[f"node_modules/{name}"]["integrity"] == root_lock[f"node_modules/{name}"]["integrity"]


@pytest.fixture(scope="module")
def charts():
    cfg = load_config()
    return {c.node.id: c for c in supabase_charts(cdk8s.App(), cfg, "prod", from_config(cfg, "prod"))}


def test_migrate_runs_after_the_bootstrap_and_before_the_services(charts):
    assert list(charts) == [BOOTSTRAP_CHART_ID, MIGRATE_CHART_ID, CHART_ID]
    assert {d.node.id for d in charts[MIGRATE_CHART_ID].node.dependencies} == {BOOTSTRAP_CHART_ID}
    assert {d.node.id for d in charts[CHART_ID].node.dependencies} >= {MIGRATE_CHART_ID}


def test_job_mounts_exactly_the_folder_and_the_locked_tool(charts):
    objects = charts[MIGRATE_CHART_ID].to_json()
    maps = {o["metadata"]["name"]: o["data"] for o in objects if o["kind"] == "ConfigMap"}
    assert maps[MIGRATIONS_CONFIG_MAP] == {m.file_name: m.sql for m in load_migrations()}
    assert maps[TOOL_CONFIG_MAP] == tool_files()
    job = next(o for o in objects if o["kind"] == "Job")
    spec = job["spec"]["template"]["spec"]
    assert spec["containers"][0]["command"][2:] == tool_args(MIGRATIONS_MOUNT)
    install = spec["initContainers"][0]["command"][-1]
    assert "npm ci" in install and "--ignore-scripts" in install
    # Retrying cannot fix SQL: the deploy should stop quickly, not after six attempts.
    assert job["spec"]["backoffLimit"] <= 1
    # The Job is killed (its transaction rolled back) before the platform stack stops waiting.
    assert job["spec"]["activeDeadlineSeconds"] + 60 <= JOB_TIMEOUT.to_seconds()


@pytest.fixture
def secrets_client(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    cfg = load_config()
    with mock_aws():
        client = boto3.client("secretsmanager", region_name=cfg.environments["staging"].region)
        client.create_secret(
            Name=master_secret_name(cfg, "staging"),
            SecretString=json.dumps(
                {"username": "supabase_admin", "password": "p@ss/word", "host": "db.example.internal", "port": 5432}
            ),
        )
        yield cfg, client


def test_make_migrate_reads_the_master_secret_and_verifies_tls(secrets_client):
    cfg, client = secrets_client
    assert master_secret_name(cfg, "staging") == naming.secret_name(cfg, "staging", naming.SecretKeys.DB_MASTER)
    url = database_url(cfg, "staging", secrets_client=client, environ={})
    assert url.startswith("postgresql://supabase_admin:p%40ss%2Fword@db.example.internal:5432/postgres?")
    assert "sslmode=verify-full&sslrootcert=" in url
    ca = Path(url.split("sslrootcert=")[1]).read_text()
    region = cfg.environments["staging"].region
    assert ca.count("BEGIN CERTIFICATE") == len(region_roots(region))
    tunnel = database_url(cfg, "staging", secrets_client=client, environ={"PGHOST": "127.0.0.1", "PGPORT": "15432"})
    assert "@127.0.0.1:15432/" in tunnel and "uselibpqcompat=true&sslmode=verify-ca" in tunnel


def test_make_migrate_prefers_database_url_and_names_unknown_environments(secrets_client):
    cfg, client = secrets_client
    assert (
        database_url(cfg, "staging", secrets_client=client, environ={"DATABASE_URL": "postgres://x"}) == "postgres://x"
    )
    with pytest.raises(ValueError, match=r"ENV='stage' given.*dev, staging, prod.*fix"):
        database_url(cfg, "stage", secrets_client=client, environ={})


def test_platform_stack_applies_migrations_between_bootstrap_and_services(template):
    """CloudFormation order in the synthesized platform stack: the migrate manifest waits for the
    bootstrap Job to succeed, the services manifest for the migrate Job (a failed migration never
    succeeds, so the wait fails the deploy and the services are not applied)."""
    t = template("prod", "platform")
    resources = t.to_json()["Resources"]
    manifests = {lid: r for lid, r in resources.items() if r["Type"] == "Custom::AWSCDK-EKS-KubernetesResource"}
    waits = {
        lid: r
        for lid, r in resources.items()
        if r["Type"] == "Custom::AWSCDK-EKS-KubernetesObjectValue" and r["Properties"]["ObjectType"] == "job"
    }

    def one(prefix: str, pool: dict) -> str:
        found = [lid for lid in pool if lid.startswith(prefix)]
        assert len(found) == 1, (prefix, found)
        return found[0]

    bootstrap_wait = one("chartsupabasedbbootstrapjob", waits)
    migrate_wait = one("chartsupabasedbmigratejob", waits)
    migrate = one("chartsupabasedbmigrate", manifests)
    services = one("chartsupabase", {lid: r for lid, r in manifests.items() if not lid.startswith("chartsupabasedb")})
    assert waits[migrate_wait]["Properties"]["JsonPath"] == ".status.succeeded"
    assert bootstrap_wait in manifests[migrate]["DependsOn"]
    assert migrate in waits[migrate_wait]["DependsOn"]
    assert migrate_wait in manifests[services]["DependsOn"]


def test_new_migrations_restart_postgrest(charts, tmp_path):
    """PostgREST's schema cache reloads only on start here (no LISTEN through PgBouncer): its pods
    carry the migrations' digest, so a release with a new migration rolls rest and rest-ro."""
    objects = charts[CHART_ID].to_json()
    for name in ("rest", "rest-ro"):
        pod = next(o for o in objects if o["metadata"]["name"] == name and "template" in o.get("spec", {}))
        assert (
            pod["spec"]["template"]["metadata"]["annotations"]["supabase.io/migrations-sha256"] == migrations_digest()
        )
    shutil.copytree(migrations.MIGRATIONS_DIR, tmp_path / "m")
    before = migrations_digest(tmp_path / "m")
    (tmp_path / "m" / "20990101000000_more.sql").write_text("CREATE TABLE public.more (id int);\n")
    assert migrations_digest(tmp_path / "m") != before


def test_falco_spares_only_the_jobs_tool_install():
    """`npm ci` in the init container would raise Falco's package-manager rule on every deploy;
    the exception names exactly that container of that Job, by the names the chart renders."""
    rules = yamlio.load(rules_yaml("10.0.0.0/16"))
    macro = next(r for r in rules if r.get("macro") == "supabase_migration_tool_install")
    assert macro["condition"] == (
        f"(k8s.pod.label[app.kubernetes.io/name] = {COMPONENT} and container.name = {INSTALL_CONTAINER})"
    )
    rule = next(r for r in rules if r.get("rule") == "Supabase package manager run in container")
    assert "and not supabase_migration_tool_install" in rule["condition"]
