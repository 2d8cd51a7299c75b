#!/usr/bin/env bash
# Local S3 server for the remote tests: moto in server mode on 127.0.0.1.
#
#   eval "$(bash .ci/s3server.sh start)"   # install if needed, start, print export lines
#   eval "$(bash .ci/s3server.sh env)"     # print the export lines of a running server
#   bash .ci/s3server.sh stop              # stop it (no-op when not running)
#   bash .ci/s3server.sh status            # exit 0 when it answers
#
# Settings (environment):
#   PYTHON            interpreter whose environment gets moto[server] (default: python, else python3)
#   CAS_S3_PORT       port (default 9000)
#   CAS_S3_STATE_DIR  pid and log files (default ${TMPDIR:-/tmp}/casstore-s3-PORT)
#   CAS_S3_VENV       fallback venv used only when PYTHON's environment refuses pip installs
#                     (PEP 668 "externally managed" system Python, no pip); default
#                     ${XDG_CACHE_HOME:-~/.cache}/casstore/moto-venv
#
# Only export lines go to stdout (so `eval` is safe); everything else goes to stderr.
# Every subcommand is idempotent: `start` on a running server just prints its environment.
#
# Conditional writes, checked against moto 5.2.5 in server mode with s3fs 2026.9 / aiobotocore 3.10
# / botocore 1.43 (a bucket per test, objects created through the server's HTTP API):
#   - PutObject with `If-None-Match: *` succeeds when the key is absent and gets HTTP 412
#     PreconditionFailed when it exists: boto3 `put_object(..., IfNoneMatch="*")`; s3fs
#     `fs.pipe_file(path, data, IfNoneMatch="*")` and `fs.open(path, "xb")` raise FileExistsError.
#   - CompleteMultipartUpload with `IfNoneMatch="*"` on an existing key: 412 as well.
#   - PutObject with `If-Match: <etag>`: 412 on a stale ETag, succeeds on the current one.
# So create-if-absent (and compare-and-swap) can be tested here; moto keeps objects in memory only.
set -euo pipefail

PORT="${CAS_S3_PORT:-9000}"
HOST=127.0.0.1
URL="http://$HOST:$PORT"
STATE_DIR="${CAS_S3_STATE_DIR:-${TMPDIR:-/tmp}/casstore-s3-$PORT}"
PIDFILE="$STATE_DIR/moto.pid"
LOGFILE="$STATE_DIR/moto.log"
FALLBACK_VENV="${CAS_S3_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/casstore/moto-venv}"

log() { echo "s3server: $*" >&2; }

pick_python() {
    if [ -n "${PYTHON:-}" ]; then
        echo "$PYTHON"
    elif command -v python >/dev/null 2>&1; then
        echo python
    else
        echo python3
    fi
}

has_moto() { "$1" -c 'import moto.server, flask, flask_cors, werkzeug' >/dev/null 2>&1; }

# Prints the interpreter that can run moto's server, installing moto[server] when missing.
ensure_moto() {
    local py
    py="$(pick_python)"
    if ! command -v "$py" >/dev/null 2>&1; then
        log "no Python interpreter '$py' (set PYTHON)"
        return 1
    fi
    if has_moto "$py"; then echo "$py"; return 0; fi
    if [ -x "$FALLBACK_VENV/bin/python" ] && has_moto "$FALLBACK_VENV/bin/python"; then
        echo "$FALLBACK_VENV/bin/python"; return 0
    fi
    log "installing moto[server] into $py's environment"
    if "$py" -m pip install --quiet --disable-pip-version-check 'moto[server]>=5' >&2; then
        if has_moto "$py"; then echo "$py"; return 0; fi
    fi
    # A system Python (Debian's EXTERNALLY-MANAGED marker) or one without pip: use a private venv.
    log "pip install into $py failed; using a private venv at $FALLBACK_VENV"
    mkdir -p "$(dirname "$FALLBACK_VENV")"
    if ! "$py" -m venv "$FALLBACK_VENV" >&2; then
        log "cannot create a venv (on Debian: apt-get install -y python3-venv python3-pip)"
        return 1
    fi
    "$FALLBACK_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        'moto[server]>=5' >&2
    has_moto "$FALLBACK_VENV/bin/python" || { log "moto[server] install failed"; return 1; }
    echo "$FALLBACK_VENV/bin/python"
}

# 0 when something answers HTTP on the port (any status code: moto answers GET / with 200 XML).
answers() {
    if command -v curl >/dev/null 2>&1; then
        curl -s -o /dev/null --max-time 2 "$URL/" 2>/dev/null
    else
        "$(pick_python)" - "$URL/" <<'EOF' >/dev/null 2>&1
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=2)
except urllib.error.HTTPError:
    pass
EOF
    fi
}

running_pid() {
    local pid
    [ -f "$PIDFILE" ] || return 1
    pid="$(cat "$PIDFILE" 2>/dev/null || true)"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    # A stale pid file whose pid now belongs to another program is not our server.
    if [ -r "/proc/$pid/cmdline" ] && ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q moto; then
        return 1
    fi
    echo "$pid"
}

print_env() {
    cat <<EOF
export CAS_TEST_S3_ENDPOINT=$URL
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_DEFAULT_REGION=us-east-1
EOF
}

cmd_start() {
    local py pid i
    mkdir -p "$STATE_DIR"
    if pid="$(running_pid)"; then
        if answers; then
            log "already running (pid $pid) at $URL"
            print_env; return 0
        fi
    elif answers; then
        # Started by someone else (another checkout, a manual moto_server): reuse it.
        log "something already answers at $URL (not started by this script); using it"
        print_env; return 0
    fi
    py="$(ensure_moto)"
    if [ -z "${pid:-}" ]; then
        # AWS_* in the server's environment keep moto's defaults predictable.
        AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 \
            nohup "$py" -m moto.server -H "$HOST" -p "$PORT" \
            </dev/null >"$LOGFILE" 2>&1 &
        pid=$!
        echo "$pid" >"$PIDFILE"
        log "started moto (pid $pid) on $URL, log $LOGFILE"
    fi
    # Wait until it answers, bounded at ~30 s.
    for i in $(seq 1 150); do
        if answers; then print_env; return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then
            log "moto exited before answering; last log lines:"
            tail -n 20 "$LOGFILE" >&2 || true
            rm -f "$PIDFILE"
            return 1
        fi
        sleep 0.2
    done
    log "moto did not answer at $URL within 30 s; last log lines:"
    tail -n 20 "$LOGFILE" >&2 || true
    kill "$pid" 2>/dev/null || true
    rm -f "$PIDFILE"
    return 1
}

cmd_stop() {
    local pid i
    if ! pid="$(running_pid)"; then
        rm -f "$PIDFILE"
        log "not running"
        return 0
    fi
    kill "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDFILE"
    log "stopped (pid $pid)"
}

cmd_env() {
    if answers; then print_env; return 0; fi
    log "no server answers at $URL (run: $0 start)"
    return 1
}

cmd_status() {
    if answers; then log "answering at $URL"; return 0; fi
    log "not answering at $URL"
    return 1
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    env) cmd_env ;;
    status) cmd_status ;;
    *) echo "usage: $0 start|stop|env|status" >&2; exit 2 ;;
esac
