"""Login roles the Supabase services use, one Secrets Manager secret each.

The data stack creates a generated secret per role; the bootstrap SQL sets each database
role's password from its secret (psql variable `<role>_password`); the charts mount them
through External Secrets (and render PgBouncer's userlist.txt from them). This tuple is
the single list all three read.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class LoginRole:
    name: str
    used_by: str
    # False for a user that exists only in PgBouncer's auth_file (its admin console): it
    # has a secret but no PostgreSQL role, so the bootstrap leaves it out.
    database_role: bool = True

    @property
    def secret_key(self) -> str:
        """Suffix under the environment's secret prefix, e.g. `db/authenticator`."""
        return f"db/{self.name}"

    @property
    def password_variable(self) -> str:
        """psql variable and container env var (upper-cased) that carry the password."""
        return f"{self.name}_password"


# supabase_admin is the RDS master user; its secret is the RDS-managed one (db/master).
MASTER_USER = "supabase_admin"
# Member of pg_monitor: the postgres exporters and the restore validation function log in as it.
READ_ONLY_ROLE = "supabase_read_only_user"

LOGIN_ROLES: tuple[LoginRole, ...] = (
    LoginRole(name="authenticator", used_by="PostgREST"),
    LoginRole(name="supabase_auth_admin", used_by="GoTrue"),
    LoginRole(name="supabase_storage_admin", used_by="Storage API"),
    LoginRole(name="supabase_functions_admin", used_by="Edge runtime"),
    LoginRole(name="supabase_replication_admin", used_by="Realtime replication"),
    LoginRole(name=READ_ONLY_ROLE, used_by="read-only PostgREST and analytics"),
    LoginRole(name="dashboard_user", used_by="Studio / postgres-meta"),
    LoginRole(name="pgbouncer", used_by="PgBouncer admin console (metrics exporter)", database_role=False),
)

DATABASE_LOGIN_ROLES: tuple[LoginRole, ...] = tuple(r for r in LOGIN_ROLES if r.database_role)
