// SPDX-License-Identifier: MIT
/*
 * The maintenance commands: snapfs gc STORE and snapfs verify STORE [NAME...].
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"
#include "progress.h"

/* The text's figures, named as in struct snapfs_gc_result (doc/snapfs.1). */
static void print_gc_json(const char *store, const struct snapfs_gc_result *r)
{
	printf("{\"store\":");
	json_string(stdout, store);
	printf(",\"blobs_removed\":%" PRIu64 ",\"blob_bytes_removed\":%" PRIu64
	       ",\"packs_removed\":%" PRIu64 ",\"file_bytes_before\":%" PRIu64
	       ",\"file_bytes_after\":%" PRIu64 ",\"removed_purged\":%" PRIu64
	       ",\"removed_kept\":%" PRIu64 ",\"kept_blobs\":%" PRIu64
	       ",\"kept_bytes\":%" PRIu64 ",\"remote_objects_removed\":%" PRIu64
	       ",\"remote_bytes_removed\":%" PRIu64 "}\n", r->blobs_removed,
	       r->blob_bytes_removed, r->packs_removed, r->file_bytes_before, r->file_bytes_after,
	       r->removed_purged, r->removed_kept, r->kept_blobs, r->kept_bytes,
	       r->remote_objects_removed, r->remote_bytes_removed);
}

int cmd_gc(int argc, char **argv)
{
	static const char usage[] = "gc STORE [--lock-wait SECONDS] [--json] [--quiet]";
	struct snapfs_gc_result result;
	struct snapfs_progress progress;
	struct progress_bar *bar;
	struct snapfs_store *store;
	struct cli_common c = { 0 };
	int rc = cli_parse_common(argc, argv, usage, CLI_JSON | CLI_LOCK_WAIT, &c);

	if (rc >= 0)
		return rc;
	rc = cli_check_args(argc, argv, 1, 1, "STORE", usage);
	if (rc >= 0)
		return rc;
	cli_lock_setup(&c, "gc");
	cli_target("gc", argv[optind], NULL, 0);
	rc = cli_open_store(argv[optind], 0, &store);
	if (rc)
		return rc;
	bar = progress_bar_new("gc", "blobs", c.quiet);
	progress = (struct snapfs_progress){ .fn = progress_bar_update, .data = bar,
					     .cancel = &cli_cancel };
	cli_catch_signals();
	rc = snapfs_gc(store, &progress, &result);
	progress_bar_end(bar, cli_target_text(), rc >= 0);
	if (rc < 0) {
		rc = cli_fail(rc, "gc");
	} else if (c.json) {
		print_gc_json(argv[optind], &result);
		rc = EXIT_OK;
	} else {
		if (!c.quiet && result.removed_purged)
			printf("deleted %" PRIu64 " removed snapshots that readers had open\n",
			       result.removed_purged);
		if (!c.quiet && result.removed_kept)
			printf("kept %" PRIu64 " removed snapshots still open by a reader: "
			       "%" PRIu64 " blobs (%" PRIu64 " bytes) stay until they are "
			       "closed\n", result.removed_kept, result.kept_blobs,
			       result.kept_bytes);
		if (!c.quiet && snapfs_store_remote_url(store))
			printf("removed %" PRIu64 " pack objects no index names (%" PRIu64
			       " bytes) from %s\n", result.remote_objects_removed,
			       result.remote_bytes_removed, snapfs_store_remote_url(store));
		else if (!c.quiet)
			printf("removed %" PRIu64 " unused blobs (%" PRIu64 " bytes); store file "
			       "%" PRIu64 " -> %" PRIu64 " bytes\n", result.blobs_removed,
			       result.blob_bytes_removed, result.file_bytes_before,
			       result.file_bytes_after);
		rc = EXIT_OK;
	}
	snapfs_store_close(store);
	return rc;
}

/* Problems kept for --json. */
struct problems {
	char **text;
	size_t count;
	bool keep;
};

