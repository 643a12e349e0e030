/* SPDX-License-Identifier: MIT */
/*
 * Inode numbers of the mount. The root is 1; everything else is
 * (snapshot_id << 32) | sub, where sub names the file within the snapshot:
 * 1..5 the fixed entries below, 16 + i the file of segment i in regions/.
 * Snapshot ids start at 1, stay far below 2^31 and are never reused
 * (AUTOINCREMENT), and a snapshot's segments never change, so an inode
 * number names one file for the life of the store and the kernel may cache
 * it freely. Id 0 is never a snapshot, so the root's 1 (id 0, sub 1)
 * cannot collide. Subs 8..15 are free for future fixed entries.
 */
#pragma once

#include <stdint.h>

#include <fuse_lowlevel.h>

enum inode_kind {
	INODE_KIND_DIR = 1,              /* NAME/ */
	INODE_KIND_MEMORY = 2,           /* NAME/memory */
	INODE_KIND_SEGMENTS = 3,         /* NAME/segments */
	INODE_KIND_INFO = 4,             /* NAME/info */
	INODE_KIND_REGIONS = 5,          /* NAME/regions/ */
	INODE_KIND_CORE = 6,             /* NAME/core (process snapshots) */
	INODE_KIND_MAP_SVG = 7,          /* NAME/map.svg */
	INODE_KIND_REGION = 16,          /* NAME/regions/START-END-LABEL */
};

/* The most segments a snapshot's regions/ can name. */
#define INODE_REGION_MAX ((uint64_t)UINT32_MAX - INODE_KIND_REGION + 1)

/* The inode of a fixed entry (not INODE_KIND_REGION). */
static inline fuse_ino_t inode_make(int64_t snapshot_id, enum inode_kind kind)
{
	return ((fuse_ino_t)snapshot_id << 32) | (fuse_ino_t)kind;
}

/* The inode of the file of segment index (< INODE_REGION_MAX). */
static inline fuse_ino_t inode_make_region(int64_t snapshot_id, size_t index)
{
	return ((fuse_ino_t)snapshot_id << 32) |
	       ((fuse_ino_t)INODE_KIND_REGION + (fuse_ino_t)index);
}

static inline int64_t inode_snapshot(fuse_ino_t ino)
{
	return (int64_t)(ino >> 32);
}

/* The kind of ino; every region file is INODE_KIND_REGION. */
static inline unsigned inode_kind(fuse_ino_t ino)
{
	uint32_t sub = (uint32_t)ino;

	return sub >= INODE_KIND_REGION ? INODE_KIND_REGION : sub;
}

/* The segment index of a region file's inode. */
static inline size_t inode_region_index(fuse_ino_t ino)
{
	return (size_t)((uint32_t)ino - INODE_KIND_REGION);
}
