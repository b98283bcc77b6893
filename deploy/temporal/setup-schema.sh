#!/bin/sh
# Creates Temporal's two PostgreSQL databases and brings their schemas to the
# version embedded in this admin-tools image. Every step is idempotent: an
# existing database is kept, and update-schema applies only what is missing.
# Runs in temporalio/admin-tools (service temporal-schema); the password comes
# from SQL_PASSWORD.
set -eu

: "${SQL_PASSWORD:?SQL_PASSWORD is not set}"
export SQL_PASSWORD

until nc -z -w 5 postgresql 5432; do
  echo "waiting for postgresql:5432"
  sleep 2
done

for db in temporal:temporal temporal_visibility:visibility; do
  name=${db%%:*}
  schema=${db#*:}
  tool="temporal-sql-tool --plugin postgres12 --ep postgresql -p 5432 -u temporal --db $name"
  $tool create
  $tool setup-schema -v 0.0
  $tool update-schema --schema-name "postgresql/v12/$schema"
  echo "database $name: schema up to date"
done

touch /tmp/bulwark-init-done