static void print_problem(void *data, const char *problem)
{
	struct problems *p = data;
	char **more;

	fprintf(stderr, "snapfs: %s: %s\n", cli_target_text(), problem);
	if (!p->keep)
		return;
	more = realloc(p->text, (p->count + 1) * sizeof(*more));
	if (!more)
		return;
	p->text = more;
	p->text[p->count] = strdup(problem);
	if (p->text[p->count])
		p->count++;
}

static void print_verify_json(const char *store, char **names, size_t name_count,
			      const struct problems *p, uint64_t problems)
{
	printf("{\"store\":");
	json_string(stdout, store);
	printf(",\"snapshots\":[");
	for (size_t i = 0; i < name_count; i++) {
		if (i)
			putchar(',');
		json_string(stdout, names[i]);
	}
	printf("],\"ok\":%s,\"problems\":%" PRIu64 ",\"problem_list\":[",
	       problems ? "false" : "true", problems);
	for (size_t i = 0; i < p->count; i++) {
		if (i)
			putchar(',');
		json_string(stdout, p->text[i]);
	}
	printf("]}\n");
}

int cmd_verify(int argc, char **argv)
{
	static const char usage[] = "verify STORE [NAME...] [--json] [--quiet]";
	struct snapfs_verify_opts opts = { .report = print_problem };
	struct problems kept = { 0 };
	struct progress_bar *bar;
	struct snapfs_store *store;
	uint64_t problems = 0;
	struct cli_common c = { 0 };
	int rc = cli_parse_common(argc, argv, usage, CLI_JSON, &c);

	if (rc >= 0)
		return rc;
	rc = cli_check_args(argc, argv, 1, -1, "STORE NAME...", usage);
	if (rc >= 0)
		return rc;
	kept.keep = c.json;
	opts.report_data = &kept;
	for (int i = optind + 1; i < argc; i++)
		if (!snapfs_name_valid(argv[i]))
			return cli_usage_error("verify: snapshot '%s': invalid name", argv[i]);
	cli_target("verify", argv[optind], (const char *const *)argv + optind + 1,
		   (size_t)(argc - optind - 1));
	rc = snapfs_store_open(argv[optind], SNAPFS_OPEN_READONLY, &store);
	if (rc == -SNAPFS_ECORRUPT || rc == -EIO) {
		/* A database SQLite cannot read is damage, verify's to report. */
		cli_fail(rc, "verify");
		return EXIT_DAMAGE;
	}
	if (rc < 0)
		return cli_fail(rc, argv[optind]);
	bar = progress_bar_new("verify", NULL, c.quiet);
	opts.progress = (struct snapfs_progress){ .fn = progress_bar_update, .data = bar,
						  .cancel = &cli_cancel };
	cli_catch_signals();
	rc = snapfs_verify(store, (const char *const *)argv + optind + 1,
			   (size_t)(argc - optind - 1), &opts, &problems);
	progress_bar_end(bar, cli_target_text(), rc >= 0 && !problems);
	if (rc < 0)
		rc = cli_fail(rc, "verify");
	else if (problems)
		rc = EXIT_DAMAGE;
	else
		rc = EXIT_OK;
	if (rc == EXIT_DAMAGE)
		fprintf(stderr, "snapfs: %s: %" PRIu64 " problem%s found\n", cli_target_text(),
			problems, problems == 1 ? "" : "s");
	if (c.json && (rc == EXIT_OK || rc == EXIT_DAMAGE))
		print_verify_json(argv[optind], argv + optind + 1, (size_t)(argc - optind - 1), &kept,
				  problems);
	else if (rc == EXIT_OK && !c.quiet)
		printf("%s: ok\n", cli_target_text());
	for (size_t i = 0; i < kept.count; i++)
		free(kept.text[i]);
	free(kept.text);
	snapfs_store_close(store);
	return rc;
}
