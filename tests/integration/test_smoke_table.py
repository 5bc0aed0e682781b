"""The smoke suite's RLS probe table, as the bootstrap leaves it on a fresh database, read
and written through PostgREST's role switch with each key's claims (as in
test_postgrest_roles): the rows each caller sees are the ones ops/smoke expects."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from ops.smoke.client import SMOKE_TABLE
from tests.integration.conftest import apply_bootstrap, bootstrapped_database
from tests.integration.test_postgrest_roles import pgrst_request

DBNAME = "smoke_table"
SERVICE = {"role": "service_role"}
RUN = "run1"


@pytest.fixture(scope="module")
def rest(postgres_server, service_db, manifest_env):
    passwords = bootstrapped_database(postgres_server, DBNAME)
    # A second run, as every deploy does: the table's narrowed grants must survive it.
    run = apply_bootstrap(postgres_server, passwords, dbname=DBNAME)
    assert run.returncode == 0, run.stderr
    url = service_db("rest", "PGRST_DB_URI")
    return manifest_env("rest"), url.conninfo(postgres_server, passwords, DBNAME)


def labels(conn, env, claims) -> set[str]:
    rows = pgrst_request(conn, env, claims, f"SELECT label FROM {SMOKE_TABLE} WHERE run_id = '{RUN}'")
    return {r[0] for r in rows}


def test_each_key_sees_the_rows_the_smoke_suite_expects(rest):
    env, conninfo = rest
    user = str(uuid.uuid4())
    signed_in = {"role": "authenticated", "sub": user}
    with psycopg.connect(conninfo) as conn:
        pgrst_request(
            conn,
            env,
            SERVICE,
            f"INSERT INTO {SMOKE_TABLE} (run_id, label, is_public, owner_id) VALUES "
            f"('{RUN}', 'public', true, NULL), ('{RUN}', 'own', false, '{user}'), "
            f"('{RUN}', 'other', false, '{uuid.uuid4()}')",
            "POST",
        )
        assert labels(conn, env, SERVICE) == {"public", "own", "other"}
        assert labels(conn, env, None) == {"public"}
        assert labels(conn, env, signed_in) == {"public", "own"}
        # A subject that is no uuid, or none at all, matches only the public row.
        assert labels(conn, env, {"role": "authenticated", "sub": "not-a-uuid"}) == {"public"}
        assert labels(conn, env, {"role": "authenticated"}) == {"public"}
        pgrst_request(conn, env, SERVICE, f"DELETE FROM {SMOKE_TABLE} WHERE run_id = '{RUN}'", "DELETE")
        assert labels(conn, env, SERVICE) == set()


@pytest.mark.parametrize("claims", [None, {"role": "authenticated", "sub": str(uuid.uuid4())}], ids=["anon", "user"])
@pytest.mark.parametrize(
    "sql",
    [
        f"INSERT INTO {SMOKE_TABLE} (run_id, label, is_public) VALUES ('{RUN}', 'x', true)",
        f"UPDATE {SMOKE_TABLE} SET is_public = true",
        f"DELETE FROM {SMOKE_TABLE}",
    ],
    ids=["insert", "update", "delete"],
)
def test_the_public_key_and_users_cannot_write(rest, claims, sql):
    env, conninfo = rest
    with psycopg.connect(conninfo) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        pgrst_request(conn, env, claims, sql, "POST")


def test_the_table_has_rls_and_the_columns_the_client_writes(rest, postgres_server):
    with psycopg.connect(postgres_server.conninfo(dbname=DBNAME)) as conn:
        assert conn.execute(
            "SELECT relrowsecurity FROM pg_class WHERE oid = %s::regclass", (f"public.{SMOKE_TABLE}",)
        ).fetchone() == (True,)
        columns = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s",
                (SMOKE_TABLE,),
            )
        }
    assert {"run_id", "label", "is_public", "owner_id"} <= columns
