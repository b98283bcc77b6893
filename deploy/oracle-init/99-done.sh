#!/bin/bash
# Runs last (the scripts run in name order; a failing one stops the
# container). The oracle service's healthcheck waits for this marker, so
# nothing reaches FINANCE before its grants exist.
set -euo pipefail
touch /opt/oracle/oradata/bulwark_dp/.bulwark-init-done
