# Fleetdeck: `make demo` serves the dashboard, `make test` runs every test, `make release`
# builds the bundle to deploy. Each installs what is missing first (scripts/ensure-tools.sh).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

# Build output lives outside the clone so that a fresh clone on the same machine builds
# incrementally; a fresh machine still builds everything from nothing.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/fleetdeck/target
FLEETDECK := $(CARGO_TARGET_DIR)/debug/fleetdeck
export FLEETDECK_BIN := $(FLEETDECK)
export LEPTOS_SITE_ROOT := $(CURDIR)/target/site
# The optimised site (hashed, precompressed), apart from the debug one so neither build
# clears the other's; the end-to-end tests serve it too (FLEETDECK_RELEASE_SITE).
RELEASE_SITE := $(CURDIR)/target/release-site
export FLEETDECK_RELEASE_SITE := $(RELEASE_SITE)
# cargo-leptos runs wasm-opt (binaryen, from npm) from PATH for release builds.
RELEASE_PATH := $(CURDIR)/tools/node_modules/.bin:$(PATH)
DIST := $(CURDIR)/dist/fleetdeck

.PHONY: demo test build release release-site tools test-tools release-tools lint unit e2e

## demo: build, then start the demo fleet behind the gateway and serve the dashboard at
## http://127.0.0.1:3000 (state under ./data; the demo assistant key in ./data/demo-key)
demo: build
	$(FLEETDECK) demo

## build: the server binary and the hydrating wasm site (cargo-leptos, debug: fast to build).
## --split: pages are loaded when first visited (app/src/routes.rs), which needs the split.
build: tools
	cargo leptos build --split

## test: lint, unit and integration tests, then end-to-end tests in headless Chromium
## (against the debug build, and one against the release site)
test: test-tools build release-site lint unit e2e

## release: the optimised server binary and site in dist/fleetdeck (see README, Deploying)
release: release-tools release-site
	cargo build --release -p fleetdeck
	scripts/bundle-release.sh "$(CARGO_TARGET_DIR)/release" "$(RELEASE_SITE)" "$(DIST)"

## release-site: the optimised site alone: wasm-opt, hashed names, brotli and gzip copies
release-site: release-tools
	LEPTOS_SITE_ROOT="$(RELEASE_SITE)" LEPTOS_HASH_FILES=true PATH="$(RELEASE_PATH)" \
		cargo leptos build --release --precompress --frontend-only --split
	# The hashes the pages link to travel with the site (cargo-leptos writes them beside
	# the release binary).
	cp "$(CARGO_TARGET_DIR)/release/hash.txt" "$(RELEASE_SITE)/hash.txt"

tools:
	@scripts/ensure-tools.sh build

release-tools:
	@scripts/ensure-tools.sh release

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
