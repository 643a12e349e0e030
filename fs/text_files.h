/* SPDX-License-Identifier: MIT */
/*
 * The text files of a snapshot directory, `info` and `segments`, rendered
 * from the core's metadata. Free-text fields (source, notes, labels) are
 * written with control characters and backslashes escaped as \ooo octal,
 * as /proc/self/mountinfo does, so that every record stays on one line.
 */
#pragma once

#include <stddef.h>

#include "snapfs.h"

/* The `info` file: one "key: value" a line, keys in this order: name, id,
 * created_at, parent ("-" for none), file_size, page_size, format, source,
 * segment_count, committed_bytes, data_bytes, stored_bytes, then notes
 * when there are any. *ret_text is malloc'ed and owned by the caller. */
int text_render_info(const struct snapfs_snapshot *snap, char **ret_text,
		     size_t *ret_len);

/* The `segments` file: one segment a line,
 * "0xSTART 0xEND KIND MEMCG COMMITTED LABEL" (lowercase hex, COMMITTED 1 or
 * 0, LABEL "-" when there is none). *ret_text is malloc'ed and owned by the
 * caller. */
int text_render_segments(const struct snapfs_segment *segs, size_t count,
			 char **ret_text, size_t *ret_len);
