/* SPDX-License-Identifier: MIT */
/*
 * Inode numbers of the mount. The root is 1; everything else is
 * (snapshot_id << 8) | kind. Snapshot ids start at 1 and are never reused
 * (AUTOINCREMENT), so an inode number names one file for the life of the
 * store and the kernel may cache it freely. Id 0 is never a snapshot, so
 * the root's 1 (id 0, kind 1) cannot collide. Kind 5 is kept for a future
 * regions/ directory, 6..255 for its files.
 */
#pragma once

#include <stdint.h>

#include <fuse_lowlevel.h>

enum inode_kind {
	INODE_KIND_DIR = 1,              /* NAME/ */
	INODE_KIND_MEMORY = 2,           /* NAME/memory */
	INODE_KIND_SEGMENTS = 3,         /* NAME/segments */
	INODE_KIND_INFO = 4,             /* NAME/info */
};

static inline fuse_ino_t inode_make(int64_t snapshot_id, enum inode_kind kind)
{
	return ((fuse_ino_t)snapshot_id << 8) | (fuse_ino_t)kind;
}

static inline int64_t inode_snapshot(fuse_ino_t ino)
{
	return (int64_t)(ino >> 8);
}

static inline unsigned inode_kind(fuse_ino_t ino)
{
	return (unsigned)(ino & 0xff);
}
