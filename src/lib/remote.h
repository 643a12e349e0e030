/* SPDX-License-Identifier: MIT */
/*
 * Remote stores: a store whose page data lives in an S3-compatible bucket
 * (issue 18). STORE is a local directory bound to s3://BUCKET/PREFIX (the
 * table remote): it holds a copy of the bucket's newest index (snapfs.db)
 * and a cache of pack bytes. The bucket holds
 *
 *   PREFIX/packs/<pack id>-<random>.pack   one per save that stored new
 *                                          blobs; written once, never changed
 *   PREFIX/index/<generation>.db           the database after each save
 *                                          (VACUUM INTO), created with
 *                                          If-None-Match: * (one writer wins
 *                                          each generation)
 *   PREFIX/HEAD                            the newest generation (a hint:
 *                                          readers probe past it)
 *   PREFIX/lock                            held by the one host saving
 *
 * Writers take the lock (a conditional create with a lease), pull the
 * newest index, save as a local store does into a new local pack, upload
 * the pack, then the index, then HEAD, and let go of the lock. Pack bytes
 * are in the bucket before any index names them; an interrupted save leaves
 * at most objects no index names.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "blob_store.h"

struct catalog;
struct remote;

/* Bind to url for the store in dir (the cache goes to SNAPFS_CACHE_DIR,
 * else dir/cache, bounded by SNAPFS_CACHE_SIZE). lookup finds a pack's
 * object and length (on a reader connection of the store). */
typedef int (*remote_pack_lookup_fn)(void *ctx, int64_t pack_id, char **ret_object,
				     uint64_t *ret_length);
int remote_open(const char *dir, const char *url, remote_pack_lookup_fn lookup,
		void *lookup_ctx, struct remote **ret);
void remote_close(struct remote *r);
/* The backend that reads packs of r (for blob_store_set_backend). */
void remote_backend(struct remote *r, struct pack_backend *ret_be);

/* Bring the database of cat (the store's snapfs.db) to the bucket's newest
 * index, when it is older or dirty (or always with force). Takes the
 * host-local lock of the store unless the caller holds it. */
int remote_pull(struct remote *r, struct catalog *cat, bool force);

/* A save: take the local and the bucket lock, pull. Then the caller
 * saves, then remote_save_end() publishes (ok) and lets go of the locks;
 * on failure the local copy is put back to the bucket's newest index. */
int remote_save_begin(struct remote *r, struct catalog *cat);
int remote_save_end(struct remote *r, struct catalog *cat, int64_t pack_id, bool ok);

/* snapfs init --remote: bind the new store's cat to url, publish
 * generation 1 if the bucket has no index yet, pull the newest. */
int remote_init(const char *dir, const char *url, struct catalog *cat);
/* Delete the pack objects under the bucket's packs/ that the newest index
 * does not name (left by saves that were killed or lost the bucket's lock
 * before publishing), holding the host's and the bucket's lock so that no
 * save is between its upload and its publish; their count and bytes. */
int remote_gc(struct remote *r, struct catalog *cat, uint64_t *ret_objects,
	      uint64_t *ret_bytes);

/* Bytes PUT by this process (packs and indexes): for tests. */
uint64_t remote_bytes_put(const struct remote *r);
