/* SPDX-License-Identifier: MIT */
/*
 * The usage set of a raw source: read from a usage file (`start end kind
 * memcg committed`, one range a line) or made from the source's data
 * ranges. Segments come out sorted, page-aligned and non-overlapping.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "snapfs.h"

#include "source.h"

/* Parse the usage file at path for a memory file of file_size bytes.
 * Malformed lines are -SNAPFS_EUSAGE naming the file and line. */
int usage_parse_file(const char *path, uint64_t file_size,
		     struct segment_list *ret_list);

/* One committed segment of kind per data range of src. */
int usage_from_data(struct source *src, const char *kind,
		    struct segment_list *ret_list);
