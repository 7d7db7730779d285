#!/usr/bin/env bash
# Run a real Keystone (Debian packages, SQLite, fernet tokens) on 127.0.0.1 for development and tests.
#
#   scripts/keystone.sh [start|stop|status|env]
#
# Environment:
#   KEYSTONE_PORT       port to bind (default: the port recorded in the state dir, else 5000)
#   KEYSTONE_STATE_DIR  state directory (default: <repo>/.state/keystone)
#
# Facts and pitfalls behind the choices here: shared reference "services/keystone.md".
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="$(realpath -m "${KEYSTONE_STATE_DIR:-$REPO_ROOT/.state/keystone}")"
CONF="$STATE_DIR/keystone.conf"
PID_FILE="$STATE_DIR/gunicorn.pid"
PASSWORD_FILE="$STATE_DIR/admin_password"
PORT_FILE="$STATE_DIR/port"
URL_FILE="$STATE_DIR/url"
INIT_MARK="$STATE_DIR/.initialised"
BOOTSTRAP_MARK="$STATE_DIR/.bootstrapped"
GUNICORN_LOG="$STATE_DIR/gunicorn.log"
KEYSTONE_LOG="$STATE_DIR/keystone.log"
MANAGE_LOG="$STATE_DIR/keystone-manage.log"
START_TIMEOUT=60

# A restart without KEYSTONE_PORT must land on the port the endpoints were bootstrapped with.
if [[ -n "${KEYSTONE_PORT:-}" ]]; then
  PORT="$KEYSTONE_PORT"
elif [[ -s "$PORT_FILE" ]]; then
  PORT="$(<"$PORT_FILE")"
else
  PORT=5000
fi
if ! [[ "$PORT" =~ ^[0-9]+$ ]]; then
  echo "keystone: invalid port '$PORT'" >&2
  exit 2
fi
# Node's fetch (WHATWG "bad ports") refuses these outright ("bad port"), so tests could never reach them.
FETCH_BLOCKED_PORTS=" 1 7 9 11 13 15 17 19 20 21 22 23 25 37 42 43 53 69 77 79 87 95 101 102 103 104 109 110 111
  113 115 117 119 123 135 137 139 143 161 179 389 427 465 512 513 514 515 526 530 531 532 540 548 554 556 563 587
  601 636 989 990 993 995 1719 1720 1723 2049 3659 4045 4190 5060 5061 6000 6566 6665 6666 6667 6668 6669 6679
  6697 10080 "
BASE_URL="http://127.0.0.1:$PORT"
URL="$BASE_URL/v3"

log() { echo "keystone: $*" >&2; }

# Keystone only works with Debian's python; the pyenv python on PATH cannot import it.
run_py() { env -u PYTHONPATH -u PYTHONHOME "$@"; }

packages_installed() {
  local status
  status="$(dpkg-query -W -f='${Status}\n' python3-keystone gunicorn curl 2>/dev/null || true)"
  [[ "$(grep -c '^install ok installed$' <<<"$status")" -eq 3 ]] &&
    [[ -x /usr/bin/gunicorn && -x /usr/bin/keystone-manage ]]
}

install_packages() {
  if packages_installed; then
    return 0
  fi
  local t0=$SECONDS
  log "installing python3-keystone gunicorn curl from Debian (about 2 minutes)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    python3-keystone gunicorn curl >/dev/null
  log "installed in $((SECONDS - t0)) s"
}

# Prints the HTTP status of GET /v3, or 000 when nothing answers. Always time-limited: a Keystone whose
# workers crash in a loop accepts connections but never answers.
http_code() {
  command -v curl >/dev/null || {
    echo 000
    return 0
  }
  curl -s -o /dev/null -w '%{http_code}' --connect-timeout 2 -m 5 "$URL" 2>/dev/null || echo 000
}

answering() { [[ "$(http_code)" == "200" ]]; }

# True when the Keystone on the port accepts our stored admin password, i.e. it runs on our state.
ours() {
  [[ -s "$PASSWORD_FILE" ]] || return 1
  local code
  # Body on stdin so the password never shows up in the process list.
  code="$(
    printf '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"id":"default"},"password":"%s"}}},"scope":{"project":{"name":"admin","domain":{"id":"default"}}}}}' \
      "$(<"$PASSWORD_FILE")" |
      curl -s -o /dev/null -w '%{http_code}' --connect-timeout 2 -m 10 \
        -H 'Content-Type: application/json' --data-binary @- "$URL/auth/tokens" 2>/dev/null || echo 000
  )"
  [[ "$code" == "201" ]]
}

