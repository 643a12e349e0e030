// SPDX-License-Identifier: MIT
/*
 * snapfs export STORE NAME --format FORMAT OUTPUT [--force]
 *
 * Writes a snapshot out in another program's format. Each format is one
 * row of the table below: its name, what OUTPUT is, and the library call
 * that writes it.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "progress.h"

static const char usage[] =
	"export STORE NAME --format elf|gvisor|raw OUTPUT [--force] [--quiet]";

static int export_raw(struct snapfs_store *store, const char *name, const char *output,
		      const struct snapfs_export_opts *opts)
{
	struct snapfs_restore_opts r = { .force = opts->force, .progress = opts->progress };

	return snapfs_restore(store, name, output, &r);
}

static int export_elf(struct snapfs_store *store, const char *name, const char *output,
		      const struct snapfs_export_opts *opts)
{
	struct snapfs_restore_opts r = { .force = opts->force, .progress = opts->progress };

	return snapfs_export(store, name, "elf", output, &r);
}

static const struct export_format {
	const char *name;
	const char *output;        /* what OUTPUT names, for --help */
	int (*run)(struct snapfs_store *store, const char *name, const char *output,
		   const struct snapfs_export_opts *opts);
} formats[] = {
	{ "elf", "a process snapshot's ELF core (NAME/core in the mount)", export_elf },
	{ "gvisor", "a directory: pages_meta.img and pages.img", snapfs_export_gvisor },
	{ "raw", "the memory file (as restore writes it)", export_raw },
};

static const struct export_format *format_named(const char *name)
{
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (strcmp(name, formats[i].name) == 0)
			return &formats[i];
	return NULL;
}

static void print_help(void)
{
	printf("usage: snapfs %s\n\nformats:\n", usage);
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		printf("  %-8s OUTPUT is %s\n", formats[i].name, formats[i].output);
}

enum { OPT_FORMAT = 0x100, OPT_FORCE, OPT_QUIET, OPT_HELP };

static const struct option options[] = {
	{ "format", required_argument, NULL, OPT_FORMAT },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "help", no_argument, NULL, OPT_HELP },
	{ 0 },
};

int cmd_export(int argc, char **argv)
{
	struct snapfs_export_opts opts = { 0 };
	const struct export_format *f = NULL;
	const char *format = NULL, *name;
	struct progress_bar *bar;
	struct snapfs_store *store;
	bool quiet = false;
	int opt, rc;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "fqh", options, NULL)) != -1) {
		switch (opt) {
		case OPT_FORMAT:
			format = optarg;
			break;
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
			print_help();
			return EXIT_OK;
		default:
			return cli_usage_error("export: unknown option '%s' (usage: snapfs %s)",
					       argv[optind - 1], usage);
		}
	}
	rc = cli_check_args(argc, argv, 3, 3, "STORE NAME OUTPUT", usage);
	if (rc >= 0)
		return rc;
	name = argv[optind + 1];
	if (!snapfs_name_valid(name))
		return cli_usage_error("export: snapshot '%s': invalid name", name);
	if (!format)
		return cli_usage_error("export '%s': --format is needed (elf, gvisor or raw)", name);
	f = format_named(format);
	if (!f)
		return cli_usage_error("export '%s': format '%s': unknown (elf, gvisor or raw)", name,
				       format);
	if (strcmp(argv[optind + 2], "-") == 0)
		return cli_usage_error("export '%s': OUTPUT '-': export writes files (restore "
				       "writes standard output)", name);
	cli_target("export", argv[optind], (const char *const *)argv + optind + 1, 1);
	rc = cli_open_store(argv[optind], SNAPFS_OPEN_READONLY, &store);
	if (rc)
		return rc;
	bar = progress_bar_new("export", NULL, quiet);
	opts.progress = (struct snapfs_progress){ .fn = progress_bar_update, .data = bar,
						  .cancel = &cli_cancel };
	cli_catch_signals();
	rc = f->run(store, name, argv[optind + 2], &opts);
	progress_bar_end(bar, cli_target_text(), rc >= 0);
	rc = rc < 0 ? cli_fail(rc, "export") : EXIT_OK;
	snapfs_store_close(store);
	return rc;
}
