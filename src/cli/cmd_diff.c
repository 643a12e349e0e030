// SPDX-License-Identifier: MIT
/*
 * snapfs diff STORE NAME_A NAME_B [--json]
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"

static const char usage[] = "diff STORE NAME_A NAME_B [--json]";

struct diff_print {
	bool json;
	uint64_t ranges;
};

static int print_range(void *data, uint64_t start, uint64_t end,
		       enum snapfs_diff_status status)
{
	struct diff_print *p = data;

	if (p->json)
		printf("%s{\"start\":%" PRIu64 ",\"end\":%" PRIu64 ",\"status\":\"%s\"}",
		       p->ranges ? "," : "", start, end, snapfs_diff_status_name(status));
	else
		printf("0x%" PRIx64 " 0x%" PRIx64 " %s\n", start, end,
		       snapfs_diff_status_name(status));
	p->ranges++;
	return 0;
}

int cmd_diff(int argc, char **argv)
{
	struct diff_print print = { 0 };
	struct cli_common c = { 0 };
	struct snapfs_store *store;
	int rc;

	rc = cli_parse_common(argc, argv, usage, CLI_JSON, &c);
	if (rc >= 0)
		return rc;
	print.json = c.json;
	rc = cli_check_args(argc, argv, 3, 3, "STORE NAME_A NAME_B", usage);
	if (rc >= 0)
		return rc;
	for (int i = optind + 1; i < argc; i++)
		if (!snapfs_name_valid(argv[i]))
			return cli_usage_error("diff: snapshot '%s': invalid name", argv[i]);
	cli_target("diff", argv[optind], (const char *const *)argv + optind + 1, 2);
	rc = cli_open_store(argv[optind], SNAPFS_OPEN_READONLY, &store);
	if (rc)
		return rc;
	if (print.json)
		fputc('[', stdout);
	rc = snapfs_diff(store, argv[optind + 1], argv[optind + 2], print_range, &print);
	if (print.json)
		fputs("]\n", stdout);
	rc = rc < 0 ? cli_fail(rc, "diff") : EXIT_OK;
	snapfs_store_close(store);
	return rc;
}
