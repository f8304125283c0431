#!/usr/bin/env bash
# make bench: release builds of every function, then the figures. Numbers are of this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/toolchain.sh
echo "== release build of every function (and the empty baseline) and of meterbell-dev"
cargo build --release --quiet -p meterbell-functions -p meterbell-dev
echo
"${CARGO_TARGET_DIR:-target}/release/meterbell-dev" bench-cold-start

# ---- notifications: on emulators of their own (ports from MB_BENCH_DYNAMODB_PORT /
# MB_BENCH_MOTO_PORT), stopped afterwards.
export MB_STACK_NAME=bench MB_DYNAMODB_PORT=${MB_BENCH_DYNAMODB_PORT:-8400} MB_MOTO_PORT=${MB_BENCH_MOTO_PORT:-5400}
trap 'scripts/stack.sh stop' EXIT
scripts/stack.sh start
source scripts/env.sh
echo
RUST_LOG=error "${CARGO_TARGET_DIR:-target}/release/meterbell-dev" bench-notifications --jobs "${BENCH_JOBS:-400}"
