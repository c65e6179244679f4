# Fleetdeck: `make demo` serves the dashboard, `make test` runs every test.
# Both install what is missing first (scripts/ensure-tools.sh).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

# Build output lives outside the clone so that a fresh clone on the same machine builds
# incrementally; a fresh machine still builds everything from nothing.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/fleetdeck/target
FLEETDECK := $(CARGO_TARGET_DIR)/debug/fleetdeck
export FLEETDECK_BIN := $(FLEETDECK)
export LEPTOS_SITE_ROOT := $(CURDIR)/target/site

.PHONY: demo test build tools test-tools lint unit e2e

## demo: build, then start the demo fleet behind the gateway and serve the dashboard at
## http://127.0.0.1:3000 (state under ./data; the demo assistant key in ./data/demo-key)
demo: build
	$(FLEETDECK) demo

## build: the server binary and the hydrating wasm site (cargo-leptos)
build: tools
	cargo leptos build

## test: lint, unit and integration tests, then end-to-end tests in headless Chromium
test: test-tools build lint unit e2e

tools:
	@scripts/ensure-tools.sh build

test-tools:
	@scripts/ensure-tools.sh test

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p app --lib --target wasm32-unknown-unknown --no-default-features --features hydrate -- -D warnings

unit:
	cargo test --workspace

e2e:
	cd end2end && npm test
