"""Work done once per test session, whichever pytest-xdist worker asks first.

`make test` runs two workers; a session fixture or `functools.cache` runs once per worker, so a
synthesis or a `helm template` both need would run twice. `once(key, produce)` runs `produce`
in the first process that asks, under a file lock, into a directory shared by the whole session;
later callers (the other worker, or the same one again) get that directory. This is the pattern
pytest-xdist documents for session fixtures that must run once
(https://pytest-xdist.readthedocs.io/en/stable/how-to.html#making-session-scoped-fixtures-execute-only-once).

The directory lives for one session: `tests/conftest.py` creates it in the controller before
the workers start (they inherit SESSION_DIR through the environment) and removes it at the end.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
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
