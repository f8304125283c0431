#!/usr/bin/env bash
# make bench: release builds of every function, then the figures. Numbers are of this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/toolchain.sh
echo "== release build of every function (and the empty baseline)"
cargo build --release --quiet -p meterbell-functions
cargo build --quiet -p meterbell-dev --bin meterbell-dev
echo
"${CARGO_TARGET_DIR:-target}/debug/meterbell-dev" bench-cold-start
