#!/bin/sh
# The server image reads its database password from POSTGRES_PWD only; compose hands it a file.
set -eu
POSTGRES_PWD="$(cat "${POSTGRES_PWD_FILE:?POSTGRES_PWD_FILE names the database password file}")"
export POSTGRES_PWD
unset POSTGRES_PWD_FILE
exec /etc/temporal/entrypoint.sh "$@"
