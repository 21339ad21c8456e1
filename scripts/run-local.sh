#!/usr/bin/env bash
#
# scripts/run-local.sh — start the whole system locally:
#
#   PostgreSQL (database "orders") -> order-service (HTTP API)
#   tansu Kafka broker (in memory)  <- outbox-relay (publishes the outbox)
#
# Stays in the foreground; Ctrl-C stops the broker, the service and the relay.
# Logs go to .local/logs/ under the repository.
#
# Settings (environment):
#   KAFKA_PORT        broker port              (default 9092)
#   HTTP_PORT         order-service HTTP port  (default 8080)
#   GRPC_PORT         order-service gRPC port  (default 50051)
#   RELAY_ADMIN_PORT  outbox-relay admin port  (default 9464)
#   ORDERS_TOPIC      topic for order events   (default orders.events)
#   RUST_LOG          log filter for service and relay (default info)
#   JWT_SECRET        HS256 secret of the bearer tokens (default: a random one,
#                     made once and kept in .local/jwt-secret)
#
# Authentication is on, as in production: the script mints development tokens
# with `order-service token` and prints ready-to-run curl commands that use them.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

KAFKA_PORT="${KAFKA_PORT:-9092}"
HTTP_PORT="${HTTP_PORT:-8080}"
GRPC_PORT="${GRPC_PORT:-50051}"
RELAY_ADMIN_PORT="${RELAY_ADMIN_PORT:-9464}"
ORDERS_TOPIC="${ORDERS_TOPIC:-orders.events}"
DB_NAME="orders"
DATABASE_URL="postgres://${PG_USER}@${PG_HOST}:${PG_PORT}/${DB_NAME}"
LOG_DIR="$REPO_ROOT/.local/logs"
READY_TIMEOUT="${READY_TIMEOUT:-60}"   # seconds for service + relay to come up

mkdir -p "$LOG_DIR"
install_cleanup_trap

# Fail early and clearly if a port we need is taken (e.g. an earlier run).
for port in "$KAFKA_PORT" "$HTTP_PORT" "$GRPC_PORT" "$RELAY_ADMIN_PORT"; do
    if port_open "$port"; then
        die "port ${port} is already in use (an earlier run-local.sh still running?). Stop it, or set KAFKA_PORT / HTTP_PORT / GRPC_PORT / RELAY_ADMIN_PORT."
    fi
done

# --- infrastructure -----------------------------------------------------------
ensure_postgres
ensure_database "$DB_NAME"
ensure_tansu

start_broker "$KAFKA_PORT" "$LOG_DIR/tansu.log" >/dev/null
create_topic "$KAFKA_PORT" "$ORDERS_TOPIC" 3

# --- build --------------------------------------------------------------------
log "building order-service and outbox-relay (release)"
cargo build --release --bin order-service --bin outbox-relay

# --- development tokens ---------------------------------------------------------
SECRET_FILE="$REPO_ROOT/.local/jwt-secret"
if [[ -z "${JWT_SECRET:-}" ]]; then
    if [[ ! -s "$SECRET_FILE" ]]; then
        (umask 077 && head -c 48 /dev/urandom | base64 | tr -d '\n/+=' >"$SECRET_FILE")
    fi
    JWT_SECRET="$(cat "$SECRET_FILE")"
fi
export JWT_SECRET
unset AUTH_MODE
CUSTOMER_TOKEN="$(target/release/order-service token --sub alice --role customer --customer-id c-1 --ttl-seconds 86400)"
OPERATOR_TOKEN="$(target/release/order-service token --sub olga --role operator --ttl-seconds 86400)"
ADMIN_TOKEN="$(target/release/order-service token --sub ada --role admin --ttl-seconds 86400)"
printf '%s\n' "$CUSTOMER_TOKEN" >"$REPO_ROOT/.local/customer.token"
printf '%s\n' "$OPERATOR_TOKEN" >"$REPO_ROOT/.local/operator.token"
printf '%s\n' "$ADMIN_TOKEN" >"$REPO_ROOT/.local/admin.token"

# --- start the two binaries -----------------------------------------------------
export RUST_LOG="${RUST_LOG:-info}"

log "starting order-service on 127.0.0.1:${HTTP_PORT} (HTTP) and 127.0.0.1:${GRPC_PORT} (gRPC) (log: .local/logs/order-service.log)"
env DATABASE_URL="$DATABASE_URL" \
    HTTP_ADDR="127.0.0.1:${HTTP_PORT}" \
    GRPC_ADDR="127.0.0.1:${GRPC_PORT}" \
    KAFKA_BROKERS="127.0.0.1:${KAFKA_PORT}" \
    ORDERS_TOPIC="$ORDERS_TOPIC" \
    target/release/order-service >"$LOG_DIR/order-service.log" 2>&1 </dev/null &
SERVICE_PID=$!
track_pid "$SERVICE_PID"

log "starting outbox-relay (admin on 127.0.0.1:${RELAY_ADMIN_PORT}, log: .local/logs/outbox-relay.log)"
env DATABASE_URL="$DATABASE_URL" \
    KAFKA_BROKERS="127.0.0.1:${KAFKA_PORT}" \
    ORDERS_TOPIC="$ORDERS_TOPIC" \
    RELAY_ADMIN_ADDR="127.0.0.1:${RELAY_ADMIN_PORT}" \
    target/release/outbox-relay >"$LOG_DIR/outbox-relay.log" 2>&1 </dev/null &
