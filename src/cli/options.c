// SPDX-License-Identifier: MIT
/*
 * The command line's options, parsed in one place: each command's own
 * (a table of struct cli_option) and those most commands share (--json,
 * --bytes, --quiet, --help, --lock-wait); and the wait for a busy store's
 * lock.
 */
#include <assert.h>
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

/* Own options a command may have (getopt_long's table is built per call). */
#define OWN_OPTIONS_MAX 32
#define OPT_OWN 0x200   /* getopt_long's value for extra[i]: OPT_OWN + i */

static const struct cli_option *own_option(const struct cli_option *extra, int opt)
{
	for (size_t i = 0; extra && extra[i].name; i++)
		if (opt == OPT_OWN + (int)i || (extra[i].letter && opt == extra[i].letter))
			return &extra[i];
	return NULL;
}

/* getopt_long's tables for extra and the shared options. */
static void build_tables(const struct cli_option *extra, struct option *longs, char *shorts)
{
	size_t n = 0;

	/* ':' first: a missing value is told apart from an unknown option. */
	shorts += sprintf(shorts, ":qh");
	for (; extra && extra[n].name; n++) {
		assert(n < OWN_OPTIONS_MAX);
		longs[n] = (struct option){ extra[n].name,
					    extra[n].takes_value ? required_argument : no_argument,
					    NULL, OPT_OWN + (int)n };
		if (extra[n].letter)
			shorts += sprintf(shorts, "%c%s", extra[n].letter,
					  extra[n].takes_value ? ":" : "");
	}
	memcpy(longs + n, common_options, sizeof(common_options));
}

static int apply_own(const char *cmd, const struct cli_option *o, const char *value)
{
	if (o->parse)
		return o->parse(cmd, o->name, value, o->target);
	if (o->takes_value)
		*(const char **)o->target = value;
	else
		*(bool *)o->target = true;
	return -1;
}

/* The shared options: -1 to go on, else an exit code. */
static int apply_common(int opt, char **argv, const char *usage, unsigned accept,
			struct cli_common *c)
{
	switch (opt) {
	case OPT_JSON:
		if (!(accept & CLI_JSON))
			return cli_usage_error("%s: unknown option '--json'", argv[0]);
		c->json = true;
		return -1;
	case OPT_BYTES:
		if (!(accept & CLI_BYTES))
			return cli_usage_error("%s: unknown option '--bytes' (usage: snapfs %s)",
					       argv[0], usage);
		c->bytes = true;
		return -1;
	case OPT_LOCK_WAIT:
		if (!(accept & CLI_LOCK_WAIT))
			return cli_usage_error("%s: unknown option '--lock-wait' (only "
					       "commands that write take it)", argv[0]);
		return cli_parse_lock_wait(argv[0], optarg, c);
	case 'q':
	case OPT_QUIET:
		c->quiet = true;
		return -1;
	case 'h':
	case OPT_HELP:
		printf("usage: snapfs %s\n", usage);
		return EXIT_OK;
	case ':':
		return cli_usage_error("%s: option '%s' needs a value (usage: snapfs %s)",
				       argv[0], argv[optind - 1], usage);
	default:
		if (optopt > 0 && optopt < 0x80)
			return cli_usage_error("%s: unknown option '-%c' (usage: snapfs %s)",
					       argv[0], optopt, usage);
		return cli_usage_error("%s: unknown option '%s' (usage: snapfs %s)",
				       argv[0], argv[optind - 1], usage);
	}
}

int cli_parse(int argc, char **argv, const char *usage, unsigned accept,
	      const struct cli_option *extra, struct cli_common *c)
{
	struct option longs[OWN_OPTIONS_MAX + sizeof(common_options) / sizeof(common_options[0])];
	char shorts[4 + 2 * OWN_OPTIONS_MAX];
	int opt, rc = -1;

	build_tables(extra, longs, shorts);
	opterr = 0;
	optind = 1;
	while (rc < 0 && (opt = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		const struct cli_option *o = own_option(extra, opt);

		rc = o ? apply_own(argv[0], o, optarg) : apply_common(opt, argv, usage, accept, c);
	}
	return rc;
}

int cli_parse_common(int argc, char **argv, const char *usage, unsigned accept,
		     struct cli_common *c)
{
	return cli_parse(argc, argv, usage, accept, NULL, c);
}