# Pid from the pid file if that process is still our gunicorn (guards against a recycled pid).
running_pid() {
  [[ -s "$PID_FILE" ]] || return 1
  local pid
  pid="$(<"$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "gunicorn.*$STATE_DIR" || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

show_logs() {
  local f
  for f in "$@"; do
    if [[ -s "$f" ]]; then
      echo "----- tail of $f -----" >&2
      tail -n 40 "$f" >&2
    fi
  done
}

manage() {
  if ! run_py /usr/bin/keystone-manage --config-file "$CONF" "$@" >>"$MANAGE_LOG" 2>&1; then
    log "keystone-manage $1 failed"
    show_logs "$MANAGE_LOG" "$KEYSTONE_LOG"
    exit 1
  fi
}

write_config() {
  mkdir -p "$STATE_DIR/fernet-keys" "$STATE_DIR/credential-keys"
  chmod 700 "$STATE_DIR" "$STATE_DIR/fernet-keys" "$STATE_DIR/credential-keys"
  # Tokens and receipts share one fernet repository, as in Keystone's defaults.
  # timeout=30: SQLite waits for a lock this long instead of failing with "database is locked" under
  # parallel test files (WAL alone still let concurrent deletes fail with HTTP 500).
  cat >"$CONF" <<EOF
[DEFAULT]
log_file = $KEYSTONE_LOG
use_stderr = false

[database]
connection = sqlite:///$STATE_DIR/keystone.db?timeout=30

[token]
provider = fernet

[fernet_tokens]
key_repository = $STATE_DIR/fernet-keys/

[fernet_receipts]
key_repository = $STATE_DIR/fernet-keys/

[credential]
key_repository = $STATE_DIR/credential-keys/

[identity]
# bcrypt cost 4: about 70 ms per password auth instead of about 300 ms. Test use only.
password_hash_rounds = 4
EOF
  # oslo.config parses gunicorn's argv and every worker exits in a restart loop unless argv is reset.
  # SQLite ignores foreign keys unless asked (MySQL enforces them): without them, deleting a user leaves
  # its application credentials' role rows behind, the integer id is reused, and the next application
  # credential fails with 409 "Duplicate entry". Keystone's own tests switch them on the same way.
  cat >"$STATE_DIR/keystone_wsgi.py" <<'EOF'
import sys

sys.argv = sys.argv[:1]

from keystone.common.sql import core as sql_core  # noqa: E402
from keystone.server.wsgi import initialize_public_application  # noqa: E402

sql_core.enable_sqlite_foreign_key()
application = initialize_public_application()
EOF
}

# First start only: database schema and key repositories. Every step is idempotent, so a start that was
# interrupted half-way simply repeats them.
init_state() {
  local t0=$SECONDS
  log "initialising state in $STATE_DIR (db_sync, fernet_setup, credential_setup)"
  manage db_sync
  # Two workers on SQLite: without WAL, concurrent writes fail with "database is locked" (HTTP 500).
  run_py /usr/bin/python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("pragma journal_mode=wal"); c.close()' \
    "$STATE_DIR/keystone.db"
  local user group
  user="$(id -un)"
  group="$(id -gn)"
  manage fernet_setup --keystone-user "$user" --keystone-group "$group"
  manage credential_setup --keystone-user "$user" --keystone-group "$group"
  touch "$INIT_MARK"
  log "state initialised in $((SECONDS - t0)) s"
}

# Admin user, project, role, region and endpoints. Re-run when the port changes: bootstrap updates
# existing endpoints in place.
bootstrap() {
  local t0=$SECONDS
  if [[ ! -s "$PASSWORD_FILE" ]]; then
    (
      umask 077
      run_py /usr/bin/python3 -c 'import secrets; print(secrets.token_hex(16))' >"$PASSWORD_FILE"
    )
  fi
  chmod 600 "$PASSWORD_FILE"
  # Password via environment (OS_BOOTSTRAP_PASSWORD), not argv, so it stays out of the process list.
  OS_BOOTSTRAP_PASSWORD="$(<"$PASSWORD_FILE")" manage bootstrap \
    --bootstrap-username admin \
    --bootstrap-project-name admin \
    --bootstrap-role-name admin \
    --bootstrap-region-id RegionOne \
    --bootstrap-admin-url "$URL/" \
    --bootstrap-public-url "$URL/" \
    --bootstrap-internal-url "$URL/"
  echo "$PORT" >"$BOOTSTRAP_MARK"
  log "bootstrapped for $URL in $((SECONDS - t0)) s"
}

start_server() {
  local t0=$SECONDS
  rm -f "$PID_FILE"
  : >"$GUNICORN_LOG"
  # 9>&-: the daemon must not inherit the start lock, or the next start would wait on it forever.
  # One worker: with two, SQLite still failed concurrent writes with "database is locked" (a read
  # transaction upgrading to a write gets SQLITE_BUSY at once, whatever the busy timeout).
  (
    cd "$STATE_DIR"
    OS_KEYSTONE_CONFIG_DIR="$STATE_DIR" run_py /usr/bin/gunicorn \
      --daemon \
      --pid "$PID_FILE" \
      --bind "127.0.0.1:$PORT" \
      --workers 1 \
      --chdir "$STATE_DIR" \
      --pythonpath "$STATE_DIR" \
      --name "keystone-$PORT" \
      --error-log "$GUNICORN_LOG" \
      --capture-output \
      --timeout 60 \
      keystone_wsgi:application 9>&-
  ) || {
    log "gunicorn failed to start"
    show_logs "$GUNICORN_LOG" "$KEYSTONE_LOG"
    exit 1
  }
  local deadline=$((SECONDS + START_TIMEOUT)) pid=""
  while ((SECONDS < deadline)); do
    if answering; then
      log "answering on $URL after $((SECONDS - t0)) s"
      return 0
    fi
    # The pid file appears a moment after daemonising. A master that gives up ("Worker failed to boot")
    # removes it, so a vanished pid counts as failure; a master that never wrote one too.
    if [[ -z "$pid" ]]; then
      pid="$(running_pid || true)"
      if [[ -z "$pid" ]] && ((SECONDS - t0 > 15)); then
        break
      fi
    elif ! kill -0 "$pid" 2>/dev/null; then
      break
    fi
    sleep 0.5
  done
  log "not answering on $URL after $((SECONDS - t0)) s"
  show_logs "$GUNICORN_LOG" "$KEYSTONE_LOG"
  stop_server || true
  exit 1
}

stop_server() {
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "gunicorn $pid did not stop after SIGTERM, sending SIGKILL"
    # Workers first (by parent pid): orphans of a killed master would keep the port open.
    local -a workers
    mapfile -t workers < <(pgrep -P "$pid" || true)
    kill -KILL "$pid" "${workers[@]}" 2>/dev/null || true
  fi
  deadline=$((SECONDS + 30))
  while port_open && ((SECONDS < deadline)); do
    sleep 0.2
  done
  rm -f "$PID_FILE"
  if port_open; then
    log "port $PORT still open after stopping gunicorn $pid"
    return 1
  fi
  log "stopped"
}

cmd_start() {
  if [[ "$FETCH_BLOCKED_PORTS" == *[[:space:]]"$PORT"[[:space:]]* ]]; then
    log "port $PORT is on fetch's blocked-port list; Node clients cannot connect to it. Choose another."
    exit 2
  fi
  install_packages
  mkdir -p "$STATE_DIR"
  chmod 700 "$STATE_DIR"
  # Serialise concurrent starts on the same state (parallel test runs).
  exec 9>"$STATE_DIR/.lock"
  flock -w 900 9

  if answering; then
    if ours; then
      log "already running on $URL"
      return 0
    fi
    log "something else answers on $URL (not Keystone with the state in $STATE_DIR)"
    exit 1
  fi
  # Our gunicorn alive but not answering (hung or crash-looping workers): replace it.
  if running_pid >/dev/null; then
    log "gunicorn from $PID_FILE is not answering; restarting it"
    stop_server
  fi
  if port_open; then
    log "port $PORT is in use by another process"
    exit 1
  fi

  write_config
  [[ -e "$INIT_MARK" ]] || init_state
  if [[ ! -s "$BOOTSTRAP_MARK" || "$(<"$BOOTSTRAP_MARK")" != "$PORT" ]]; then
    bootstrap
  fi
  echo "$PORT" >"$PORT_FILE"
  echo "$URL" >"$URL_FILE"
  start_server
}

cmd_status() {
  if answering; then
    echo "keystone: running on $URL"
    return 0
  fi
  echo "keystone: not answering on $URL"
  return 1
}

cmd_env() {
  if [[ ! -s "$PASSWORD_FILE" ]]; then
    log "no admin password in $STATE_DIR; run: scripts/keystone.sh start"
    exit 1
  fi
  printf 'export KEYSTONE_URL=%q\n' "$URL"
  printf 'export KEYSTONE_ADMIN_USER=admin\n'
  printf 'export KEYSTONE_ADMIN_PASSWORD=%q\n' "$(<"$PASSWORD_FILE")"
  printf 'export KEYSTONE_ADMIN_PROJECT=admin\n'
  printf 'export KEYSTONE_STATE_DIR=%q\n' "$STATE_DIR"
}

case "${1:-start}" in
  start) cmd_start ;;
  stop) stop_server ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *)
    echo "usage: $0 [start|stop|status|env]" >&2
    exit 2
    ;;
esac
