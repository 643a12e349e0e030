/* SPDX-License-Identifier: MIT */
/*
 * The picture of a snapshot's address space that `snapfs map` writes: an
 * SVG strip of the segments, scaled to the ranges in use with large gaps
 * folded, coloured by kind and shaded by page state. Private to the core:
 * map.c gathers the data (snapfs_map_svg()), this module draws it.
 */
#pragma once

#include <stdint.h>
#include <stdio.h>

#include "snapfs.h"

/* Sorted, disjoint half-open byte ranges. Owned by whoever fills it;
 * free with map_ranges_release(). */
struct map_ranges {
	struct map_range { uint64_t start, end; } *r;
	size_t count, cap;
};

/* Append [start, end) (after every range in it; adjacent ranges merge):
 * 0 or -ENOMEM. */
int map_ranges_add(struct map_ranges *ranges, uint64_t start, uint64_t end);
void map_ranges_release(struct map_ranges *ranges);

/* What the picture shows. Everything is borrowed for the call. */
struct map_model {
	const struct snapfs_snapshot *snap;
	const struct snapfs_segment *segs;    /* sorted by start */
	size_t seg_count;
	const struct map_ranges *data;        /* pages stored (not zero) */
	const struct map_ranges *unshared;    /* data pages that differ from the
	                                       * parent; NULL: no parent */
	const struct map_ranges *changed;     /* pages that differ from OTHER;
	                                       * NULL: no --against */
	const char *against;                  /* OTHER's name, or NULL */
};

/* Write the SVG document to out: 0, or -EIO / -ENOMEM. */
int map_svg_write(FILE *out, const struct map_model *m);
