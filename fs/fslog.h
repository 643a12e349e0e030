/* SPDX-License-Identifier: MIT */
/*
 * Where the running mount's messages go: standard error in the foreground,
 * syslog once the daemon has detached (its standard error is /dev/null).
 */
#pragma once

#include <stdbool.h>

#include "snapfs.h"

/* Send later messages to syslog (true) or to standard error (false). */
void fslog_use_syslog(bool use_syslog);

/* One message line, without the "snapfs: " prefix or a newline. */
void fslog_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An informational line (syslog LOG_INFO in the background). */
void fslog_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* If the store was moved or replaced under the mount (snapfs_store_replaced),
 * log why (snapfs_errmsg() of the failed call) the first time only, and
 * return true: every read fails from then on for the same reason, one
 * line says it. false, and nothing logged, otherwise. */
bool fslog_store_replaced(struct snapfs_store *store);
