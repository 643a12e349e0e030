#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# snapfs against its peers (squashfuse_ll over mksquashfs zstd/lz4 images,
# borg, zstd -3, the plain file, a null FUSE server), on a corpus made on
# the fly. Root, Debian 12. See BENCHMARKS.md.
#
#   tests/bench/run.sh [--quick] [--profile] [bench.py options]
#
#   --quick      small corpus, fewer runs: a smoke test (~3 minutes)
#   --profile    after the benchmark, perf profiles of the snapfs daemon
#                (cold sequential and random reads) and of snapfs save, and
#                the read request sizes the kernel sends (tests/bench/profile.sh)
#   --only LIST  only these workloads, comma-separated: save (also "size"),
#                restore, seq, rand1, rand8, cp, dedup, replay, resume, uffd,
#                remote. Reads need the stores a
#                save made (in this run, or an earlier one in the same
#                directory). E.g. the layout comparison of BENCHMARKS.md:
#                --only save,seq,rand1 --systems snapfs,sqfs-zstd,plain
#   --systems LIST  only these systems: snapfs, snapfs-lz4, sqfs-zstd,
#                sqfs-lz4, borg, zstd3, plain, null
#   --reuse-corpus  keep the corpus of an earlier run with the same parameters
#   --snapfs-variant NAME=OPTS  also measure the snapfs store mounted with
#                -o OPTS added, as system snapfs+NAME (repeatable), e.g.
#                --snapfs-variant ws=record
#
# resume: a QEMU guest (TCG, 512 MiB) fills memory, its device state is
# migrated out with x-ignore-shared and its RAM file saved; then it is
# resumed cold with the RAM mapped MAP_PRIVATE from the snapfs mount
# (-o private_rw), from squashfuse_ll and from the plain file. The guest
# kernel is Debian's linux-image-amd64, fetched with apt-get download and
# unpacked into $SNAPFS_BENCH_DIR/guest (never installed); its initramfs is
# busybox-static plus a script (tests/bench/bench.py, GUEST_INIT).
# remote: the core image in a store on an S3 bucket of a throwaway radosgw
# (tests/remote/ceph-cluster.sh, Debian's ceph-mon, ceph-osd, radosgw),
# read from a second store directory on the same bucket, against ranged
# GETs through the same S3 client (tests/remote/s3_client_test).
#   --runs N     N runs of every measure
#
# Environment:
#   SNAPFS_BENCH_DIR   where the corpus, stores and results go
#                      (default /var/tmp/snapfs-bench; a full run leaves ~3 GiB there)
#   SNAPFS             a snapfs binary to use instead of building one
#   SNAPFS_S3_CLIENT   an s3_client_test binary (the remote phase) instead of build-bench's
#   SNAPFS_READCOST    a readcost binary (tests/bench/readcost.c) instead of build-bench's
#
# Builds snapfs from this tree in build-bench/ (meson, buildtype
# debugoptimized as the project's default; with it tests/bench/readcost), and the helpers nullfs.c and
# randread.c into $SNAPFS_BENCH_DIR/bin. Results: $SNAPFS_BENCH_DIR/results.md
# (also printed) and results.json (every sample).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${SNAPFS_BENCH_DIR:-/var/tmp/snapfs-bench}

profile=false
args=()
for a in "$@"; do
	case $a in
	--profile) profile=true ;;
	-h|--help)
		awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0"
		exit 0
		;;
	*) args+=("$a") ;;
	esac
done

if [[ $(id -u) != 0 ]]; then
	echo "run.sh: must run as root (drop_caches, FUSE mounts, apt-get)" >&2
	exit 2
fi

# What the benchmark compares against and needs, as Debian 12 names them.
# borg mount needs a FUSE binding: Debian's borgbackup 1.2 recommends
# python3-llfuse (libfuse2) and python3-pyfuse3 (libfuse3); we use pyfuse3
# (BORG_FUSE_IMPL=pyfuse3) so that every daemon runs on libfuse3, and leave
# out the recommended `fuse` package, which would replace fuse3.
pkgs=(
	build-essential meson ninja-build pkg-config
	libfuse3-dev fuse3 libsqlite3-dev sqlite3
	libzstd-dev zstd liblz4-dev libxxhash-dev libssl-dev
	squashfs-tools squashfuse
	ceph-mon ceph-osd radosgw ceph-common libcurl4-openssl-dev libexpat1-dev
	borgbackup python3-pyfuse3
	hyperfine gdb linux-perf strace
	qemu-system-x86 busybox-static
	python3 util-linux coreutils
)
missing=()
for p in "${pkgs[@]}"; do
	[[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] ||
		missing+=("$p")
done
if ((${#missing[@]})); then
	echo "run.sh: installing ${missing[*]}" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null
fi

mkdir -p "$dir/bin"
if [[ -z ${SNAPFS:-} ]]; then
	if [[ ! -f $root/build-bench/build.ninja ]]; then
		meson setup "$root/build-bench" "$root" >/dev/null
	fi
	if ! ninja -C "$root/build-bench" src/cli/snapfs tests/remote/s3_client_test tests/bench/readcost \
		>"$dir/build.log" 2>&1; then
		echo "run.sh: building snapfs failed (see $dir/build.log)" >&2
		[[ -x $root/build-bench/src/cli/snapfs ]] || exit 1
		echo "run.sh: using the last build, $root/build-bench/src/cli/snapfs" >&2
	fi
	SNAPFS=$root/build-bench/src/cli/snapfs
fi
read -ra fuse_flags < <(pkg-config --cflags --libs fuse3)
cc -O2 -Wall -o "$dir/bin/nullfs" "$here/nullfs.c" "${fuse_flags[@]}"
cc -O2 -Wall -pthread -o "$dir/bin/randread" "$here/randread.c"
cc -O2 -Wall -o "$dir/bin/replay" "$here/replay.c"
cc -O2 -Wall -o "$dir/bin/uffd_client" "$root/tests/uffd/uffd_client.c"

# A mount left over from an interrupted run would make every mount fail.
if [[ -d $dir/mnt ]]; then
	for m in "$dir"/mnt/*/; do
		if mountpoint -q "$m"; then fusermount3 -uz "$m" || true; fi
	done
fi

s3_client=${SNAPFS_S3_CLIENT:-$root/build-bench/tests/remote/s3_client_test}
readcost=${SNAPFS_READCOST:-$root/build-bench/tests/bench/readcost}
[[ -x $readcost ]] || readcost=
python3 "$here/bench.py" --snapfs "$SNAPFS" --nullfs "$dir/bin/nullfs" \
	--randread "$dir/bin/randread" --replay "$dir/bin/replay" ${readcost:+--readcost "$readcost"} \
	--uffd-client "$dir/bin/uffd_client" --s3-client "$s3_client" --dir "$dir" "${args[@]}"

if $profile; then
	SNAPFS=$SNAPFS "$here/profile.sh" "$dir"
fi
