/* SPDX-License-Identifier: MIT */
/*
 * Error reporting inside libsnapfs: every failure returns a negative code
 * and records a one-line detail for snapfs_errmsg(). SQLite result codes
 * and libc -1/errno are turned into negative errno here and nowhere else.
 */
#pragma once

#include <sqlite3.h>

/* Record a detail (printf-style) for rc and return rc. */
int error_set(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the current detail with "prefix: " (context added on the way up). */
int error_prefix(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* strerror() in lower case, as snapfs messages are written. The text
 * stays valid for the next few calls in this thread. */
const char *errno_text(int errnum);
/* Forget the last detail. */
void error_clear(void);

/* -errno for an SQLite result code: SQLITE_FULL -> -ENOSPC, SQLITE_BUSY ->
 * -EBUSY, SQLITE_CORRUPT/NOTADB -> -SNAPFS_ECORRUPT, ... */
int error_from_sqlite(int sqlite_rc);
/* error_set() with the connection's message: "what: sqlite message". */
int error_sqlite(sqlite3 *db, int sqlite_rc, const char *what);
