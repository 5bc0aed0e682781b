"""Storage's database URL as node-postgres opens it: the chain verified against the mounted CA file.

Storage v1.60.4 hands DATABASE_URL to node-postgres (pg 8.16.3, pg-connection-string 2.9.1 in
its package-lock.json) and passes no `ssl` of its own unless DATABASE_SSL_ROOT_CERT is set
(src/internal/database/ssl.ts), so the URL alone decides. pg-connection-string turns any
sslmode but disable into full verification and reads the `sslrootcert` file itself
(https://github.com/brianc/node-postgres/tree/master/packages/pg-connection-string#tcp-connections),
unless `uselibpqcompat=true` asks for libpq's meanings (2.9.1 has it): then verify-ca checks the
chain and not the host name. Storage connects by the private alias db.<zone>, a CNAME the RDS
certificate does not name, so the URL asks for exactly that. The test server is reached by its
IP address, which its certificate does not name either: the same mismatch.
The client here is node_modules' pg with pg-connection-string 2.14: its sslmode/sslrootcert
handling is the same code as 2.9.1 (only a deprecation warning was added).
"""

from __future__ import annotations

import json
import select
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest

from k8s_charts.supabase import rds_ca
from tests.integration.conftest import UNNAMED_HOST, bootstrapped_database

ROOT = Path(__file__).resolve().parents[2]
# A name the test certificate carries (node-postgres checks the host it dials, name or address).
VERIFIABLE_HOST = "localhost"
# One node for the module: each line on stdin is a URL, each line out the result of a new
# Client connecting with it (as Storage's pool does), so the checks share one Node start-up.
CONNECT = """
const { Client } = require('pg')
const lines = require('readline').createInterface({ input: process.stdin })
lines.on('line', async (url) => {
  lines.pause()
  const client = new Client({ connectionString: url })
  let out
  try {
    await client.connect()
    const r = await client.query("select current_user as who, ssl from pg_stat_ssl where pid = pg_backend_pid()")
    out = r.rows[0]
  } catch (e) {
    out = { error: e.message }
  }
  client.end().catch(() => {})
  process.stdout.write(JSON.stringify(out) + "\\n")
  lines.resume()
})
"""


@pytest.fixture(scope="module")
def node_postgres() -> Iterator[Callable[[str], dict]]:
    """`node_postgres(url)`: what node-postgres (node_modules' pg) gets connecting with `url`:
    the session's user and TLS flag, or the error."""
    node = subprocess.Popen(
        ["node", "-e", CONNECT], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
    )
    assert node.stdin is not None and node.stdout is not None

    def connect(url: str) -> dict:
        node.stdin.write(url + "\n")
        # One answer per question, read whole: nothing is left buffered between calls.
        assert select.select([node.stdout], [], [], 60)[0], "node-postgres gave no answer in 60 s"
        line = node.stdout.readline()
        assert line, f"node exited {node.poll()}"
        return json.loads(line)

    try:
        yield connect
    finally:
        node.stdin.close()
        try:
            node.wait(timeout=30)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait()


@pytest.fixture(scope="module")
def storage_url(postgres_server, service_db):
    db = service_db("storage", "DATABASE_URL")
    passwords = bootstrapped_database(postgres_server, "storage_tls")
    url = db.conninfo(postgres_server, passwords, "storage_tls")
    parts = urlsplit(url)
    # conninfo hands libpq the URL; node-postgres needs its switch back.
    query = {"uselibpqcompat": ["true"], **parse_qs(parts.query)}
    return urlunsplit(parts._replace(netloc=_at(parts, UNNAMED_HOST), query=urlencode(query, doseq=True)))


def _at(parts, host: str) -> str:
    return f"{parts.netloc.rsplit('@', 1)[0]}@{host}:{parts.port}"


def _with_query(url: str, **query: str) -> str:
    return urlunsplit(urlsplit(url)._replace(query=urlencode(query)))


def test_rendered_url_names_the_mounted_ca_and_verifies_the_chain(service_db):
    query = parse_qs(urlsplit(service_db("storage", "DATABASE_URL").url).query)
    assert query == {"uselibpqcompat": ["true"], "sslmode": ["verify-ca"], "sslrootcert": [rds_ca.FILE]}


def test_a_host_name_check_would_refuse_the_alias(storage_url, node_postgres):
    """Why verify-ca: the same CA with verify-full refuses a server whose certificate does not
    name the host connected to, as RDS's does not name db.<zone>."""
    sslrootcert = parse_qs(urlsplit(storage_url).query)["sslrootcert"][0]
    refused = node_postgres(_with_query(storage_url, sslmode="verify-full", sslrootcert=sslrootcert))
    assert "altnames" in refused.get("error", ""), refused
    parts = urlsplit(storage_url)
    named = urlunsplit(parts._replace(netloc=_at(parts, VERIFIABLE_HOST)))
    assert node_postgres(_with_query(named, sslmode="verify-full", sslrootcert=sslrootcert))["ssl"]


def test_storage_connects_with_its_url(storage_url, node_postgres):
    assert node_postgres(storage_url) == {"who": "supabase_storage_admin", "ssl": True}


def test_without_the_ca_storage_cannot_connect(storage_url, node_postgres):
    """The defect this URL fixes: `sslmode=require` and no CA means Node's own CA list, which
    has no RDS (here: no test) root."""
    assert "certificate" in node_postgres(_with_query(storage_url, sslmode="require")).get("error", "")


def test_another_ca_is_refused(storage_url, supabase_manifests, tmp_path, node_postgres):
    """The rendered ConfigMap's RDS roots did not sign the test server: verification is real."""
    cm = next(o for o in supabase_manifests if o["kind"] == "ConfigMap" and o["metadata"]["name"] == rds_ca.CONFIG_MAP)
    ca = tmp_path / rds_ca.KEY
    ca.write_text(cm["data"][rds_ca.KEY])
    url = _with_query(storage_url, uselibpqcompat="true", sslmode="verify-ca", sslrootcert=str(ca))
    assert "certificate" in node_postgres(url).get("error", "")
