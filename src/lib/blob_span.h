/* SPDX-License-Identifier: MIT */
/*
 * Loading many blobs at once: the blobs a prefetch or a sequential reader
 * is about to need, read from their packs in spans (one pread(2) for
 * neighbours) and decoded one by one into the blob cache. Below the
 * reader and the decode-ahead workers, above the blob store and cache.
 */
#pragma once

#include <stddef.h>

#include "blob_cache.h"
#include "blob_store.h"

/* Stored blobs closer than this in a pack are read as one span: the gap
 * costs less than a request of its own. */
#define BLOB_SPAN_GAP_BYTES ((uint64_t)64 << 10)

/* Decode into cache the blobs of locs[0..count) that it lacks (locs is
 * reordered here: those it lacks first, sorted by place in the packs),
 * reading neighbours within BLOB_SPAN_GAP_BYTES as one span of at most
 * BLOB_STORE_SPAN_MAX bytes.
 * Hints only: a span that cannot be read, or a blob that does not check,
 * is left for the reader that needs it to meet and report. */
void blob_span_load(struct blob_cache *cache, struct blob_store *bs,
		    struct blob_loc *locs, size_t count);
