#!/bin/sh
# Registers the namespace Bulwark's workers poll, unless it exists. Runs in
# temporalio/admin-tools (service temporal-namespace) once the server is
# healthy. Workflow histories are kept 30 days after a run closes: long enough
# to read a disaster-recovery run's timeline after the fact.
set -eu

address=${TEMPORAL_ADDRESS:-temporal:7233}
namespace=${BULWARK_NAMESPACE:-default}

attempt=0
until temporal operator cluster health --address "$address"; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge 30 ]; then
    echo "Temporal at $address is not serving after $attempt attempts" >&2
    exit 1
  fi
  sleep 2
done

if temporal operator namespace describe --address "$address" --namespace "$namespace" >/dev/null 2>&1; then
  echo "namespace $namespace exists"
else
  temporal operator namespace create --address "$address" --namespace "$namespace" --retention 720h
  echo "namespace $namespace created"
fi

touch /tmp/bulwark-init-done
