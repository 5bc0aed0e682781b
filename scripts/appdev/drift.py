"""Drift: does a live database's schema still match what the migrations produce?

The migrations are applied to a scratch PostgreSQL 17 (scripts.appdev.scratch), then migra
(npm @pgkit/migra, pinned; a port of djrobstep's migra) diffs the live schema against it,
privileges included, for each schema the application owns (database.migrations.APP_SCHEMAS).
Its output is the SQL that would turn the live schema into the migrated one: empty means no
drift. Anything made by hand (a column added in Studio, a dropped policy) shows up as a
statement to undo it, which is also the hint for the migration that should have made it.
"""

from __future__ import annotations

from pathlib import Path

from database.migrations import APP_SCHEMAS, MIGRATIONS_DIR
from scripts.appdev.scratch import NODE_BIN, ROOT, clean_env, migrated_scratch, run


def diff(live_url: str, migrated_url: str) -> str:
    """migra's statements from live to migrated, per application schema; '' when equal."""
    out = []
    for schema in APP_SCHEMAS:
        result = run(
            [
                str(NODE_BIN / "migra"),
                "run",
                live_url,
                migrated_url,
                "--schema",
                schema,
                "--unsafe",
                "--with-privileges",
            ],
            env=clean_env(),
            cwd=ROOT,
            timeout=300,
        )
        out.append(result.stdout.strip())
    return "\n".join(s for s in out if s)


def drift(live_url: str, migrations_dir: Path = MIGRATIONS_DIR) -> str:
    """Apply the migrations to a scratch server and diff `live_url` against it."""
    with migrated_scratch(migrations_dir) as scratch_url:
        return diff(live_url, scratch_url)
