#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Where snapfs spends its time: run after tests/bench/run.sh (which made the
# corpus and the stores), or through `run.sh --profile`. Root.
#
#   SNAPFS=BIN tests/bench/profile.sh [BENCH_DIR]
#
# Writes to BENCH_DIR/profile/:
#   requests.txt    read request sizes the snapfs daemon gets from the kernel
#                   (uprobe on snapfs_image_read_slices) for dd, cp --sparse and
#                   random 4 KiB preads, cold
#   syscalls-*.txt  strace -c of the daemon during 1000 cold random reads
#   io.txt          disk read requests and KiB read per cold random 4 KiB
#                   read: plain file, snapfs, squashfuse_ll (/sys/block stat)
#   perf-*.txt      perf record (cpu-clock, DWARF call graphs) of the daemon
#                   during cold sequential and random reads, and of
#                   `snapfs save`: flat and inclusive reports
#   system-seq-*.txt  whole-machine profile by command and DSO during a
#                   cold sequential read (who burns the CPU: dd, the kernel,
#                   the daemon)
#   readahead.txt   cold sequential read with the FUSE mount's read_ahead_kb
#                   at 128 (the kernel's default), 1024 and 4096
#   load.txt        what else ran on the machine meanwhile (top, loadavg)
set -eu   # no pipefail: reports are cut with head

dir=$(cd "${1:-${SNAPFS_BENCH_DIR:-/var/tmp/snapfs-bench}}" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
snapfs=${SNAPFS:-$here/../../build-bench/src/cli/snapfs}
snapfs=$(realpath "$snapfs")
out=$dir/profile
mnt=$dir/mnt/profile
bin=$dir/bin
mkdir -p "$out" "$mnt"
for need in "$dir/artefacts/sparse/snapfs/snapfs.db" "$dir/corpus/core.raw" "$bin/randread"; do
	[[ -e $need ]] || { echo "profile.sh: $need missing: run tests/bench/run.sh first" >&2; exit 2; }
done

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }

pid=
mount_fs() { # mount_fs CMD...: foreground daemon in $pid, mounted on $mnt
	"$@" >"$out/daemon.log" 2>&1 &
	pid=$!
	for _ in $(seq 500); do
		mountpoint -q "$mnt" && return 0
		kill -0 "$pid" 2>/dev/null || { cat "$out/daemon.log" >&2; return 1; }
		sleep 0.02
	done
	return 1
}
umount_fs() {
	fusermount3 -u "$mnt" || fusermount3 -uz "$mnt" || true
	wait "$pid" 2>/dev/null || true
}
# As the benchmark mounts it: a 1 MiB readahead window (the readahead
# section below sets its own values through sysfs after mounting).
mount_snapfs() {
	mount_fs "$snapfs" mount "$dir/artefacts/$1/snapfs" "$mnt" -f -o read_ahead_kb=1024
}
memfile() { echo "$mnt/img/memory"; }

offsets() { # offsets IMAGE N: random data-page offsets (bench.py's rule)
	python3 - "$dir" "$1" "$2" <<'EOF'
import json, os, random, sys
d, image, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
r = random.Random(f"profile-{image}-{n}")
if image == "sparse":
    exts = json.load(open(os.path.join(d, "corpus", "params.json")))["extents"]
    ch = r.choices(exts, weights=[e[1] for e in exts], k=n)
    offs = [e[0] + r.randrange(e[1] // 4096) * 4096 for e in ch]
else:
    pages = os.path.getsize(os.path.join(d, "corpus", "core.raw")) // 4096
    offs = [r.randrange(pages) * 4096 for _ in range(n)]
print("\n".join(map(str, offs)))
EOF
}

workload() { # workload NAME FILE IMAGE
	case $1 in
	seq) dd if="$2" of=/dev/null bs=1M status=none ;;
	cp) rm -f "$dir/out/prof-cp.img"; cp --sparse=always "$2" "$dir/out/prof-cp.img"; rm -f "$dir/out/prof-cp.img" ;;
	rand1) "$bin/randread" "$2" "$out/offsets-$3-1000.txt" 1 ;;
	rand8) "$bin/randread" "$2" "$out/offsets-$3-4000.txt" 8 ;;
	esac
}

