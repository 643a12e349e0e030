// SPDX-License-Identifier: MIT
/*
 * The commands about the store and its snapshots' metadata: init, list,
 * info and rm.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"
#include "table.h"

int cmd_init(int argc, char **argv)
{
	static const char usage[] = "init STORE [--remote s3://BUCKET/PREFIX]";
	struct cli_common c = { 0 };
	const char *url = NULL;
	const struct cli_option own[] = {
		CLI_TEXT("remote", 0, &url),
		{ 0 },
	};
	int rc = cli_parse(argc, argv, usage, 0, own, &c);

	if (rc >= 0)
		return rc;
	rc = cli_check_args(argc, argv, 1, 1, "STORE", usage);
	if (rc >= 0)
		return rc;
	if (!argv[optind][0])
		return cli_usage_error("init: store '': empty path (usage: snapfs %s)", usage);
	if (url && strncmp(url, "s3://", 5) != 0)
		return cli_usage_error("init: --remote '%s': not an s3://BUCKET/PREFIX address", url);
	cli_target("init", argv[optind], NULL, 0);
	rc = url ? snapfs_store_create_remote(argv[optind], url) : snapfs_store_create(argv[optind]);
	if (rc < 0)
		return cli_fail(rc, argv[optind]);
	if (!c.quiet && url)
		printf("initialised store '%s' on %s\n", argv[optind], url);
	else if (!c.quiet)
		printf("initialised store '%s'\n", argv[optind]);
	return EXIT_OK;
}

int cmd_pull(int argc, char **argv)
{
	static const char usage[] = "pull STORE";
	struct cli_common c = { 0 };
	struct snapfs_store *store;
	int rc = cli_parse_common(argc, argv, usage, CLI_LOCK_WAIT, &c);

	if (rc >= 0)
		return rc;
	rc = cli_check_args(argc, argv, 1, 1, "STORE", usage);
	if (rc >= 0)
		return rc;
	cli_target("pull", argv[optind], NULL, 0);
	cli_lock_setup(&c, "pull");
	/* Opening a remote store pulls its bucket's newest index. */
	rc = snapfs_store_open(argv[optind], 0, &store);
	if (rc < 0)
		return cli_fail(rc, argv[optind]);
	if (!snapfs_store_remote_url(store)) {
		snapfs_store_close(store);
		return cli_fail(-EINVAL, "pull: not a remote store (made without --remote)");
	}
	if (!c.quiet)
		printf("store '%s': generation %" PRId64 " of %s\n", argv[optind],
		       snapfs_store_remote_generation(store), snapfs_store_remote_url(store));
	snapfs_store_close(store);
	return EXIT_OK;
}

/* size as text: exact bytes, or human units. */
static void size_text(char *buf, size_t cap, uint64_t size, bool exact)
{
	if (exact)
		snprintf(buf, cap, "%" PRIu64, size);
	else
		human_size(buf, cap, (double)size);
}

/* The table of list: a header named as the --json fields, one snapshot a
 * line, sizes in human units unless exact. */
static int print_list(const struct snapfs_snapshot *snaps, size_t count, bool exact)
{
	static const char *const header[] = { "name", "created_at", "file_size", "data_bytes",
					       "stored_bytes", "parent", "comment" };
	static const bool right[] = { false, false, true, true, true, false, false };
	struct table *t = table_new(7, header, right);
	int rc = t ? 0 : -ENOMEM;

	for (size_t i = 0; i < count && rc == 0; i++) {
		const struct snapfs_snapshot *s = &snaps[i];
		char fs[32], db[32], sb[32];
		const char *row[7] = { s->name, s->created_at, fs, db, sb,
				       s->parent[0] ? s->parent : "-", s->comment ? s->comment : "-" };

		size_text(fs, sizeof(fs), s->file_size, exact);
		size_text(db, sizeof(db), s->data_bytes, exact);
		size_text(sb, sizeof(sb), s->stored_bytes, exact);
		rc = table_add(t, row);
	}
	if (rc == 0)
		table_print(t, stdout);
	table_free(t);
	return rc;
}

