#!/usr/bin/env bash
#
# scripts/test.sh — run the whole test suite with everything it needs:
#
#   * PostgreSQL on 127.0.0.1:5432 (sqlx::test creates throwaway databases
#     from DATABASE_URL, so it points at the "postgres" maintenance database);
#   * a fresh in-memory tansu Kafka broker on a free port, stopped on exit;
#   * @asyncapi/specs from npm (into .local/), the schema /asyncapi.json is checked
#     against (ASYNCAPI_SPEC);
#   * sqlx-cli, to check first that `.sqlx/` (the SQL macros' offline data) matches
#     the queries on a throwaway migrated database (stale: run scripts/sqlx-prepare.sh);
#   * schemathesis (pinned, from PyPI into .local/venv-schemathesis), which
#     order-service's `schemathesis` test runs against the real service (SCHEMATHESIS);
#   * Debian's chromium and chromium-driver (apt-get), which the console's browser
#     test drives headless (CHROMEDRIVER, CHROMIUM).
#
# Extra arguments go to cargo test, e.g.:
#   scripts/test.sh -p relay
#   scripts/test.sh -- --nocapture
#
# Exits with cargo's status. Broker log: .local/logs/test-broker-<port>.log
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

LOG_DIR="$REPO_ROOT/.local/logs"
mkdir -p "$LOG_DIR"
install_cleanup_trap

# --- services ---------------------------------------------------------------
ensure_postgres

# --- checked SQL: `.sqlx/` matches the queries (builds read it, not a database) -----
check_sqlx_offline_data

ensure_tansu
ensure_asyncapi_spec
ensure_schemathesis
ensure_chromium

KAFKA_PORT="$(free_port)"
BROKER_LOG="$LOG_DIR/test-broker-${KAFKA_PORT}.log"
start_broker "$KAFKA_PORT" "$BROKER_LOG" >/dev/null

# --- environment seen by the tests ----------------------------------------------
export DATABASE_URL="postgres://${PG_USER}@${PG_HOST}:${PG_PORT}/postgres"
export KAFKA_BROKERS="127.0.0.1:${KAFKA_PORT}"
export TEST_KAFKA_BROKERS="$KAFKA_BROKERS"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"

log "DATABASE_URL=${DATABASE_URL}"
log "KAFKA_BROKERS=${KAFKA_BROKERS} (TEST_KAFKA_BROKERS likewise)"
log "SCHEMATHESIS=${SCHEMATHESIS}"
log "CHROMEDRIVER=${CHROMEDRIVER}"
# The end-to-end tests start the real outbox-relay binary; build it first. Benchmarks
# are not tests (scripts/bench.sh runs them), so the targets are named explicitly.
log "building the binaries: cargo build --workspace --bins"
cargo build --workspace --bins
# `-p CRATE` narrows the run to that crate (cargo would let --workspace win).
scope=(--workspace)
for arg in "$@"; do
    [[ "$arg" == "--" ]] && break
    if [[ "$arg" == -p || "$arg" == --package || "$arg" == -p* || "$arg" == --package=* ]]; then
        scope=()
        break
    fi
done
log "running: cargo test ${scope[*]} --lib --bins --tests $*"

# --- tests ----------------------------------------------------------------------
set +e
cargo test "${scope[@]}" --lib --bins --tests "$@"
status=$?
set -e

if ((status != 0)); then
    log "cargo test failed (status ${status}); last lines of the broker log ${BROKER_LOG}:"
    tail -n 50 "$BROKER_LOG" >&2 || true
    echo >&2 # the log may not end with a newline
    if ! kill -0 "$BROKER_PID" 2>/dev/null; then
        log "note: the tansu broker (pid ${BROKER_PID}) is no longer running"
    fi
fi

exit "$status"
