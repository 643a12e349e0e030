/* SPDX-License-Identifier: MIT */
/*
 * The FUSE mount of a snapfs store: the one entry point the CLI calls for
 * `snapfs mount STORE MOUNTPOINT ...` and for the form mount.fuse3 uses,
 * `snapfs STORE MOUNTPOINT -o OPTS`.
 */
#pragma once

/*
 * Mount the store and serve it until it is unmounted or a signal stops it.
 * argv[0] is the program name; then STORE and MOUNTPOINT and the options in
 * any order: -f (foreground), -d (debug), -s (single-threaded),
 * -o OPT[,OPT...] (cache_size=MiB, read_ahead_kb=N, allow_other, ro, and
 * libfuse's own), --help, --version. Errors found before the mount (bad arguments, not a
 * store, bad mountpoint, already mounted) are printed as one line
 * "snapfs: mount 'STORE': WHY" while still in the foreground. The caller's
 * argv is not modified.
 *
 * Returns the process exit status: 0 after a clean unmount or SIGTERM /
 * SIGINT / SIGHUP, 1 when the mount or the session failed, 2 for usage
 * errors, a directory that is not a store, or a store of a newer schema.
 */
int snapfs_mount_main(int argc, char **argv);
