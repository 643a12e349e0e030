/* SPDX-License-Identifier: MIT */
/*
 * Decoding ahead of sequential readers: a few threads that decode the blobs
 * a reader is about to need into the shared blob cache, so that decoding
 * runs on the other cores while the reader copies out what is decoded.
 * Requests are hints: a full queue drops them, a failed decode is left for
 * the reader to meet (and report) itself.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "blob_cache.h"
#include "blob_store.h"

struct decode_ahead;

/* threads workers (at least 1) that load blobs of bs into cache, in
 * spans. cache and bs must outlive the object. */
int decode_ahead_new(struct blob_cache *cache, struct blob_store *bs,
		     unsigned threads, struct decode_ahead **ret_da);
/* Stop and join the workers; queued requests are dropped. NULL is fine. */
void decode_ahead_free(struct decode_ahead *da);

/* Ask for the blobs at locs[0..count) to be decoded into the cache soon,
 * in that order (those that do not fit in the queue are dropped). */
void decode_ahead_want(struct decode_ahead *da, const struct blob_loc *locs, size_t count);
