// SPDX-License-Identifier: MIT
/*
 * snapfs map STORE NAME [--parent | --against OTHER] [-o FILE]: the SVG that
 * libsnapfs draws (snapfs_map_svg(), the same bytes as the mount's
 * NAME/map.svg), written out.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char usage[] = "map STORE NAME [--parent | --against OTHER] [-o|--output FILE]   (an SVG picture "
			    "of the address space; standard output by default)";

int cmd_map(int argc, char **argv)
{
	const char *against = NULL, *output = NULL, *names[2];
	struct snapfs_snapshot snap = { 0 };
	bool parent = false;
	char *svg = NULL;
	size_t svg_len = 0;
	struct snapfs_store *store;
	FILE *out = stdout;
	struct cli_common c = { 0 };
	const struct cli_option own[] = {
		CLI_TEXT("against", 0, &against),
		CLI_FLAG("parent", 0, &parent),
		CLI_TEXT("output", 'o', &output),
		{ 0 },
	};
	int rc;

	rc = cli_parse(argc, argv, usage, 0, own, &c);
	if (rc >= 0)
		return rc;
	rc = cli_check_args(argc, argv, 2, 2, "STORE NAME", usage);
	if (rc >= 0)
		return rc;
	if (parent && against)
		return cli_usage_error("map: --parent and --against: one or the other");
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
	/* --parent: the changes against the snapshot's parent (none: none). */
	if (parent) {
		rc = snapfs_snapshot_get(store, names[0], &snap);
		if (rc == 0 && snap.parent[0])
			against = snap.parent;
	}
	if (rc == 0)
		rc = snapfs_map_svg(store, names[0], against, &svg, &svg_len);
	if (rc == 0 && fwrite(svg, 1, svg_len, out) != svg_len)
		rc = -EIO;
	free(svg);
	if (out != stdout && fclose(out) && !rc)
		rc = -EIO;
	if (rc < 0 && out != stdout)
		unlink(output);
	rc = rc < 0 ? cli_fail(rc, "map") : EXIT_OK;
	snapfs_snapshot_release(&snap);
	snapfs_store_close(store);
	return rc;
}
