/* SPDX-License-Identifier: MIT */
/*
 * The state of one mounted store, shared by the FUSE operations
 * (snapfs_fuse.c) and set up by the mount's main (mount_main.c).
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#include <fuse_lowlevel.h>

#include "listing.h"
#include "snapfs.h"
#include "workset.h"

struct fs {
	struct snapfs_store *store;      /* opened read-only, owned by main */
	struct listing_cache listings;   /* the snapshot list served */
	uid_t uid;                       /* owner of every file: the mounting user */
	gid_t gid;
	unsigned read_ahead_kb;          /* -o read_ahead_kb: the readahead window */
	bool read_ahead_set;
	struct workset workset;          /* -o record, prefetch of working sets */
	/* -o private_rw: memory files open O_RDWR for private mappings (a
	 * VMM's guest RAM); writes and shared mappings still fail at once. */
	bool private_rw;
};

/* The low-level operations; the session's userdata is a struct fs. */
extern const struct fuse_lowlevel_ops fs_ops;
