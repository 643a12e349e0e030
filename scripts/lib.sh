# shellcheck shell=bash
# SPDX-License-Identifier: MIT
# Shared by the scripts in this folder (sourced, not run).

# The repository root, whatever the caller's working directory.
# shellcheck disable=SC2034  # used by the scripts that source this file
SNAPFS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() {
	printf '\n\033[1m==> %s\033[0m\n' "$*"
}

# build DIR [meson setup options...]: configure DIR once (or reconfigure a
# half-configured one), then build it. Never wipes an existing build.
build() {
	local dir=$1
	shift
	if [[ -f $dir/build.ninja ]]; then
		:
	elif [[ -f $dir/meson-private/coredata.dat ]]; then
		meson setup --reconfigure "$dir" "$@"
	else
		meson setup "$dir" "$@"
	fi
	ninja -C "$dir"
}

# install_snapfs DIR: ninja install (snapfs into /usr/local/bin, libsnapfs,
# snapfs.h and snapfs.pc under /usr/local, the man
# page into /usr/local/share/man/man1), with sudo when not root; skipped
# with SNAPFS_NO_INSTALL=1. Says where snapfs is.
install_snapfs() {
	local dir=$1 sudo=()
	if [[ ${SNAPFS_NO_INSTALL:-} == 1 ]]; then
		echo "not installed (SNAPFS_NO_INSTALL=1): snapfs is $dir/src/cli/snapfs"
		return 0
	fi
	[[ $(id -u) == 0 ]] || sudo=(sudo)
	"${sudo[@]}" ninja -C "$dir" install >/dev/null
	echo "installed: $(command -v snapfs || echo /usr/local/bin/snapfs) and its man page (man snapfs)"
}
