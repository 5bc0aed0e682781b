-- Attach a table as a new partition without blocking writers for a full scan.
--   psql -v schema=public -v table=events -v partition=events_p20270101 \
--        -v from='2027-01-01' -v to='2027-02-01' -f attach_partition.sql
-- The CHECK constraint matching the bounds lets ATTACH PARTITION skip its validation scan;
-- ATTACH takes only a SHARE UPDATE EXCLUSIVE lock on the parent (PostgreSQL 12+).

CREATE TABLE IF NOT EXISTS :"schema".:"partition"
    (LIKE :"schema".:"table" INCLUDING DEFAULTS INCLUDING CONSTRAINTS);

-- Load or backfill :"partition" here, before it is visible through the parent.

ALTER TABLE :"schema".:"partition"
    ADD CONSTRAINT attach_bounds CHECK (created_at >= :'from' AND created_at < :'to');

ALTER TABLE :"schema".:"table"
    ATTACH PARTITION :"schema".:"partition" FOR VALUES FROM (:'from') TO (:'to');

-- Redundant once attached: the partition bound now says the same.
ALTER TABLE :"schema".:"partition" DROP CONSTRAINT attach_bounds;
