"""postgres-meta, configured by the rendered manifest, serving Studio's requests against RDS-like PostgreSQL 17.

The real server (npm @supabase/postgres-meta, the version of the pinned image) runs with the
environment of the rendered `meta` Deployment: plain values as rendered, Secret values through
the ExternalSecret templates, the master secret's `host` (the RDS instance endpoint on AWS) a
name the throwaway server's certificate carries, only its port, database name and CA swapped in. Studio's side is its own code path (apps/studio/lib/api/self-hosted/util.ts): a
connection string from the rendered Studio env (POSTGRES_USER_READ_WRITE, POSTGRES_PASSWORD,
POSTGRES_HOST/PORT/DB, POSTGRES_SSL), encrypted with crypto-js AES under PG_META_CRYPTO_KEY and
sent as `x-connection-encrypted`; postgres-meta decrypts it with crypto-js under CRYPTO_KEY.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import string
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from database.roles import DATABASE_LOGIN_ROLES
from k8s_charts.supabase import images
from k8s_charts.supabase import secrets as eso
from scripts.appdev.meta import free_port_pair
from tests.integration.conftest import UNNAMED_HOST, apply_bootstrap
from tests.rendered import manifests

# Starts postgres-meta three times and waits for each to answer.
pytestmark = pytest.mark.long

ROOT = Path(__file__).resolve().parents[2]
META_PACKAGE = ROOT / "node_modules" / "@supabase" / "postgres-meta"
ENV_NAME = "prod"
# A name in the test server's certificate, as the instance endpoint is in RDS's.
VERIFIABLE_HOST = "localhost"
_TEMPLATE_VAR = re.compile(r"\{\{ \.(\w+)( \| urlquery)? \}\}")


@dataclass(frozen=True)
class Rendered:
    objects: list[dict]

    def container_env(self, deployment: str) -> list[dict]:
        deploy = next(o for o in self.objects if o["kind"] == "Deployment" and o["metadata"]["name"] == deployment)
        return deploy["spec"]["template"]["spec"]["containers"][0]["env"]

    def secret_template(self, name: str) -> dict[str, str]:
        es = next(o for o in self.objects if o["kind"] == "ExternalSecret" and o["metadata"]["name"] == name)
        return es["spec"]["target"]["template"]["data"]

    def config_map(self, name: str) -> dict[str, str]:
        return next(o for o in self.objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == name)["data"]

    def resolve_env(self, deployment: str, remote: dict[str, str]) -> dict[str, str]:
        """What the kubelet would hand the container, with ESO's templates applied to `remote`."""
        out = {}
        for e in self.container_env(deployment):
            if "value" in e:
                out[e["name"]] = e["value"]
            elif "secretKeyRef" in e["valueFrom"]:
                ref = e["valueFrom"]["secretKeyRef"]
                out[e["name"]] = eso_render(self.secret_template(ref["name"])[ref["key"]], remote)
            else:
                ref = e["valueFrom"]["configMapKeyRef"]
                out[e["name"]] = self.config_map(ref["name"])[ref["key"]]
        return out


def eso_render(template: str, remote: dict[str, str]) -> str:
    """The two template forms the chart uses: `{{ .var }}` and `{{ .var | urlquery }}`."""

    def sub(m: re.Match[str]) -> str:
        value = remote[m.group(1)]
        return urllib.parse.quote_plus(value) if m.group(2) else value

    rendered = _TEMPLATE_VAR.sub(sub, template)
    assert "{{" not in rendered, f"unrendered template construct in {template!r}"
    return rendered


def _alphanumeric(n: int = 32) -> str:
    # Like the data stack's generated secrets (constructs_lib/secrets.py NO_PUNCTUATION).
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(n))


class SecretsManager(dict):
    """Secrets Manager stand-in: a value the database does not check (API keys, JWT secret) is
    made up, once, the first time a template asks for it."""

    def __missing__(self, var: str) -> str:
        self[var] = _alphanumeric(48)
        return self[var]


@pytest.fixture(scope="module")
def rendered() -> Rendered:
    return Rendered(objects=manifests(ENV_NAME)["supabase"])


@pytest.fixture(scope="module")
def remote(postgres_server) -> SecretsManager:
    """The database's login passwords, set by the project's bootstrap, and the master secret's
    host: the instance endpoint on AWS, here the name the test certificate carries."""
    passwords = {r.name: _alphanumeric() for r in DATABASE_LOGIN_ROLES}
    result = apply_bootstrap(postgres_server, passwords)
    assert result.returncode == 0, result.stderr
    return SecretsManager(
        {r.password_variable: passwords[r.name] for r in DATABASE_LOGIN_ROLES} | {eso.MASTER_HOST.var: VERIFIABLE_HOST}
    )


def test_npm_package_is_the_pinned_image_version():
    package = json.loads((META_PACKAGE / "package.json").read_text())
    assert f"v{package['version']}" == images.META.tag, "node_modules' postgres-meta drifted from images.META"


