"""Server settings the database contract depends on, shared by the RDS parameter group
(constructs_lib/database.py) and the PostgreSQL 17 test harness (tests/integration/conftest.py).

Kept free of CDK imports so the harness can start its server with the same libraries and
slow-query settings that the parameter group gives RDS.
"""

from __future__ import annotations

# The database RDS creates when no DBName is given; every service, pg_cron and the
# exporters connect to it.
DATABASE_NAME = "postgres"

# Loaded at server start; a change needs a reboot (RDS: static parameter).
# - pg_stat_statements: the exporter's top-queries series and Performance Insights' SQL stats.
# - auto_explain: plans of slow statements in the postgresql log (docs/query-performance.md).
# - pg_tle: Supabase's trusted language extensions.
# - pg_cron: partition maintenance (database/partitioning/); RDS documents that it must be
#   preloaded before CREATE EXTENSION pg_cron
#   (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/PostgreSQL_pg_cron.html).
SHARED_PRELOAD_LIBRARIES: tuple[str, ...] = ("pg_stat_statements", "auto_explain", "pg_tle", "pg_cron")

# One threshold for both logs: a statement slower than this appears once with its duration
# (log_min_duration_statement) and once with its plan (auto_explain), so the two lines
# can be read side by side in CloudWatch Logs.
SLOW_STATEMENT_MS = 1000

# Settings of the slow-query log. auto_explain.log_analyze stays off: it would time every
# node of every statement, not only the slow ones.
SLOW_QUERY_LOG: dict[str, str] = {
    "log_min_duration_statement": str(SLOW_STATEMENT_MS),
    "auto_explain.log_min_duration": str(SLOW_STATEMENT_MS),
    "auto_explain.log_format": "text",
    "auto_explain.log_nested_statements": "1",
    "log_lock_waits": "1",
    # KB: only spills of 10 MB or more, which point at a work_mem or query problem.
    "log_temp_files": "10240",
}

# pg_cron keeps its job table in one database and runs jobs from there.
PG_CRON: dict[str, str] = {"cron.database_name": DATABASE_NAME}
