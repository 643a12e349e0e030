// SPDX-License-Identifier: MIT
/*
 * The decoded-blob cache: a hash table of entries on an LRU list, one
 * mutex, and a condition variable for threads waiting on a blob that
 * another thread is decoding. Decoding happens outside the lock.
 *
 * Blobs decoded for a sequential reader ("streamed") leave the LRU list
 * for a short FIFO of spent entries once the reader has let go of them:
 * the next request may still want the blob that straddles it, nothing
 * after that will (the kernel's page cache holds what was read). So a
 * long sequential read recycles a few MiB instead of growing the cache
 * to its limit and evicting what random readers use. Blobs that only a
 * prefetcher took (BLOB_ONCE: it hands their bytes to the kernel's cache)
 * go as soon as it lets go, so that their memory serves the next ones.
 */
#include "blob_cache.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "blob_mem.h"
#include "snapfs.h"

enum entry_state { ENTRY_LOADING, ENTRY_READY, ENTRY_FAILED };

struct entry {
	struct cached_blob blob;        /* first: the public view */
	enum entry_state state;
	int error;                      /* when ENTRY_FAILED */
	int refs;
	bool in_table;
	bool streamed;                  /* decoded for a sequential reader */
	bool taken;                     /* a reader (not decode-ahead) took it */
	bool spent;                     /* on the spent list, not the LRU list */
	bool once;                      /* only BLOB_ONCE readers took it */
	struct entry *hash_next;
	struct entry *lru_prev, *lru_next; /* LRU or spent list; only while READY and in table */
};

struct blob_cache {
	pthread_mutex_t lock;
	pthread_cond_t loaded;
	unsigned waiters;            /* threads waiting on loaded: a load wakes them only if any */
	struct entry **buckets;
	size_t bucket_count;            /* power of two */
	size_t entry_count;
	size_t bytes, limit;
	size_t spent_bytes;             /* of entries on the spent list */
	struct entry lru;               /* sentinel: next is most recent */
	struct entry spent;             /* sentinel: next is the newest spent */
	struct blob_mem *mem;           /* where decoded blobs live */
};

static size_t bucket_of(const struct blob_cache *c, int64_t id)
{
	uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;

	return (size_t)(h >> 32) & (c->bucket_count - 1);
}

struct blob_cache *blob_cache_new(size_t limit_bytes)
{
	struct blob_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->bucket_count = 1024;
	c->buckets = calloc(c->bucket_count, sizeof(*c->buckets));
	c->mem = blob_mem_new((size_t)BLOB_PAGES * SNAPFS_PAGE_SIZE);
	if (!c->buckets || !c->mem) {
		blob_mem_free(c->mem);
		free(c->buckets);
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->loaded, NULL);
	c->limit = limit_bytes;
	c->lru.lru_next = c->lru.lru_prev = &c->lru;
	c->spent.lru_next = c->spent.lru_prev = &c->spent;
	return c;
}

static void entry_free(struct blob_cache *c, struct entry *e)
{
	blob_mem_put(c->mem, (void *)e->blob.data, e->blob.size);
	free(e);
}

void blob_cache_free(struct blob_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->bucket_count; i++) {
		struct entry *e = c->buckets[i], *next;

		for (; e; e = next) {
			next = e->hash_next;
			entry_free(c, e);
		}
	}
	free(c->buckets);
	blob_mem_free(c->mem);
	pthread_cond_destroy(&c->loaded);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static void lru_unlink(struct entry *e)
{
	if (!e->lru_next)
		return;
	e->lru_prev->lru_next = e->lru_next;
	e->lru_next->lru_prev = e->lru_prev;
	e->lru_next = e->lru_prev = NULL;
}

static void list_push_front(struct entry *head, struct entry *e)
{
	e->lru_next = head->lru_next;
	e->lru_prev = head;
	head->lru_next->lru_prev = e;
	head->lru_next = e;
}

