// SPDX-License-Identifier: MIT
/*
 * The options most commands share (--json, --bytes, --quiet, --help, --lock-wait),
 * parsed in one place, and the wait for a busy store's lock.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { OPT_JSON = 0x100, OPT_QUIET, OPT_HELP, OPT_LOCK_WAIT, OPT_BYTES };

/* Longest --lock-wait, in seconds (a little over 11 days). */
#define LOCK_WAIT_MAX 1000000

static const struct option common_options[] = {
	{ "json", no_argument, NULL, OPT_JSON },
	{ "bytes", no_argument, NULL, OPT_BYTES },
	{ "lock-wait", required_argument, NULL, OPT_LOCK_WAIT },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "help", no_argument, NULL, OPT_HELP },
	{ 0 },
};

int cli_parse_lock_wait(const char *cmd, const char *text, struct cli_common *c)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(text, &end, 10);
	if (errno || *end || end == text || n < 0 || n > LOCK_WAIT_MAX)
		return cli_usage_error("%s: --lock-wait '%s': not a whole number of seconds "
				       "from 0 to %d", cmd, text, LOCK_WAIT_MAX);
	c->lock_wait_ms = (int)n * 1000;
	c->lock_wait_set = true;
	return -1;
}

static void say_waiting(void *data, const struct snapfs_lock_holder *h)
{
	const char *doing = cli_target_text()[0] ? cli_target_text() : data;

	if (h->pid && h->doing[0])
		fprintf(stderr, "snapfs: %s: waiting for the store lock held by PID %ld (%s)...\n",
			doing, (long)h->pid, h->doing);
	else if (h->pid)
		fprintf(stderr, "snapfs: %s: waiting for the store lock held by PID %ld...\n",
			doing, (long)h->pid);
	else
		fprintf(stderr, "snapfs: %s: waiting for the store lock held by another "
			"process...\n", doing);
}

const char *cli_doing;

void cli_lock_setup(const struct cli_common *c, const char *doing)
{
	cli_doing = doing;
	snapfs_set_lock_wait(c->lock_wait_set ? c->lock_wait_ms : SNAPFS_DEFAULT_LOCK_WAIT_MS,
			     doing, c->quiet ? NULL : say_waiting, (void *)doing);
}

int cli_parse_common(int argc, char **argv, const char *usage, unsigned accept,
			struct cli_common *c)
{
	int opt, rc;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "qh", common_options, NULL)) != -1) {
		switch (opt) {
		case OPT_JSON:
			if (!(accept & CLI_JSON))
				return cli_usage_error("%s: unknown option '--json'", argv[0]);
			c->json = true;
			break;
		case OPT_BYTES:
			if (!(accept & CLI_BYTES))
				return cli_usage_error("%s: unknown option '--bytes' (usage: snapfs %s)",
						       argv[0], usage);
			c->bytes = true;
			break;
		case OPT_LOCK_WAIT:
			if (!(accept & CLI_LOCK_WAIT))
				return cli_usage_error("%s: unknown option '--lock-wait' (only "
						       "commands that write take it)", argv[0]);
			rc = cli_parse_lock_wait(argv[0], optarg, c);
			if (rc >= 0)
				return rc;
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
			return cli_usage_error("%s: unknown option '%s' (usage: snapfs %s)",
					       argv[0], argv[optind - 1], usage);
		}
	}
	return -1;
}
