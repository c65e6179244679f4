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

# The wasm every page loads (named in hash.txt), and the parts split off per page.
wasm="$dest/site/pkg/fleetdeck.$(awk '$1 == "wasm:" { print $2 }' "$dest/site/hash.txt").wasm"
size() { stat -c %s "$1"; }
kib() { echo $(( ($1 + 1023) / 1024 )); }
parts=0 parts_br=0
for part in "$dest"/site/pkg/split_*.wasm "$dest"/site/pkg/chunk_*.wasm; do
  [ -e "$part" ] || continue
  parts=$(( parts + 1 )) parts_br=$(( parts_br + $(size "$part.br") ))
done
echo "bundle: $dest"
echo "  server binary: $(kib "$(size "$dest/fleetdeck")") KiB"
echo "  wasm every page loads: $(kib "$(size "$wasm")") KiB raw, $(kib "$(size "$wasm.br")") KiB brotli, $(kib "$(size "$wasm.gz")") KiB gzip"
echo "  split off per page: $parts parts, $(kib "$parts_br") KiB brotli in all"
echo "  run:  LEPTOS_SITE_ROOT=$dest/site $dest/fleetdeck serve --fleet fleet.toml"
