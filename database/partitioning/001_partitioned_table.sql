-- Migration template: a large, time-ordered table partitioned by range on its timestamp.
--
-- Copy this file into your migrations, replace the columns, and run it as the RDS master
-- (supabase_admin) or the owner of the schema:
--   psql -v ON_ERROR_STOP=1 -v schema=public -v table=events -v interval='1 month' \
--        -v premake=3 -v retention='12 months' -f 001_partitioned_table.sql
-- The runbook is docs/partitioning.md.
--
-- No DEFAULT partition, on purpose: PostgreSQL refuses DETACH PARTITION ... CONCURRENTLY on a
-- table that has one, and rows outside every range should fail loudly (premake keeps future
-- ranges ready) rather than pile up where no pruning or retention reaches them.

CREATE TABLE :"schema".:"table" (
    id bigint GENERATED ALWAYS AS IDENTITY,
    created_at timestamptz NOT NULL DEFAULT now(),
    payload jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Every unique key of a partitioned table must contain the partition key.
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);

-- An index on the parent is created on every partition, present and future.
CREATE INDEX ON :"schema".:"table" (created_at);

-- pg_partman in schema `partman`, as AWS's RDS guide installs it.
SELECT to_regproc('partman.create_parent') IS NOT NULL AS has_partman \gset

\if :has_partman
-- pg_partman 5 (RDS for PostgreSQL 17): it creates the partitions (premake ahead of now) and
-- registers the table for partman.run_maintenance_proc(), which pg_cron runs
-- (002_maintenance_schedule.sql). p_default_table false: see the header.
SELECT partman.create_parent(
    p_parent_table := format('%s.%s', :'schema', :'table'),
    p_control := 'created_at',
    p_interval := :'interval',
    p_premake := :premake,
    p_default_table := false
);
-- Retention detaches old partitions and keeps them as tables (retention_keep_table): the
-- archive step (archive_partition.sql) decides where their rows go.
UPDATE partman.part_config
SET retention = :'retention', retention_keep_table = true, infinite_time_partitions = true
WHERE parent_table = format('%s.%s', :'schema', :'table');
\else
-- Native partitioning only (no pg_partman): the current period and :premake ahead, starting
-- at this month's first day. Create more (attach_partition.sql, or this statement again)
-- before the last one fills.
SELECT format(
    'CREATE TABLE IF NOT EXISTS %I.%I PARTITION OF %I.%I FOR VALUES FROM (%L) TO (%L)',
    :'schema', :'table' || '_p' || to_char(start, 'YYYYMMDD'), :'schema', :'table', start, start + :'interval'::interval
)
FROM generate_series(
    date_trunc('month', now()),
    date_trunc('month', now()) + :premake * :'interval'::interval,
    :'interval'::interval
) AS start
\gexec
\endif
