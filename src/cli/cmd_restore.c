// SPDX-License-Identifier: MIT
/*
 * snapfs restore STORE NAME OUTPUT [--force]
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"

static const char usage[] = "restore STORE NAME OUTPUT [--force] [--quiet]   (OUTPUT - is stdout; "
			    "a terminal only with --force)";

enum { OPT_FORCE = 0x100, OPT_QUIET, OPT_HELP };

static const struct option options[] = {
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "help", no_argument, NULL, OPT_HELP },
	{ 0 },
};

int cmd_restore(int argc, char **argv)
{
	struct snapfs_restore_opts opts = { 0 };
	struct progress_bar *bar;
	struct snapfs_store *store;
	bool quiet = false;
	const char *name;
	int opt, rc;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "fqh", options, NULL)) != -1) {
		switch (opt) {
		case 'f':
		case OPT_FORCE:
			opts.force = true;
			break;
		case 'q':
		case OPT_QUIET:
			quiet = true;
			break;
		case 'h':
		case OPT_HELP:
			printf("usage: snapfs %s\n", usage);
			return EXIT_OK;
		default:
			return cli_usage_error("restore: unknown option '%s' (usage: snapfs %s)",
					       argv[optind - 1], usage);
		}
	}
	rc = cli_check_args(argc, argv, 3, 3, "STORE NAME OUTPUT", usage);
	if (rc >= 0)
		return rc;
	name = argv[optind + 1];
	if (!snapfs_name_valid(name))
		return cli_usage_error("restore: snapshot '%s': invalid name", name);
	if (strcmp(argv[optind + 2], "-") == 0 && isatty(STDOUT_FILENO) && !opts.force)
		return cli_usage_error("restore '%s': standard output is a terminal: refusing to "
				       "write a memory image to it (redirect or pipe it, or use "
				       "--force)", name);
	cli_target("restore", argv[optind], (const char *const *)argv + optind + 1, 1);
	rc = cli_open_store(argv[optind], SNAPFS_OPEN_READONLY, &store);
	if (rc)
		return rc;
	bar = progress_bar_new("restore", NULL, quiet);
	opts.progress = (struct snapfs_progress){ .fn = progress_bar_update, .data = bar,
						  .cancel = &cli_cancel };
	cli_catch_signals();
	rc = snapfs_restore(store, name, argv[optind + 2], &opts);
	progress_bar_end(bar, cli_target_text(), rc >= 0);
	rc = rc < 0 ? cli_fail(rc, "restore") : EXIT_OK;
	snapfs_store_close(store);
	return rc;
}
