#!/usr/bin/env bash
# Puts a release build together in one directory, ready to copy to a server:
#
#   scripts/bundle-release.sh <cargo release dir> <release site> <destination>
#
# <destination>/fleetdeck   the server binary (optimised)
# <destination>/site/       the site: hash.txt, pkg/ with hashed names and .br/.gz copies
#
# Run it as `LEPTOS_SITE_ROOT=<destination>/site <destination>/fleetdeck serve …`.
set -euo pipefail

if [ $# -ne 3 ]; then
  echo "usage: $0 <cargo release dir> <release site> <destination>" >&2
  exit 2
fi
release_dir=$1 site=$2 dest=$3

for needed in "$release_dir/fleetdeck" "$site/hash.txt" "$site/pkg"; do
  if [ ! -e "$needed" ]; then
    echo "$0: $needed is missing (make release builds it)" >&2
    exit 1
  fi
done

rm -rf "$dest"
mkdir -p "$dest"
cp "$release_dir/fleetdeck" "$dest/fleetdeck"
cp -R "$site" "$dest/site"

wasm=$(find "$dest/site/pkg" -name '*.wasm' | head -n 1)
size() { stat -c %s "$1"; }
echo "bundle: $dest"
echo "  server binary: $(( $(size "$dest/fleetdeck") / 1024 )) KiB"
echo "  wasm: $(( $(size "$wasm") / 1024 )) KiB raw, $(( $(size "$wasm.br") / 1024 )) KiB brotli, $(( $(size "$wasm.gz") / 1024 )) KiB gzip"
echo "  run:  LEPTOS_SITE_ROOT=$dest/site $dest/fleetdeck serve --fleet fleet.toml"
