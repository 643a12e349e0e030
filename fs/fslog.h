/* SPDX-License-Identifier: MIT */
/*
 * Where the running mount's messages go: standard error in the foreground,
 * syslog once the daemon has detached (its standard error is /dev/null).
 */
#pragma once

#include <stdbool.h>

/* Send later messages to syslog (true) or to standard error (false). */
void fslog_use_syslog(bool use_syslog);

/* One message line, without the "snapfs: " prefix or a newline. */
void fslog_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An informational line (syslog LOG_INFO in the background). */
void fslog_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
