"""The drill's measured-time procedure on a real outage: ops/drills/probe.sh polls a PostgreSQL 17
server (a streaming replica of the harness) over TLS, the server is stopped for a known time and
started again, and ops/drills/recovery_time.py reads the outage back from the probe's lines."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ops.drills.recovery_time import outage
from tests.integration.conftest import PostgresServer, _clean_env, start_replica

# Waits out a real outage of a server.
pytestmark = pytest.mark.waits

DRILLS = Path(__file__).resolve().parents[2] / "ops" / "drills"
# The outage lasts until the probe has failed this often (one try per 0.2 s).
FAILED_TRIES = 5


def _pg_ctl(server: PostgresServer, *args: str) -> None:
    subprocess.run(
        [str(server.server_bindir / "pg_ctl"), "-D", str(server.base_dir / "data"), *args],
        check=True,
        capture_output=True,
        env=_clean_env(),
        **server.daemon_user_kwargs(),  # type: ignore[arg-type]
    )


class ProbeLines:
    """The probe's stdout, read as it comes (a thread), so the test waits for the lines it needs
    rather than for a guessed time."""

    def __init__(self, probe: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, args=(probe,), daemon=True)
        self._reader.start()

    def _read(self, probe: subprocess.Popen[str]) -> None:
        assert probe.stdout is not None
        for line in probe.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for(self, state: str, *, after: int, count: int = 1) -> int:
        """Index of the `count`th line from line `after` on whose state is `state`."""

        def matching() -> list[int]:
            return [i for i in range(after, len(self.lines)) if self.lines[i].endswith(f" {state}")]

        with self._changed:
            found = self._changed.wait_for(lambda: len(matching()) >= count, timeout=30)
            assert found, f"fewer than {count} {state} lines from the probe: {self.lines}"
            return matching()[count - 1]

    def close(self) -> list[str]:
        self._reader.join(timeout=10)
        return self.lines


def test_probe_measures_a_real_outage(postgres_server: PostgresServer):
    with start_replica(postgres_server) as replica:
        env = {
            **_clean_env(),
            "PATH": f"{replica.bindir}:{os.environ['PATH']}",
            "PGPASSWORD": replica.master_password,
            "PROBE_INTERVAL": "0.2",
        }
        conninfo = f"host={replica.host} port={replica.port} dbname={replica.dbname} user={replica.master_user} sslmode=require"
        probe = subprocess.Popen(["sh", str(DRILLS / "probe.sh"), conninfo], stdout=subprocess.PIPE, text=True, env=env)
        read = ProbeLines(probe)
        try:
            # Up, as the probe sees it; then down (timed here) until the probe has failed
            # FAILED_TRIES times; then up again, as it sees it.
            read.wait_for("ok", after=0)
            _pg_ctl(replica, "-m", "fast", "-w", "stop")
            stopped = time.monotonic()
            first_failure = read.wait_for("FAIL", after=0)
            read.wait_for("FAIL", after=first_failure, count=FAILED_TRIES)
            _pg_ctl(replica, "-l", str(replica.base_dir / "server.log"), "-w", "-t", "60", "start")
            restarted = time.monotonic()
            read.wait_for("ok", after=first_failure)
        finally:
            probe.terminate()
            probe.wait(timeout=10)
            lines = read.close()
    found = outage(lines)
    assert found is not None, lines
    down = restarted - stopped
    # The probe sees the outage to within one try (0.2 s) plus one connection attempt.
    assert down - 0.5 <= found.seconds <= down + 1.5, (found, down, lines)
    assert found.failed_tries >= FAILED_TRIES


def test_recovery_time_refuses_a_log_without_a_complete_outage(tmp_path: Path):
    healthy = tmp_path / "healthy.log"
    healthy.write_text("2026-12-05T10:00:00.000Z ok\n2026-12-05T10:00:01.000Z ok\n", encoding="utf-8")
    never_back = tmp_path / "down.log"
    never_back.write_text("2026-12-05T10:00:00.000Z ok\n2026-12-05T10:00:01.000Z FAIL\n", encoding="utf-8")
    for log in (healthy, never_back):
        run = subprocess.run(
            [sys.executable, "-m", "ops.drills.recovery_time", str(log)], capture_output=True, text=True
        )
        assert run.returncode == 1 and "no complete outage" in run.stdout
    measured = tmp_path / "drill.log"
    measured.write_text(
        "2026-12-05T10:00:00.000Z ok\n2026-12-05T10:00:01.000Z FAIL\n2026-12-05T10:00:30.000Z ok\n"
        "2026-12-05T10:00:31.000Z FAIL\n2026-12-05T10:01:31.500Z ok\n",
        encoding="utf-8",
    )
    run = subprocess.run(
        [sys.executable, "-m", "ops.drills.recovery_time", str(measured)], capture_output=True, text=True
    )
    assert run.returncode == 0 and run.stdout.startswith("outage 90.5 s"), run.stdout
