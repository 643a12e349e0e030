// SPDX-License-Identifier: MIT
/*
 * Error codes and the thread-local detail behind snapfs_errmsg().
 */
#include "errors.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "snapfs.h"

static _Thread_local char last_error[1024];

const char *snapfs_errmsg(void)
{
	return last_error;
}

void error_clear(void)
{
	last_error[0] = '\0';
}

int error_set(int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return rc;
}

int error_prefix(int rc, const char *fmt, ...)
{
	char prefix[512], old[sizeof(last_error)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, last_error, sizeof(old));
	if (old[0])
		snprintf(last_error, sizeof(last_error), "%.500s: %.500s", prefix, old);
	else
		snprintf(last_error, sizeof(last_error), "%.500s: %s", prefix,
			 snapfs_strerror(rc));
	return rc;
}

const char *errno_text(int errnum)
{
	static _Thread_local char texts[4][128];
	static _Thread_local unsigned next;
	char *t = texts[next++ % 4];

	snprintf(t, sizeof(texts[0]), "%s", strerror(errnum));
	if (t[0] >= 'A' && t[0] <= 'Z' && !(t[1] >= 'A' && t[1] <= 'Z'))
		t[0] = (char)(t[0] - 'A' + 'a');
	return t;
}

const char *snapfs_strerror(int rc)
{
	switch (-rc) {
	case SNAPFS_ENOTSTORE:
		return "not a snapfs store (create one with 'snapfs init')";
	case SNAPFS_ENEWER:
		return "store was written by a newer snapfs (schema version too new)";
	case SNAPFS_ECORRUPT:
		return "stored data is damaged";
	case SNAPFS_EBADNAME:
		return "invalid snapshot name";
	case SNAPFS_EUSAGE:
		return "malformed usage";
	case SNAPFS_ECANCELED:
		return "interrupted";
	default:
		return errno_text(-rc);
	}
}

int error_from_sqlite(int sqlite_rc)
{
	switch (sqlite_rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	case SQLITE_FORMAT:
		return -SNAPFS_ECORRUPT;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_INTERRUPT:
		return -SNAPFS_ECANCELED;
	case SQLITE_TOOBIG:
		return -EFBIG;
	case SQLITE_IOERR:
		if (sqlite_rc == SQLITE_IOERR_NOMEM)
			return -ENOMEM;
		return -EIO;
	default:
		return -EIO;
	}
}

int error_sqlite(sqlite3 *db, int sqlite_rc, const char *what)
{
	int rc = error_from_sqlite(sqlite_rc);

	if (rc == -ENOSPC)
		return error_set(rc, "%s: no space left on device", what);
	return error_set(rc, "%s: %s", what,
			 db ? sqlite3_errmsg(db) : sqlite3_errstr(sqlite_rc));
}
