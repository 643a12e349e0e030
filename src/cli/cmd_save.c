// SPDX-License-Identifier: MIT
/*
 * snapfs save STORE NAME SOURCE [options]
 */
#include <errno.h>
#include <getopt.h>
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

enum { OPT_FORMAT = 0x100, OPT_PARENT, OPT_KIND, OPT_USAGE, OPT_CODEC, OPT_LEVEL,
       OPT_COMMENT, OPT_LOCK_WAIT, OPT_JSON, OPT_QUIET, OPT_HELP, OPT_OVERLAY, OPT_KEY_FILE };

static const struct option options[] = {
	{ "format", required_argument, NULL, OPT_FORMAT },
	{ "parent", required_argument, NULL, OPT_PARENT },
	{ "overlay", no_argument, NULL, OPT_OVERLAY },
	{ "kind", required_argument, NULL, OPT_KIND },
	{ "usage", required_argument, NULL, OPT_USAGE },
	{ "key-file", required_argument, NULL, OPT_KEY_FILE },
	{ "codec", required_argument, NULL, OPT_CODEC },
	{ "level", required_argument, NULL, OPT_LEVEL },
	{ "comment", required_argument, NULL, OPT_COMMENT },
	{ "lock-wait", required_argument, NULL, OPT_LOCK_WAIT },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "help", no_argument, NULL, OPT_HELP },
	{ 0 },
};

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

/* Parse save's options into opts and c: -1 to go on, else an exit code. */
static int parse_options(int argc, char **argv, struct snapfs_save_opts *opts,
			 struct cli_common *c)
{
	char *end;
	long level;
	int opt, rc;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "qh", options, NULL)) != -1) {
		switch (opt) {
		case OPT_FORMAT:
			opts->format = optarg;
			break;
		case OPT_PARENT:
			opts->parent = optarg;
			break;
		case OPT_OVERLAY:
			opts->overlay = true;
			break;
		case OPT_KIND:
			opts->kind = optarg;
			break;
		case OPT_USAGE:
			opts->usage_path = optarg;
			break;
		case OPT_KEY_FILE:
			opts->key_file = optarg;
			break;
		case OPT_CODEC:
			if (snapfs_codec_parse(optarg, &opts->codec) < 0)
				return cli_usage_error("save: codec '%s': unknown (zstd, lz4 or none)",
						       optarg);
			break;
		case OPT_LEVEL:
			errno = 0;
			level = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || level < 1 || level > 1000)
				return cli_usage_error("save: --level '%s': not a whole number "
						       "(zstd takes 1 to %d, lz4 1 to %d)", optarg,
						       level_max(SNAPFS_CODEC_ZSTD),
						       level_max(SNAPFS_CODEC_LZ4));
			opts->level = (int)level;
			break;
		case OPT_COMMENT:
			opts->comment = optarg;
			break;
		case OPT_LOCK_WAIT:
			rc = cli_parse_lock_wait("save", optarg, c);
			if (rc >= 0)
				return rc;
			break;
		case OPT_JSON:
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
			if (optopt && optopt < 0x100 && optopt != '?')
				return cli_usage_error("save: unknown option '-%c' (usage: snapfs %s)",
						       optopt, usage);
			return cli_usage_error("save: unknown option '%s' (usage: snapfs %s)",
					       argv[optind - 1], usage);
		}
	}
	return -1;
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
