-- Detach a partition without blocking queries on the parent.
--   psql -v schema=public -v table=events -v partition=events_p20250101 -f detach_partition.sql
-- CONCURRENTLY takes only SHARE UPDATE EXCLUSIVE on the parent and waits for running queries
-- in two transactions; it cannot run inside a transaction block (no --single-transaction)
-- and PostgreSQL refuses it when the table has a DEFAULT partition. If it is interrupted,
-- finish it with: ALTER TABLE <table> DETACH PARTITION <partition> FINALIZE;

ALTER TABLE :"schema".:"table" DETACH PARTITION :"schema".:"partition" CONCURRENTLY;
