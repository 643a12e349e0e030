// SPDX-License-Identifier: MIT
/*
 * The options most commands share (--json, --quiet, --help), parsed in one
 * place.
 */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"

enum { OPT_JSON = 0x100, OPT_QUIET, OPT_HELP };

static const struct option common_options[] = {
	{ "json", no_argument, NULL, OPT_JSON },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "help", no_argument, NULL, OPT_HELP },
	{ 0 },
};

int cli_parse_common(int argc, char **argv, const char *usage, bool json_ok,
			struct cli_common *c)
{
	int opt;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "qh", common_options, NULL)) != -1) {
		switch (opt) {
		case OPT_JSON:
			if (!json_ok)
				return cli_usage_error("%s: unknown option '--json'", argv[0]);
			c->json = true;
			break;
		case 'q':
		case OPT_QUIET:
			c->quiet = true;
			break;
		case 'h':
		case OPT_HELP:
			printf("usage: snapfs %s\n", usage);
			return EXIT_OK;
		default:
			return cli_usage_error("%s: unknown option '%s' (usage: snapfs %s)",
					       argv[0], argv[optind - 1], usage);
		}
	}
	return -1;
}
