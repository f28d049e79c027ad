#!/bin/sh
# Temporal's default and visibility stores on PostgreSQL: create each database (if missing), set
# up the schema's version table, then apply every versioned schema update. Safe to run again.
set -eu
SQL_PASSWORD="$(cat "${SQL_PASSWORD_FILE:?SQL_PASSWORD_FILE names the database password file}")"
export SQL_PASSWORD
schema=/etc/temporal/schema/postgresql/v12
for store in temporal:temporal temporal_visibility:visibility; do
  db="${store%%:*}"
  dir="${store##*:}"
  # create fails when the database exists; the two steps after it fail on any real error.
  temporal-sql-tool --db "$db" create || echo "database $db exists"
  temporal-sql-tool --db "$db" setup-schema -v 0.0
  temporal-sql-tool --db "$db" update-schema -d "$schema/$dir/versioned"
done
echo "temporal schemas are up to date"
