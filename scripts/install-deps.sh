#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Install the Debian packages snapfs needs, and only those that are missing.
#
#   scripts/install-deps.sh [demo|test|bench]     (default: demo)
#
# demo   build snapfs and run scripts/demo.sh
# test   demo + what scripts/test.sh needs (clang and its sanitizer and
#        libFuzzer runtime, attr, e2fsprogs, criu, gdb, curl, and Ceph's
#        monitor, OSD and RADOS Gateway for the remote-store tests)
# bench  demo + what the benchmarks compare against (squashfs-tools,
#        squashfuse)
#
# Runs `apt-get update` only when something is missing. Needs root (or
# sudo) only then. Safe to run any number of times.
set -euo pipefail

purpose=${1:-demo}

demo_pkgs=(
	build-essential meson ninja-build pkg-config
	libfuse3-dev fuse3
	libsqlite3-dev sqlite3
	libzstd-dev zstd liblz4-dev libxxhash-dev libssl-dev zlib1g-dev
	libelf-dev libprotobuf-c-dev protobuf-c-compiler
	libcurl4-openssl-dev libexpat1-dev
	python3 util-linux xxd
)
# ceph-*, radosgw: the throwaway cluster of the remote-store tests (openssl:
# its https certificate)
# chromium: renders snapfs map's SVG headless in tests/e2e/test_map.py
# runsc, busybox-static: real gVisor checkpoints in tests/capture/test_gvisor_runsc.py
test_pkgs=(clang attr e2fsprogs criu gdb curl ceph-mon ceph-osd radosgw ceph-common openssl chromium runsc busybox-static)
bench_pkgs=(squashfs-tools squashfuse)

case $purpose in
demo) want=("${demo_pkgs[@]}") ;;
test) want=("${demo_pkgs[@]}" "${test_pkgs[@]}") ;;
bench) want=("${demo_pkgs[@]}" "${bench_pkgs[@]}") ;;
-h|--help)
	awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0"
	exit 0
	;;
*)
	echo "install-deps.sh: unknown purpose '$purpose' (demo, test or bench)" >&2
	exit 2
	;;
esac

installed() {
	[[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

missing=()
for p in "${want[@]}"; do
	installed "$p" || missing+=("$p")
done

# clang's runtime (sanitizers, libFuzzer) is packaged under a versioned
# name on Debian 12 (libclang-rt-14-dev) and an unversioned one later.
need_rt=false
if [[ $purpose == test ]] && ! installed libclang-rt-14-dev && ! installed libclang-rt-dev; then
	need_rt=true
fi

if ((${#missing[@]} == 0)) && ! $need_rt; then
	echo "install-deps.sh: all $purpose packages are installed"
	exit 0
fi

sudo=()
if ((EUID != 0)); then
	if command -v sudo >/dev/null; then
		sudo=(sudo)
	else
		echo "install-deps.sh: missing packages (${missing[*]}) and not root; install them as root" >&2
		exit 1
	fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-deps.sh: installing ${missing[*]}"
"${sudo[@]}" apt-get update -qq
if $need_rt; then
	if apt-cache show libclang-rt-14-dev >/dev/null 2>&1; then
		missing+=(libclang-rt-14-dev)
	else
		missing+=(libclang-rt-dev)
	fi
fi
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps.sh: done"
