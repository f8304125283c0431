#!/usr/bin/env bash
# make dev: emulators up, tables and queues from template.yaml, demo data, every route served.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${1:-3000}
source scripts/toolchain.sh
scripts/stack.sh start
source scripts/env.sh
cargo build --quiet -p meterbell-dev --bin meterbell-dev
exec "${CARGO_TARGET_DIR:-target}/debug/meterbell-dev" serve --port "$PORT"
