// SPDX-License-Identifier: MIT
/*
 * snapfs_map_svg(): gather a snapshot's segments, stored pages and
 * differences (against its parent, and against another snapshot if asked)
 * through the read path, and have map_svg.c draw them into memory. One
 * renderer for `snapfs map` and the mount's NAME/map.svg.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "map_svg.h"
#include "snapfs.h"

/* The stored pages of image, from SEEK_DATA / SEEK_HOLE. */
static int data_ranges(struct snapfs_image *image, struct map_ranges *ret)
{
	uint64_t size = snapfs_image_size(image), off = 0;

	while (off < size) {
		int64_t d = snapfs_image_seek(image, off, SEEK_DATA), h;
		int rc;

		if (d == -ENXIO)
			break;
		if (d < 0)
			return (int)d;
		h = snapfs_image_seek(image, (uint64_t)d, SEEK_HOLE);
		if (h < 0)
			return (int)h;
		rc = map_ranges_add(ret, (uint64_t)d, (uint64_t)h);
		if (rc)
			return rc;
		off = (uint64_t)h;
	}
	return 0;
}

/* snapfs_diff callback: pages that differ (changed, added, or removed:
 * zero in B, which map_svg.c draws as zero whatever the parent had). */
static int add_diff(void *data, uint64_t start, uint64_t end, enum snapfs_diff_status status)
{
	(void)status;
	return map_ranges_add(data, start, end);
}

static int gather_and_draw(struct snapfs_store *store, const char *name, const char *against,
			   FILE *out)
{
	struct map_ranges data = { 0 }, unshared = { 0 }, changed = { 0 };
	struct snapfs_snapshot snap = { 0 };
	struct snapfs_segment *segs = NULL;
	struct snapfs_image *image = NULL;
	size_t seg_count = 0;
	int rc;

	rc = snapfs_snapshot_get(store, name, &snap);
	if (rc)
		return rc;
	rc = snapfs_snapshot_check(store, &snap);
	if (rc)
		goto out_release;
	rc = snapfs_segments_get(store, snap.id, &segs, &seg_count);
	if (rc)
		goto out_release;
	rc = snapfs_image_open(store, snap.id, &image);
	if (rc)
		goto out_segments;
	rc = data_ranges(image, &data);
	if (rc)
		goto out_ranges;
	if (snap.parent[0]) {
		rc = snapfs_diff(store, snap.parent, name, add_diff, &unshared);
		if (rc)
			goto out_ranges;
	}
	if (against) {
		rc = snapfs_diff(store, against, name, add_diff, &changed);
		if (rc)
			goto out_ranges;
	}
	rc = map_svg_write(out, &(struct map_model){
		.snap = &snap, .segs = segs, .seg_count = seg_count, .data = &data,
		.unshared = snap.parent[0] ? &unshared : NULL,
		.changed = against ? &changed : NULL, .against = against });
out_ranges:
	map_ranges_release(&data);
	map_ranges_release(&unshared);
	map_ranges_release(&changed);
	snapfs_image_close(image);
out_segments:
	snapfs_segments_free(segs, seg_count);
out_release:
	snapfs_snapshot_release(&snap);
	return rc;
}

int snapfs_map_svg(struct snapfs_store *store, const char *name, const char *against,
		   char **ret_text, size_t *ret_len)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out;
	int rc;

	error_clear();
	out = open_memstream(&text, &len);
	if (!out)
		return -ENOMEM;
	rc = gather_and_draw(store, name, against, out);
	if (fclose(out) != 0 && rc == 0)
		rc = -ENOMEM;
	if (rc < 0) {
		free(text);
		return rc;
	}
	*ret_text = text;
	*ret_len = len;
	return 0;
}
