-- Migration template: pg_partman's maintenance, scheduled by pg_cron.
--
-- Run once per database, as the RDS master, in the database pg_cron lives in
-- (cron.database_name in the parameter group: `postgres`, database/parameters.py). Needs
-- pg_cron in shared_preload_libraries (set by the parameter group; a change applies at the
-- next reboot) and both extensions, which only rds_superuser members may create:
--   CREATE EXTENSION IF NOT EXISTS pg_cron;
--   CREATE SCHEMA IF NOT EXISTS partman;
--   CREATE EXTENSION IF NOT EXISTS pg_partman WITH SCHEMA partman;
--
-- run_maintenance_proc() creates partitions ahead (premake) and applies retention for every
-- table registered by create_parent, committing after each one. Hourly, off the hour: it is
-- cheap when nothing is due, and a missed run is caught up by the next.

SELECT cron.schedule(
    'partman-maintenance',
    '17 * * * *',
    $$CALL partman.run_maintenance_proc()$$
);
