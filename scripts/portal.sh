#!/usr/bin/env bash
# The portal's tools and its checks in a real browser and against the OpenAPI document.
#
#   scripts/portal.sh install   Debian's chromium (apt-get, when /usr/bin/chromium is missing),
#                               playwright-core and uplot from npm into .local/npm, schemathesis
#                               from PyPI into its own venv .local/schemathesis
#   scripts/portal.sh vendor    copy uPlot's files from .local/npm into portal/vendor (after a
#                               version change; the copies are committed, so builds need no npm)
#   scripts/portal.sh bench     page weight; on running emulators, the release build served on
#                               MB_BENCH_HTTP_PORT (default 3450): first drawn chart, API calls
#                               per usage page, unread-count polls answered 200 and 304
#   scripts/portal.sh check     on running emulators (scripts/env.sh sourced): serve the whole
#                               API with demo data on MB_TEST_HTTP_PORT (default 3150), run the
#                               browser tests (portal/tests) and schemathesis, stop the server
#
# Every install step is idempotent and pinned.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCAL="$ROOT/.local"
PLAYWRIGHT_VERSION=1.65.1
UPLOT_VERSION=1.6.32
SCHEMATHESIS_VERSION=4.32.5
CHROMIUM=${MB_CHROMIUM:-/usr/bin/chromium}

say() { printf 'portal: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

npm_has() { # package version
  local pkg="$LOCAL/npm/node_modules/$1/package.json"
  [ -f "$pkg" ] && grep -q "\"version\": \"$2\"" "$pkg"
}

install() {
  if [ ! -x "$CHROMIUM" ]; then
    say "installing Debian's chromium for the browser tests"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
  fi
  if ! npm_has playwright-core "$PLAYWRIGHT_VERSION" || ! npm_has uplot "$UPLOT_VERSION"; then
    command -v npm >/dev/null 2>&1 || die "npm is needed (apt-get install npm)"
    say "installing playwright-core@$PLAYWRIGHT_VERSION and uplot@$UPLOT_VERSION into .local/npm"
    mkdir -p "$LOCAL/npm"
    (cd "$LOCAL/npm" && npm install --no-audit --no-fund --silent --prefix . \
      "playwright-core@$PLAYWRIGHT_VERSION" "uplot@$UPLOT_VERSION" >/dev/null)
  fi
  local venv="$LOCAL/schemathesis" stamp="$LOCAL/schemathesis/.meterbell-$SCHEMATHESIS_VERSION"
  if [ ! -f "$stamp" ]; then
    say "installing schemathesis==$SCHEMATHESIS_VERSION into .local/schemathesis"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
    touch "$stamp"
  fi
}

vendor() {
  install
  local dist="$LOCAL/npm/node_modules/uplot"
  cp "$dist/dist/uPlot.iife.min.js" "$dist/dist/uPlot.min.css" "$dist/LICENSE" "$ROOT/portal/vendor/"
  say "portal/vendor now holds uPlot $UPLOT_VERSION"
}

# serve BIN PORT: the dev stack as `make dev` runs it (demo data, every route, every consumer)
# in the background until this script exits; sets $base.
serve() {
  local bin=$1 port=$2
  local run="$LOCAL/run/${MB_STACK_NAME:-test}"
  mkdir -p "$run"
  setsid "$bin" serve --port "$port" >"$run/portal-serve.log" 2>&1 </dev/null &
  local pid=$!
  trap 'kill -TERM -- "-'"$pid"'" 2>/dev/null || true' EXIT
  base="http://127.0.0.1:$port/prod"
  local i
  for i in $(seq 1 240); do
    curl -sf -o /dev/null "$base/api/v1/openapi.json" && return 0
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$run/portal-serve.log" >&2; die "the local API exited during start-up"; }
    sleep 0.5
  done
  die "the local API did not answer on $base within 120 s"
}

check() {
  install
  cd "$ROOT"
  local target=${CARGO_TARGET_DIR:-$ROOT/target}
  local bin="$target/debug/meterbell-dev"
  local shots="$target/portal-screenshots"
  mkdir -p "$shots"
  cargo build --quiet -p meterbell-dev --bin meterbell-dev
  serve "$bin" "${MB_TEST_HTTP_PORT:-3150}"

  local service admin expired status=0
  service=$("$bin" token --sub portal-tests --role service --ttl 3600)
  admin=$("$bin" token --sub portal-tests-admin --role admin --ttl 3600)
  expired=$("$bin" token --sub demo-user --ttl -120)

  say "browser tests (headless $CHROMIUM, screenshots in $shots)"
  MB_PORTAL_BASE="$base" MB_SERVICE_TOKEN="$service" MB_ADMIN_TOKEN="$admin" \
    MB_EXPIRED_TOKEN="$expired" MB_SCREENSHOTS="$shots" MB_CHROMIUM="$CHROMIUM" \
    NODE_PATH="$LOCAL/npm/node_modules" node --test --test-reporter=spec portal/tests/ || status=1

  say "schemathesis: every operation of docs/openapi.json against $base"
  local fuzz_token
  fuzz_token=$("$bin" token --sub schemathesis --role admin --role service --ttl 3600)
  # Bounded by examples per operation (MB_FUZZ_EXAMPLES; about 15 s for 25). No --max-time: with
  # one, schemathesis keeps fuzzing until it runs out. One worker, no example database.
  timeout 300 "$LOCAL/schemathesis/bin/st" run docs/openapi.json --url "$base" \
    -H "Authorization: Bearer $fuzz_token" -n "${MB_FUZZ_EXAMPLES:-25}" --workers 1 \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
    --generation-database none --no-color --warnings off \
    && say "schemathesis: passed" || { say "schemathesis: FAILED"; status=1; }
  return "$status"
}

# bench: page weight, then the browser and polling figures on the release build (make bench).
bench() {
  install
  cd "$ROOT"
  local f raw=0 gz=0 size zipped
  printf '%-20s %9s %9s\n' file bytes gzip
  for f in portal/index.html portal/app.js portal/app.css portal/vendor/uPlot.iife.min.js portal/vendor/uPlot.min.css; do
    size=$(wc -c <"$f")
    zipped=$(gzip -9c "$f" | wc -c)
    raw=$((raw + size))
    gz=$((gz + zipped))
    printf '%-20s %9d %9d\n' "$(basename "$f")" "$size" "$zipped"
  done
  printf '%-20s %9d %9d\n' "page weight" "$raw" "$gz"
  local bin="${CARGO_TARGET_DIR:-$ROOT/target}/release/meterbell-dev"
  serve "$bin" "${MB_BENCH_HTTP_PORT:-3450}"
  MB_PORTAL_BASE="$base" MB_SERVICE_TOKEN="$("$bin" token --sub portal-bench --role service --ttl 3600)" \
    MB_CHROMIUM="$CHROMIUM" NODE_PATH="$LOCAL/npm/node_modules" node portal/tests/bench.cjs
}

case "${1:-}" in
  install) install ;;
  vendor) vendor ;;
  check) check ;;
  bench) bench ;;
  *) echo "usage: $0 install|vendor|check|bench" >&2; exit 2 ;;
esac
