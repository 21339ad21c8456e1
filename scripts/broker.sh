#!/usr/bin/env bash
#
# scripts/broker.sh PORT [LOGFILE] — start a fresh in-memory Kafka-protocol broker
# (tansu) on 127.0.0.1:PORT, wait until it serves, print its PID and leave it
# running. Tests that take a broker down, freeze it (SIGSTOP) or start one late use
# this, so that nothing broker-specific lives outside scripts/. The caller stops it
# (kill PID). Create topics through the Kafka admin API.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

port="${1:?usage: scripts/broker.sh PORT [LOGFILE]}"
logfile="${2:-$REPO_ROOT/.local/logs/broker-${port}.log}"
ensure_tansu
start_broker "$port" "$logfile" >/dev/null
echo "$BROKER_PID"
