/* SPDX-License-Identifier: MIT */
/*
 * Checks made on a mountpoint before mounting, so that the common mistakes
 * get a clear message while the mount is still in the foreground, and the
 * one setting made on the mount's device once it is in place.
 */
#pragma once

#include <stddef.h>

/* 0 if path is a directory that is not already the mount point of a FUSE
 * filesystem (live or dead), with its absolute path in ret_resolved (of
 * PATH_MAX bytes). Else a negative errno, with a one-line reason (no
 * subject, no newline) in why. */
int mountpoint_check(const char *path, char *ret_resolved, char *why,
		     size_t why_size);

/* Set the readahead window of the filesystem mounted on path, kb KiB:
 * /sys/class/bdi/MAJOR:MINOR/read_ahead_kb of its device (root only).
 * Safe before the session answers requests: it sends none. 0 or a
 * negative errno, with a one-line reason in why. */
int mountpoint_set_read_ahead(const char *path, unsigned kb, char *why,
			      size_t why_size);
