"""Work done once per test session, whichever pytest-xdist worker asks first.

`make test` runs two workers; a session fixture or `functools.cache` runs once per worker, so a
synthesis or a `helm template` both need would run twice. `once(key, produce)` runs `produce`
in the first process that asks, under a file lock, into a directory shared by the whole session;
later callers (the other worker, or the same one again) get that directory. This is the pattern
pytest-xdist documents for session fixtures that must run once
(https://pytest-xdist.readthedocs.io/en/stable/how-to.html#making-session-scoped-fixtures-execute-only-once).

`spawn(key, argv)` is the same for a command: the first process that asks starts it in the
background (the controller, for scans of files that exist before any test runs), and `spawned`
waits for its output in any process.

The directory lives for one session: `tests/conftest.py` creates it in the controller before
the workers start (they inherit SESSION_DIR through the environment) and removes it at the end.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

SESSION_DIR = "SUPABASE_TEST_SESSION_DIR"
_DONE = ".done"


def session_dir() -> Path:
    """The session's shared directory (a private one when no session set it up, e.g. a script)."""
    if not os.environ.get(SESSION_DIR):
        os.environ[SESSION_DIR] = tempfile.mkdtemp(prefix="supabase-tests-")
        atexit.register(shutil.rmtree, os.environ[SESSION_DIR], ignore_errors=True)
    return Path(os.environ[SESSION_DIR])


def key_of(*parts: str) -> str:
    """A file-name-safe key for arbitrary inputs (values files, chart paths, versions)."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def once(key: str, produce: Callable[[Path], None]) -> Path:
    """`produce(directory)` fills a fresh directory once per session; returns where it is kept.

    A `produce` that raises leaves nothing behind, so the next caller tries again and sees the
    same error instead of a half-written result.
    """
    target = session_dir() / key
    with FileLock(f"{target}.lock"):
        if not (target / _DONE).exists():
            scratch = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=session_dir()))
            try:
                produce(scratch)
                (scratch / _DONE).touch()
                shutil.rmtree(target, ignore_errors=True)
                scratch.rename(target)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
    return target


# What `spawn` leaves in its directory: the command's output, and its exit status once it ended.
_STDOUT, _STDERR, _STATUS, _PID = "stdout", "stderr", "status", "pid"
# Runs the command with its output in files and writes its exit status after it, atomically (the
# status file appears whole or not at all), so any process can tell that it ended and how.
_RECORD = 'exec >stdout 2>stderr; "$@"; echo $? >status.part; mv status.part status'
# The processes this one started, kept so that none is collected while it runs; `spawned` reads the
# status file, which every process can.
_SPAWNED: list[subprocess.Popen] = []


def spawn(key: str, argv: list[str], *, env: dict[str, str]) -> Path:
    """Starts `argv` in the background once per session, whichever process asks first, and returns
    its directory for `spawned`. The command runs beside the tests: a scan of files that already
    exist can start early in the session and be done by the time a test reads its report."""
    target = session_dir() / key
    with FileLock(f"{target}.lock"):
        if not target.exists():
            target.mkdir()
            process = subprocess.Popen(["sh", "-c", _RECORD, "sh", *argv], cwd=target, env=env, start_new_session=True)
            _SPAWNED.append(process)
            (target / _PID).write_text(str(process.pid))
    return target


def spawned(directory: Path, *, timeout: float) -> tuple[int, str, str]:
    """Waits for the command `spawn` started in `directory`: (exit status, stdout, stderr)."""
    deadline = time.monotonic() + timeout
    while not (directory / _STATUS).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{directory.name}: not done after {timeout} s")
        time.sleep(0.05)
    status = int((directory / _STATUS).read_text())
    return status, (directory / _STDOUT).read_text(), (directory / _STDERR).read_text()


def stop_spawned() -> None:
    """Stops what `spawn` started that still runs (a session ended early), before its directory goes."""
    for pid_file in session_dir().glob(f"*/{_PID}"):
        if not (pid_file.parent / _STATUS).exists():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(pid_file.read_text()), signal.SIGTERM)
