-- Turns a fresh RDS for PostgreSQL database into one the Supabase services can use.
--
-- Run by psql as the RDS master (supabase_admin: CREATEROLE, CREATEDB, member of
-- rds_superuser and rds_replication, never a real superuser; objects it creates stay
-- owned by supabase_admin even if a superuser runs this file) with the arguments from
-- database.bootstrap.psql_args: ON_ERROR_STOP, one transaction, and one variable
-- `<role>_password` per login role. Every statement is safe to repeat: a second run only
-- sets the passwords again.
--
-- psql does not substitute variables inside dollar-quoted bodies, so anything that
-- needs a variable or a condition is built with format() and run with \gexec.

\set QUIET on
SET client_min_messages = warning;

-- Facts about the server that decide which branches below can run.
SELECT
    EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_replication') AS has_rds_replication,
    r.rolsuper AS is_superuser
FROM pg_roles AS r
WHERE r.rolname = current_user
\gset

CREATE FUNCTION pg_temp.bootstrap_fail(message text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'bootstrap: %', message;
END
$$;

-- Every password must arrive from its secret. An unset variable, or a Kubernetes
-- `$(VAR)` reference left unexpanded because the env var is missing, must stop the
-- run rather than become someone's password.
\if :{?authenticator_password} \else \set authenticator_password '' \endif
\if :{?supabase_auth_admin_password} \else \set supabase_auth_admin_password '' \endif
\if :{?supabase_storage_admin_password} \else \set supabase_storage_admin_password '' \endif
\if :{?supabase_functions_admin_password} \else \set supabase_functions_admin_password '' \endif
\if :{?supabase_replication_admin_password} \else \set supabase_replication_admin_password '' \endif
\if :{?supabase_read_only_user_password} \else \set supabase_read_only_user_password '' \endif
\if :{?dashboard_user_password} \else \set dashboard_user_password '' \endif

CREATE TEMP TABLE bootstrap_passwords (role name PRIMARY KEY, secret text NOT NULL);
INSERT INTO bootstrap_passwords VALUES
    ('authenticator', :'authenticator_password'),
    ('supabase_auth_admin', :'supabase_auth_admin_password'),
    ('supabase_storage_admin', :'supabase_storage_admin_password'),
    ('supabase_functions_admin', :'supabase_functions_admin_password'),
    ('supabase_replication_admin', :'supabase_replication_admin_password'),
    ('supabase_read_only_user', :'supabase_read_only_user_password'),
    ('dashboard_user', :'dashboard_user_password');

SELECT pg_temp.bootstrap_fail(format(
    'password for %s is missing or shorter than 16 characters (psql variable %s_password)', role, role))
FROM bootstrap_passwords
WHERE length(secret) < 16 OR secret LIKE '$(%)';

-- Roles --------------------------------------------------------------------------------
-- `postgres` owns nothing at first but upstream migrations (Realtime, Storage) grant to
-- it by name; it never logs in.
SELECT format('CREATE ROLE %I', name)
FROM unnest(ARRAY[
    'anon', 'authenticated', 'service_role', 'authenticator', 'postgres',
    'supabase_auth_admin', 'supabase_storage_admin', 'supabase_functions_admin',
    'supabase_replication_admin', 'supabase_read_only_user', 'dashboard_user'
]) AS name
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = name)
\gexec

-- API roles are switched to by authenticator, never logged into. NOINHERIT on
-- authenticator means it holds no privilege until PostgREST issues SET ROLE.
ALTER ROLE anon NOLOGIN NOINHERIT;
ALTER ROLE authenticated NOLOGIN NOINHERIT;
ALTER ROLE service_role NOLOGIN NOINHERIT;
ALTER ROLE postgres NOLOGIN;
ALTER ROLE authenticator LOGIN NOINHERIT;
ALTER ROLE supabase_auth_admin LOGIN NOINHERIT;
ALTER ROLE supabase_storage_admin LOGIN NOINHERIT;
ALTER ROLE supabase_functions_admin LOGIN NOINHERIT;
ALTER ROLE supabase_replication_admin LOGIN NOINHERIT;
-- The postgres exporter logs in as supabase_read_only_user and reads pg_stat_* and
-- pg_stat_statements through pg_monitor (below). NOINHERIT would leave it a member that
-- holds none of pg_monitor's privileges; pg_monitor is its only membership.
ALTER ROLE supabase_read_only_user LOGIN INHERIT;
ALTER ROLE dashboard_user LOGIN;