int cmd_list(int argc, char **argv)
{
	static const char usage[] = "list STORE [--bytes] [--json]";
	struct cli_common c = { 0 };
	struct snapfs_snapshot *snaps = NULL;
	struct snapfs_store *store;
	size_t count = 0;
	int rc = cli_parse_common(argc, argv, usage, CLI_JSON | CLI_BYTES, &c);

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
	if (c.json) {
		fputc('[', stdout);
		for (size_t i = 0; i < count; i++) {
			if (i)
				fputc(',', stdout);
			json_snapshot(stdout, &snaps[i]);
		}
		fputs("]\n", stdout);
		rc = EXIT_OK;
	} else {
		rc = print_list(snaps, count, c.bytes) < 0 ? cli_fail(-ENOMEM, "list") : EXIT_OK;
	}
	snapfs_snapshot_list_free(snaps, count);
out_close:
	snapfs_store_close(store);
	return rc;
}

/* The keys of info's text whose values are byte counts. */
static const char *const size_keys[] = { "file_size", "committed_bytes", "data_bytes",
					 "stored_bytes", "logical_bytes", "blob_bytes",
					 "file_bytes", NULL };

static void print_store_summary(const struct snapfs_store_summary *s, bool json, bool exact)
{
	/* dedup: data pages the snapshots map per page stored once;
	 * reduction: data bytes per byte of blob (dedup and compression). */
	double unique = (double)s->unique_pages * SNAPFS_PAGE_SIZE;
	double dedup = unique > 0 ? (double)s->data_bytes / unique : 0;
	double ratio = s->blob_bytes ? (double)s->data_bytes / (double)s->blob_bytes : 0;
	char text[1024];

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
	snprintf(text, sizeof(text), "snapshot_count: %" PRIu64 "\nlogical_bytes: %" PRIu64
		 "\ndata_bytes: %" PRIu64 "\nunique_pages: %" PRIu64
		 "\nblob_count: %" PRIu64 "\nblob_bytes: %" PRIu64
		 "\nfile_bytes: %" PRIu64 "\ndedup_ratio: %.3f\nreduction_ratio: %.3f\n",
		 s->snapshot_count, s->logical_bytes, s->data_bytes, s->unique_pages,
		 s->blob_count, s->blob_bytes, s->file_bytes, dedup, ratio);
	print_key_values(stdout, text, size_keys, exact);
}


/* Pages of the working set recorded for snapshot id (mount -o record). */
static int working_set_pages(struct snapfs_store *store, int64_t id, uint64_t *ret_pages)
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
	*ret_pages = pages;
	return 0;
}

/* Add "working_set_pages: N" to *text, of *len bytes. On failure *text is
 * freed. */
static int append_working_set_pages(struct snapfs_store *store, int64_t id, char **text,
				    size_t *len)
{
	uint64_t pages;
	char *more;
	int rc, n;

	rc = working_set_pages(store, id, &pages);
	more = rc < 0 ? NULL : realloc(*text, *len + 64);
	if (!more) {
		free(*text);
		return rc < 0 ? rc : -ENOMEM;
	}
	n = snprintf(more + *len, 64, "working_set_pages: %" PRIu64 "\n", pages);
	*text = more;
	*len += (size_t)n;
	return 0;
}

