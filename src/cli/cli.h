/* SPDX-License-Identifier: MIT */
/*
 * Shared parts of the snapfs command line: exit codes, error reporting,
 * and the commands' entry points. Each command parses its arguments, calls
 * libsnapfs, and prints.
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "snapfs.h"

enum exit_code {
	EXIT_OK = 0,
	EXIT_FAILED = 1,   /* the operation failed */
	EXIT_USAGE = 2,    /* cannot be carried out as given */
	EXIT_DAMAGE = 3,   /* verify found damage */
};

/* Options every command takes. */
struct cli_common {
	bool quiet;
	bool json;
	bool bytes;        /* --bytes: exact byte counts (list, info) */
	int lock_wait_ms;  /* --lock-wait in ms; 0 when not given: see cli_lock_setup() */
	bool lock_wait_set;
};

/* What cli_parse_common() accepts besides --quiet and --help. */
enum {
	CLI_JSON = 1 << 0,       /* --json */
	CLI_LOCK_WAIT = 1 << 1,  /* --lock-wait SECONDS (commands that write) */
	CLI_BYTES = 1 << 2,      /* --bytes */
};

/* One option of a command besides the shared ones (a table of them ends
 * with a NULL name). Without parse, target is a bool set to true (a flag)
 * or a const char * set to the value (kept by reference); with parse, it
 * is whatever parse fills. */
struct cli_option {
	const char *name;            /* --name */
	char letter;                 /* -letter too; 0: none */
	bool takes_value;            /* --name VALUE */
	void *target;
	/* Check value (NULL for a flag) and store it: -1 to go on, else an
	 * exit code (a usage error naming cmd and --option). */
	int (*parse)(const char *cmd, const char *option, const char *value, void *target);
};
#define CLI_FLAG(name, letter, target) { (name), (letter), false, (target), NULL }
#define CLI_TEXT(name, letter, target) { (name), (letter), true, (target), NULL }
#define CLI_VALUE(name, target, parse) { (name), 0, true, (target), (parse) }

/* Parse the command's own options (extra, NULL for none), --quiet, --help
 * and the shared ones accept names; positional arguments are left in
 * argv[optind..]. Unknown options and missing values are usage errors.
 * Returns -1 to go on, else an exit code (EXIT_OK after --help). */
int cli_parse(int argc, char **argv, const char *usage, unsigned accept,
	      const struct cli_option *extra, struct cli_common *c);
/* cli_parse() without options of the command's own. */
int cli_parse_common(int argc, char **argv, const char *usage, unsigned accept,
		     struct cli_common *c);
/* Parse the SECONDS of --lock-wait for command cmd into c: -1 to go on,
 * else an exit code (a usage error). */
int cli_parse_lock_wait(const char *cmd, const char *text, struct cli_common *c);
/* Before a writing command opens its store: wait for a busy store as
 * --lock-wait says (default SNAPFS_DEFAULT_LOCK_WAIT_MS), say at once on
 * standard error whom it waits for (not with --quiet), and record doing
 * ("save 'vm2'", kept by reference) for others that wait for it. */
void cli_lock_setup(const struct cli_common *c, const char *doing);
/* Say what the command acts on, for its messages: "CMD 'STORE'" without
 * names, "verify 'STORE' 'NAME'", "diff 'A' 'B' in 'STORE'", else
 * "CMD 'NAME' from|into|in 'STORE'" ("rm 3 snapshots from 'STORE'" for
 * more than one). The strings are kept by reference. */
void cli_target(const char *cmd, const char *store, const char *const *names,
		size_t name_count);
/* The text cli_target() made ("" before). */
const char *cli_target_text(void);
/* Print "snapfs: TARGET: WHY" for a library failure (the library's detail
 * without what TARGET names already) and return the exit code. what names
 * the command when no target was set. */
int cli_fail(int rc, const char *what);
/* Print "snapfs: ..." (printf-style) and return EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "snapfs: warning: TARGET: ..." (printf-style): a warning says
 * what happens next. */
void cli_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Check that cmd got between min and max positional arguments (argv[optind..],
 * named in names, e.g. "STORE NAME OUTPUT"): -1 to go on, else a usage
 * error ("missing OUTPUT", "unexpected argument 'x'"). max < 0: no limit. */
int cli_check_args(int argc, char **argv, int min, int max, const char *names,
		   const char *usage);
/* Open the store at dir (or fail with a message): an exit code, 0 on success. */
int cli_open_store(const char *dir, unsigned flags, struct snapfs_store **ret_store);
/* What this command does ("rm 'a'"), set by cli_lock_setup(); NULL before. */
extern const char *cli_doing;
/* 0, or the signal (SIGINT, SIGTERM, SIGHUP) that asked the command to stop. */
extern volatile sig_atomic_t cli_cancel;
/* Route SIGINT, SIGTERM and SIGHUP to cli_cancel, and make libsnapfs's
 * statements stop when it is set (snapfs_set_cancel_flag). main() does it
 * for every command but the mount. An interrupted command fails with
 * -SNAPFS_ECANCELED, which cli_fail() turns into 128 + the signal. */
void cli_catch_signals(void);

int cmd_init(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_save(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_rename(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_map(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_workingset(int argc, char **argv);
int cmd_uffd(int argc, char **argv);
