#!/usr/bin/env bash
# Installs what building (and, with `test`, testing) Fleetdeck needs, skipping whatever is
# already there at the right version: seconds when all is present, ~22 minutes on a fresh
# machine (cargo-leptos and wasm-bindgen-cli compile from source on 2 cores).
#
#   scripts/ensure-tools.sh build    # Rust wasm target, cargo-leptos, wasm-bindgen CLI
#   scripts/ensure-tools.sh release  # the above, plus binaryen's wasm-opt (npm, tools/)
#   scripts/ensure-tools.sh test     # the above, plus Chromium, promtool, the npm packages of
#                                    # end2end and the Python MCP SDK (end2end/.venv)
set -euo pipefail

cd "$(dirname "$0")/.."
want="${1:-build}"

CARGO_LEPTOS_VERSION=0.3.10
# cargo-leptos runs the wasm-bindgen CLI from PATH; it must match the library in Cargo.lock.
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)

say() { printf '==> %s\n' "$*" >&2; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown Rust target"
  rustup target add wasm32-unknown-unknown
fi

if ! cargo leptos --version 2>/dev/null | grep -q " ${CARGO_LEPTOS_VERSION}\$"; then
  say "installing cargo-leptos ${CARGO_LEPTOS_VERSION} (about 18 minutes on 2 cores)"
  # no_downloads: use tools from PATH instead of fetching binaries (this network has none).
  # Its own release profile asks for fat LTO in one codegen unit, most of the install time
  # on 2 cores; a build tool needs neither (profile settings from the environment win).
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
    cargo install "cargo-leptos@${CARGO_LEPTOS_VERSION}" --locked --features no_downloads
fi

if ! wasm-bindgen --version 2>/dev/null | grep -q " ${WASM_BINDGEN_VERSION}\$"; then
  say "installing wasm-bindgen-cli ${WASM_BINDGEN_VERSION} (about 5 minutes)"
  # Not --locked: the CLI's own lock file names a release the registry no longer serves.
  CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
    cargo install wasm-bindgen-cli --version "${WASM_BINDGEN_VERSION}" --force
fi

if [ "$want" = release ] || [ "$want" = test ]; then
  # wasm-opt for release builds: cargo-leptos runs it from PATH (the Makefile puts
  # tools/node_modules/.bin there); Debian's binaryen is too old for today's rustc output.
  if [ ! -x tools/node_modules/.bin/wasm-opt ] || [ tools/package-lock.json -nt tools/node_modules/.package-lock.json ]; then
    say "installing binaryen's wasm-opt for release builds (npm ci in tools/)"
    (cd tools && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi

if [ "$want" = test ]; then
  # The store's tests and the replica tests need PostgreSQL: say so now, not after the build.
  pg_url="${FLEETDECK_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
  if command -v pg_isready >/dev/null && ! pg_isready -q -d "$pg_url"; then
    say "PostgreSQL does not answer at $pg_url: make test needs it (or set FLEETDECK_TEST_POSTGRES_URL)"
    exit 1
  fi
  if [ ! -x /usr/bin/chromium ]; then
    say "installing Debian's chromium for the end-to-end tests"
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
  fi
  if [ ! -x /usr/bin/promtool ]; then
    say "installing Debian's prometheus for promtool (the /metrics test checks its exposition)"
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    # Only promtool is needed: not the node exporter and the rest it recommends.
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  fi
  # playwright-core drives the system Chromium; it downloads no browser of its own.
  if [ ! -d end2end/node_modules/playwright-core ] || [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then
    say "installing the end-to-end test dependencies (npm ci)"
    (cd end2end && npm ci --no-audit --no-fund --loglevel=error)
  fi
  # The official Python MCP SDK for the interop tests, in a venv of its own; rebuilt only
  # when end2end/requirements.txt differs from the copy kept in the venv at install time.
  venv=end2end/.venv
  if [ ! -x "$venv/bin/python" ] || ! cmp -s end2end/requirements.txt "$venv/requirements.installed"; then
    say "installing the Python MCP SDK into $venv (pip)"
    if ! python3 -c 'import ensurepip' 2>/dev/null; then
      # Debian's python3 ships venv support separately.
      if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
      $sudo apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
    fi
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r end2end/requirements.txt
    cp end2end/requirements.txt "$venv/requirements.installed"
  fi
fi
