// SPDX-License-Identifier: MIT
/*
 * The mount's message sink. The core never prints; the few things the
 * mount must say while serving (damage met by a read, a store that can no
 * longer be listed) go through here, to standard error in the foreground
 * and to syslog (daemon facility) in the background.
 */
#include "fslog.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <syslog.h>

static atomic_bool to_syslog;

void fslog_use_syslog(bool use_syslog)
{
	if (use_syslog)
		openlog("snapfs", LOG_PID, LOG_DAEMON);
	atomic_store(&to_syslog, use_syslog);
}

static void log_line(int priority, const char *fmt, va_list ap)
{
	char line[1024];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (atomic_load(&to_syslog))
		syslog(priority, "%s", line);
	else
		fprintf(stderr, "snapfs: %s\n", line);
}

void fslog_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line(LOG_ERR, fmt, ap);
	va_end(ap);
}

void fslog_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line(LOG_INFO, fmt, ap);
	va_end(ap);
}

bool fslog_store_replaced(struct snapfs_store *store)
{
	static atomic_bool logged;

	if (!snapfs_store_replaced(store))
		return false;
	if (!atomic_exchange(&logged, true))
		fslog_error("%s; every read fails with EIO from now on", snapfs_errmsg());
	return true;
}
