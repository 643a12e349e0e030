#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The snapfs demo: everything from a fresh Debian 12 machine in one command.
#
#   ./scripts/demo.sh
#
# Installs the Debian packages that are missing (scripts/install-deps.sh
# demo), builds snapfs (build/), makes a 256 MiB sparse memory image with
# text-like, random and zero pages and holes, saves it into a store, lists
# and describes it, restores it and checks with cmp that it is
# byte-identical, saves a second snapshot with a few pages changed, queries
# the metadata with the sqlite3 shell, and (where FUSE works) mounts the
# store and reads the memory with dd, xxd, strings and cp.
#
# Environment: SNAPFS_DEMO_DIR (default /var/tmp/snapfs-demo) holds the
# images and the store, and is laid anew on every run; SNAPFS_BUILD
# (default build/) is the build directory. The build is installed
# (ninja install: snapfs in /usr/local/bin, its man page in
# /usr/local/share/man) so that README.md's commands run as typed, unless
# SNAPFS_NO_INSTALL=1.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$SNAPFS_ROOT"

work=${SNAPFS_DEMO_DIR:-/var/tmp/snapfs-demo}
builddir=${SNAPFS_BUILD:-$SNAPFS_ROOT/build}
snapfs=$builddir/src/cli/snapfs
store=$work/store
mnt=$work/mnt

# Show a command, then run it.
run() {
	printf '\033[36m$ %s\033[0m\n' "$*"
	"$@"
}

# Show an SQL query, then run it in the sqlite3 shell.
query() {
	printf '\033[36m$ sqlite3 -box %s <<SQL\n%s\nSQL\033[0m\n' "$store/snapfs.db" "$1"
	sqlite3 -box "$store/snapfs.db" <<<"$1"
}

unmount() {
	if mountpoint -q "$mnt" 2>/dev/null; then
		fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt" 2>/dev/null || umount -l "$mnt" || true
	fi
}

say "Installing missing Debian packages"
"$SNAPFS_ROOT/scripts/install-deps.sh" demo

say "Building snapfs in $builddir"
build "$builddir"
install_snapfs "$builddir"

say "Making a memory image in $work"
unmount
case $work in
/ | "" | "$HOME") echo "demo.sh: refusing to use '$work' as the demo directory" >&2; exit 1 ;;
esac
rm -rf "$work"
mkdir -p "$work"
python3 "$SNAPFS_ROOT/scripts/make-demo-image.py" "$work"
cat "$work/layout.txt"
run du -h --apparent-size "$work/memory.img"
run du -h "$work/memory.img"

say "Creating a store and saving the image"
run "$snapfs" init "$store"
run "$snapfs" save "$store" vm1 "$work/memory.img" --usage "$work/usage.txt"
run "$snapfs" list "$store"
run "$snapfs" info "$store" vm1
run du -h "$store"

say "Restoring it and comparing byte for byte"
run "$snapfs" restore "$store" vm1 "$work/restored.img"
run cmp "$work/memory.img" "$work/restored.img"
echo "byte-identical"
run du -h "$work/restored.img"

say "A second snapshot, 64 pages later, with --parent"
run "$snapfs" save "$store" vm1-later "$work/memory2.img" --usage "$work/usage.txt" --parent vm1
run "$snapfs" list "$store"
run du -h "$store"

say "Querying the metadata with sqlite3"
query "SELECT * FROM snapshot_summary;"
query "SELECT name, kind, bytes / 1048576 AS mib, committed_bytes / 1048576 AS committed_mib
  FROM kind_usage ORDER BY name, bytes DESC;"
query "SELECT s.name, printf('0x%09x', g.start) AS start, printf('0x%09x', g.\"end\") AS \"end\",
       (g.\"end\" - g.start) / 1048576 AS mib, g.kind, g.memcg_id, g.committed
  FROM segments g JOIN snapshots s ON s.id = g.snapshot_id
 WHERE s.name = 'vm1' ORDER BY g.\"end\" - g.start DESC LIMIT 5;"
query "-- pages vm1 and vm1-later share: page_map runs of both joined on the
-- blob, where the same page of the file lands on the same blob slot
SELECT count(*) AS shared_runs,
       sum(min(a.first_page + a.page_count, b.first_page + b.page_count)
           - max(a.first_page, b.first_page)) AS shared_pages,
       (SELECT sum(page_count) FROM page_map
         WHERE snapshot_id = (SELECT id FROM snapshots WHERE name = 'vm1-later'))
           AS pages_of_vm1_later
  FROM page_map a
  JOIN page_map b ON b.blob_id = a.blob_id
                 AND b.slot - b.first_page = a.slot - a.first_page
                 AND a.first_page < b.first_page + b.page_count
                 AND b.first_page < a.first_page + a.page_count
 WHERE a.snapshot_id = (SELECT id FROM snapshots WHERE name = 'vm1')
   AND b.snapshot_id = (SELECT id FROM snapshots WHERE name = 'vm1-later');"
query "-- the whole store: data saved vs bytes stored
SELECT (SELECT sum(data_bytes) FROM snapshots) / 1048576 AS data_mib,
       (SELECT sum(page_count) FROM blobs) * 4096 / 1048576 AS unique_mib,
       (SELECT sum(stored_size) FROM blobs) / 1048576 AS stored_mib,
       round((SELECT sum(data_bytes) FROM snapshots) * 1.0
             / (SELECT sum(stored_size) FROM blobs), 1) AS ratio;"

# ---------------------------------------------------------------------------
# The mount. Runs only where it works: a snapfs with the mount command,
# /dev/fuse and fusermount3 (containers often lack /dev/fuse).
say "Mounting the store"
if ! "$snapfs" mount --help >/dev/null 2>&1; then
	echo "skipped: this snapfs has no working 'mount' command yet"
elif [[ ! -c /dev/fuse ]] || ! command -v fusermount3 >/dev/null; then
	echo "skipped: no /dev/fuse or fusermount3 on this machine"
else
	mkdir -p "$mnt"
	trap unmount EXIT
	if ! run "$snapfs" mount "$store" "$mnt"; then
		echo "skipped: the mount failed (see the message above)"
	else
		for _ in $(seq 50); do
			[[ -e $mnt/vm1/memory ]] && break
			sleep 0.1
		done
		run ls -l "$mnt" "$mnt/vm1"
		run cat "$mnt/vm1/info"
		run cat "$mnt/vm1/segments"
		echo "# one page of the heap (at 64 MiB + 4 KiB) with dd:"
		run dd if="$mnt/vm1/memory" bs=4096 skip=$((64 * 256 + 1)) count=1 status=none \
			of="$work/page.bin"
		run xxd -l 128 "$work/page.bin"
		echo "# the kernel region as text:"
		run sh -c "dd if='$mnt/vm1/memory' bs=1M count=16 status=none | strings | head -5"
		echo "# the last page:"
		run sh -c "tail -c 4096 '$mnt/vm1/memory' | xxd | head -2"
		echo "# a sparse copy: holes stay holes"
		run cp --sparse=always "$mnt/vm1/memory" "$work/copy.img"
		run du -h --apparent-size "$work/copy.img"
		run du -h "$work/copy.img"
		run cmp "$work/restored.img" "$work/copy.img"
		run fusermount3 -u "$mnt"
		trap - EXIT
	fi
fi

say "Done"
cat <<EOF
The store is $store; look around:
  snapfs list $store
  man snapfs
  sqlite3 -box $store/snapfs.db 'SELECT * FROM snapshot_summary'
See README.md for the commands and schema/README.md for more queries.
EOF
