-- Archive a partition: detach it (concurrently), copy its rows into the archive table, drop it.
--   psql -v schema=public -v table=events -v partition=events_p20250101 -f archive_partition.sql
-- The archive is a plain table archive.<table> with the parent's columns, in its own schema
-- so that API roles (granted on public) never see it. Export it to S3 from there if it should
-- leave the database (aws_s3.query_export_to_s3 on RDS).

\ir detach_partition.sql

CREATE SCHEMA IF NOT EXISTS archive;
CREATE TABLE IF NOT EXISTS archive.:"table" (LIKE :"schema".:"table" INCLUDING DEFAULTS);

BEGIN;
INSERT INTO archive.:"table" SELECT * FROM :"schema".:"partition";
-- Rows copied must equal rows detached, or nothing is dropped.
SELECT (SELECT count(*) FROM :"schema".:"partition") AS detached_rows \gset
SELECT count(*) = :detached_rows AS copied
FROM archive.:"table" AS a
WHERE EXISTS (SELECT FROM :"schema".:"partition" AS p WHERE p.id = a.id AND p.created_at = a.created_at) \gset
\if :copied
DROP TABLE :"schema".:"partition";
COMMIT;
\else
ROLLBACK;
DO $$ BEGIN RAISE EXCEPTION 'rows copied differ from rows detached; the partition was kept'; END $$;
\endif