def test_studio_and_meta_point_at_the_same_database(rendered, remote):
    studio = rendered.resolve_env("studio", remote)
    meta = rendered.resolve_env("meta", remote)
    assert meta["PG_META_DB_HOST"] == remote[eso.MASTER_HOST.var]
    assert (studio["POSTGRES_HOST"], studio["POSTGRES_PORT"], studio["POSTGRES_DB"]) == (
        meta["PG_META_DB_HOST"],
        meta["PG_META_DB_PORT"],
        meta["PG_META_DB_NAME"],
    )
    assert studio["POSTGRES_USER_READ_WRITE"] == meta["PG_META_DB_USER"]
    assert studio["POSTGRES_PASSWORD"] == meta["PG_META_DB_PASSWORD"]
    assert studio["PG_META_CRYPTO_KEY"] == meta["CRYPTO_KEY"]
    assert studio["STUDIO_PG_META_URL"].endswith(f":{meta['PG_META_PORT']}")


@dataclass(frozen=True)
class MetaServer:
    url: str
    log: Path

    def call(
        self, method: str, path: str, *, body: object = None, headers: dict[str, str] | None = None
    ) -> tuple[int, object]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")


def _server_ca(postgres_server) -> str:
    return (postgres_server.base_dir / "tls" / "server.crt").read_text()


def _start_meta(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, MetaServer]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "NODE_"))}
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["node", str(META_PACKAGE / "dist" / "server" / "server.js")],
            env={**base, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=META_PACKAGE,
        )
    server = MetaServer(url=f"http://127.0.0.1:{env['PG_META_PORT']}", log=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"postgres-meta exited {proc.returncode}:\n{log.read_text()}")
        try:
            if server.call("GET", "/health")[0] == 200:
                return proc, server
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"postgres-meta did not answer /health:\n{log.read_text()}")


@pytest.fixture(scope="module")
def start_meta(rendered, remote, postgres_server, tmp_path_factory) -> Iterator[Callable[..., MetaServer]]:
    """Start postgres-meta with the manifest's env; `ca` replaces the RDS CA when given, `host`
    the master secret's host."""
    procs: list[subprocess.Popen] = []

    def start(*, ca: str | None, host: str | None = None) -> MetaServer:
        values = remote if host is None else SecretsManager({**remote, eso.MASTER_HOST.var: host})
        env = rendered.resolve_env("meta", values)
        env.update(
            PG_META_DB_PORT=str(postgres_server.port),
            PG_META_DB_NAME=postgres_server.dbname,
            PG_META_PORT=str(free_port_pair()),
        )
        if ca is not None:
            env["PG_META_DB_SSL_ROOT_CERT"] = ca
        proc, server = _start_meta(env, tmp_path_factory.mktemp("meta") / "meta.log")
        procs.append(proc)
        return server

    yield start
    for proc in procs:
        # Killed, as scripts/appdev/meta.py does: 0.96.6's graceful stop never finishes (its
        # two servers' onClose hooks wait for each other) until close-with-grace's 10 s timeout.
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def meta(start_meta, postgres_server) -> MetaServer:
    return start_meta(ca=_server_ca(postgres_server))


def studio_connection(rendered: Rendered, remote: dict[str, str], postgres_server, *, with_ssl_param: bool) -> str:
    """Studio's getConnectionString({ readOnly: false }); the POSTGRES_SSL suffix exists only in
    Studio builds that read POSTGRES_SSL, so both forms must work."""
    env = rendered.resolve_env("studio", remote)
    user, password, host = env["POSTGRES_USER_READ_WRITE"], env["POSTGRES_PASSWORD"], env["POSTGRES_HOST"]
    ssl = f"?sslmode={env['POSTGRES_SSL']}" if with_ssl_param else ""
    return f"postgresql://{user}:{password}@{host}:{postgres_server.port}/{postgres_server.dbname}{ssl}"


def studio_encrypt(plaintexts: list[str], key: str) -> list[str]:
    """crypto-js AES with a passphrase, as Studio's encryptString does; one node for them all."""
    script = (
        "const [key, ...texts] = process.argv.slice(1); const { AES } = require('crypto-js');"
        "process.stdout.write(JSON.stringify(texts.map((text) => AES.encrypt(text, key).toString())))"
    )
    out = subprocess.run(
        ["node", "-e", script, key, *plaintexts], capture_output=True, text=True, check=True, cwd=ROOT, timeout=30
    )
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def studio_headers(rendered, remote, postgres_server) -> Callable[..., dict[str, str]]:
    """`studio_headers(with_ssl_param, host=...)`: Studio's encrypted connection header for the
    master secret's host (or `host`), with or without POSTGRES_SSL."""
    key = rendered.resolve_env("studio", remote)["PG_META_CRYPTO_KEY"]
    variants = [(with_ssl_param, host) for with_ssl_param in (True, False) for host in (None, UNNAMED_HOST)]
    connections = [
        studio_connection(
            rendered,
            remote if host is None else SecretsManager({**remote, eso.MASTER_HOST.var: host}),
            postgres_server,
            with_ssl_param=with_ssl_param,
        )
        for with_ssl_param, host in variants
    ]
    encrypted = dict(zip(variants, studio_encrypt(connections, key), strict=True))

    def headers(with_ssl_param: bool, *, host: str | None = None) -> dict[str, str]:
        return {"x-connection-encrypted": encrypted[(with_ssl_param, host)]}

    return headers


