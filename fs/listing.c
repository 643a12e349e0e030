// SPDX-License-Identifier: MIT
/*
 * The cached snapshot list and its reload. A reload reads the list (no
 * page data) and builds a new listing, carrying over the node of every
 * snapshot whose metadata is unchanged, so that its shared image and its
 * rendered `segments` text survive; readers keep using the listing they
 * hold until they drop it.
 */
#include "listing.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fslog.h"

static int64_t elapsed_ns(const struct timespec *from,
			  const struct timespec *to)
{
	return (int64_t)(to->tv_sec - from->tv_sec) * 1000000000LL +
	       (to->tv_nsec - from->tv_nsec);
}

static int cmp_name(const void *a, const void *b)
{
	const struct node *x = *(struct node *const *)a;
	const struct node *y = *(struct node *const *)b;

	return strcmp(x->snap.name, y->snap.name);
}

static int cmp_id(const void *a, const void *b)
{
	const struct node *x = *(struct node *const *)a;
	const struct node *y = *(struct node *const *)b;

	return (x->snap.id > y->snap.id) - (x->snap.id < y->snap.id);
}

struct listing *listing_ref(struct listing *listing)
{
	atomic_fetch_add(&listing->refs, 1);
	return listing;
}

void listing_unref(struct listing *listing)
{
	if (!listing || atomic_fetch_sub(&listing->refs, 1) != 1)
		return;
	for (size_t i = 0; i < listing->count; i++)
		node_unref(listing->by_name[i]);
	free(listing->by_name);
	free(listing->by_id);
	free(listing);
}

struct node *listing_find_name(const struct listing *listing,
			       const char *name)
{
	size_t lo = 0, hi = listing->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, listing->by_name[mid]->snap.name);

		if (c == 0)
			return listing->by_name[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

struct node *listing_find_id(const struct listing *listing, int64_t id)
{
	size_t lo = 0, hi = listing->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int64_t at = listing->by_id[mid]->snap.id;

		if (at == id)
			return listing->by_id[mid];
		if (id < at)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* The node for snap: old's if its metadata (hence its `info` text) is the
 * same, else a new one. */
static int node_for(const struct listing *old,
		    const struct snapfs_snapshot *snap, struct node **ret_node)
{
	struct node *fresh, *prev;
	int rc;

	rc = node_new(snap, &fresh);
	if (rc < 0)
		return rc;
	prev = old ? listing_find_id(old, snap->id) : NULL;
	if (prev && prev->info_len == fresh->info_len &&
	    memcmp(prev->info, fresh->info, fresh->info_len) == 0) {
		node_unref(fresh);
		fresh = node_ref(prev);
	}
	*ret_node = fresh;
	return 0;
}

/* Read the store's list into a new listing, reusing old's nodes. */
static int listing_load(struct snapfs_store *store, const struct listing *old,
			struct listing **ret_listing)
{
	struct snapfs_snapshot *snaps = NULL;
	struct listing *listing;
	size_t count = 0;
	int rc;

	rc = snapfs_snapshot_list(store, &snaps, &count);
	if (rc < 0)
		return rc;
	listing = calloc(1, sizeof(*listing));
	if (!listing) {
		rc = -ENOMEM;
		goto out_free_snaps;
	}
	atomic_init(&listing->refs, 1);
	clock_gettime(CLOCK_REALTIME, &listing->built);
	listing->by_name = calloc(count ? count : 1, sizeof(*listing->by_name));
	listing->by_id = calloc(count ? count : 1, sizeof(*listing->by_id));
	if (!listing->by_name || !listing->by_id) {
		rc = -ENOMEM;
		goto out_unref_listing;
	}
	for (size_t i = 0; i < count; i++) {
		rc = node_for(old, &snaps[i], &listing->by_name[i]);
		if (rc < 0)
			goto out_unref_listing;
		listing->count++;
		listing->data_bytes += snaps[i].data_bytes;
	}
	/* The core sorts by name already; sort again so that the binary
	 * search can never be wrong about the order it relies on. */
	qsort(listing->by_name, listing->count, sizeof(*listing->by_name),
	      cmp_name);
	memcpy(listing->by_id, listing->by_name,
	       listing->count * sizeof(*listing->by_id));
	qsort(listing->by_id, listing->count, sizeof(*listing->by_id), cmp_id);
	*ret_listing = listing;
	listing = NULL;
	rc = 0;
out_unref_listing:
	listing_unref(listing);
out_free_snaps:
	snapfs_snapshot_list_free(snaps, count);
	return rc;
}

void listing_cache_init(struct listing_cache *cache,
			struct snapfs_store *store)
{
	memset(cache, 0, sizeof(*cache));
	cache->store = store;
	pthread_mutex_init(&cache->lock, NULL);
	pthread_mutex_init(&cache->reload_lock, NULL);
}

void listing_cache_release(struct listing_cache *cache)
{
	listing_unref(cache->current);
	cache->current = NULL;
	pthread_mutex_destroy(&cache->reload_lock);
	pthread_mutex_destroy(&cache->lock);
}

static struct listing *current_ref(struct listing_cache *cache)
{
	struct listing *listing = NULL;

	pthread_mutex_lock(&cache->lock);
	if (cache->current)
		listing = listing_ref(cache->current);
	pthread_mutex_unlock(&cache->lock);
	return listing;
}

/* Under reload_lock: check the generation (if due) and reload if the store
 * changed or nothing is loaded yet. */
static int refresh_locked(struct listing_cache *cache, bool loaded)
{
	struct listing *old, *fresh = NULL;
	struct timespec now;
	int64_t generation;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (loaded && elapsed_ns(&cache->checked, &now) < LISTING_POLL_NS)
		return 0;
	cache->checked = now;
	/* Read the generation before the list: a commit in between makes
	 * the next check reload again, never miss a change. */
	generation = snapfs_store_generation(cache->store);
	if (generation < 0)
		return (int)generation;
	if (loaded && generation == cache->generation)
		return 0;
	old = current_ref(cache);
	rc = listing_load(cache->store, old, &fresh);
	listing_unref(old);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&cache->lock);
	old = cache->current;
	cache->current = fresh;
	pthread_mutex_unlock(&cache->lock);
	listing_unref(old);
	cache->generation = generation;
	return 0;
}

int listing_cache_get(struct listing_cache *cache, bool refresh,
		      struct listing **ret_listing)
{
	struct listing *listing;
	int rc = 0;

	listing = current_ref(cache);
	if (listing && !refresh) {
		*ret_listing = listing;
		return 0;
	}
	pthread_mutex_lock(&cache->reload_lock);
	/* current only changes under reload_lock, which is held. */
	rc = refresh_locked(cache, cache->current != NULL);
	if (rc < 0 && !cache->failing && !fslog_store_replaced(cache->store))
		fslog_error("cannot list snapshots: %s",
			    snapfs_errmsg()[0] ? snapfs_errmsg() :
			    snapfs_strerror(rc));
	cache->failing = rc < 0;
	pthread_mutex_unlock(&cache->reload_lock);
	listing_unref(listing);
	listing = current_ref(cache);
	if (!listing)
		return rc < 0 ? rc : -EIO;
	*ret_listing = listing;
	return 0;
}