int cmd_info(int argc, char **argv)
{
	static const char usage[] = "info STORE [NAME] [--bytes] [--json]";
	struct snapfs_store_summary summary;
	struct cli_common c = { 0 };
	struct snapfs_snapshot snap;
	struct snapfs_store *store;
	const char *name;
	int rc = cli_parse_common(argc, argv, usage, CLI_JSON | CLI_BYTES, &c);

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
		print_store_summary(&summary, c.json, c.bytes);
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
		uint64_t pages;

		rc = working_set_pages(store, snap.id, &pages);
		if (rc == 0) {
			fputc('{', stdout);
			json_snapshot_fields(stdout, &snap);
			printf(",\"working_set_pages\":%" PRIu64 "}\n", pages);
		}
		rc = rc < 0 ? cli_fail(rc, "info") : EXIT_OK;
	} else {
		char *text;
		size_t len;

		rc = snapfs_info_text(&snap, &text, &len);
		if (rc == 0)
			rc = append_working_set_pages(store, snap.id, &text, &len);
		if (rc == 0) {
			print_key_values(stdout, text, size_keys, c.bytes);
			free(text);
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
	if (strcmp(argv[optind + 1], argv[optind + 2]) == 0)
		return cli_usage_error("rename '%s': the new name is the old one", argv[optind + 1]);
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

/* workingset --lay-out: lay the record out in the packs, say what moved. */
static int lay_out(struct snapfs_store *store, const char *name, bool json, bool quiet)
{
	struct snapfs_ws_layout l;
	int rc = snapfs_working_set_lay_out(store, name, &l);

	if (rc < 0)
		return cli_fail(rc, "workingset");
	if (json)
		printf("{\"blobs\":%" PRIu64 ",\"moved\":%" PRIu64 ",\"moved_bytes\":%" PRIu64
		       ",\"stretches_before\":%" PRIu64 ",\"stretches_after\":%" PRIu64 "}\n",
		       l.blobs, l.moved, l.moved_bytes, l.stretches_before, l.stretches_after);
	else if (!quiet)
		printf("working set of '%s': %" PRIu64 " blobs, %" PRIu64 " moved (%" PRIu64
		       " bytes); read in first-touch order from %" PRIu64 " stretch%s of "
		       "the packs (was %" PRIu64 ")\n", name, l.blobs, l.moved, l.moved_bytes,
		       l.stretches_after, l.stretches_after == 1 ? "" : "es", l.stretches_before);
	return EXIT_OK;
}

/* snapfs workingset STORE NAME [--clear | --lay-out] [--json]: the
 * recorded working set, one run a line in first-touch order, "0xSTART
 * 0xEND" (byte offsets, half-open); --clear removes it, --lay-out lays its
 * blobs out in first-touch order in the packs. */
int cmd_workingset(int argc, char **argv)
{
	static const char usage[] = "workingset STORE NAME [--clear | --lay-out] [--json] "
				    "[--lock-wait SECONDS]";
	static char doing[200];
	struct cli_common c = { 0 };
	struct snapfs_page_run *runs = NULL;
	struct snapfs_snapshot snap;
	struct snapfs_store *store;
	size_t count = 0;
	bool clear = false, layout = false;
	const struct cli_option own[] = {
		CLI_FLAG("clear", 0, &clear),
		CLI_FLAG("lay-out", 0, &layout),
		{ 0 },
	};
	int rc;

	rc = cli_parse(argc, argv, usage, CLI_JSON | CLI_LOCK_WAIT, own, &c);
	if (rc >= 0)
		return rc;
	if (clear && layout)
		return cli_usage_error("workingset: --clear and --lay-out exclude each other "
				       "(usage: snapfs %s)", usage);
	rc = cli_check_args(argc, argv, 2, 2, "STORE NAME", usage);
	if (rc >= 0)
		return rc;
	if (!snapfs_name_valid(argv[optind + 1]))
		return cli_usage_error("workingset: snapshot '%s': invalid name", argv[optind + 1]);
	snprintf(doing, sizeof(doing), "workingset '%s'", argv[optind + 1]);
	cli_lock_setup(&c, doing);
	cli_target("workingset", argv[optind], (const char *const *)argv + optind + 1, 1);
	rc = cli_open_store(argv[optind], clear || layout ? 0 : SNAPFS_OPEN_READONLY, &store);
	if (rc)
		return rc;
	if (layout) {
		rc = lay_out(store, argv[optind + 1], c.json, c.quiet);
		goto out_close;
	}
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
