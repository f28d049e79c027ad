#!/bin/sh
# First start of the PostgreSQL volume only: the estate store's database and its own role, so
# fleetpatch's store and Temporal's stores share a server but not credentials.
set -eu
password="$(cat "${ESTATE_DB_PASSWORD_FILE:?ESTATE_DB_PASSWORD_FILE names the estate password file}")"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v password="$password" <<'SQL'
CREATE ROLE fleetpatch LOGIN PASSWORD :'password';
CREATE DATABASE fleetpatch OWNER fleetpatch;
SQL
