/* SPDX-License-Identifier: MIT */
/*
 * The files of a snapshot's regions/ directory: one per segment of its
 * usage set, named START-END-LABEL, showing just that range of the memory
 * file. This module owns the naming (and finding a segment by its name);
 * the FUSE operations serve the bytes.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "snapfs.h"

/* Longest name of a region file: NAME_MAX. */
#define REGION_NAME_MAX 255

/* The name of seg's file in buf, NUL-terminated; returns its length.
 * "%llx-%llx-LABEL": START and END in lowercase hex without 0x; LABEL is
 * the segment's label with '/', '\\' and control characters turned into
 * '_' (its kind when it has none), cut so that the whole name fits in
 * REGION_NAME_MAX bytes (never in the middle of a UTF-8 sequence). */
size_t region_name(const struct snapfs_segment *seg,
		   char buf[REGION_NAME_MAX + 1]);

/* The index in segs (sorted by start, as snapfs_segments_get() gives
 * them) of the segment whose file is called name; -ENOENT if none. */
int region_find(const struct snapfs_segment *segs, size_t count,
		const char *name, size_t *ret_index);

/* The bytes of the memory file the region shows: [start, min(end,
 * file_size)), 0 when it starts at or past the end of the file. */
uint64_t region_size(const struct snapfs_segment *seg, uint64_t file_size);
