// SPDX-License-Identifier: MIT
/*
 * snapfs export STORE NAME --format FORMAT OUTPUT [--force]
 *
 * Writes a snapshot out in another program's format. Each format is one
 * row of the table below: its name, what OUTPUT is, and the library call
 * that writes it.
 */
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

/* --help: the usage and the formats. */
static int help(const char *cmd, const char *option, const char *value, void *target)
{
	(void)cmd, (void)option, (void)value, (void)target;
	print_help();
	return EXIT_OK;
}

int cmd_export(int argc, char **argv)
{
	struct snapfs_export_opts opts = { 0 };
	const struct export_format *f = NULL;
	const char *format = NULL, *name;
	struct progress_bar *bar;
	struct snapfs_store *store;
	struct cli_common c = { 0 };
	const struct cli_option own[] = {
		CLI_TEXT("format", 0, &format),
		CLI_FLAG("force", 'f', &opts.force),
		{ "help", 'h', false, NULL, help },
		{ 0 },
	};
	int rc;

	rc = cli_parse(argc, argv, usage, 0, own, &c);
	if (rc >= 0)
		return rc;
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
	bar = progress_bar_new("export", NULL, c.quiet);
	opts.progress = (struct snapfs_progress){ .fn = progress_bar_update, .data = bar,
						  .cancel = &cli_cancel };
	cli_catch_signals();
	rc = f->run(store, name, argv[optind + 2], &opts);
	progress_bar_end(bar, cli_target_text(), rc >= 0);
	rc = rc < 0 ? cli_fail(rc, "export") : EXIT_OK;
	snapfs_store_close(store);
	return rc;
}
