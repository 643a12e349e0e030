/* SPDX-License-Identifier: MIT */
/*
 * The snapshot list the mount serves. A listing is an immutable, reference
 * counted list of nodes, sorted by name and by id; the listing cache holds
 * the current one and replaces it when the store's generation changes, so
 * that a snapshot saved or removed while mounted shows up within about a
 * second. Loading is lazy: nothing is read until the first lookup.
 */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "node.h"
#include "snapfs.h"

/* How often the root may ask the store whether it changed. */
#define LISTING_POLL_NS 500000000LL

struct listing {
	atomic_uint refs;
	size_t count;
	struct node **by_name;           /* sorted by name (strcmp) */
	struct node **by_id;             /* the same nodes sorted by id */
	uint64_t data_bytes;             /* sum of the snapshots' data_bytes */
	struct timespec built;           /* when this listing was loaded */
};

struct listing *listing_ref(struct listing *listing);
/* Drop a reference; the last one unrefs the nodes. Accepts NULL. */
void listing_unref(struct listing *listing);
/* The node called name, or NULL. Borrowed from the listing. */
struct node *listing_find_name(const struct listing *listing,
			       const char *name);
/* The node of snapshot id, or NULL. Borrowed from the listing. */
struct node *listing_find_id(const struct listing *listing, int64_t id);

struct listing_cache {
	struct snapfs_store *store;      /* not owned */
	pthread_mutex_t lock;            /* guards current */
	struct listing *current;         /* NULL until first loaded */
	pthread_mutex_t reload_lock;     /* one check at a time; guards below */
	int64_t generation;              /* store generation of current */
	struct timespec checked;         /* last time generation was read */
	bool failing;                    /* the last check failed (logged) */
};

void listing_cache_init(struct listing_cache *cache,
			struct snapfs_store *store);
void listing_cache_release(struct listing_cache *cache);

/* A reference to the current listing in *ret_listing (drop it with
 * listing_unref()). The first call loads it. With refresh, the store's
 * generation is checked first (at most every LISTING_POLL_NS) and the list
 * reloaded if it changed; when that check fails the previous listing is
 * served and the failure logged. */
int listing_cache_get(struct listing_cache *cache, bool refresh,
		      struct listing **ret_listing);
