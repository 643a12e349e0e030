/* SPDX-License-Identifier: MIT */
/*
 * Checks made on a mountpoint before mounting, so that the common mistakes
 * get a clear message while the mount is still in the foreground.
 */
#pragma once

#include <stddef.h>

/* 0 if path is a directory that is not already the mount point of a FUSE
 * filesystem (live or dead), with its absolute path in ret_resolved (of
 * PATH_MAX bytes). Else a negative errno, with a one-line reason (no
 * subject, no newline) in why. */
int mountpoint_check(const char *path, char *ret_resolved, char *why,
		     size_t why_size);
