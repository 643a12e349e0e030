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
};

/* Parse --quiet, --help and, if json_ok, --json; positional arguments are
 * left in argv[optind..]. Returns -1 to go on, else an exit code. */
int cli_parse_common(int argc, char **argv, const char *usage, bool json_ok,
		     struct cli_common *c);
/* Print "snapfs: ..." for a library failure and return the exit code. */
int cli_fail(int rc, const char *what);
/* Print "snapfs: ..." (printf-style) and return EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Open the store at dir (or fail with a message): an exit code, 0 on success. */
int cli_open_store(const char *dir, unsigned flags, struct snapfs_store **ret_store);
/* 0, or the signal (SIGINT, SIGTERM, SIGHUP) that asked the command to stop. */
extern volatile sig_atomic_t cli_cancel;
/* Route SIGINT, SIGTERM and SIGHUP to cli_cancel, and make libsnapfs's
 * statements stop when it is set (snapfs_set_cancel_flag). main() does it
 * for every command but the mount. An interrupted command fails with
 * -SNAPFS_ECANCELED, which cli_fail() turns into 128 + the signal. */
void cli_catch_signals(void);

int cmd_init(int argc, char **argv);
int cmd_save(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_rename(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_workingset(int argc, char **argv);
