// SPDX-License-Identifier: MIT
/*
 * The zero-page scanner: data ranges of a source read in large chunks, the
 * zero test on every page, non-zero pages handed on in order.
 */
#include "scanner.h"

#include <errno.h>

#include "digest.h"
#include "errors.h"
#include "source.h"

int scan_range(struct source *src, uint64_t start, uint64_t end, page_fn fn,
	       void *ctx, struct scan_stats *stats,
	       const struct snapfs_progress *progress, uint64_t total)
{
	unsigned char *buf = src->buf;
	uint64_t off = start;
	int rc = 0;

	while (off < end) {
		uint64_t d_start, d_end;

		rc = source_next_data(src, off, &d_start, &d_end);
		if (rc == -ENXIO)
			return 0;
		if (rc < 0)
			return rc;
		if (d_start >= end)
			break;
		if (d_start < off)
			d_start = off;
		if (d_end > end)
			d_end = end;
		for (uint64_t at = d_start; at < d_end;) {
			size_t len = d_end - at < SOURCE_BUF_BYTES ? (size_t)(d_end - at) : SOURCE_BUF_BYTES;

			if (progress && progress->cancel && *progress->cancel)
				return error_set(-SNAPFS_ECANCELED, "interrupted");
			rc = src->ops->read(src, buf, len, at);
			if (rc < 0)
				return rc;
			for (size_t p = 0; p < len; p += SNAPFS_PAGE_SIZE) {
				if (bytes_all_zero(buf + p, SNAPFS_PAGE_SIZE)) {
					stats->zero_pages++;
					continue;
				}
				rc = fn(ctx, (at + p) / SNAPFS_PAGE_SIZE, buf + p);
				if (rc != 0)
					return rc < 0 ? rc : 0;
			}
			at += len;
			stats->scanned_bytes += len;
			if (progress && progress->fn)
				progress->fn(progress->data, stats->scanned_bytes, total);
		}
		off = d_end;
	}
	return 0;
}
