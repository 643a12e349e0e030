// SPDX-License-Identifier: MIT
/*
 * snapfs map STORE NAME [--parent | --against OTHER] [-o FILE]: the SVG that
 * libsnapfs draws (snapfs_map_svg(), the same bytes as the mount's
 * NAME/map.svg), written out.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char usage[] = "map STORE NAME [--parent | --against OTHER] [-o|--output FILE]   (an SVG picture "
			    "of the address space; standard output by default)";

enum { OPT_AGAINST = 0x100, OPT_PARENT, OPT_OUTPUT, OPT_QUIET, OPT_HELP };

static const struct option options[] = {
	{ "against", required_argument, NULL, OPT_AGAINST },
	{ "parent", no_argument, NULL, OPT_PARENT },
	{ "output", required_argument, NULL, OPT_OUTPUT },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "help", no_argument, NULL, OPT_HELP },
	{ 0 },
};

int cmd_map(int argc, char **argv)
{
	const char *against = NULL, *output = NULL, *names[2];
	struct snapfs_snapshot snap = { 0 };
	bool parent = false;
	char *svg = NULL;
	size_t svg_len = 0;
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
		case OPT_PARENT:
			parent = true;
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
