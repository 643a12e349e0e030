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

struct decode_ahead;

/* threads workers (at least 1) that load blobs into cache with
 * load(ctx, ...). cache and ctx must outlive the object. */
int decode_ahead_new(struct blob_cache *cache, blob_load_fn load, void *ctx,
		     unsigned threads, struct decode_ahead **ret_da);
/* Stop and join the workers; queued requests are dropped. NULL is fine. */
void decode_ahead_free(struct decode_ahead *da);

/* Ask for the blob at loc to be decoded into the cache soon. */
void decode_ahead_want(struct decode_ahead *da, const struct blob_loc *loc);
