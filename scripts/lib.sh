# shellcheck shell=bash
#
# scripts/lib.sh — shared helpers for the project's shell scripts.
#
# Source it (do not execute it):
#
#     source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# It provides:
#   log / die                 messages on stderr
#   wait_until SECS DESC CMD  bounded retry loop
#   port_open PORT            does 127.0.0.1:PORT accept TCP connections?
#   free_port                 print a currently free TCP port on 127.0.0.1
#   ensure_postgres           make sure the local PostgreSQL answers on 127.0.0.1:5432
#   ensure_database NAME      create database NAME if it does not exist
#   ensure_tansu              make sure the tansu 0.6.0 binary is installed
#   ensure_sqlx_cli           make sure sqlx-cli (`cargo sqlx`) matches Cargo.lock's sqlx
#   with_scratch_database FN  run FN with SCRATCH_DATABASE_URL: a fresh, migrated database
#   check_sqlx_offline_data   fail when `.sqlx/` does not match the code's queries
#   ensure_schemathesis       make sure schemathesis (pinned) is in .local/venv-schemathesis
#   ensure_chromium           make sure Debian's chromium and chromium-driver are installed
#   start_broker PORT LOG     start an in-memory tansu broker in the background
#   create_topic PORT NAME N  create a topic (idempotent)
#   track_pid PID             have PID killed when the script exits
#   install_cleanup_trap      kill every tracked PID on exit / Ctrl-C / TERM
#
# Everything tansu-specific for the project lives here and in scripts/;
# the Rust code only sees plain Kafka addresses (KAFKA_BROKERS, ...).

# Guard against double sourcing.
if [[ -n "${_ORDER_SCRIPTS_LIB_SOURCED:-}" ]]; then
    return 0
fi
_ORDER_SCRIPTS_LIB_SOURCED=1

# Repository root: the parent of the directory holding this file.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REPO_ROOT

# cargo-installed binaries (tansu, sqlx-cli) live here.
case ":${PATH}:" in
    *":${HOME}/.cargo/bin:"*) ;;
    *) export PATH="${HOME}/.cargo/bin:${PATH}" ;;
esac

# --- settings (override through the environment) ---------------------------

PG_HOST="${PG_HOST:-127.0.0.1}"
PG_PORT="${PG_PORT:-5432}"
PG_USER="${PG_USER:-postgres}"
PG_START_TIMEOUT="${PG_START_TIMEOUT:-60}"            # seconds

TANSU_VERSION="0.6.0"
TANSU_INSTALL_WAIT_TIMEOUT="${TANSU_INSTALL_WAIT_TIMEOUT:-3600}"  # seconds
BROKER_START_TIMEOUT="${BROKER_START_TIMEOUT:-30}"    # seconds
TANSU_CLUSTER_ID="${TANSU_CLUSTER_ID:-tansu_cluster}"
# Log level of the broker (tracing EnvFilter syntax).
TANSU_LOG="${TANSU_LOG:-warn}"

# --- messages ---------------------------------------------------------------

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$(date +%H:%M:%S)" "$*" >&2; exit 1; }

# wait_until TIMEOUT_SECS DESCRIPTION CMD [ARGS...]
# Runs CMD every half second until it succeeds; returns 1 after TIMEOUT_SECS.
wait_until() {
    local timeout="$1" what="$2"
    shift 2
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            log "timed out after ${timeout}s waiting for ${what}"
            return 1
        fi
        sleep 0.5
    done
}

# port_open PORT — true when something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
    timeout 2 bash -c ": >/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# free_port — print a TCP port on 127.0.0.1 that is free right now.
free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# --- background processes and cleanup ---------------------------------------

_TRACKED_PIDS=()

# track_pid PID — kill PID (TERM, then KILL) when the script exits.
track_pid() { _TRACKED_PIDS+=("$1"); }

