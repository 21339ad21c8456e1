#!/usr/bin/env bash
#
# scripts/sqlx-prepare.sh — regenerate `.sqlx/`, the offline data the builds check the
# SQL macros (`sqlx::query!` and kin) against. Run it after changing a query or adding
# a migration, then commit `.sqlx/`; scripts/test.sh fails while `.sqlx/` is stale.
#
# Installs sqlx-cli if missing, makes sure PostgreSQL answers, applies migrations/ to a
# throwaway database, runs `cargo sqlx prepare --workspace` against it, drops it.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

ensure_postgres
ensure_sqlx_cli
with_scratch_database _sqlx_prepare write
log ".sqlx/ regenerated; commit it with the queries"