mkdir -p "$dir/out"
{ uptime; ps -eo pid,pcpu,etime,comm --sort=-pcpu | head -6; } >"$out/load.txt"
for image in core sparse; do
	offsets $image 1000 >"$out/offsets-$image-1000.txt"
	offsets $image 4000 >"$out/offsets-$image-4000.txt"
done

# --- 1. read request sizes -------------------------------------------------
log "request sizes (uprobe on snapfs_image_read_slices)"
perf probe -q -d 'probe_snapfs:*' 2>/dev/null || true
perf probe -q -x "$snapfs" --add 'snapfs_image_read_slices len=%dx:u64 off=%si:u64'
: >"$out/requests.txt"
for image in sparse core; do
	for w in seq cp rand1; do
		mount_snapfs $image
		drop
		perf record -q -a -e probe_snapfs:snapfs_image_read_slices -o "$out/req.data" 2>/dev/null &
		rp=$!
		sleep 1
		workload $w "$(memfile)" $image >/dev/null
		kill -INT $rp; wait $rp || true
		umount_fs
		{
			echo "== $image $w: request size (bytes)  count"
			perf script -i "$out/req.data" 2>/dev/null |
				sed -n 's/.*len=\([0-9a-fx]*\).*/\1/p' |
				while read -r h; do echo $((h)); done | sort -n | uniq -c |
				sort -k1,1nr | head -8 | awk '{ printf "  %9d  %d\n", $2, $1 }'
		} >>"$out/requests.txt"
	done
done
perf probe -q -d 'probe_snapfs:*' || true
rm -f "$out/req.data"
cat "$out/requests.txt" >&2

# --- 2. syscalls per random read ---------------------------------------------
log "syscalls of the daemon during 1000 cold random reads"
for image in sparse core; do
	mount_snapfs $image
	drop
	strace -c -f -p "$pid" -o "$out/syscalls-$image.txt" &
	sp=$!
	sleep 1
	workload rand1 "$(memfile)" $image >/dev/null
	kill -INT $sp; wait $sp || true
	umount_fs
done

# --- 2b. disk reads per random read --------------------------------------------------
log "disk reads per cold random 4 KiB read"
blk=$(basename "$(findmnt -no SOURCE -T "$dir")")
blk_stat() { awk '{ print $1, $3 }' "/sys/block/$blk/stat" 2>/dev/null || echo "0 0"; }
: >"$out/io.txt"
for image in sparse core; do
	src=$dir/corpus/core.raw
	[[ $image == sparse ]] && src=$dir/corpus/sparse.img
	for sys in plain snapfs sqfs-zstd; do
		case $sys in
		plain) f=$src ;;
		snapfs) mount_snapfs $image; f=$(memfile) ;;
		sqfs-zstd) mount_fs squashfuse_ll -f "$dir/artefacts/$image/sqfs-zstd.sqfs" "$mnt"
			f=$mnt/$(basename "$src") ;;
		esac
		drop
		read -r ios0 sec0 < <(blk_stat)
		"$bin/randread" "$f" "$out/offsets-$image-1000.txt" 1 >"$out/io-run.json"
		read -r ios1 sec1 < <(blk_stat)
		[[ $sys == plain ]] || umount_fs
		awk -v i=$image -v s=$sys -v n=$((ios1 - ios0)) -v k=$(((sec1 - sec0) / 2)) \
			'BEGIN { printf "%-7s %-10s %6.2f disk reads, %7.1f KiB read per 4 KiB pread\n", i, s, n / 1000, k / 1000 }' |
			tee -a "$out/io.txt" >&2
	done
done
rm -f "$out/io-run.json"

