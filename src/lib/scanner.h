/* SPDX-License-Identifier: MIT */
/*
 * The zero-page scanner: a walk over a byte range of a source's memory
 * file, reading its data ranges in large chunks and handing each non-zero
 * page to a callback. Holes are never read.
 */
#pragma once

#include <stdint.h>

#include "snapfs.h"

struct source;

/* Called for each non-zero page: page_no is offset / SNAPFS_PAGE_SIZE; a
 * last partial page comes zero-padded to a whole page. Returns 0 to go on,
 * a positive value to end the walk early (scan_range() then returns 0), or
 * a negative error. */
typedef int (*page_fn)(void *ctx, uint64_t page_no, const unsigned char *page);

struct scan_stats {
	uint64_t scanned_bytes;   /* bytes read from the source */
	uint64_t zero_pages;      /* pages skipped as all zero */
};

/* Walk the data in [start, end) (page-aligned), calling fn for every
 * non-zero page in order. Reports progress in bytes scanned; stops with
 * -SNAPFS_ECANCELED when asked to. */
int scan_range(struct source *src, uint64_t start, uint64_t end, page_fn fn,
	       void *ctx, struct scan_stats *stats,
	       const struct snapfs_progress *progress, uint64_t total);
