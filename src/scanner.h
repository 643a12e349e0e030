/* SPDX-License-Identifier: MIT */
/*
 * Raw sources and the zero-page scanner: a memory file or block device,
 * its data ranges found with SEEK_DATA/SEEK_HOLE (holes cost nothing), and
 * a walk over a byte range that hands each non-zero page to a callback.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "snapfs.h"

struct source {
	int fd;
	const char *path;         /* borrowed from the caller */
	uint64_t size;            /* exact size in bytes */
	bool is_device;
	unsigned char *buf;       /* read buffer of scan_range() */
};

/* Open path for reading. A directory, a missing or unreadable file, or a
 * file of another type is an error naming the file. */
int source_open(const char *path, struct source *ret_src);
void source_close(struct source *src);

/* The next data range at or after off, widened to whole pages, its end
 * clamped to the size rounded up to a page. -ENXIO when no data follows. */
int source_next_data(struct source *src, uint64_t off, uint64_t *ret_start,
		     uint64_t *ret_end);

/* Called for each non-zero page: page_no is offset / SNAPFS_PAGE_SIZE; a
 * last partial page comes zero-padded to a whole page. */
typedef int (*page_fn)(void *ctx, uint64_t page_no, const unsigned char *page);

struct scan_stats {
	uint64_t scanned_bytes;   /* bytes read from the source */
	uint64_t zero_pages;      /* pages skipped as all zero */
};

/* Walk the data in [start, end) (page-aligned), reading in large chunks,
 * calling fn for every non-zero page in order. Reports progress in bytes
 * scanned; stops with -SNAPFS_ECANCELED when asked to. */
int scan_range(struct source *src, uint64_t start, uint64_t end, page_fn fn,
	       void *ctx, struct scan_stats *stats,
	       const struct snapfs_progress *progress, uint64_t total);