/* Take e off whichever list holds it. */
static void entry_unlist(struct blob_cache *c, struct entry *e)
{
	lru_unlink(e);
	if (e->spent) {
		e->spent = false;
		c->spent_bytes -= e->blob.size;
	}
}

static void table_remove(struct blob_cache *c, struct entry *e)
{
	struct entry **p = &c->buckets[bucket_of(c, e->blob.id)];

	for (; *p; p = &(*p)->hash_next) {
		if (*p == e) {
			*p = e->hash_next;
			break;
		}
	}
	e->in_table = false;
	c->entry_count--;
	if (e->state == ENTRY_READY)
		c->bytes -= e->blob.size;
	entry_unlist(c, e);
}

static void table_grow(struct blob_cache *c)
{
	size_t old_count = c->bucket_count, n = old_count * 2;
	struct entry **old = c->buckets, **fresh = calloc(n, sizeof(*fresh));

	if (!fresh)
		return; /* longer chains, still correct */
	c->buckets = fresh;
	c->bucket_count = n;
	for (size_t i = 0; i < old_count; i++) {
		struct entry *e = old[i], *next;

		for (; e; e = next) {
			size_t b = bucket_of(c, e->blob.id);

			next = e->hash_next;
			e->hash_next = fresh[b];
			fresh[b] = e;
		}
	}
	free(old);
}

/* Drop spent entries beyond BLOB_CACHE_SPENT_KEEP, oldest first; then, while
 * over the limit, the rest of the spent ones and unreferenced entries from
 * the cold end of the LRU list. Spent entries are never referenced. */
static void evict(struct blob_cache *c)
{
	struct entry *e, *prev;

	while (c->spent.lru_prev != &c->spent &&
	       (c->spent_bytes > BLOB_CACHE_SPENT_KEEP || c->bytes > c->limit)) {
		e = c->spent.lru_prev;
		table_remove(c, e);
		entry_free(c, e);
	}
	e = c->lru.lru_prev;
	while (c->bytes > c->limit && e != &c->lru) {
		prev = e->lru_prev;
		if (e->refs == 0) {
			table_remove(c, e);
			entry_free(c, e);
		}
		e = prev;
	}
}

void blob_cache_set_limit(struct blob_cache *c, size_t limit_bytes)
{
	pthread_mutex_lock(&c->lock);
	c->limit = limit_bytes;
	evict(c);
	pthread_mutex_unlock(&c->lock);
}

void blob_cache_prepare(struct blob_cache *c)
{
	blob_mem_start(c->mem);
}

size_t blob_cache_bytes(struct blob_cache *c)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = c->bytes;
	pthread_mutex_unlock(&c->lock);
	return n;
}

bool blob_cache_contains(struct blob_cache *c, int64_t id)
{
	struct entry *e;

	pthread_mutex_lock(&c->lock);
	for (e = c->buckets[bucket_of(c, id)]; e; e = e->hash_next)
		if (e->blob.id == id)
			break;
	pthread_mutex_unlock(&c->lock);
	return e != NULL;
}

/* Find or load blob id; *ret_blob is NULL for BLOB_AHEAD (no reference
 * is kept). */