SELECT format('ALTER ROLE %I PASSWORD %L', role, secret) FROM bootstrap_passwords ORDER BY role
\gexec

-- PostgREST (authenticator) and Storage (supabase_storage_admin, per request
-- `set_config('role', ...)`) act as the caller's API role. Both are NOINHERIT: membership
-- lets them switch to the role, never carry its privileges unswitched.
GRANT anon, authenticated, service_role TO authenticator, supabase_storage_admin;

-- Every other session's query text and wait events (pg_read_all_stats) and the
-- server-wide settings the exporter reads (pg_read_all_settings). The RDS master, through
-- rds_superuser, may grant it; a repeat grant is a no-op.
GRANT pg_monitor TO supabase_read_only_user;

-- On PostgreSQL 16+ (RDS 17) a CREATEROLE master holds only ADMIN OPTION on the roles it
-- created; creating schemas owned by them and setting their default privileges needs
-- membership.
GRANT supabase_auth_admin, supabase_storage_admin, supabase_functions_admin, postgres TO supabase_admin;

-- service_role is the key that bypasses row level security; the read-only user serves
-- analytics over every row. From PostgreSQL 16 a role that has BYPASSRLS may give it, as
-- the RDS master does.
ALTER ROLE service_role BYPASSRLS;
ALTER ROLE supabase_read_only_user BYPASSRLS;

-- RDS has no REPLICATION attribute for non-superusers: rds_replication stands in for it.
\if :has_rds_replication
GRANT rds_replication TO supabase_replication_admin;
\elif :is_superuser
ALTER ROLE supabase_replication_admin REPLICATION;
\else
SELECT pg_temp.bootstrap_fail('neither rds_replication nor superuser: cannot give supabase_replication_admin replication');
\endif

-- PostgREST applies these when it switches to the role: a runaway anonymous query is cut
-- at 3 s, a signed-in one at 8 s.
ALTER ROLE anon SET statement_timeout = '3s';
ALTER ROLE authenticated SET statement_timeout = '8s';

-- GoTrue and Storage write unqualified names into their own schemas.
ALTER ROLE supabase_auth_admin SET search_path = auth;
ALTER ROLE supabase_storage_admin SET search_path = storage;

-- Extension functions (uuid_generate_v4, gen_random_uuid, digest) resolve unqualified for
-- everyone; only the database owner may set this, which the RDS master is for DBName.
SELECT format('ALTER DATABASE %I SET search_path = "$user", public, extensions', datname)
FROM pg_database
WHERE datname = current_database() AND pg_has_role(current_user, datdba, 'MEMBER')
\gexec

-- Schemas ------------------------------------------------------------------------------
CREATE SCHEMA IF NOT EXISTS extensions;
CREATE SCHEMA IF NOT EXISTS graphql_public;
CREATE SCHEMA IF NOT EXISTS auth AUTHORIZATION supabase_auth_admin;
CREATE SCHEMA IF NOT EXISTS storage AUTHORIZATION supabase_storage_admin;
-- Realtime connects as supabase_admin and migrates into _realtime.
CREATE SCHEMA IF NOT EXISTS _realtime;

-- A schema made by an earlier, different setup is taken over rather than trusted.
ALTER SCHEMA extensions OWNER TO supabase_admin;
ALTER SCHEMA graphql_public OWNER TO supabase_admin;
ALTER SCHEMA _realtime OWNER TO supabase_admin;
ALTER SCHEMA auth OWNER TO supabase_auth_admin;
ALTER SCHEMA storage OWNER TO supabase_storage_admin;

