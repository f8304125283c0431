# Meterbell: two commands for a new machine.
#   make dev    the whole API on http://127.0.0.1:3000 with demo data (Ctrl-C stops it)
#   make test   template lint, fmt, clippy, unit and integration tests against the emulators
#   make bench  benchmark figures (release builds)
# Both install what they need (Java 17, DynamoDB Local, moto, cfn-lint) into .local/, idempotently.

SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(CURDIR)/target
PORT ?= 3000

.PHONY: dev test bench stack-start stack-stop lint clean-local

dev:
	@scripts/dev.sh $(PORT)

test:
	@scripts/test.sh

bench:
	@scripts/bench.sh

stack-start:
	@scripts/stack.sh start

stack-stop:
	@scripts/stack.sh stop

lint:
	@scripts/stack.sh install
	.local/venv/bin/cfn-lint template.yaml
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

clean-local:
	-@scripts/stack.sh stop
	-@MB_STACK_NAME=test scripts/stack.sh stop
	rm -rf .local
