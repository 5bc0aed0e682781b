"""Application schema migrations: the folder, the tool and how it is run, in one place.

Application teams keep versioned SQL files in `supabase/migrations/`, named like the
Supabase CLI names them (`<UTC yyyymmddhhmmss>_<name>.sql`). node-pg-migrate (npm, pinned in
package.json and in `database/migrate_tool/`) applies them: every pending file of a run and its
row in the history table in one transaction (the tool's default, `--single-transaction`), so a
release's migrations apply all or not at all and the schema is never between two releases;
under a session advisory lock that a second run waits for (`--advisory-lock-mode wait`); and
`--check-order` refuses a new file dated before one already applied. The `supabase-db-migrate` Job (k8s_charts/supabase/migrate.py), `make
migrate` and the tests all run it with `tool_args`, so they cannot disagree.

A file is plain SQL; an optional `-- Down Migration` line starts the part that reverts it
(node-pg-migrate's SQL format).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS_DIR = ROOT / "supabase" / "migrations"
TOOL_DIR = Path(__file__).with_name("migrate_tool")
TOOL_PACKAGE = "node-pg-migrate"
DRIVER_PACKAGE = "pg"
# The history lives outside every schema PostgREST exposes (public, storage, graphql_public):
# in `public` the API roles' default privileges would let any client rewrite it.
HISTORY_SCHEMA = "supabase_migrations"
HISTORY_TABLE = "pgmigrations"
# Schemas an application's migrations own; the drift check and the generators look at these.
APP_SCHEMAS = ("public",)
FILE_NAME = re.compile(r"^(?P<version>\d{14})_(?P<name>[a-z0-9_]+)\.sql$")
# The folder travels inline in the platform stack's template, as a ConfigMap of the db-migrate
# manifest. CloudFormation reads templates of at most 1 MB from S3
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html),
# and the platform template already holds every other manifest (about 450 kB for the example
# organization); SQL grows by its escaped quotes and newlines, about a fifth for typical files.
# tests/deploy's quota rules measure the real template on every `make test`.
MAX_BYTES = 256 * 1024


class MigrationError(ValueError):
    pass


@dataclass(frozen=True, kw_only=True)
class Migration:
    file_name: str
    sql: str

    @property
    def name(self) -> str:
        """The row node-pg-migrate writes into the history table."""
        return self.file_name.removesuffix(".sql")


def load_migrations(directory: Path = MIGRATIONS_DIR) -> tuple[Migration, ...]:
    """Every migration file, in the order they apply; refuses what the Job could not run."""
    if not directory.is_dir():
        raise MigrationError(f"{directory}: the migrations folder is missing; fix: create it (it may stay empty)")
    found = []
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") or path.name == "README.md":
            continue
        if not FILE_NAME.match(path.name):
            raise MigrationError(
                f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: file name {path.name!r} given; "
                "migrations are named <UTC yyyymmddhhmmss>_<lowercase_name>.sql; "
                "fix: rename it, e.g. 20260101120000_create_todos.sql"
            )
        found.append(Migration(file_name=path.name, sql=path.read_text(encoding="utf-8")))
    versions = [FILE_NAME.match(m.file_name)["version"] for m in found]  # type: ignore[index]
    duplicates = sorted({v for v in versions if versions.count(v) > 1})
    if duplicates:
        raise MigrationError(
            f"{directory}: version {duplicates[0]} is used by more than one file; "
            "each migration needs its own timestamp; fix: give the newer file a later one"
        )
    size = sum(len(m.sql.encode()) for m in found)
    if size > MAX_BYTES:
        raise MigrationError(
            f"{directory}: {size} bytes of migrations given; they travel inside the platform stack's "
            f"CloudFormation template (1 MB at most, shared with every manifest), so the folder may hold "
            f"{MAX_BYTES} bytes; fix: squash the migrations every environment has applied into one baseline file"
        )
    return tuple(found)


def migrations_digest(directory: Path = MIGRATIONS_DIR) -> str:
    """Changes with any migration file: PostgREST's pods carry it, so a release with new
    migrations restarts them and their schema cache (its reload channel is off behind
    PgBouncer: k8s_charts/supabase/components.py)."""
    return hashlib.sha256(json.dumps([[m.file_name, m.sql] for m in load_migrations(directory)]).encode()).hexdigest()


def tool_args(migrations_dir: str) -> list[str]:
    """node-pg-migrate's arguments; the connection, TLS included, comes from DATABASE_URL.

    No `--schema`: it would replace the search_path, and migrations should resolve names as
    the services do, with the database's default ("$user", public, extensions).
    """
    return [
        "up",
        "--migrations-dir",
        migrations_dir,
        "--migrations-schema",
        HISTORY_SCHEMA,
        "--create-migrations-schema",
        "--migrations-table",
        HISTORY_TABLE,
        "--check-order",
        "--single-transaction",
        "--advisory-lock-mode",
        "wait",
    ]


def tool_versions() -> dict[str, str]:
    """The Job's pins (database/migrate_tool/package.json): the same as the repository's."""
    return json.loads((TOOL_DIR / "package.json").read_text())["dependencies"]


def tool_files() -> dict[str, str]:
    """package.json and package-lock.json the Job hands to `npm ci`."""
    return {name: (TOOL_DIR / name).read_text() for name in ("package.json", "package-lock.json")}
