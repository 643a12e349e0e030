// SPDX-License-Identifier: MIT
/*
 * The commands about the store and its snapshots' metadata: init, list,
 * info and rm.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"

int cmd_init(int argc, char **argv)
{
	static const char usage[] = "init STORE";
	struct cli_common c = { 0 };
	int rc = cli_parse_common(argc, argv, usage, 0, &c);

	if (rc >= 0)
		return rc;
	rc = cli_check_args(argc, argv, 1, 1, "STORE", usage);
	if (rc >= 0)
		return rc;
	if (!argv[optind][0])
		return cli_usage_error("init: store '': empty path (usage: snapfs %s)", usage);
	cli_target("init", argv[optind], NULL, 0);
	rc = snapfs_store_create(argv[optind]);
	if (rc < 0)
		return cli_fail(rc, argv[optind]);
	if (!c.quiet)
		printf("initialised store '%s'\n", argv[optind]);
	return EXIT_OK;
}

int cmd_list(int argc, char **argv)
{
	static const char usage[] = "list STORE [--json]";
	struct cli_common c = { 0 };
	struct snapfs_snapshot *snaps = NULL;
	struct snapfs_store *store;
	size_t count = 0;
	int rc = cli_parse_common(argc, argv, usage, CLI_JSON, &c);

	if (rc >= 0)
		return rc;
	rc = cli_check_args(argc, argv, 1, 1, "STORE", usage);
	if (rc >= 0)
		return rc;
	cli_target("list", argv[optind], NULL, 0);
	rc = cli_open_store(argv[optind], SNAPFS_OPEN_READONLY, &store);
	if (rc)
		return rc;
	rc = snapfs_snapshot_list(store, &snaps, &count);
	if (rc < 0) {
		rc = cli_fail(rc, "list");
		goto out_close;
	}
	if (c.json)
		fputc('[', stdout);
	for (size_t i = 0; i < count; i++) {
		const struct snapfs_snapshot *s = &snaps[i];

		if (c.json) {
			if (i)
				fputc(',', stdout);
			json_snapshot(stdout, s);
			continue;
		}
		printf("%s\t%s\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%s\t%s\n", s->name,
		       s->created_at, s->file_size, s->data_bytes, s->stored_bytes,
		       s->parent[0] ? s->parent : "-", s->comment ? s->comment : "-");
	}
	if (c.json)
		fputs("]\n", stdout);
	rc = EXIT_OK;
	snapfs_snapshot_list_free(snaps, count);
out_close:
	snapfs_store_close(store);
	return rc;
}

static void print_store_summary(const struct snapfs_store_summary *s, bool json)
{
	/* dedup: data pages the snapshots map per page stored once;
	 * reduction: data bytes per byte of blob (dedup and compression). */
	double unique = (double)s->unique_pages * SNAPFS_PAGE_SIZE;
	double dedup = unique > 0 ? (double)s->data_bytes / unique : 0;
	double ratio = s->blob_bytes ? (double)s->data_bytes / (double)s->blob_bytes : 0;

	if (json) {
		printf("{\"snapshot_count\":%" PRIu64 ",\"logical_bytes\":%" PRIu64
		       ",\"data_bytes\":%" PRIu64 ",\"unique_pages\":%" PRIu64
		       ",\"blob_count\":%" PRIu64 ",\"blob_bytes\":%" PRIu64
		       ",\"file_bytes\":%" PRIu64 ",\"dedup_ratio\":%.3f"
		       ",\"reduction_ratio\":%.3f}\n",
		       s->snapshot_count, s->logical_bytes, s->data_bytes, s->unique_pages,
		       s->blob_count, s->blob_bytes, s->file_bytes, dedup, ratio);
		return;
	}
	printf("snapshot_count: %" PRIu64 "\nlogical_bytes: %" PRIu64
	       "\ndata_bytes: %" PRIu64 "\nunique_pages: %" PRIu64
	       "\nblob_count: %" PRIu64 "\nblob_bytes: %" PRIu64
	       "\nfile_bytes: %" PRIu64 "\ndedup_ratio: %.3f\nreduction_ratio: %.3f\n",
	       s->snapshot_count, s->logical_bytes, s->data_bytes, s->unique_pages,
	       s->blob_count, s->blob_bytes, s->file_bytes, dedup, ratio);
}


/* "working_set_pages: N" (pages recorded with mount -o record). */
static int print_working_set_pages(struct snapfs_store *store, int64_t id)
{
	struct snapfs_page_run *runs;
	uint64_t pages = 0;
	size_t count;
	int rc;

	rc = snapfs_working_set_get(store, id, &runs, &count);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < count; i++)
		pages += runs[i].page_count;
	free(runs);
	printf("working_set_pages: %" PRIu64 "\n", pages);
	return 0;
}

