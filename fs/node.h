/* SPDX-License-Identifier: MIT */
/*
 * One snapshot as the mount sees it: its metadata, its rendered text files,
 * and the image shared by every open of its memory file. Nodes are
 * reference counted: each listing that names the snapshot holds one
 * reference and each open file another, so a node outlives the listing
 * that dropped it (a removed snapshot) for as long as it is open.
 */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "snapfs.h"

struct node {
	atomic_uint refs;                /* listings and open files */
	struct snapfs_snapshot snap;     /* owned: released with the node */
	struct timespec created;         /* snap.created_at, for st_*time */
	char *info;                      /* the `info` file, owned */
	size_t info_len;
	atomic_bool damage_logged;       /* an EIO was already logged */
	pthread_mutex_t lock;            /* guards the fields below */
	char *segments;                  /* the `segments` file; NULL until asked */
	size_t segments_len;
	struct snapfs_segment *segs;     /* the usage set, owned; see segs_loaded */
	size_t seg_count;
	bool segs_loaded;                /* segs and seg_count are read */
	uint64_t *region_data;           /* data bytes of each segment's region;
					    NULL until asked */
	struct snapfs_image *image;      /* shared by open memory files */
	unsigned image_users;            /* open memory files */
	struct snapfs_core *core;        /* the core file over image; NULL
					    until a core file is opened */
	bool core_known;                 /* core_size, core_data are set */
	uint64_t core_size;              /* the core file's size */
	uint64_t core_data;              /* its data bytes, for st_blocks */
	char *map_svg;                   /* the `map.svg` file; NULL until asked */
	size_t map_svg_len;
};

/* A new node for a copy of snap (snap itself is not taken over), with one
 * reference. */
int node_new(const struct snapfs_snapshot *snap, struct node **ret_node);
/* Take a reference; returns node. */
struct node *node_ref(struct node *node);
/* Drop a reference, freeing the node with the last one. Accepts NULL. */
void node_unref(struct node *node);

/* The `segments` text, read from store on first use and kept. The text is
 * owned by the node and valid while the caller holds a reference. */
int node_segments(struct node *node, struct snapfs_store *store,
		  const char **ret_text, size_t *ret_len);

/* The usage set (sorted by start), read from store on first use and kept.
 * The array is owned by the node, never changes once read, and is valid
 * while the caller holds a reference. */
int node_segments_array(struct node *node, struct snapfs_store *store,
			const struct snapfs_segment **ret_segs,
			size_t *ret_count);

/* The bytes of stored pages in the region of segment index (see
 * regions.h), for st_blocks. The first call computes them for every
 * segment, through the shared image if one is open, else through one
 * opened just for that. -ENOENT if index is out of range. */
int node_region_data(struct node *node, struct snapfs_store *store,
		     size_t index, uint64_t *ret_bytes);

/* The snapshot's image, opened from store for its first user and closed
 * when the last one calls node_image_put(). */
int node_image_get(struct node *node, struct snapfs_store *store,
		   struct snapfs_image **ret_image);
void node_image_put(struct node *node);

/* true if the snapshot has a `core` file (a process snapshot). */
bool node_has_core(const struct node *node);

/* The size and data bytes of the `core` file, computed on first use
 * (through the shared image if one is open, else one opened for that). */
int node_core_facts(struct node *node, struct snapfs_store *store,
		    uint64_t *ret_size, uint64_t *ret_data);

/* The core file over the node's shared image, built for its first user;
 * like node_image_get() (it takes an image user) and given back with
 * node_image_put(), which closes the core with the image. */
int node_core_get(struct node *node, struct snapfs_store *store,
		  struct snapfs_core **ret_core);

/* The `map.svg` text (snapfs_map_svg()), drawn on first use and kept;
 * owned by the node, valid while the caller holds a reference. */
int node_map_svg(struct node *node, struct snapfs_store *store,
		 const char **ret_text, size_t *ret_len);

/* true the first time it is called for node: log damage once per snapshot. */
bool node_first_damage(struct node *node);
