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

struct blob_cache;

/* A decoded blob: page_count pages of decoded bytes. Read-only while
 * referenced; owned by the cache. */
struct cached_blob {
	int64_t id;
	const unsigned char *data;
	size_t size;
};

/* Fill *ret_data (malloc'ed, handed to the cache) and *ret_size with the
 * decoded blob id, or return a negative error. */
typedef int (*blob_load_fn)(void *ctx, int64_t id, unsigned char **ret_data,
			    size_t *ret_size);

struct blob_cache *blob_cache_new(size_t limit_bytes);
void blob_cache_free(struct blob_cache *cache);
void blob_cache_set_limit(struct blob_cache *cache, size_t limit_bytes);

/* The decoded blob id, loading it with load(ctx, ...) on a miss. The entry
 * stays valid until blob_cache_put(). A failed load is not cached. */
int blob_cache_get(struct blob_cache *cache, int64_t id, blob_load_fn load,
		   void *ctx, const struct cached_blob **ret_blob);
void blob_cache_put(struct blob_cache *cache, const struct cached_blob *blob);

/* true if blob id is held or being decoded now. */
bool blob_cache_contains(struct blob_cache *cache, int64_t id);

/* Bytes of decoded data held now. */
size_t blob_cache_bytes(struct blob_cache *cache);