# kill_tracked — stop all tracked processes, newest first. Safe to call twice.
kill_tracked() {
    local i pid
    local -a alive=()
    for ((i = ${#_TRACKED_PIDS[@]} - 1; i >= 0; i--)); do
        pid="${_TRACKED_PIDS[i]}"
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            alive+=("$pid")
        fi
    done
    # Give them up to 10 s to exit cleanly, then force.
    local deadline=$((SECONDS + 10))
    for pid in "${alive[@]}"; do
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
            sleep 0.2
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "process ${pid} ignored SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    _TRACKED_PIDS=()
}

# install_cleanup_trap — on exit, Ctrl-C or TERM, kill everything tracked.
# The script's exit status is preserved (130 for Ctrl-C, 143 for TERM).
_on_exit() {
    local rc=$?
    trap - EXIT
    kill_tracked
    exit "$rc"
}
install_cleanup_trap() {
    trap _on_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# --- PostgreSQL ---------------------------------------------------------------

_pg_ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; }

# ensure_postgres — start the local cluster if it does not answer.
ensure_postgres() {
    command -v pg_isready >/dev/null || die "pg_isready not found: PostgreSQL client tools are not installed"
    if _pg_ready; then
        return 0
    fi
    log "PostgreSQL is not answering on ${PG_HOST}:${PG_PORT}; starting it"
    local version
    # Newest installed major version (normally just one, e.g. 15).
    # shellcheck disable=SC2012 # version directory names are plain numbers
    version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)"
    [[ -n "$version" ]] || die "no PostgreSQL cluster under /etc/postgresql; is the server installed?"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
        log "pg_ctlcluster ${version} main start failed (maybe already starting); waiting anyway"
    wait_until "$PG_START_TIMEOUT" "PostgreSQL on ${PG_HOST}:${PG_PORT}" _pg_ready ||
        die "PostgreSQL did not become ready within ${PG_START_TIMEOUT}s (see /var/log/postgresql/)"
    log "PostgreSQL is ready"
}

# ensure_database NAME — create database NAME if it is missing.
ensure_database() {
    local name="$1"
    local exists
    # The SQL comes on stdin because psql does not interpolate :'var' in -c.
    exists="$(psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -XtAq \
        -v ON_ERROR_STOP=1 -v name="$name" \
        <<<"SELECT 1 FROM pg_database WHERE datname = :'name'")" ||
        die "cannot query PostgreSQL at ${PG_HOST}:${PG_PORT} as ${PG_USER}"
    if [[ "$exists" == "1" ]]; then
        return 0
    fi
    log "creating database ${name}"
    # CREATE DATABASE cannot take a bind parameter; quote it as an identifier.
    psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -Xq -v ON_ERROR_STOP=1 \
        -v name="$name" <<<'CREATE DATABASE :"name"' ||
        die "could not create database ${name}"
}

# --- sqlx-cli and the offline query data -------------------------------------------

# The sqlx version of Cargo.lock (the CLI must match the macros that read `.sqlx/`).
_sqlx_locked_version() {
    awk '$0 == "name = \"sqlx\"" { getline; gsub(/version = |"/, ""); print; exit }' \
        "$REPO_ROOT/Cargo.lock"
}

# ensure_sqlx_cli — make sure `cargo sqlx --version` reports Cargo.lock's sqlx version.
ensure_sqlx_cli() {
    local version
    version="$(_sqlx_locked_version)"
    [[ -n "$version" ]] || die "no sqlx package in Cargo.lock"
    if cargo sqlx --version 2>/dev/null | grep -qw "$version"; then
        return 0
    fi
    log "installing sqlx-cli ${version} with cargo (takes a few minutes the first time)"
    cargo install sqlx-cli --version "$version" --locked \
        --no-default-features --features postgres,rustls ||
        die "cargo install sqlx-cli ${version} failed"
    cargo sqlx --version 2>/dev/null | grep -qw "$version" ||
        die "sqlx-cli installed but 'cargo sqlx --version' does not report ${version}"
}

# The AsyncAPI specification's JSON Schemas (npm package @asyncapi/specs), which the
# contract test checks /asyncapi.json against; installed into .local/, never committed.
ASYNCAPI_SPECS_VERSION="6.11.1"
ASYNCAPI_SPECS_DIR="$REPO_ROOT/.local/asyncapi-specs"

# ensure_asyncapi_spec — install @asyncapi/specs (pinned) with npm when missing and
# export ASYNCAPI_SPEC, the path of its AsyncAPI 3.0.0 schema.
ensure_asyncapi_spec() {
    local schema="$ASYNCAPI_SPECS_DIR/node_modules/@asyncapi/specs/schemas/3.0.0.json"
    local installed="$ASYNCAPI_SPECS_DIR/node_modules/@asyncapi/specs/package.json"
    if ! grep -q "\"version\": \"${ASYNCAPI_SPECS_VERSION}\"" "$installed" 2>/dev/null; then
        command -v npm >/dev/null 2>&1 || die "npm is needed to install @asyncapi/specs (apt-get install npm)"
        log "installing @asyncapi/specs ${ASYNCAPI_SPECS_VERSION} into .local/asyncapi-specs (first run only)"
        mkdir -p "$ASYNCAPI_SPECS_DIR"
        npm install --prefix "$ASYNCAPI_SPECS_DIR" --no-audit --no-fund --ignore-scripts \
            "@asyncapi/specs@${ASYNCAPI_SPECS_VERSION}" >&2 ||
            die "npm install @asyncapi/specs@${ASYNCAPI_SPECS_VERSION} failed"
    fi
    [[ -f "$schema" ]] || die "@asyncapi/specs has no schemas/3.0.0.json"
    export ASYNCAPI_SPEC="$schema"
}

# with_scratch_database FN [ARGS...] — create a database of its own, apply
# migrations/ to it, run FN with SCRATCH_DATABASE_URL pointing at it, then drop it
# (also when FN fails). Returns FN's status.
with_scratch_database() {
    local name="sqlx_scratch_$$_${RANDOM}"
    local admin="postgres://${PG_USER}@${PG_HOST}:${PG_PORT}/postgres"
    SCRATCH_DATABASE_URL="postgres://${PG_USER}@${PG_HOST}:${PG_PORT}/${name}"
    psql "$admin" -Xq -v ON_ERROR_STOP=1 -v name="$name" <<<'CREATE DATABASE :"name"' ||
        die "could not create the scratch database ${name}"
    local status=0
    if cargo sqlx migrate run --source "$REPO_ROOT/migrations" \
        --database-url "$SCRATCH_DATABASE_URL" >/dev/null; then
        "$@" || status=$?
    else
        log "applying migrations/ to ${name} failed"
        status=1
    fi
    psql "$admin" -Xq -v name="$name" <<<'DROP DATABASE IF EXISTS :"name" WITH (FORCE)' ||
        log "could not drop the scratch database ${name}"
    unset SCRATCH_DATABASE_URL
    return "$status"
}

# The workspace's queries against the scratch database, in `cargo sqlx prepare`
# mode MODE: "check" compares them with `.sqlx/`, "write" regenerates `.sqlx/`.
_sqlx_prepare() {
    local -a check=()
    [[ "$1" == check ]] && check=(--check)
    (cd "$REPO_ROOT" && SQLX_OFFLINE=false DATABASE_URL="$SCRATCH_DATABASE_URL" \
        cargo sqlx prepare --workspace "${check[@]}" -- --all-targets)
}

# check_sqlx_offline_data — fail the run when `.sqlx/` (the offline data the builds
# check the SQL macros against) does not match the code's queries and migrations/.
check_sqlx_offline_data() {
    ensure_sqlx_cli
    log "checking .sqlx/ against the queries (cargo sqlx prepare --check)"
    with_scratch_database _sqlx_prepare check ||
        die ".sqlx/ is stale: run scripts/sqlx-prepare.sh (and commit .sqlx/)"
    log ".sqlx/ is up to date"
}

# --- schemathesis (OpenAPI fuzzer) ---------------------------------------------

# The version the suite's schemathesis test and the README's figures are for: its
# command line (4.x: --max-examples, --seed, --phases) and its checks change between
# releases, so it is pinned.
SCHEMATHESIS_VERSION="4.32.5"
SCHEMATHESIS_VENV="$REPO_ROOT/.local/venv-schemathesis"

_schemathesis_ok() {
    "$SCHEMATHESIS_VENV/bin/schemathesis" --version 2>/dev/null | grep -qw "$SCHEMATHESIS_VERSION"
}

# ensure_schemathesis — make sure the pinned schemathesis is installed from PyPI into
# its own virtualenv under .local/ (once; about 15 s), and export SCHEMATHESIS, the
# path of its command line, for the test that runs it (order-service's
# `tests/schemathesis.rs`).
ensure_schemathesis() {
    if ! _schemathesis_ok; then
        command -v python3 >/dev/null || die "python3 not found; cannot install schemathesis"
        log "installing schemathesis ${SCHEMATHESIS_VERSION} into .local/venv-schemathesis (first run only)"
        rm -rf "$SCHEMATHESIS_VENV"
        python3 -m venv "$SCHEMATHESIS_VENV" ||
            die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
        "$SCHEMATHESIS_VENV/bin/pip" install --quiet "schemathesis==${SCHEMATHESIS_VERSION}" ||
            die "pip install schemathesis==${SCHEMATHESIS_VERSION} failed"
        _schemathesis_ok || die "schemathesis installed but does not report ${SCHEMATHESIS_VERSION}"
    fi
    export SCHEMATHESIS="$SCHEMATHESIS_VENV/bin/schemathesis"
}

# --- Chromium (the console's browser test) -------------------------------------

CHROMEDRIVER_PATH="/usr/bin/chromedriver"
CHROMIUM_PATH="/usr/bin/chromium"

# ensure_chromium — make sure Debian's chromium and chromium-driver are installed
# (apt-get, non-interactive; `apt-get update` only when the package lists do not know
# them yet) and export CHROMEDRIVER and CHROMIUM, which the console's browser test
# (`tests/tests/console.rs`) starts. Needs root (CI runs as root); no browser is ever
# downloaded from anywhere but Debian's archive.
ensure_chromium() {
    if [[ ! -x "$CHROMEDRIVER_PATH" || ! -x "$CHROMIUM_PATH" ]]; then
        command -v apt-get >/dev/null || die "apt-get not found: install chromium and chromium-driver by hand"
        local -a sudo=()
        ((EUID == 0)) || sudo=(sudo)
        export DEBIAN_FRONTEND=noninteractive
        if ! apt-cache show chromium-driver >/dev/null 2>&1; then
            log "apt-get update (the package lists do not know chromium-driver yet)"
            "${sudo[@]}" apt-get update -qq >&2 || die "apt-get update failed"
        fi
        log "installing chromium and chromium-driver with apt-get (first run only, about a minute)"
        "${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium chromium-driver >&2 ||
            die "apt-get install chromium chromium-driver failed"
    fi
    [[ -x "$CHROMEDRIVER_PATH" ]] || die "chromium-driver installed but ${CHROMEDRIVER_PATH} is missing"
    export CHROMEDRIVER="$CHROMEDRIVER_PATH"
    export CHROMIUM="$CHROMIUM_PATH"
}

# --- tansu (Kafka-protocol broker) -------------------------------------------

_tansu_ok() { tansu --version 2>/dev/null | grep -qw "$TANSU_VERSION"; }

# A `cargo install tansu` already running (e.g. started by another script)?
# The pattern only matches a process whose program is cargo itself, not a
# shell whose command line happens to contain the words.
_tansu_install_running() { pgrep -f '^[^ ]*cargo install tansu' >/dev/null; }

# ensure_tansu — make sure `tansu --version` reports 0.6.0.
ensure_tansu() {
    if _tansu_ok; then
        return 0
    fi
    if _tansu_install_running; then
        log "a 'cargo install tansu' is already running; waiting for it (up to ${TANSU_INSTALL_WAIT_TIMEOUT}s)"
        local deadline=$((SECONDS + TANSU_INSTALL_WAIT_TIMEOUT))
        while _tansu_install_running; do
            ((SECONDS < deadline)) || die "gave up waiting for the running 'cargo install tansu'"
            sleep 5
        done
        if _tansu_ok; then
            log "tansu ${TANSU_VERSION} is now installed"
            return 0
        fi
        log "the other install finished without a working tansu ${TANSU_VERSION}; installing it here"
    fi
    command -v cargo >/dev/null || die "cargo not found; cannot install tansu"
    log "installing tansu ${TANSU_VERSION} with cargo (takes ~12 minutes the first time)"
    cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore ||
        die "cargo install tansu ${TANSU_VERSION} failed"
    _tansu_ok || die "tansu installed but 'tansu --version' does not report ${TANSU_VERSION}"
}

# tansu loads a .env file from its working directory (or any parent) at
# start; run it from an empty directory outside the repository so that no
# project .env leaks into it. With memory:// storage it writes no files.
_TANSU_CWD="${TMPDIR:-/tmp}/tansu-empty-cwd"
_tansu() {
    mkdir -p "$_TANSU_CWD"
    (cd "$_TANSU_CWD" && RUST_LOG="$TANSU_LOG" NO_COLOR=1 tansu "$@")
}

# create_topic PORT NAME PARTITIONS — create a topic; "already exists" is success.
create_topic() {
    local port="$1" name="$2" partitions="$3"
    local out
    if out="$(_tansu topic create "$name" --broker "tcp://127.0.0.1:${port}" \
        --partitions "$partitions" 2>&1)"; then
        log "topic ${name} created (${partitions} partitions) on 127.0.0.1:${port}"
        return 0
    fi
    if grep -qi 'already exists' <<<"$out"; then
        log "topic ${name} already exists on 127.0.0.1:${port}"
        return 0
    fi
    log "creating topic ${name} on 127.0.0.1:${port} failed:"
    printf '%s\n' "$out" >&2
    return 1
}

# start_broker PORT LOGFILE — start tansu with in-memory storage, listening on
# 127.0.0.1:PORT, logging to LOGFILE. Waits until the port accepts
# connections and a topic can be created, then prints the broker's PID on
# stdout. The PID is also left in BROKER_PID and tracked for cleanup — call
# it directly (not as `$(start_broker ...)`, which runs it in a subshell and
# loses both; a caller doing that must `track_pid` the printed PID itself).
start_broker() {
    local port="$1" logfile="$2"
    if port_open "$port"; then
        die "port ${port} is already in use; stop whatever listens there (ss -ltnp 'sport = :${port}') or pick another port"
    fi
    mkdir -p "$(dirname "$logfile")"
    local url="tcp://127.0.0.1:${port}"
    log "starting tansu broker on ${url} (log: ${logfile})"
    mkdir -p "$_TANSU_CWD"
    # Every setting is given as a flag: flags win over tansu's environment
    # variables (CLUSTER_ID, LISTENER_URL, STORAGE_ENGINE, ...).
    (
        cd "$_TANSU_CWD" || exit 1
        RUST_LOG="$TANSU_LOG" NO_COLOR=1 exec tansu broker \
            --cluster-id "$TANSU_CLUSTER_ID" \
            --listener-url "$url" \
            --advertised-listener-url "$url" \
            --storage-engine memory://tansu/
    ) >"$logfile" 2>&1 </dev/null &
    BROKER_PID=$!
    track_pid "$BROKER_PID"

    local started=$SECONDS deadline=$((SECONDS + BROKER_START_TIMEOUT))
    # 1. The listener accepts TCP connections.
    until port_open "$port"; do
        if ! kill -0 "$BROKER_PID" 2>/dev/null; then
            log "tansu exited during start-up; last lines of ${logfile}:"
            tail -n 30 "$logfile" >&2 || true
            return 1
        fi
        if ((SECONDS >= deadline)); then
            log "tansu did not listen on ${port} within ${BROKER_START_TIMEOUT}s; last lines of ${logfile}:"
            tail -n 30 "$logfile" >&2 || true
            return 1
        fi
        sleep 0.2
    done
    # 2. It serves CreateTopics (i.e. the storage engine is usable).
    until create_topic "$port" __readiness_probe 1 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            log "tansu on ${port} does not create topics after ${BROKER_START_TIMEOUT}s; last lines of ${logfile}:"
            tail -n 30 "$logfile" >&2 || true
            return 1
        fi
        sleep 0.5
    done
    log "tansu broker ready on ${url} (pid ${BROKER_PID}, $((SECONDS - started))s)"
    echo "$BROKER_PID"
}
