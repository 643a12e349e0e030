#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Make the picture README.md shows: `snapfs map` of the demo's second
# snapshot against its parent.
#
#   ./scripts/make-map-picture.sh [OUT]      (default: doc/map.svg)
#
# Builds snapfs (build/, or $SNAPFS_BUILD) if needed, makes the demo's
# memory images (scripts/make-demo-image.py) in a temporary directory,
# saves them as vm1 and vm2 (parent vm1) with the demo's usage set (kinds:
# system, anonymous, pagecache, tmpfs), and writes the SVG to OUT. With
# chromium installed it also writes OUT with .png for .svg. The picture is
# generated, not kept in git (.gitignore).
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$SNAPFS_ROOT"

out=${1:-doc/map.svg}
builddir=${SNAPFS_BUILD:-$SNAPFS_ROOT/build}
snapfs=$builddir/src/cli/snapfs
[[ -x $snapfs ]] || build "$builddir"
tmp=$(mktemp -d /var/tmp/snapfs-map-picture.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

python3 scripts/make-demo-image.py "$tmp" >/dev/null
"$snapfs" init "$tmp/store" >/dev/null
"$snapfs" save "$tmp/store" vm1 "$tmp/memory.img" --usage "$tmp/usage.txt" --quiet
"$snapfs" save "$tmp/store" vm2 "$tmp/memory2.img" --usage "$tmp/usage.txt" \
	--parent vm1 --quiet
"$snapfs" map "$tmp/store" vm2 --against vm1 -o "$out"
echo "wrote $out"
if command -v chromium >/dev/null; then
	png=${out%.svg}.png
	width=$(sed -n 's/.*<svg [^>]*width="\([0-9]*\)".*/\1/p' "$out")
	height=$(sed -n 's/.*<svg [^>]*height="\([0-9]*\)".*/\1/p' "$out")
	chromium --headless --disable-gpu --no-sandbox --hide-scrollbars \
		--user-data-dir="$tmp/chromium" --screenshot="$png" \
		--window-size="$width,$height" "file://$(realpath "$out")" 2>/dev/null
	echo "wrote $png"
fi
