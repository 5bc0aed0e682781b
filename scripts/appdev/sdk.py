"""Typed clients from the migrated schema, by postgres-meta's own generators: the endpoints
`supabase gen types --lang <typescript|go|swift|python>` calls."""

from __future__ import annotations

from pathlib import Path

from database.migrations import APP_SCHEMAS
from scripts.appdev.meta import meta_server

# Generator -> file written; names follow what `supabase gen types` users commit.
OUTPUTS = {
    "typescript": "database.types.ts",
    "python": "database_types.py",
    "go": "database.go",
    "swift": "Database.swift",
}


def write(database_url: str, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with meta_server(database_url) as meta:
        for generator, file_name in OUTPUTS.items():
            path = out / file_name
            path.write_text(meta.text(f"/generators/{generator}", included_schemas=",".join(APP_SCHEMAS)))
            written.append(path)
    return written