WHO = "select current_user as who, s.ssl, s.version as tls from pg_stat_ssl s where s.pid = pg_backend_pid()"


def test_meta_own_connection_serves_the_catalog(meta, rendered, remote, report):
    status, schemas = meta.call("GET", "/schemas")
    assert status == 200, schemas
    assert {"public", "auth", "storage", "extensions"} <= {s["name"] for s in schemas}
    status, roles = meta.call("GET", "/roles")
    assert status == 200, roles
    names = {r["name"] for r in roles}
    assert {"anon", "authenticated", "service_role", "authenticator", "dashboard_user"} <= names
    status, who = meta.call("POST", "/query", body={"query": WHO})
    assert status == 200, who
    assert who == [{"who": rendered.resolve_env("meta", remote)["PG_META_DB_USER"], "ssl": True, "tls": who[0]["tls"]}]
    report(
        "supabase runtime: postgres-meta",
        f"v{images.META.tag.lstrip('v')} from npm with the rendered env, verify-full TLS as {who[0]['who']} "
        f"({who[0]['tls']}): GET /schemas ({len(schemas)}), GET /roles ({len(roles)}), POST /query; "
        "Studio-encrypted x-connection-encrypted: whoami, DDL + RLS, GET /tables, "
        "with and without POSTGRES_SSL; wrong CA and a name the certificate lacks refused",
    )


@pytest.mark.parametrize("with_ssl_param", [True, False], ids=["POSTGRES_SSL", "no-sslmode"])
def test_studio_query_through_encrypted_connection(meta, studio_headers, rendered, remote, with_ssl_param):
    headers = studio_headers(with_ssl_param)
    status, who = meta.call("POST", "/query", body={"query": WHO}, headers=headers)
    assert status == 200, who
    assert who[0]["who"] == rendered.resolve_env("studio", remote)["POSTGRES_USER_READ_WRITE"]
    assert who[0]["ssl"] is True


def test_studio_table_editor_creates_a_table_with_rls(meta, studio_headers):
    headers = studio_headers(True)
    table = f"studio_probe_{secrets.token_hex(4)}"
    ddl = (
        f"create table public.{table} (id bigint generated always as identity primary key, name text); "
        f"alter table public.{table} enable row level security;"
    )
    status, out = meta.call("POST", "/query", body={"query": ddl}, headers=headers)
    assert status == 200, out
    try:
        status, tables = meta.call("GET", "/tables?included_schemas=public", headers=headers)
        assert status == 200, tables
        found = [t for t in tables if t["name"] == table]
        assert len(found) == 1 and found[0]["rls_enabled"] is True
        assert [c["name"] for c in found[0]["columns"]] == ["id", "name"]
        status, rows = meta.call(
            "POST",
            "/query",
            headers=headers,
            body={"query": f"insert into public.{table} (name) values ($1) returning id, name", "parameters": ["x"]},
        )
        assert status == 200 and rows == [{"id": 1, "name": "x"}], rows
    finally:
        status, out = meta.call("POST", "/query", body={"query": f"drop table public.{table}"}, headers=headers)
        assert status == 200, out


def test_meta_refuses_a_server_the_rds_ca_did_not_sign(start_meta, studio_headers):
    """With the rendered CA (the region's RDS roots), the throwaway server's certificate is
    rejected: verification is on, for pg-meta's own connection and for Studio's."""
    server = start_meta(ca=None)
    status, out = server.call("POST", "/query", body={"query": "select 1"})
    assert status >= 400 and "certificate" in json.dumps(out).lower(), out
    status, out = server.call("POST", "/query", body={"query": "select 1"}, headers=studio_headers(True))
    assert status >= 400 and "certificate" in json.dumps(out).lower(), out


def test_meta_refuses_a_name_the_certificate_does_not_carry(start_meta, meta, postgres_server, studio_headers):
    """Why meta and Studio take the master secret's host, not the db.<zone> alias: verify-full
    is postgres-meta's only verifying mode, and it checks the host name against the certificate,
    for its own connection and for Studio's. The right CA throughout: only the name differs."""
    server = start_meta(ca=_server_ca(postgres_server), host=UNNAMED_HOST)
    status, out = server.call("POST", "/query", body={"query": "select 1"})
    assert status >= 400 and "altnames" in json.dumps(out), out
    for with_ssl_param in (True, False):
        headers = studio_headers(with_ssl_param, host=UNNAMED_HOST)
        status, out = meta.call("POST", "/query", body={"query": "select 1"}, headers=headers)
        assert status >= 400 and "altnames" in json.dumps(out), out
