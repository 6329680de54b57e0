#!/bin/sh
# One shot, before the Temporal server starts: its two databases on the stack's PostgreSQL and
# their schemas, brought up to date. Safe to run again: what exists is kept, only updates apply.
# (The steps of temporalio/samples-server compose/scripts/setup-postgres.sh.)
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
tool() {
    temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -u "$POSTGRES_USER" -p 5432 "$@"
}
nc -z -w 30 "$POSTGRES_SEEDS" 5432
for db in temporal temporal_visibility; do
    schema=$([ "$db" = temporal ] && echo temporal || echo visibility)
    tool --db "$db" create 2>/dev/null || echo "database $db exists"
    if ! tool --db "$db" update-schema -d "/etc/temporal/schema/postgresql/v12/$schema/versioned"; then
        tool --db "$db" setup-schema -v 0.0
        tool --db "$db" update-schema -d "/etc/temporal/schema/postgresql/v12/$schema/versioned"
    fi
done
echo "Temporal's schemas are up to date"
