#!/usr/bin/env bash
#
# scripts/bench.sh — print the pipeline's figures on this machine, in one run
# (benches/pipeline/): HTTP commands beside pgbench and the cqrs-es peer, with CPU
# per command; steady-rate latency (occurredAt -> consumer receipt, read-model lag);
# relay drain beside raw rdkafka produce; relay restart times. The real
# order-service and outbox-relay binaries run as child processes, so the release
# binaries are built first. Starts PostgreSQL and a fresh in-memory tansu broker
# like scripts/test.sh. Nothing is asserted about time.
#
# Sizes: BENCH_SECTIONS (commands,steady,drain,restart), BENCH_CLIENTS (16),
# BENCH_COMMAND_SECONDS (10) or BENCH_COMMANDS, BENCH_RATES (500,1000),
# BENCH_STEADY_SECONDS (23), BENCH_FLOOR_SECONDS (10), BENCH_DRAIN_CREATIONS (25000),
# BENCH_DRAIN_ADDITIONS (15000), BENCH_RESTARTS (3); BENCH_CHILD_LOG (RUST_LOG of the
# service and relay, logs kept); BENCH_SERVICE_BINARY, BENCH_RELAY_BINARY (another
# order-service or outbox-relay build run instead of this one, to compare versions);
# BENCH_PEER_DIR
# (../shared/peers/cqrs-es-bench, skipped when missing).
# Then the event store and read side (benches/event_store.rs): load times with and
# without snapshots, rebuild speed, read-model lag; sizes BENCH_LOAD_MAX (100000),
# BENCH_REBUILD_EVENTS (1000000), BENCH_LAG_SECONDS (20), BENCH_LAG_RATE (1000).
# BENCH_SKIP_EVENT_STORE=1 runs the pipeline bench only.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

LOG_DIR="$REPO_ROOT/.local/logs"
mkdir -p "$LOG_DIR"
install_cleanup_trap

# The bench spawns the release binaries from the target directory it runs from.
cargo build --release --bins

# The peer builds into its own target directory (its default); build it now so the
# first build is not inside the bench's run.
PEER_DIR="${BENCH_PEER_DIR:-$REPO_ROOT/../shared/peers/cqrs-es-bench}"
if [[ -x "$PEER_DIR/run.sh" ]]; then
    log "building the cqrs-es peer benchmark"
    env -u CARGO_TARGET_DIR "$PEER_DIR/run.sh" --help >/dev/null ||
        log "building the cqrs-es peer failed; the bench reports it as not available"
fi

ensure_postgres
ensure_tansu
KAFKA_PORT="$(free_port)"
start_broker "$KAFKA_PORT" "$LOG_DIR/bench-broker-${KAFKA_PORT}.log" >/dev/null
# The broker's CPU is reported apart.
export BENCH_BROKER_PID="$BROKER_PID"

export DATABASE_URL="postgres://${PG_USER}@${PG_HOST}:${PG_PORT}/postgres"
export KAFKA_BROKERS="127.0.0.1:${KAFKA_PORT}"
export RUST_LOG="${RUST_LOG:-warn}"

cargo bench -p e2e --bench pipeline "$@"
if [[ "${BENCH_SKIP_EVENT_STORE:-0}" != "1" ]]; then
    cargo bench -p e2e --bench event_store "$@"
fi
