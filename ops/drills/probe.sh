#!/bin/sh
# Client-side probe for failover drills (docs/failover-drills.md): one `select 1` per interval
# over a fresh connection, one line per try: "<UTC time> ok|FAIL". A fresh connection each
# time, because that is what a restarted pod or a PgBouncer reconnect needs after a failover.
# Usage: PGPASSWORD=... probe.sh "host=... port=5432 dbname=postgres user=... sslmode=require"
# PROBE_INTERVAL (seconds, default 1) and PROBE_TIMEOUT (default 2) tune it.
set -u
while true; do
    if psql "$1 connect_timeout=${PROBE_TIMEOUT:-2}" -XAtqc 'select 1' >/dev/null 2>&1; then
        state=ok
    else
        state=FAIL
    fi
    printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%N | cut -c1-23)Z" "$state"
    sleep "${PROBE_INTERVAL:-1}"
done
