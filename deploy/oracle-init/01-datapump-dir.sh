#!/bin/bash
# First start of the oracle service only (gvenzl/oracle-free runs
# /container-entrypoint-initdb.d once, as the oracle OS user, after FREEPDB1
# is open and APP_USER=finance exists). Creates the OS directory behind the
# BULWARK_DP Data Pump directory, on the oradata volume so that dump files
# survive container restarts.
set -euo pipefail
mkdir -p /opt/oracle/oradata/bulwark_dp
chmod 750 /opt/oracle/oradata/bulwark_dp