-- Extensions ---------------------------------------------------------------------------
-- Created only where this server allows it: superuser, a trusted extension, or one RDS
-- lists in rds.extensions for rds_superuser. The same file then runs on RDS and on a
-- plain test server.
SELECT format('CREATE EXTENSION IF NOT EXISTS %I WITH SCHEMA extensions', e.name)
FROM pg_available_extensions AS e
WHERE e.name IN ('uuid-ossp', 'pgcrypto', 'pg_stat_statements')
  AND (
      :'is_superuser'::boolean
      OR EXISTS (
          SELECT 1 FROM pg_available_extension_versions AS v
          WHERE v.name = e.name AND v.version = e.default_version AND v.trusted
      )
      OR e.name = ANY (regexp_split_to_array(coalesce(current_setting('rds.extensions', true), ''), '\s*,\s*'))
  )
ORDER BY e.name
\gexec

-- pg_tle keeps its own schema (pgtle) and works only when preloaded.
SELECT 'CREATE EXTENSION IF NOT EXISTS pg_tle'
WHERE EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_tle')
  AND current_setting('shared_preload_libraries') ~ '(^|,)\s*pg_tle\s*(,|$)'
\gexec

-- Grants -------------------------------------------------------------------------------
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public, graphql_public, extensions, storage, auth
    TO anon, authenticated, service_role;
GRANT USAGE ON SCHEMA extensions TO postgres, dashboard_user, supabase_auth_admin,
    supabase_storage_admin, supabase_functions_admin, supabase_read_only_user;
GRANT ALL ON SCHEMA public, extensions, auth, storage TO dashboard_user;
GRANT ALL ON SCHEMA public TO postgres;
GRANT USAGE ON SCHEMA public, auth, storage, graphql_public TO supabase_read_only_user;

-- The Supabase model: API roles get table privileges and row level security decides
-- which rows. Objects already there and those created later by the master or `postgres`
-- (Studio, migrations) are covered alike.
GRANT ALL ON ALL TABLES IN SCHEMA public, graphql_public TO anon, authenticated, service_role;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public, graphql_public TO anon, authenticated, service_role;
GRANT ALL ON ALL ROUTINES IN SCHEMA public, graphql_public TO anon, authenticated, service_role;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO supabase_read_only_user;

ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin, postgres IN SCHEMA public, graphql_public
    GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin, postgres IN SCHEMA public, graphql_public
    GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin, postgres IN SCHEMA public, graphql_public
    GRANT ALL ON ROUTINES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin, postgres IN SCHEMA public
    GRANT SELECT ON TABLES TO supabase_read_only_user;

-- Storage's tables are reached by API roles under its own RLS policies.
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_storage_admin IN SCHEMA storage
    GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_storage_admin IN SCHEMA storage
    GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_storage_admin IN SCHEMA storage
    GRANT ALL ON ROUTINES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_storage_admin IN SCHEMA storage
    GRANT SELECT ON TABLES TO supabase_read_only_user, dashboard_user;

-- auth holds password hashes and sessions: no API role reads its tables, only the
-- dashboard and the read-only user.
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_auth_admin IN SCHEMA auth
    GRANT ALL ON TABLES TO dashboard_user, postgres;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_auth_admin IN SCHEMA auth
    GRANT ALL ON SEQUENCES TO dashboard_user, postgres;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_auth_admin IN SCHEMA auth
    GRANT SELECT ON TABLES TO supabase_read_only_user;

-- Restore canary -------------------------------------------------------------------------
-- Known rows that the weekly AWS Backup restore test reads on the restored instance and on
-- this database and compares by count and checksum (ops/restore_validation). Fixed content,
-- written here only, so a restore that lost or damaged data pages, or came from a database
-- never bootstrapped, shows as a difference. In its own schema: no API role can see it.
CREATE SCHEMA IF NOT EXISTS supabase_ops;
ALTER SCHEMA supabase_ops OWNER TO supabase_admin;
CREATE TABLE IF NOT EXISTS supabase_ops.restore_canary (
    id integer PRIMARY KEY,
    payload text NOT NULL
);
INSERT INTO supabase_ops.restore_canary (id, payload)
SELECT n, md5('supabase-restore-canary-' || n)
FROM generate_series(1, 1000) AS n
ON CONFLICT (id) DO NOTHING;
GRANT USAGE ON SCHEMA supabase_ops TO supabase_read_only_user;
GRANT SELECT ON supabase_ops.restore_canary TO supabase_read_only_user;

