// SPDX-License-Identifier: MIT
/*
 * snapfs map STORE NAME [--against OTHER] [-o FILE]: gather a snapshot's
 * segments, stored pages and differences through libsnapfs, and have
 * map_svg.c draw them.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "map_svg.h"

static const char usage[] = "map STORE NAME [--against OTHER] [-o|--output FILE]   (an SVG picture "
			    "of the address space; standard output by default)";

enum { OPT_AGAINST = 0x100, OPT_OUTPUT, OPT_QUIET, OPT_HELP };

static const struct option options[] = {
	{ "against", required_argument, NULL, OPT_AGAINST },
	{ "output", required_argument, NULL, OPT_OUTPUT },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "help", no_argument, NULL, OPT_HELP },
	{ 0 },
};

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

int cmd_map(int argc, char **argv)
{
	const char *against = NULL, *output = NULL, *names[2];
	struct snapfs_store *store;
	FILE *out = stdout;
	int opt, rc;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "o:qh", options, NULL)) != -1) {
		switch (opt) {
		case OPT_AGAINST:
			against = optarg;
			break;
		case 'o':
		case OPT_OUTPUT:
			output = optarg;
			break;
		case 'q':
		case OPT_QUIET:
			break;
		case 'h':
		case OPT_HELP:
			printf("usage: snapfs %s\n", usage);
			return EXIT_OK;
		default:
			return cli_usage_error("map: unknown option '%s' (usage: snapfs %s)",
					       argv[optind - 1], usage);
		}
	}
	rc = cli_check_args(argc, argv, 2, 2, "STORE NAME", usage);
	if (rc >= 0)
		return rc;
	names[0] = argv[optind + 1];
	names[1] = against;
	for (int i = 0; i < 2; i++)
		if (names[i] && !snapfs_name_valid(names[i]))
			return cli_usage_error("map: snapshot '%s': invalid name", names[i]);
	cli_target("map", argv[optind], names, 1);
	rc = cli_open_store(argv[optind], SNAPFS_OPEN_READONLY, &store);
	if (rc)
		return rc;
	if (output && strcmp(output, "-") != 0) {
		out = fopen(output, "w");
		if (!out) {
			rc = -errno;
			fprintf(stderr, "snapfs: %s: output '%s': %s\n", cli_target_text(), output,
				snapfs_strerror(rc));
			snapfs_store_close(store);
			return EXIT_FAILED;
		}
	}
	rc = gather_and_draw(store, names[0], against, out);
	if (out != stdout && fclose(out) && !rc)
		rc = -EIO;
	if (rc < 0 && out != stdout)
		unlink(output);
	rc = rc < 0 ? cli_fail(rc, "map") : EXIT_OK;
	snapfs_store_close(store);
	return rc;
}