int cmd_info(int argc, char **argv)
{
	static const char usage[] = "info STORE [NAME] [--json]";
	struct snapfs_store_summary summary;
	struct cli_common c = { 0 };
	struct snapfs_snapshot snap;
	struct snapfs_store *store;
	const char *name;
	int rc = cli_parse_common(argc, argv, usage, CLI_JSON, &c);

	if (rc >= 0)
		return rc;
	rc = cli_check_args(argc, argv, 1, 2, "STORE NAME", usage);
	if (rc >= 0)
		return rc;
	name = argc - optind == 2 ? argv[optind + 1] : NULL;
	if (name && !snapfs_name_valid(name))
		return cli_usage_error("info: snapshot '%s': invalid name", name);
	cli_target("info", argv[optind], (const char *const *)argv + optind + 1, name ? 1 : 0);
	rc = cli_open_store(argv[optind], SNAPFS_OPEN_READONLY, &store);
	if (rc)
		return rc;
	if (!name) {
		rc = snapfs_store_summary(store, &summary);
		if (rc < 0) {
			rc = cli_fail(rc, "info");
			goto out_close;
		}
		print_store_summary(&summary, c.json);
		rc = EXIT_OK;
		goto out_close;
	}
	rc = snapfs_snapshot_get(store, name, &snap);
	if (rc == 0) {
		rc = snapfs_snapshot_check(store, &snap);
		if (rc < 0)
			snapfs_snapshot_release(&snap);
	}
	if (rc < 0) {
		rc = cli_fail(rc, "info");
		goto out_close;
	}
	if (c.json) {
		json_snapshot(stdout, &snap);
		fputc('\n', stdout);
		rc = EXIT_OK;
	} else {
		char *text;
		size_t len;

		rc = snapfs_info_text(&snap, &text, &len);
		if (rc == 0) {
			fwrite(text, 1, len, stdout);
			free(text);
			rc = print_working_set_pages(store, snap.id);
		}
		rc = rc < 0 ? cli_fail(rc, "info") : EXIT_OK;
	}
	snapfs_snapshot_release(&snap);
out_close:
	snapfs_store_close(store);
	return rc;
}

int cmd_rm(int argc, char **argv)
{
	static const char usage[] = "rm STORE NAME... [--lock-wait SECONDS] [--json]";
	static char doing[200];
	struct cli_common c = { 0 };
	struct snapfs_store *store;
	int rc = cli_parse_common(argc, argv, usage, CLI_JSON | CLI_LOCK_WAIT, &c);

	if (rc >= 0)
		return rc;
	rc = cli_check_args(argc, argv, 2, -1, "STORE NAME...", usage);
	if (rc >= 0)
		return rc;
	for (int i = optind + 1; i < argc; i++)
		if (!snapfs_name_valid(argv[i]))
			return cli_usage_error("rm: snapshot '%s': invalid name", argv[i]);
	if (argc - optind > 2)
		snprintf(doing, sizeof(doing), "rm '%s' and %d more", argv[optind + 1],
			 argc - optind - 2);
	else
		snprintf(doing, sizeof(doing), "rm '%s'", argv[optind + 1]);
	cli_lock_setup(&c, doing);
	cli_target("rm", argv[optind], (const char *const *)argv + optind + 1,
		   (size_t)(argc - optind - 1));
	rc = cli_open_store(argv[optind], 0, &store);
	if (rc)
		return rc;
	rc = snapfs_snapshot_remove(store, (const char *const *)argv + optind + 1,
				    (size_t)(argc - optind - 1));
	if (rc < 0) {
		rc = cli_fail(rc, "rm");
	} else {
		if (c.json) {
			/* removed: the names; still_open: how many of them a
			 * reader holds (hidden, pages kept until closed). */
			printf("{\"store\":");
			json_string(stdout, argv[optind]);
			printf(",\"removed\":[");
			for (int i = optind + 1; i < argc; i++) {
				if (i > optind + 1)
					putchar(',');
				json_string(stdout, argv[i]);
			}
			printf("],\"still_open\":%d}\n", rc);
		}
		if (rc > 0 && !c.quiet)
			cli_warning("%d snapshot%s still open by a reader: gone from listings "
				    "now, pages kept until closed (then run 'snapfs gc')", rc,
				    rc == 1 ? "" : "s");
		rc = EXIT_OK;
	}
	snapfs_store_close(store);
	return rc;
}

