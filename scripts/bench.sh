#!/usr/bin/env bash
# make bench: release builds, then every figure. Numbers are of this machine: compare rows of one
# run, not runs on different machines. The emulators run on their own ports and are stopped after.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/toolchain.sh
export MB_STACK_NAME=bench MB_DYNAMODB_PORT=${MB_BENCH_DYNAMODB_PORT:-8400} MB_MOTO_PORT=${MB_BENCH_MOTO_PORT:-5400}
echo "== release build of the Lambda binary (and the empty baseline) and of the bench driver"
cargo build --release --quiet -p meterbell-functions -p meterbell-dev
bin="${CARGO_TARGET_DIR:-target}/release/meterbell-dev"
trap 'scripts/stack.sh stop' EXIT
scripts/stack.sh start
source scripts/env.sh
export RUST_LOG=warn

echo
echo "== binary size and cold start to the first answer (DynamoDB Local)"
"$bin" bench-cold-start

echo
echo "== analytics (DynamoDB Local)"
"$bin" bench-analytics | tee .local/bench-analytics.txt
echo
echo "export: CSV pages followed to the end, each run in a fresh process (peak RSS = VmHWM)"
printf '%8s %9s %10s %12s\n' rows seconds rows/s "peak RSS MB"
for user in $(grep -o 'export user id: [^)]*' .local/bench-analytics.txt | awk '{print $4}'); do
  read -r rows secs kb < <("$bin" bench-export-child --sub "$user" --no-seed)
  awk -v r="$rows" -v s="$secs" -v k="$kb" 'BEGIN { printf "%8d %9.2f %10.0f %12.1f\n", r, s, r / s, k / 1024 }'
done

echo
echo "== cost per million events and reads (billed units computed the way DynamoDB bills them)"
"$bin" bench-cost

echo
echo "== alerts: ingest with budgets, the scheduled metric-rule run (DynamoDB Local, moto)"
"$bin" bench-alerts

echo
echo "== report emails: a day of quarter-hourly runs and the senders (DynamoDB Local, moto; BENCH_REPORT_USERS subscribers, default 10000)"
"$bin" bench-reports

echo
echo "== forecast and anomaly quality on the seeded corpus (pure computation)"
"$bin" bench-quality

echo
echo "== the hourly anomaly run (DynamoDB Local; BENCH_SCAN_USERS active users, default 1000)"
"$bin" bench-anomaly-scan

echo
echo "== notifications (DynamoDB Local, moto, a webhook receiver on 127.0.0.1)"
RUST_LOG=error "$bin" bench-notifications --jobs "${BENCH_JOBS:-400}"

echo
echo "== portal (page weight; headless Chromium against the release build on the emulators)"
RUST_LOG=error scripts/portal.sh bench
