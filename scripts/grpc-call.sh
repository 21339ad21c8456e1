#!/usr/bin/env bash
#
# scripts/grpc-call.sh — call orders.v1.OrderService from the command line with a JSON
# message (a small grpcurl, so nothing has to be installed by hand):
#
#   TOKEN=$(cat .local/customer.token) scripts/grpc-call.sh GetOrder '{"orderId":"<id>"}'
#
# The first run makes a Python virtualenv in .local/venv with grpcio and grpcio-tools
# (from PyPI, about a minute); see scripts/grpc-call.py for the options.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VENV="$REPO_ROOT/.local/venv"
if ! "$VENV/bin/python" -c 'import grpc, grpc_tools' 2>/dev/null; then
    log "installing grpcio and grpcio-tools into .local/venv (first run only)"
    python3 -m venv "$VENV" >&2
    "$VENV/bin/pip" install --quiet 'grpcio>=1.60,<2' 'grpcio-tools>=1.60,<2' >&2
fi
exec "$VENV/bin/python" "$REPO_ROOT/scripts/grpc-call.py" "$@"
