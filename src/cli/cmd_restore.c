// SPDX-License-Identifier: MIT
/*
 * snapfs restore STORE NAME OUTPUT [--force]
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"

static const char usage[] = "restore STORE NAME OUTPUT [--force] [--quiet]   (OUTPUT - is stdout; "
			    "a terminal only with --force)";

int cmd_restore(int argc, char **argv)
{
	struct snapfs_restore_opts opts = { 0 };
	struct progress_bar *bar;
	struct snapfs_store *store;
	struct cli_common c = { 0 };
	const struct cli_option own[] = {
		CLI_FLAG("force", 'f', &opts.force),
		{ 0 },
	};
	const char *name;
	int rc;

	rc = cli_parse(argc, argv, usage, 0, own, &c);
	if (rc >= 0)
		return rc;
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
	bar = progress_bar_new("restore", NULL, c.quiet);
	opts.progress = (struct snapfs_progress){ .fn = progress_bar_update, .data = bar,
						  .cancel = &cli_cancel };
	cli_catch_signals();
	rc = snapfs_restore(store, name, argv[optind + 2], &opts);
	progress_bar_end(bar, cli_target_text(), rc >= 0);
	rc = rc < 0 ? cli_fail(rc, "restore") : EXIT_OK;
	snapfs_store_close(store);
	return rc;
}
