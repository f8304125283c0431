#!/usr/bin/env bash
# make test: every check. The emulators run on their own ports (8100/5100) and pid files, so a
# `make dev` running beside it is untouched; they are stopped afterwards, also when tests fail.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/toolchain.sh
export MB_STACK_NAME=test MB_DYNAMODB_PORT=${MB_TEST_DYNAMODB_PORT:-8100} MB_MOTO_PORT=${MB_TEST_MOTO_PORT:-5100}

step() { printf '\n== %s\n' "$*"; }

step "install the local stack and the portal's test tools (idempotent)"
scripts/stack.sh install
scripts/portal.sh install

step "cfn-lint template.yaml"
.local/venv/bin/cfn-lint template.yaml

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "build the tests"
cargo test --workspace --no-run --quiet

step "start the emulators"
trap 'scripts/stack.sh stop' EXIT
scripts/stack.sh start
source scripts/env.sh
export MB_REQUIRE_EMULATORS=1

step "unit and integration tests"
log=$(mktemp)
set +e
cargo test --workspace -- --test-threads 4 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s+=$1} END {print s+0}')

# The portal in headless Chromium and schemathesis against the document, on the same emulators.
step "portal browser tests and contract fuzzing"
set +e
scripts/portal.sh check 2>&1 | tee "$log"
portal_status=${PIPESTATUS[0]}
set -e
# node's closing lines: "ℹ pass 8", "ℹ fail 0".
browser_passed=$(grep -E '(^| )pass [0-9]+$' "$log" | awk '{s+=$NF} END {print s+0}')
browser_failed=$(grep -E '(^| )fail [0-9]+$' "$log" | awk '{s+=$NF} END {print s+0}')
passed=$((passed + browser_passed))
failed=$((failed + browser_failed))
if grep -q 'schemathesis: passed' "$log"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
[ "$status" -ne 0 ] || status=$portal_status
rm -f "$log"
[ "$passed" -gt 0 ] || { echo "no test ran" >&2; exit 1; }
echo
echo "tests: $passed passed, $failed failed"
exit "$status"
