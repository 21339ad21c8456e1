#!/usr/bin/env bash
#
# scripts/bench.sh — print the pipeline's throughput figures on this machine:
# HTTP commands per second (p50/p99), relay drain events per second, and raw
# rdkafka produce of the same messages. Starts PostgreSQL and a fresh in-memory
# tansu broker like scripts/test.sh. Nothing is asserted about time.
#
# Sizes: BENCH_COMMANDS (20000), BENCH_CLIENTS (32), BENCH_BACKLOG (100000).
# Then the event store and read side (benches/event_store.rs): load times with and
# without snapshots, rebuild speed, read-model lag; sizes BENCH_LOAD_MAX (100000),
# BENCH_REBUILD_EVENTS (1000000), BENCH_LAG_SECONDS (20), BENCH_LAG_RATE (1000).
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

LOG_DIR="$REPO_ROOT/.local/logs"
mkdir -p "$LOG_DIR"
install_cleanup_trap

ensure_postgres
ensure_tansu
KAFKA_PORT="$(free_port)"
start_broker "$KAFKA_PORT" "$LOG_DIR/bench-broker-${KAFKA_PORT}.log" >/dev/null

export DATABASE_URL="postgres://${PG_USER}@${PG_HOST}:${PG_PORT}/postgres"
export KAFKA_BROKERS="127.0.0.1:${KAFKA_PORT}"
export RUST_LOG="${RUST_LOG:-warn}"

cargo bench -p e2e --bench pipeline "$@"
cargo bench -p e2e --bench event_store "$@"
