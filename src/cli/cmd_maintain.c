// SPDX-License-Identifier: MIT
/*
 * The maintenance commands: snapfs gc STORE and snapfs verify STORE [NAME...].
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "progress.h"

int cmd_gc(int argc, char **argv)
{
	static const char usage[] = "gc STORE [--lock-wait SECONDS] [--quiet]";
	struct snapfs_gc_result result;
	struct snapfs_progress progress;
	struct progress_bar *bar;
	struct snapfs_store *store;
	struct cli_common c = { 0 };
	int rc = cli_parse_common(argc, argv, usage, CLI_LOCK_WAIT, &c);

	if (rc >= 0)
		return rc;
	if (argc - optind != 1)
		return cli_usage_error("gc: expected STORE (usage: snapfs %s)", usage);
	cli_lock_setup(&c, "gc");
	rc = cli_open_store(argv[optind], 0, &store);
	if (rc)
		return rc;
	bar = progress_bar_new("gc", c.quiet);
	progress = (struct snapfs_progress){ .fn = progress_bar_update, .data = bar,
					     .cancel = &cli_cancel };
	cli_catch_signals();
	rc = snapfs_gc(store, &progress, &result);
	progress_bar_free(bar);
	if (rc < 0) {
		rc = cli_fail(rc, "gc");
	} else {
		if (!c.quiet && result.removed_purged)
			printf("deleted %" PRIu64 " removed snapshots that readers had open\n",
			       result.removed_purged);
		if (!c.quiet && result.removed_kept)
			printf("kept %" PRIu64 " removed snapshots still open by a reader: "
			       "%" PRIu64 " blobs (%" PRIu64 " bytes) stay until they are "
			       "closed\n", result.removed_kept, result.kept_blobs,
			       result.kept_bytes);
		if (!c.quiet)
			printf("removed %" PRIu64 " unused blobs (%" PRIu64 " bytes); store file "
			       "%" PRIu64 " -> %" PRIu64 " bytes\n", result.blobs_removed,
			       result.blob_bytes_removed, result.file_bytes_before,
			       result.file_bytes_after);
		rc = EXIT_OK;
	}
	snapfs_store_close(store);
	return rc;
}

static void print_problem(void *data, const char *problem)
{
	(void)data;
	fprintf(stderr, "snapfs: verify: %s\n", problem);
}

int cmd_verify(int argc, char **argv)
{
	static const char usage[] = "verify STORE [NAME...] [--quiet]";
	struct snapfs_verify_opts opts = { .report = print_problem };
	struct progress_bar *bar;
	struct snapfs_store *store;
	uint64_t problems = 0;
	struct cli_common c = { 0 };
	int rc = cli_parse_common(argc, argv, usage, 0, &c);

	if (rc >= 0)
		return rc;
	if (argc - optind < 1)
		return cli_usage_error("verify: expected STORE [NAME...] (usage: snapfs %s)", usage);
	for (int i = optind + 1; i < argc; i++)
		if (!snapfs_name_valid(argv[i]))
			return cli_usage_error("verify: snapshot '%s': invalid name", argv[i]);
	rc = snapfs_store_open(argv[optind], SNAPFS_OPEN_READONLY, &store);
	if (rc == -SNAPFS_ECORRUPT || rc == -EIO) {
		/* A database SQLite cannot read is damage, verify's to report. */
		fprintf(stderr, "snapfs: verify: %s\n", snapfs_errmsg());
		return EXIT_DAMAGE;
	}
	if (rc < 0)
		return cli_fail(rc, argv[optind]);
	bar = progress_bar_new("verify", c.quiet);
	opts.progress = (struct snapfs_progress){ .fn = progress_bar_update, .data = bar,
						  .cancel = &cli_cancel };
	cli_catch_signals();
	rc = snapfs_verify(store, (const char *const *)argv + optind + 1,
			   (size_t)(argc - optind - 1), &opts, &problems);
	progress_bar_free(bar);
	if (rc < 0)
		rc = cli_fail(rc, "verify");
	else if (problems)
		rc = EXIT_DAMAGE;
	else
		rc = EXIT_OK;
	if (rc == EXIT_DAMAGE)
		fprintf(stderr, "snapfs: verify '%s': %" PRIu64 " problem%s found\n", argv[optind],
			problems, problems == 1 ? "" : "s");
	else if (rc == EXIT_OK && !c.quiet)
		printf("verify '%s': ok\n", argv[optind]);
	snapfs_store_close(store);
	return rc;
}
