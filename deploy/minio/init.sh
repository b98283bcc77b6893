#!/bin/sh
# Prepares MinIO for Bulwark (service minio-init, image quay.io/minio/mc):
#   - the bucket BULWARK_BUCKET with Object Lock enabled (which also turns on
#     versioning); it has no default retention, because Bulwark sets a
#     retain-until date on every object it writes (object_lock in
#     deploy/bulwark.yaml);
#   - a user for the workers (BULWARK_S3_ACCESS_KEY / BULWARK_S3_SECRET_KEY)
#     with the policy in bulwark-policy.json: read, write and delete in that
#     bucket, and no s3:BypassGovernanceRetention, so even governance-mode
#     locks hold against Bulwark's own credentials.
# Every step is idempotent. The root credentials stay in this job and in MinIO.
set -eu

: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}"
: "${BULWARK_S3_ACCESS_KEY:?}" "${BULWARK_S3_SECRET_KEY:?}"
bucket=${BULWARK_BUCKET:-bulwark-locked}
policy=bulwark-writer

mc alias set cluster http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null

mc mb --ignore-existing --with-lock "cluster/$bucket"
# A bucket that already existed without Object Lock cannot get it later:
# refuse to go on rather than let Bulwark's locked writes fail one by one.
lock=$(mc retention info --default --json "cluster/$bucket" 2>&1 || true)
case $lock in
  *'"enabled":"Enabled"'* | *'"enabled": "Enabled"'*) ;;
  *) echo "bucket $bucket exists without Object Lock ($lock); remove it or the minio-data volume" >&2; exit 1 ;;
esac

mc admin user add cluster "$BULWARK_S3_ACCESS_KEY" "$BULWARK_S3_SECRET_KEY" >/dev/null
mc admin policy create cluster "$policy" /bulwark/bulwark-policy.json >/dev/null
if ! mc admin policy attach cluster "$policy" --user "$BULWARK_S3_ACCESS_KEY" >/dev/null 2>&1; then
  # Attaching a policy the user already has is an error; that is fine.
  info=$(mc admin user info cluster "$BULWARK_S3_ACCESS_KEY" --json)
  case $info in
    *"$policy"*) ;;
    *) echo "cannot attach policy $policy to the Bulwark user: $info" >&2; exit 1 ;;
  esac
fi
echo "bucket $bucket (Object Lock) and user ready"

touch /tmp/bulwark-init-done