-- Realtime -----------------------------------------------------------------------------
-- Tables join it with ALTER PUBLICATION ... ADD TABLE when a project enables Realtime.
SELECT 'CREATE PUBLICATION supabase_realtime'
WHERE NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'supabase_realtime')
\gexec

-- Realtime's tenant migrations run as supabase_admin with the prefix `realtime` (upstream's
-- own database image makes that schema in a superuser init script, RDS has none).
CREATE SCHEMA IF NOT EXISTS realtime;
ALTER SCHEMA realtime OWNER TO supabase_admin;

-- Migration 20240401105812 creates supabase_realtime_admin only when it is missing, then
-- gives it Realtime's tables; on PostgreSQL 16+ ALTER ... OWNER TO needs SET on the new
-- owner, which a CREATEROLE master does not get for roles it creates itself. Attributes as
-- in that migration.
SELECT 'CREATE ROLE supabase_realtime_admin NOINHERIT NOLOGIN NOREPLICATION'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'supabase_realtime_admin')
\gexec
GRANT supabase_realtime_admin TO supabase_admin;

-- Private channels: Realtime checks realtime.messages policies after set_config('role', ...)
-- to the caller's JWT role, which needs SET on that role.
GRANT anon, authenticated, service_role TO supabase_admin;

-- These migrations define realtime.list_changes with `SET log_min_messages`, a
-- superuser-only parameter: without superuser such a function can be neither created
-- (not even over an existing one with CREATE OR REPLACE) nor called, and SET ON PARAMETER
-- can be granted only by a superuser (supabase/realtime#1326, open). Recorded as applied,
-- Realtime's migrator (Ecto skips recorded versions) runs all the others; Postgres Changes,
-- which polls list_changes, stays unavailable, Broadcast, Presence and authorization work.
CREATE TABLE IF NOT EXISTS realtime.schema_migrations (
    version bigint PRIMARY KEY,
    inserted_at timestamp(0)
);
INSERT INTO realtime.schema_migrations (version, inserted_at)
VALUES (20230328144023, now() AT TIME ZONE 'utc'),
       (20260326120000, now() AT TIME ZONE 'utc'),
       (20260528120000, now() AT TIME ZONE 'utc')
ON CONFLICT (version) DO NOTHING;

-- Smoke probe --------------------------------------------------------------------------
-- The pipeline's live smoke suite (ops/smoke) proves row level security per API key on
-- this table. It is made here, before the services start, because PostgREST reads its
-- schema cache only at start (no NOTIFY pgrst through transaction pooling): a table the
-- run created would stay invisible. Rows live only during a run, which deletes them with
-- the secret key. The API roles may only read, under the policies below; writing is left
-- to service_role, so no client can store anything here. Last in this file, so the grant
-- of every public table to the API roles above is narrowed again on each run.
CREATE TABLE IF NOT EXISTS public.smoke_rows (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    run_id text NOT NULL CHECK (length(run_id) <= 64),
    label text NOT NULL CHECK (length(label) <= 64),
    is_public boolean NOT NULL DEFAULT false,
    owner_id uuid,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE public.smoke_rows IS
    'Platform smoke tests: rows exist only while a run is in progress; do not use.';
ALTER TABLE public.smoke_rows ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON public.smoke_rows FROM anon, authenticated;
GRANT SELECT ON public.smoke_rows TO anon, authenticated;
GRANT ALL ON public.smoke_rows TO service_role;
DROP POLICY IF EXISTS smoke_rows_public ON public.smoke_rows;
CREATE POLICY smoke_rows_public ON public.smoke_rows FOR SELECT TO anon, authenticated
    USING (is_public);
-- The JWT's subject as text: an unset setting or a subject that is no uuid matches nothing
-- instead of failing the query.
DROP POLICY IF EXISTS smoke_rows_own ON public.smoke_rows;
CREATE POLICY smoke_rows_own ON public.smoke_rows FOR SELECT TO authenticated
    USING (owner_id::text = nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub');
