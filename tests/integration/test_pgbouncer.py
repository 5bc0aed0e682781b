"""The project's pgbouncer.ini in front of a real PostgreSQL, driven by pgbench.

The server allows 20 connections; 200 pgbench clients must all be served through
PgBouncer without a single failed transaction, which only pooling makes possible (the
same load sent directly is refused). That is a correctness test with a fixed number of
transactions. Throughput, pooled against direct, is a benchmark: `make bench` runs
`test_throughput_pooled_against_direct` (marker `bench`, deselected from `make test`), which
reports both side by side and never fails on the numbers of a noisy machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time

import psycopg
import pytest

from database.pgbouncer import pool_sizes, render_ini, render_userlist
from tests.integration.conftest import free_port

# Drives ten times max_connections of clients through a real PgBouncer.
pytestmark = pytest.mark.long

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
BENCH_DB = "bench"
BENCH_SECONDS = 6
# Transactions per client in the correctness run: bounded work, so the test takes the same
# time on any machine.
TRANSACTIONS_PER_CLIENT = 5


def _wait_for_port(port: int, proc: subprocess.Popen, log_path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"pgbouncer exited {proc.returncode}:\n{log_path.read_text()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"pgbouncer did not listen on {port}:\n{log_path.read_text()}")


def _pgbench(server, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(server.bindir / "pgbench"), *args], capture_output=True, text=True, env=env, timeout=120)


def _parse(output: str) -> dict[str, float]:
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", output)
    done = re.search(r"number of transactions actually processed: (\d+)", output)
    failed = re.search(r"number of failed transactions: (\d+)", output)
    assert tps and done, output
    return {
        "tps": float(tps.group(1)),
        "transactions": int(done.group(1)),
        # pgbench 15 prints the line; older ones abort the run on any failure instead.
        "failed": int(failed.group(1)) if failed else 0,
    }


@pytest.fixture(scope="module")
def bench_db(postgres_server):
    with psycopg.connect(postgres_server.conninfo(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    init = _pgbench(postgres_server, postgres_server.libpq_env(dbname=BENCH_DB), "-i", "-q", "-s", "1")
    assert init.returncode == 0, init.stderr
    return BENCH_DB


@pytest.fixture(scope="module")
def bouncer(postgres_server, bench_db):
    if not os.path.exists(PGBOUNCER):
        pytest.skip("pgbouncer is not installed; `make install` adds it")
    workdir = postgres_server.make_private_dir("pgbouncer-")
    admin_password = "stats-" + os.urandom(8).hex()
    userlist = workdir / "userlist.txt"
    userlist.write_text(
        render_userlist(
            {
                postgres_server.master_user: postgres_server.master_password,
                "pgbouncer": admin_password,
            }
        )
    )
    os.chmod(userlist, 0o600)
    port = free_port()
    ini = workdir / "pgbouncer.ini"
    ini.write_text(
        render_ini(
            primary_host="127.0.0.1",
            replica_host="127.0.0.1",
            port=postgres_server.port,
            dbname=bench_db,
            instance_class="db.t4g.micro",
            replicas=1,
            listen_addr="127.0.0.1",
            listen_port=port,
            auth_file=str(userlist),
            server_max_connections=postgres_server.max_connections,
        )
    )
    for path in (userlist, ini):
        postgres_server.chown_for_daemon(path)
    log_path = workdir / "pgbouncer.log"
    with open(log_path, "w") as log:
        # PgBouncer refuses to run as root: drop to the server's OS user in CI.
        proc = subprocess.Popen(
            [PGBOUNCER, str(ini)], stdout=log, stderr=subprocess.STDOUT, **postgres_server.daemon_user_kwargs()
        )
    try:
        _wait_for_port(port, proc, log_path)
        yield {"port": port, "admin_password": admin_password, "log": log_path}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _bouncer_env(server, bouncer, *, dbname: str, user: str | None = None, password: str | None = None):
    env = server.libpq_env(dbname=dbname, user=user, password=password)
    env.update(PGPORT=str(bouncer["port"]), PGSSLMODE="disable")
    return env


def _admin_show(server, bouncer, what: str) -> list[list[str]]:
    env = _bouncer_env(server, bouncer, dbname="pgbouncer", user="pgbouncer", password=bouncer["admin_password"])
    out = subprocess.run(
        [str(server.bindir / "psql"), "-X", "-A", "-t", "-F", "|", "-c", f"SHOW {what}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=10,
    )
    assert out.returncode == 0, out.stderr
    return [line.split("|") for line in out.stdout.splitlines() if line]


def test_pooling_serves_ten_times_max_connections(postgres_server, bench_db, bouncer):
    clients = 10 * postgres_server.max_connections

    # Sent straight to PostgreSQL, this many clients are refused.
    refused = _pgbench(
        postgres_server,
        postgres_server.libpq_env(dbname=bench_db),
        "-n",
        "-c",
        str(clients),
        "-j",
        "2",
        "-t",
        "1",
        "-M",
        "simple",
    )
    assert refused.returncode != 0
    assert "too many clients" in refused.stderr or "connection slots" in refused.stderr

    pooled_run = _pgbench(
        postgres_server,
        _bouncer_env(postgres_server, bouncer, dbname=bench_db),
        "-n",
        "-c",
        str(clients),
        "-j",
        "2",
        "-t",
        str(TRANSACTIONS_PER_CLIENT),
        "-M",
        "simple",
    )
    assert pooled_run.returncode == 0, pooled_run.stderr + bouncer["log"].read_text()
    pooled = _parse(pooled_run.stdout)
    assert pooled["failed"] == 0
    assert pooled["transactions"] == clients * TRANSACTIONS_PER_CLIENT


@pytest.mark.bench
def test_throughput_pooled_against_direct(postgres_server, bench_db, bouncer, tmp_path, report):
    clients = 10 * postgres_server.max_connections
    direct_clients = postgres_server.max_connections // 2
    runs = {
        "pgbouncer": (clients, _bouncer_env(postgres_server, bouncer, dbname=bench_db)),
        "direct": (direct_clients, postgres_server.libpq_env(dbname=bench_db)),
    }
    results: dict[str, object] = {"server_max_connections": postgres_server.max_connections}
    for name, (n, env) in runs.items():
        run = _pgbench(postgres_server, env, "-n", "-c", str(n), "-j", "2", "-T", str(BENCH_SECONDS), "-M", "simple")
        assert run.returncode == 0, run.stderr
        results[name] = {"clients": n, **_parse(run.stdout)}
    (tmp_path / "pgbench_report.json").write_text(json.dumps(results, indent=2))
    pooled, direct = results["pgbouncer"], results["direct"]
    report(
        f"pgbench (server max_connections {postgres_server.max_connections}, {BENCH_SECONDS}s each)",
        f"pooled {pooled['clients']} clients {pooled['tps']:.0f} tps ({pooled['failed']} failed) | "
        f"direct {direct['clients']} clients {direct['tps']:.0f} tps ({direct['failed']} failed)",
    )


def test_admin_console_shows_the_sized_pool_and_the_read_only_database(postgres_server, bench_db, bouncer):
    sizes = pool_sizes(
        instance_class="db.t4g.micro", pgbouncer_replicas=1, server_max_connections=postgres_server.max_connections
    )
    header_env = _bouncer_env(
        postgres_server, bouncer, dbname="pgbouncer", user="pgbouncer", password=bouncer["admin_password"]
    )
    header = (
        subprocess.run(
            [str(postgres_server.bindir / "psql"), "-X", "-A", "-F", "|", "-c", "SHOW DATABASES"],
            capture_output=True,
            text=True,
            env=header_env,
            timeout=10,
        )
        .stdout.splitlines()[0]
        .split("|")
    )
    rows = {row[0]: dict(zip(header, row, strict=False)) for row in _admin_show(postgres_server, bouncer, "DATABASES")}
    assert int(rows[bench_db]["max_connections"]) == sizes.per_pod_server_connections
    assert rows[f"{bench_db}_ro"]["database"] == bench_db

    ro = subprocess.run(
        [str(postgres_server.bindir / "psql"), "-X", "-A", "-t", "-c", "SELECT count(*) FROM pgbench_branches"],
        capture_output=True,
        text=True,
        timeout=10,
        env=_bouncer_env(postgres_server, bouncer, dbname=f"{bench_db}_ro"),
    )
    assert ro.returncode == 0 and ro.stdout.strip() == "1", ro.stderr


def test_wrong_password_is_refused_by_pgbouncer(postgres_server, bench_db, bouncer):
    env = _bouncer_env(postgres_server, bouncer, dbname=bench_db, password="wrong-password")
    out = subprocess.run(
        [str(postgres_server.bindir / "psql"), "-X", "-c", "SELECT 1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=10,
    )
    assert out.returncode != 0 and "SASL authentication failed" in out.stderr