RELAY_PID=$!
track_pid "$RELAY_PID"

# wait_http NAME PID URL LOG — wait until URL answers 2xx; fail if PID dies.
wait_http() {
    local name="$1" pid="$2" url="$3" logfile="$4"
    local deadline=$((SECONDS + READY_TIMEOUT))
    until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "${name} exited during start-up; last lines of ${logfile}:"
            tail -n 40 "$logfile" >&2 || true
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            log "${name} not ready at ${url} after ${READY_TIMEOUT}s; last lines of ${logfile}:"
            tail -n 40 "$logfile" >&2 || true
            exit 1
        fi
        sleep 0.5
    done
    log "${name} is ready (${url})"
}

wait_http order-service "$SERVICE_PID" "http://127.0.0.1:${HTTP_PORT}/readyz" "$LOG_DIR/order-service.log"
wait_http outbox-relay "$RELAY_PID" "http://127.0.0.1:${RELAY_ADMIN_PORT}/healthz" "$LOG_DIR/outbox-relay.log"

# --- tell the user what is where ---------------------------------------------------
cat <<EOF

=====================================================================
 Everything is up.

   order-service   http://127.0.0.1:${HTTP_PORT}, gRPC 127.0.0.1:${GRPC_PORT} (pid ${SERVICE_PID})
   outbox-relay    http://127.0.0.1:${RELAY_ADMIN_PORT}/healthz (pid ${RELAY_PID})
   Kafka (tansu)   127.0.0.1:${KAFKA_PORT}, topic ${ORDERS_TOPIC} (pid ${BROKER_PID})
   PostgreSQL      ${DATABASE_URL}
   logs            ${LOG_DIR}/

 Every request needs a bearer token. Three development tokens (valid 24 h) are in
 .local/: customer.token (user alice, customer c-1), operator.token (user olga) and
 admin.token (user ada, the administration routes and the console).
 Mint others with: target/release/order-service token --help

 The operator console (paste the contents of .local/admin.token when it asks):

   http://127.0.0.1:${HTTP_PORT}/console

 The outbox as the console sees it:

   curl -sS http://127.0.0.1:${HTTP_PORT}/admin/outbox -H "Authorization: Bearer \$(cat .local/admin.token)"

 Create an order as customer c-1:

   curl -sS -X POST http://127.0.0.1:${HTTP_PORT}/orders -H "Authorization: Bearer ${CUSTOMER_TOKEN}" -H 'Content-Type: application/json' -d '{"customer":{"customerId":"c-1","name":"Alice","phone":"+84 900 000 000","address":{"line1":"1 Le Loi","city":"Ho Chi Minh City","country":"VN"}},"currency":"VND","items":[{"productId":"sku-1","quantity":2,"unitPrice":150000}],"discountCodes":["WELCOME10"]}'

 Then fetch it with the id from the answer:

   curl -sS http://127.0.0.1:${HTTP_PORT}/orders/<id> -H "Authorization: Bearer ${CUSTOMER_TOKEN}"

 Only an operator ships (the token is in .local/operator.token):

   curl -sS -X POST http://127.0.0.1:${HTTP_PORT}/orders/<id>/shipment -H "Authorization: Bearer \$(cat .local/operator.token)" -H 'Content-Type: application/json' -d '{"trackingNumber":"TRK-1","carrier":"VNPost"}'

 The same over gRPC (orders.v1.OrderService, adapters/proto/), with scripts/grpc-call.sh
 (a small grpcurl; its first run installs grpcio into .local/venv):

   TOKEN=\$(cat .local/customer.token) GRPC_ADDR=127.0.0.1:${GRPC_PORT} scripts/grpc-call.sh CreateOrder '{"customer":{"customerId":"c-1","name":"Alice","phone":"+84 900 000 000","address":{"line1":"1 Le Loi","city":"Ho Chi Minh City","country":"VN"}},"currency":"VND","items":[{"productId":"sku-1","quantity":2,"unitPrice":150000}]}'
   TOKEN=\$(cat .local/customer.token) GRPC_ADDR=127.0.0.1:${GRPC_PORT} scripts/grpc-call.sh GetOrder '{"orderId":"<id>"}'

 Press Ctrl-C to stop everything.
=====================================================================

EOF

# --- stay in the foreground --------------------------------------------------------
# Returns when any of the three exits (or on Ctrl-C, via the trap); the EXIT
# trap then stops the others.
set +e
wait -n "$BROKER_PID" "$SERVICE_PID" "$RELAY_PID"
rc=$?
set -e
for pid_name in "$BROKER_PID:tansu" "$SERVICE_PID:order-service" "$RELAY_PID:outbox-relay"; do
    if ! kill -0 "${pid_name%%:*}" 2>/dev/null; then
        log "${pid_name#*:} exited (status ${rc}); stopping the rest. See ${LOG_DIR}/${pid_name#*:}.log"
    fi
done
exit $((rc == 0 ? 1 : rc))
