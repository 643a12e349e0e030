// SPDX-License-Identifier: MIT
/*
 * snapfs prune STORE --keep-* ... [--prefix P | --glob G] [--dry-run]:
 * remove the snapshots no retention rule keeps (rules in snapfs.h and
 * doc/snapfs.1).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"

static const char usage[] =
	"prune STORE [--keep-last N] [--keep-within DURATION] [--keep-hourly N] "
	"[--keep-daily N] [--keep-weekly N] [--keep-monthly N] [--prefix P | --glob G] "
	"[--dry-run] [--lock-wait SECONDS] [--json] [--quiet]   (DURATION: 12h, 7d, 2w, 1m, 1y)";

#define KEEP_MAX 1000000

/* "--keep-daily 7": a whole number from 1 to KEEP_MAX. */
static int parse_count(const char *cmd, const char *option, const char *value, void *target)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(value, &end, 10);
	if (errno || *end || end == value || n < 1 || n > KEEP_MAX)
		return cli_usage_error("%s: --%s '%s': not a whole number from 1 to %d",
				       cmd, option, value, KEEP_MAX);
	*(unsigned *)target = (unsigned)n;
	return -1;
}

/* "--keep-within 7d" into the rules. */
static int parse_within(const char *cmd, const char *option, const char *value, void *target)
{
	struct snapfs_prune_rules *r = target;

	if (snapfs_duration_parse(value, &r->keep_within) < 0)
		return cli_usage_error("%s: --%s '%s': not a duration (a whole number from 1 "
				       "to %d and a unit: h hours, d days, w weeks, m months of "
				       "31 days, y years of 365 days; e.g. 7d)", cmd, option,
				       value, SNAPFS_DURATION_MAX);
	r->keep_within_text = value;
	return -1;
}

struct prune_args {
	struct snapfs_prune_rules rules;
	struct cli_common c;
	bool dry_run;
};

/* -1 to go on, else an exit code. */
static int parse_args(int argc, char **argv, struct prune_args *a)
{
	struct snapfs_prune_rules *r = &a->rules;
	const struct cli_option own[] = {
		CLI_VALUE("keep-last", &r->keep_last, parse_count),
		CLI_VALUE("keep-within", r, parse_within),
		CLI_VALUE("keep-hourly", &r->keep_hourly, parse_count),
		CLI_VALUE("keep-daily", &r->keep_daily, parse_count),
		CLI_VALUE("keep-weekly", &r->keep_weekly, parse_count),
		CLI_VALUE("keep-monthly", &r->keep_monthly, parse_count),
		CLI_TEXT("prefix", 0, &r->prefix),
		CLI_TEXT("glob", 0, &r->glob),
		CLI_FLAG("dry-run", 0, &a->dry_run),
		{ 0 },
	};
	int rc;

	rc = cli_parse(argc, argv, usage, CLI_JSON | CLI_LOCK_WAIT, own, &a->c);
	if (rc >= 0)
		return rc;
	rc = cli_check_args(argc, argv, 1, 1, "STORE", usage);
	if (rc >= 0)
		return rc;
	if (r->prefix && r->glob)
		return cli_usage_error("prune: --prefix and --glob: give one of them");
	if (!r->keep_last && !r->keep_within && !r->keep_hourly && !r->keep_daily &&
	    !r->keep_weekly && !r->keep_monthly)
		return cli_usage_error("prune: no --keep-* rule given: refusing to remove every "
				       "snapshot (use --keep-last N, --keep-within DURATION, "
				       "--keep-hourly/daily/weekly/monthly N)");
	return -1;
}

static void print_json(const char *store, bool dry_run, const struct snapfs_prune_item *items,
		       size_t count, size_t kept)
{
	printf("{\"store\":");
	json_string(stdout, store);
	printf(",\"dry_run\":%s,\"kept\":%zu,\"removed\":%zu,\"snapshots\":[",
	       dry_run ? "true" : "false", kept, count - kept);
	for (size_t i = 0; i < count; i++) {
		const struct snapfs_prune_item *it = &items[i];
		const char *why = it->why, *next;

		printf("%s{\"action\":\"%s\",\"name\":", i ? "," : "",
		       it->keep ? "keep" : "remove");
		json_string(stdout, it->name);
		printf(",\"created_at\":");
		json_string(stdout, it->created_at);
		printf(",\"reasons\":[");
		/* The text's reasons, one string each. */
		for (int n = 0; it->keep && *why; n++, why = next) {
			next = strstr(why, ", ");
			printf("%s\"%.*s\"", n ? "," : "",
			       (int)(next ? (size_t)(next - why) : strlen(why)), why);
			next = next ? next + 2 : why + strlen(why);
		}
		printf("]}");
	}
	printf("]}\n");
}

static void print_text(const char *store, bool dry_run, const struct snapfs_prune_item *items,
		       size_t count, size_t kept)
{
	for (size_t i = 0; i < count; i++)
		printf("%s\t%s\t%s\t%s\n", items[i].keep ? "keep" : "remove", items[i].name,
		       items[i].created_at, items[i].keep ? items[i].why : "-");
	if (dry_run)
		printf("prune '%s': dry run: would remove %zu snapshot%s, keep %zu; nothing "
		       "changed\n", store, count - kept, count - kept == 1 ? "" : "s", kept);
	else
		printf("prune '%s': removed %zu snapshot%s, kept %zu (give the space back with "
		       "'snapfs gc')\n", store, count - kept, count - kept == 1 ? "" : "s", kept);
}

int cmd_prune(int argc, char **argv)
{
	static char doing[SNAPFS_NAME_MAX + 4096];
	struct prune_args a = { 0 };
	struct snapfs_prune_item *items = NULL;
	struct snapfs_store *store;
	size_t count = 0, kept = 0;
	const char *dir;
	int rc = parse_args(argc, argv, &a);

	if (rc >= 0)
		return rc;
	dir = argv[optind];
	snprintf(doing, sizeof(doing), "prune '%s'", dir);
	cli_lock_setup(&a.c, doing);
	cli_target("prune", dir, NULL, 0);
	rc = cli_open_store(dir, 0, &store);
	if (rc)
		return rc;
	rc = snapfs_prune(store, &a.rules, a.dry_run, &items, &count);
	if (rc < 0) {
		rc = cli_fail(rc, "prune");
		goto out_close;
	}
	for (size_t i = 0; i < count; i++)
		kept += items[i].keep;
	if (a.c.json)
		print_json(dir, a.dry_run, items, count, kept);
	else if (!a.c.quiet || a.dry_run)
		print_text(dir, a.dry_run, items, count, kept);
	if (rc > 0 && !a.c.quiet)
		cli_warning("%d snapshot%s still open by a reader: gone from listings now, "
			    "pages kept until closed (then run 'snapfs gc')", rc, rc == 1 ? "" : "s");
	free(items);
	rc = EXIT_OK;
out_close:
	snapfs_store_close(store);
	return rc;
}
