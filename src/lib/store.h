/* SPDX-License-Identifier: MIT */
/*
 * The inside of struct snapfs_store: its connections and its blob cache.
 * Read work borrows a read-only connection from a pool (one per thread at a
 * time); write work (save, rm, gc) uses the single writer connection.
 */
#pragma once

#include "snapfs.h"

struct catalog;
struct blob_cache;
struct decode_ahead;
struct blob_store;
struct blob_loc;

/* Borrow a read-only connection; give it back with store_reader_put(). */
int store_reader_get(struct snapfs_store *store, struct catalog **ret_cat);
void store_reader_put(struct snapfs_store *store, struct catalog *cat);

/* The writer connection, or NULL for a store opened read-only. */
struct catalog *store_writer(struct snapfs_store *store);
struct blob_cache *store_cache(struct snapfs_store *store);
/* Make the dictionaries cat sees that the pack layer does not know yet
 * known to it (call before decoding blobs that may need them). */
int store_load_dicts(struct snapfs_store *store, struct catalog *cat);
/* The store's pack files. */
struct blob_store *store_blobs(struct snapfs_store *store);
/* Where blob id is now, read from the database on a reader connection. */
int store_blob_loc(struct snapfs_store *store, int64_t id, struct blob_loc *ret_loc);
/* blob_load_fn for the store's cache: ctx is store_blobs(store). */
int store_load_blob(void *ctx, const struct blob_loc *loc, bool sequential,
		    unsigned char *dst);
/* The store's decode-ahead workers, started on first use; NULL if they
 * could not be started (reads then decode on their own). */
struct decode_ahead *store_decode_ahead(struct snapfs_store *store);
const char *store_dir(const struct snapfs_store *store);
/* The store's bucket binding (remote.c), or NULL for a local store. */
struct remote *store_remote(struct snapfs_store *store);

/* Bytes of snapfs.db, its -wal file and the pack files on disk. */
uint64_t store_file_bytes(const struct snapfs_store *store);

/* Current time as ISO-8601 UTC ("2026-11-27T05:46:05Z"). */
void store_now_iso8601(char *buf, size_t cap);
