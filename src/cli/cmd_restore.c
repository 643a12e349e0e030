// SPDX-License-Identifier: MIT
/*
 * snapfs restore STORE NAME OUTPUT [--force] and snapfs export STORE NAME
 * --format raw|elf OUTPUT [--force]: a snapshot's memory file, or (export
 * --format elf) its core file, written out.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"

static const char usage[] = "restore STORE NAME OUTPUT [--force] [--quiet]   (OUTPUT - is stdout; "
			    "a terminal only with --force)";

static const char export_usage[] = "export STORE NAME --format raw|elf OUTPUT [--force] [--quiet]   "
				   "(elf: the snapshot's core file, as NAME/core in the mount; "
				   "raw: what restore writes)";

enum { OPT_FORCE = 0x100, OPT_QUIET, OPT_HELP, OPT_FORMAT };

static const struct option options[] = {
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "format", required_argument, NULL, OPT_FORMAT },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "help", no_argument, NULL, OPT_HELP },
	{ 0 },
};

/* restore, or export (format non-NULL once parsed). */
static int run(int argc, char **argv, const char *cmd, const char *use)
{
	struct snapfs_restore_opts opts = { 0 };
	struct progress_bar *bar;
	struct snapfs_store *store;
	const char *name, *format = NULL;
	bool quiet = false, export = strcmp(cmd, "export") == 0;
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
		case OPT_FORMAT:
			if (!export)
				goto out_unknown;
			format = optarg;
			break;
		case 'h':
		case OPT_HELP:
			printf("usage: snapfs %s\n", use);
			return EXIT_OK;
		default:
			goto out_unknown;
		}
	}
	rc = cli_check_args(argc, argv, 3, 3, "STORE NAME OUTPUT", use);
	if (rc >= 0)
		return rc;
	name = argv[optind + 1];
	if (!snapfs_name_valid(name))
		return cli_usage_error("%s: snapshot '%s': invalid name", cmd, name);
	if (export && !format)
		return cli_usage_error("export: --format raw|elf is needed (usage: snapfs %s)", use);
	if (export && strcmp(format, "raw") != 0 && strcmp(format, "elf") != 0)
		return cli_usage_error("export: unknown format '%s' (raw or elf)", format);
	if (strcmp(argv[optind + 2], "-") == 0 && isatty(STDOUT_FILENO) && !opts.force)
		return cli_usage_error("%s '%s': standard output is a terminal: refusing to "
				       "write a memory image to it (redirect or pipe it, or use "
				       "--force)", cmd, name);
	cli_target(cmd, argv[optind], (const char *const *)argv + optind + 1, 1);
	rc = cli_open_store(argv[optind], SNAPFS_OPEN_READONLY, &store);
	if (rc)
		return rc;
	bar = progress_bar_new(cmd, NULL, quiet);
	opts.progress = (struct snapfs_progress){ .fn = progress_bar_update, .data = bar,
						  .cancel = &cli_cancel };
	cli_catch_signals();
	rc = export ? snapfs_export(store, name, format, argv[optind + 2], &opts)
		    : snapfs_restore(store, name, argv[optind + 2], &opts);
	progress_bar_end(bar, cli_target_text(), rc >= 0);
	rc = rc < 0 ? cli_fail(rc, cmd) : EXIT_OK;
	snapfs_store_close(store);
	return rc;

out_unknown:
	return cli_usage_error("%s: unknown option '%s' (usage: snapfs %s)", cmd,
			       argv[optind - 1], use);
}

int cmd_restore(int argc, char **argv)
{
	return run(argc, argv, "restore", usage);
}

int cmd_export(int argc, char **argv)
{
	return run(argc, argv, "export", export_usage);
}
