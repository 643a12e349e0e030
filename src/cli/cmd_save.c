// SPDX-License-Identifier: MIT
/*
 * snapfs save STORE NAME SOURCE [options]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"
#include "progress.h"

static const char usage[] =
	"save STORE NAME SOURCE|- [--format raw|elf|criu|gvisor|pid] [--parent NAME] "
	"[--overlay] [--kind KIND] [--usage FILE] [--key-file FILE] [--codec zstd|lz4|none] [--level N] [--comment TEXT] "
	"[--lock-wait SECONDS] [--json] [--quiet]";

static void print_result(const char *name, const struct snapfs_save_result *r, bool json)
{
	if (json) {
		printf("{\"name\":");
		json_string(stdout, name);
		printf(",\"id\":%" PRId64 ",\"file_size\":%" PRIu64 ",\"scanned_bytes\":%" PRIu64
		       ",\"zero_pages\":%" PRIu64 ",\"data_pages\":%" PRIu64
		       ",\"new_pages\":%" PRIu64 ",\"dedup_pages\":%" PRIu64
		       ",\"new_blob_bytes\":%" PRIu64 ",\"ignored_bytes\":%" PRIu64 "}\n",
		       r->id, r->file_size, r->scanned_bytes, r->zero_pages, r->data_pages,
		       r->new_pages, r->dedup_pages, r->new_blob_bytes, r->ignored_bytes);
		return;
	}
	printf("saved '%s': %" PRIu64 " bytes, %" PRIu64 " data pages (%" PRIu64
	       " new, %" PRIu64 " shared), %" PRIu64 " zero pages, %" PRIu64
	       " bytes stored\n",
	       name, r->file_size, r->data_pages, r->new_pages, r->dedup_pages,
	       r->zero_pages, r->new_blob_bytes);
}

static int level_max(enum snapfs_codec codec)
{
	int min, max;

	snapfs_codec_level_range(codec, &min, &max);
	return max;
}

static int parse_codec(const char *cmd, const char *option, const char *value, void *target)
{
	(void)option;
	if (snapfs_codec_parse(value, target) < 0)
		return cli_usage_error("%s: codec '%s': unknown (zstd, lz4 or none)", cmd, value);
	return -1;
}

static int parse_level(const char *cmd, const char *option, const char *value, void *target)
{
	char *end;
	long level;

	errno = 0;
	level = strtol(value, &end, 10);
	if (errno || *end || end == value || level < 1 || level > 1000)
		return cli_usage_error("%s: --%s '%s': not a whole number (zstd takes 1 to %d, "
				       "lz4 1 to %d)", cmd, option, value,
				       level_max(SNAPFS_CODEC_ZSTD), level_max(SNAPFS_CODEC_LZ4));
	*(int *)target = (int)level;
	return -1;
}

/* Parse save's options into opts and c: -1 to go on, else an exit code. */
static int parse_options(int argc, char **argv, struct snapfs_save_opts *opts,
			 struct cli_common *c)
{
	const struct cli_option own[] = {
		CLI_TEXT("format", 0, &opts->format),
		CLI_TEXT("parent", 0, &opts->parent),
		CLI_FLAG("overlay", 0, &opts->overlay),
		CLI_TEXT("kind", 0, &opts->kind),
		CLI_TEXT("usage", 0, &opts->usage_path),
		CLI_TEXT("key-file", 0, &opts->key_file),
		CLI_VALUE("codec", &opts->codec, parse_codec),
		CLI_VALUE("level", &opts->level, parse_level),
		CLI_TEXT("comment", 0, &opts->comment),
		{ 0 },
	};

	return cli_parse(argc, argv, usage, CLI_JSON | CLI_LOCK_WAIT, own, c);
}

/* Check the arguments before any work: -1 to go on, else an exit code. */
static int check_args(int argc, char **argv, const struct snapfs_save_opts *opts)
{
	int rc = cli_check_args(argc, argv, 3, 3, "STORE NAME SOURCE", usage);
	const char *name;

	if (rc >= 0)
		return rc;
	name = argv[optind + 1];
	if (!snapfs_name_valid(name))
		return cli_usage_error("save: snapshot '%s': invalid name: use 1-128 of "
				       "A-Z a-z 0-9 . _ -, not starting with '.' or '-'", name);
	if (strcmp(argv[optind + 2], "-") == 0 && isatty(STDIN_FILENO))
		return cli_usage_error("save '%s': source '-': standard input is a terminal, not "
				       "a memory image (pipe or redirect one into it)", name);
	if (opts->overlay && !opts->parent)
		return cli_usage_error("save '%s': --overlay needs --parent (the snapshot the "
				       "diff file's holes read from)", name);
	if (opts->overlay && opts->format && strcmp(opts->format, "raw") != 0)
		return cli_usage_error("save '%s': --overlay: the diff is a raw memory file, "
				       "not format %s", name, opts->format);
	if (opts->overlay && strcmp(argv[optind + 2], "-") == 0)
		return cli_usage_error("save '%s': --overlay reads a sparse diff file, not "
				       "standard input (its holes would be lost)", name);
	if (opts->comment && !snapfs_comment_valid(opts->comment))
		return cli_usage_error("save '%s': comment: at most %d bytes of UTF-8 text "
				       "without control characters", name, SNAPFS_COMMENT_MAX);
	if (opts->level && !snapfs_codec_level_valid(opts->codec, opts->level)) {
		int min, max;

		snapfs_codec_level_range(opts->codec, &min, &max);
		if (max == 0)
			return cli_usage_error("save '%s': --level %d: codec %s takes no level", name,
					       opts->level, snapfs_codec_name(opts->codec));
		return cli_usage_error("save '%s': --level %d: out of range for codec %s (%d to %d)",
				       name, opts->level, snapfs_codec_name(opts->codec), min, max);
	}
	return -1;
}

int cmd_save(int argc, char **argv)
{
	static char doing[200];
	struct snapfs_save_opts opts = { .codec = SNAPFS_CODEC_ZSTD };
	struct snapfs_save_result result;
	struct cli_common c = { 0 };
	struct progress_bar *bar;
	struct snapfs_store *store;
	const char *name;
	int rc;

	rc = parse_options(argc, argv, &opts, &c);
	if (rc < 0)
		rc = check_args(argc, argv, &opts);
	if (rc >= 0)
		return rc;
	name = argv[optind + 1];
	snprintf(doing, sizeof(doing), "save '%s'", name);
	cli_lock_setup(&c, doing);
	cli_target("save", argv[optind], (const char *const *)argv + optind + 1, 1);
	rc = cli_open_store(argv[optind], 0, &store);
	if (rc)
		return rc;
	bar = progress_bar_new("save", NULL, c.quiet);
	opts.progress = (struct snapfs_progress){ .fn = progress_bar_update, .data = bar,
						  .cancel = &cli_cancel };
	cli_catch_signals();
	rc = snapfs_save(store, name, argv[optind + 2], &opts, &result);
	progress_bar_end(bar, cli_target_text(), rc >= 0);
	if (rc < 0) {
		rc = cli_fail(rc, "save");
		goto out_close;
	}
	if (result.ignored_bytes && !c.quiet)
		cli_warning("%" PRIu64 " bytes of data outside committed usage ranges were "
			    "left out: the snapshot reads zeros there", result.ignored_bytes);
	if (!c.quiet || c.json)
		print_result(name, &result, c.json);
	rc = EXIT_OK;
out_close:
	snapfs_store_close(store);
	return rc;
}