int cmd_rename(int argc, char **argv)
{
	static const char usage[] = "rename STORE OLD NEW [--lock-wait SECONDS]";
	static char doing[200];
	struct cli_common c = { 0 };
	struct snapfs_store *store;
	int rc = cli_parse_common(argc, argv, usage, CLI_LOCK_WAIT, &c);

	if (rc >= 0)
		return rc;
	rc = cli_check_args(argc, argv, 3, 3, "STORE OLD NEW", usage);
	if (rc >= 0)
		return rc;
	if (!snapfs_name_valid(argv[optind + 1]))
		return cli_usage_error("rename: snapshot '%s': invalid name", argv[optind + 1]);
	if (!snapfs_name_valid(argv[optind + 2]))
		return cli_usage_error("rename '%s': new name '%s': invalid name: use 1-128 of "
				       "A-Z a-z 0-9 . _ -, not starting with '.' or '-'",
				       argv[optind + 1], argv[optind + 2]);
	snprintf(doing, sizeof(doing), "rename '%s'", argv[optind + 1]);
	cli_lock_setup(&c, doing);
	cli_target("rename", argv[optind], (const char *const *)argv + optind + 1, 1);
	rc = cli_open_store(argv[optind], 0, &store);
	if (rc)
		return rc;
	rc = snapfs_snapshot_rename(store, argv[optind + 1], argv[optind + 2]);
	if (rc < 0) {
		rc = cli_fail(rc, "rename");
	} else {
		if (!c.quiet)
			printf("renamed '%s' to '%s'\n", argv[optind + 1], argv[optind + 2]);
		rc = EXIT_OK;
	}
	snapfs_store_close(store);
	return rc;
}

/* snapfs workingset STORE NAME [--clear] [--json]: the recorded working
 * set, one run a line in first-touch order, "0xSTART 0xEND" (byte offsets,
 * half-open); --clear removes it. */
int cmd_workingset(int argc, char **argv)
{
	static const char usage[] = "workingset STORE NAME [--clear] [--json] [--lock-wait SECONDS]";
	static char doing[200];
	struct cli_common c = { 0 };
	struct snapfs_page_run *runs = NULL;
	struct snapfs_snapshot snap;
	struct snapfs_store *store;
	bool clear = false;
	size_t count = 0;
	int rc;

	/* --clear is this command's own: take it out before the common
	 * parse. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--clear") == 0) {
			clear = true;
			for (int j = i; j < argc - 1; j++)
				argv[j] = argv[j + 1];
			argc--;
			i--;
		}
	}
	rc = cli_parse_common(argc, argv, usage, CLI_JSON | CLI_LOCK_WAIT, &c);
	if (rc >= 0)
		return rc;
	rc = cli_check_args(argc, argv, 2, 2, "STORE NAME", usage);
	if (rc >= 0)
		return rc;
	if (!snapfs_name_valid(argv[optind + 1]))
		return cli_usage_error("workingset: snapshot '%s': invalid name", argv[optind + 1]);
	snprintf(doing, sizeof(doing), "workingset '%s'", argv[optind + 1]);
	cli_lock_setup(&c, doing);
	cli_target("workingset", argv[optind], (const char *const *)argv + optind + 1, 1);
	rc = cli_open_store(argv[optind], clear ? 0 : SNAPFS_OPEN_READONLY, &store);
	if (rc)
		return rc;
	rc = snapfs_snapshot_get(store, argv[optind + 1], &snap);
	if (rc < 0) {
		rc = cli_fail(rc, "workingset");
		goto out_close;
	}
	if (clear)
		rc = snapfs_working_set_save(store, snap.id, NULL, 0);
	else
		rc = snapfs_working_set_get(store, snap.id, &runs, &count);
	snapfs_snapshot_release(&snap);
	if (rc < 0) {
		rc = cli_fail(rc, "workingset");
		goto out_close;
	}
	if (c.json)
		fputc('[', stdout);
	for (size_t i = 0; i < count; i++) {
		uint64_t start = runs[i].first_page * SNAPFS_PAGE_SIZE;
		uint64_t end = start + runs[i].page_count * SNAPFS_PAGE_SIZE;

		if (c.json)
			printf("%s{\"start\":%" PRIu64 ",\"end\":%" PRIu64 "}",
			       i ? "," : "", start, end);
		else
			printf("0x%" PRIx64 " 0x%" PRIx64 "\n", start, end);
	}
	if (c.json)
		fputs("]\n", stdout);
	free(runs);
	rc = EXIT_OK;
out_close:
	snapfs_store_close(store);
	return rc;
}