# --- 3. perf profiles of the daemon --------------------------------------------
report() { # report DATA NAME
	perf report -i "$1" --stdio --no-children --sort dso -g none --percent-limit 0.5 \
		2>/dev/null | grep -v '^$' | head -30 >"$out/perf-$2-dso.txt"
	perf report -i "$1" --stdio --no-children --sort dso,sym -g none --percent-limit 0.7 \
		2>/dev/null | grep -v '^$' | head -60 >"$out/perf-$2-flat.txt"
	perf report -i "$1" --stdio --children --sort sym -g none --percent-limit 2 \
		2>/dev/null | grep -v '^$' | head -70 >"$out/perf-$2-inclusive.txt"
	rm -f "$1"
}
for image in sparse core; do
	for w in seq rand1 rand8; do
		log "perf: daemon, $image, $w"
		mount_snapfs $image
		drop
		perf record -q -F 999 --call-graph dwarf,16384 -p "$pid" -o "$out/d.data" 2>/dev/null &
		rp=$!
		sleep 1
		workload $w "$(memfile)" $image >/dev/null
		kill -INT $rp; wait $rp || true
		umount_fs
		report "$out/d.data" "daemon-$image-$w"
	done
	log "perf: whole machine, $image, seq"
	mount_snapfs $image
	drop
	perf record -q -a -F 999 -o "$out/s.data" 2>/dev/null &
	rp=$!
	sleep 1
	workload seq "$(memfile)" $image
	kill -INT $rp; wait $rp || true
	umount_fs
	perf report -i "$out/s.data" --stdio --sort comm,dso --percent-limit 1 2>/dev/null |
		grep -v '^$' | head -40 >"$out/system-seq-$image.txt"
	rm -f "$out/s.data"
done

# --- 4. perf profile of snapfs save ---------------------------------------------
for image in core sparse; do
	log "perf: snapfs save, $image"
	src=$dir/corpus/core.raw
	[[ $image == sparse ]] && src=$dir/corpus/sparse.img
	store=$dir/artefacts/profile-store
	rm -rf "$store"
	"$snapfs" init "$store" --quiet
	drop
	perf record -q -F 499 --call-graph dwarf,16384 -o "$out/v.data" -- \
		"$snapfs" save "$store" img "$src" --format raw --quiet 2>/dev/null
	report "$out/v.data" "save-$image"
	rm -rf "$store"
done

# --- 5. perf profile of snapfs restore -------------------------------------------
for image in core sparse; do
	log "perf: snapfs restore, $image"
	rm -f "$dir/out/prof-restore.img"
	drop
	perf record -q -F 499 --call-graph dwarf,16384 -o "$out/r.data" -- \
		"$snapfs" restore "$dir/artefacts/$image/snapfs" img "$dir/out/prof-restore.img" --quiet 2>/dev/null
	rm -f "$dir/out/prof-restore.img"
	report "$out/r.data" "restore-$image"
done

# --- 6. readahead -------------------------------------------------------------------
log "readahead: cold sequential read at read_ahead_kb 128, 1024, 4096 (median of 3)"
: >"$out/readahead.txt"
for image in sparse core; do
	src=$dir/corpus/core.raw
	[[ $image == sparse ]] && src=$dir/corpus/sparse.img
	size=$(stat -c %s "$src")
	for sys in snapfs null sqfs-zstd; do
		for ra in 128 1024 4096; do
			rates=()
			for _ in 1 2 3; do
				case $sys in
				snapfs) mount_snapfs $image; f=$(memfile) ;;
				null) mount_fs "$bin/nullfs" "$mnt" -f -o "size=$size"; f=$mnt/memory ;;
				sqfs-zstd) mount_fs squashfuse_ll -f "$dir/artefacts/$image/sqfs-zstd.sqfs" "$mnt"
					f=$mnt/$(basename "$src") ;;
				esac
				bdi=$(mountpoint -d "$mnt")
				echo $ra >"/sys/class/bdi/$bdi/read_ahead_kb"
				drop
				t0=$(date +%s.%N)
				dd if="$f" of=/dev/null bs=1M status=none
				t1=$(date +%s.%N)
				umount_fs
				rates+=("$(awk -v n="$size" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) / 1e6 }')")
			done
			printf '%s\n' "${rates[@]}" | sort -n | sed -n 2p | awk -v i=$image -v s=$sys -v ra=$ra \
				-v all="${rates[*]}" '{ printf "%-7s %-10s read_ahead_kb %5d  %6d MB/s  (runs: %s)\n", i, s, ra, $1, all }' |
				tee -a "$out/readahead.txt" >&2
		done
	done
done
{ uptime; ps -eo pid,pcpu,etime,comm --sort=-pcpu | head -6; } >>"$out/load.txt"
log "profile: done, see $out"
