/* SPDX-License-Identifier: MIT */
/*
 * A cache of decoded blobs shared by every reader of a store, bounded in
 * bytes (least recently used entries go first). A blob that several threads
 * want at once is decoded once: the others wait for it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blob_store.h"

struct blob_cache;

/* Bytes of blobs that sequential readers are done with kept for the
 * requests right after (a 1 MiB request spans 8-9 blobs of 128 KiB, and
 * the kernel may send the next ones before this one is answered). */
#define BLOB_CACHE_SPENT_KEEP ((size_t)16 << 20)

/* A decoded blob: page_count pages of decoded bytes. Read-only while
 * referenced; owned by the cache. */
struct cached_blob {
	int64_t id;
	const unsigned char *data;
	size_t size;
};

/* Decode the blob at loc into dst (the cache's memory, loc->page_count
 * pages), or return a negative error. sequential: the reader goes on in
 * order (see blob_store_load()). dst is NULL when loc's page count is 0
 * or over BLOB_PAGES_MAX: the load must fail (the row is damaged). */
typedef int (*blob_load_fn)(void *ctx, const struct blob_loc *loc, bool sequential,
			    unsigned char *dst);

struct blob_cache *blob_cache_new(size_t limit_bytes);
void blob_cache_free(struct blob_cache *cache);
void blob_cache_set_limit(struct blob_cache *cache, size_t limit_bytes);
/* Readers are coming: get memory for their blobs ready (blob_mem.h). */
void blob_cache_prepare(struct blob_cache *cache);

/* How a reader uses the blob it asks for. */
enum blob_use {
	BLOB_RANDOM,                 /* anything else: kept by recency of use */
	BLOB_STREAM,                 /* a sequential reader: after use it is
	                              * soon dropped (see blob_cache.c) */
	BLOB_AHEAD,                  /* decode-ahead: for a BLOB_STREAM reader */
	BLOB_ONCE,                   /* a prefetcher that passes the bytes on:
	                              * unless another reader took it too, the
	                              * blob goes when it lets go */
};

/* The decoded blob loc->id, loading it with load(ctx, loc, ...) on a miss.
 * The entry stays valid until blob_cache_put(). A failed load is not
 * cached. use is BLOB_RANDOM, BLOB_STREAM or BLOB_ONCE. */
int blob_cache_get(struct blob_cache *cache, const struct blob_loc *loc, enum blob_use use,
		   blob_load_fn load, void *ctx, const struct cached_blob **ret_blob);
/* Decode blob loc->id into the cache for a sequential reader that will ask
 * for it soon, unless it is there already; no reference is kept. */
int blob_cache_load_ahead(struct blob_cache *cache, const struct blob_loc *loc,
			  blob_load_fn load, void *ctx);
void blob_cache_put(struct blob_cache *cache, const struct cached_blob *blob);

/* true if blob id is held or being decoded now. */
bool blob_cache_contains(struct blob_cache *cache, int64_t id);

/* Bytes of decoded data held now. */
size_t blob_cache_bytes(struct blob_cache *cache);