static int cache_get(struct blob_cache *c, const struct blob_loc *loc, enum blob_use use,
		     blob_load_fn load, void *ctx, const struct cached_blob **ret_blob)
{
	int64_t id = loc->id;
	size_t size = (size_t)loc->page_count * SNAPFS_PAGE_SIZE, b;
	unsigned char *data;
	struct entry *e;
	int rc;

	pthread_mutex_lock(&c->lock);
	b = bucket_of(c, id);
	for (e = c->buckets[b]; e; e = e->hash_next)
		if (e->blob.id == id)
			break;
	if (e && use == BLOB_AHEAD) {
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	if (e) {
		e->refs++;
		while (e->state == ENTRY_LOADING) {
			c->waiters++;
			pthread_cond_wait(&c->loaded, &c->lock);
			c->waiters--;
		}
		if (e->state == ENTRY_FAILED) {
			rc = e->error;
			if (--e->refs == 0 && !e->in_table)
				entry_free(c, e);
			pthread_mutex_unlock(&c->lock);
			return rc;
		}
		/* A random reader wants it: an ordinary entry from now on. */
		if (use == BLOB_RANDOM)
			e->streamed = false;
		e->once = use == BLOB_ONCE && (!e->taken || e->once);
		e->taken = true;
		entry_unlist(c, e);
		list_push_front(&c->lru, e);
		pthread_mutex_unlock(&c->lock);
		*ret_blob = &e->blob;
		return 0;
	}

	e = calloc(1, sizeof(*e));
	if (!e) {
		pthread_mutex_unlock(&c->lock);
		return -ENOMEM;
	}
	e->blob.id = id;
	e->state = ENTRY_LOADING;
	e->streamed = use != BLOB_RANDOM;
	e->taken = use != BLOB_AHEAD;
	e->once = use == BLOB_ONCE;
	e->refs = 1;
	e->in_table = true;
	e->hash_next = c->buckets[b];
	c->buckets[b] = e;
	if (++c->entry_count > c->bucket_count)
		table_grow(c);
	pthread_mutex_unlock(&c->lock);

	/* A page count out of range is damage the load reports: no memory
	 * for it (dst NULL). */
	if (loc->page_count == 0 || loc->page_count > BLOB_PAGES_MAX) {
		data = NULL;
		rc = load(ctx, loc, use != BLOB_RANDOM, NULL);
		rc = rc < 0 ? rc : -EIO;
	} else {
		data = blob_mem_get(c->mem, size);
		rc = data ? load(ctx, loc, use != BLOB_RANDOM, data) : -ENOMEM;
	}

	pthread_mutex_lock(&c->lock);
	if (rc < 0) {
		blob_mem_put(c->mem, data, size);
		e->state = ENTRY_FAILED;
		e->error = rc;
		table_remove(c, e);
		e->refs--;
		if (e->refs == 0)
			entry_free(c, e);
		if (c->waiters)
			pthread_cond_broadcast(&c->loaded);
		pthread_mutex_unlock(&c->lock);
		return rc;
	}
	e->blob.data = data;
	e->blob.size = size;
	e->state = ENTRY_READY;
	c->bytes += size;
	list_push_front(&c->lru, e);
	if (use == BLOB_AHEAD)
		e->refs--;
	evict(c);
	if (c->waiters)
		pthread_cond_broadcast(&c->loaded);
	pthread_mutex_unlock(&c->lock);
	*ret_blob = use == BLOB_AHEAD ? NULL : &e->blob;
	return 0;
}

int blob_cache_get(struct blob_cache *c, const struct blob_loc *loc, enum blob_use use,
		   blob_load_fn load, void *ctx, const struct cached_blob **ret_blob)
{
	assert(use != BLOB_AHEAD);
	return cache_get(c, loc, use, load, ctx, ret_blob);
}

int blob_cache_load_ahead(struct blob_cache *c, const struct blob_loc *loc,
			  blob_load_fn load, void *ctx)
{
	const struct cached_blob *unused;

	return cache_get(c, loc, BLOB_AHEAD, load, ctx, &unused);
}

void blob_cache_put(struct blob_cache *c, const struct cached_blob *blob)
{
	struct entry *e = (struct entry *)blob;

	if (!blob)
		return;
	pthread_mutex_lock(&c->lock);
	e->refs--;
	if (e->refs == 0) {
		if (!e->in_table) {
			entry_free(c, e);
		} else if (e->once) {
			table_remove(c, e);
			entry_free(c, e);
		} else {
			if (e->streamed && e->taken && !e->spent) {
				lru_unlink(e);
				list_push_front(&c->spent, e);
				e->spent = true;
				c->spent_bytes += e->blob.size;
			}
			evict(c);
		}
	}
	pthread_mutex_unlock(&c->lock);
}
