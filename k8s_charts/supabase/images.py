"""Pinned, multi-arch (amd64 + arm64) images of every Supabase component.

Versions follow supabase-community/supabase-kubernetes 0.7.2 (see /work/shared/SUPABASE.md);
bumping one is a reviewed change of this file, and the snapshot tests show its blast radius.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Image:
    repository: str
    tag: str

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}"


KONG = Image(repository="kong/kong", tag="3.9.1")
AUTH = Image(repository="supabase/gotrue", tag="v2.189.0")
REST = Image(repository="postgrest/postgrest", tag="v14.12")
REALTIME = Image(repository="supabase/realtime", tag="v2.102.3")
STORAGE = Image(repository="supabase/storage-api", tag="v1.60.4")
IMGPROXY = Image(repository="darthsim/imgproxy", tag="v3.30.1")
META = Image(repository="supabase/postgres-meta", tag="v0.96.6")
STUDIO = Image(repository="supabase/studio", tag="2026.07.07-sha-a6a04f2")
FUNCTIONS = Image(repository="supabase/edge-runtime", tag="v1.74.0")
# CloudNativePG's PgBouncer image: maintained, multi-arch, rebuilt for each PgBouncer release,
# runs as a non-root user (the Bitnami images stopped being published in 2025).
PGBOUNCER = Image(repository="ghcr.io/cloudnative-pg/pgbouncer", tag="1.24.1")
PGBOUNCER_EXPORTER = Image(repository="prometheuscommunity/pgbouncer-exporter", tag="v0.10.2")
# Client only (psql); major version matches the RDS engine (PostgreSQL 17).
POSTGRES_CLIENT = Image(repository="postgres", tag="17.9-bookworm")
# Runs node-pg-migrate for the db-migrate Job (npm has the tool, no project publishes an image
# of it): the Node.js LTS line, Debian like the psql client.
NODE = Image(repository="node", tag="22.23.3-bookworm-slim")
