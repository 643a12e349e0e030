// SPDX-License-Identifier: MIT
/*
 * snapfs prune STORE --keep-* ... [--prefix P | --glob G] [--dry-run]:
 * remove the snapshots no retention rule keeps (rules in snapfs.h and
 * doc/snapfs.1).
 */
#include <errno.h>
#include <getopt.h>
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

enum { OPT_LAST = 0x100, OPT_WITHIN, OPT_HOURLY, OPT_DAILY, OPT_WEEKLY, OPT_MONTHLY,
       OPT_PREFIX, OPT_GLOB, OPT_DRY_RUN, OPT_LOCK_WAIT, OPT_JSON, OPT_QUIET, OPT_HELP };

static const struct option options[] = {
	{ "keep-last", required_argument, NULL, OPT_LAST },
	{ "keep-within", required_argument, NULL, OPT_WITHIN },
	{ "keep-hourly", required_argument, NULL, OPT_HOURLY },
	{ "keep-daily", required_argument, NULL, OPT_DAILY },
	{ "keep-weekly", required_argument, NULL, OPT_WEEKLY },
	{ "keep-monthly", required_argument, NULL, OPT_MONTHLY },
	{ "prefix", required_argument, NULL, OPT_PREFIX },
	{ "glob", required_argument, NULL, OPT_GLOB },
	{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
	{ "lock-wait", required_argument, NULL, OPT_LOCK_WAIT },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "help", no_argument, NULL, OPT_HELP },
	{ 0 },
};

#define KEEP_MAX 1000000

/* "--keep-daily 7": a whole number from 1 to KEEP_MAX. */
static int parse_count(const char *opt, const char *text, unsigned *ret)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(text, &end, 10);
	if (errno || *end || end == text || n < 1 || n > KEEP_MAX)
		return cli_usage_error("prune: %s '%s': not a whole number from 1 to %d",
				       opt, text, KEEP_MAX);
	*ret = (unsigned)n;
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
	int opt, rc = -1;

	opterr = 0;
	optind = 1;
	while (rc < 0 && (opt = getopt_long(argc, argv, "qh", options, NULL)) != -1) {
		switch (opt) {
		case OPT_LAST:
			rc = parse_count("--keep-last", optarg, &r->keep_last);
			break;
		case OPT_WITHIN:
			if (snapfs_duration_parse(optarg, &r->keep_within) < 0)
				rc = cli_usage_error("prune: --keep-within '%s': not a duration "
						     "(a whole number from 1 to %d and a unit: h "
						     "hours, d days, w weeks, m months of 31 days, "
						     "y years of 365 days; e.g. 7d)", optarg,
						     SNAPFS_DURATION_MAX);
			r->keep_within_text = optarg;
			break;
		case OPT_HOURLY:
			rc = parse_count("--keep-hourly", optarg, &r->keep_hourly);
			break;
		case OPT_DAILY:
			rc = parse_count("--keep-daily", optarg, &r->keep_daily);
			break;
		case OPT_WEEKLY:
			rc = parse_count("--keep-weekly", optarg, &r->keep_weekly);
			break;
		case OPT_MONTHLY:
			rc = parse_count("--keep-monthly", optarg, &r->keep_monthly);
			break;
		case OPT_PREFIX:
			r->prefix = optarg;
			break;
		case OPT_GLOB:
			r->glob = optarg;
			break;
		case OPT_DRY_RUN:
			a->dry_run = true;
			break;
		case OPT_LOCK_WAIT:
			rc = cli_parse_lock_wait("prune", optarg, &a->c);
			break;
		case OPT_JSON:
			a->c.json = true;
			break;
		case 'q':
		case OPT_QUIET:
			a->c.quiet = true;
			break;
		case 'h':
		case OPT_HELP:
			printf("usage: snapfs %s\n", usage);
			return EXIT_OK;
		default:
			return cli_usage_error("prune: unknown option '%s' (usage: snapfs %s)",
					       argv[optind - 1], usage);
		}
	}
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
