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

/* SQLite's text for the failures a user can do something about, in the
 * user's terms (the store, its files), or NULL for SQLite's own. */
static const char *sqlite_user_text(sqlite3 *db, int sqlite_rc)
{
	int sys = db ? sqlite3_system_errno(db) : 0;

	switch (sqlite_rc & 0xff) {
	case SQLITE_FULL:
		return "no space left on device";
	case SQLITE_READONLY:
		if (sys == EACCES || sys == EPERM ||
		    sqlite_rc == SQLITE_READONLY_CANTINIT ||
		    sqlite_rc == SQLITE_READONLY_DIRECTORY)
			return "permission denied: read-only store (no write access to its "
			       "directory or files)";
		return "read-only store (its database cannot be written)";
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return "permission denied";
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return "store is busy (another process is writing)";
	case SQLITE_CANTOPEN:
		if (sys == EACCES || sys == EPERM)
			return "permission denied";
		if (sys == ENOENT)
			return "no such file or directory";
		return "cannot open the database";
	case SQLITE_IOERR:
		if (sys == ENOSPC)
			return "no space left on device";
		if (sys == EACCES || sys == EPERM)
			return "permission denied";
		return NULL;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return "stored data is damaged (the database file is malformed)";
	default:
		return NULL;
	}
}

int error_sqlite(sqlite3 *db, int sqlite_rc, const char *what)
{
	int rc = error_from_sqlite(sqlite_rc);
	const char *text = sqlite_user_text(db, sqlite_rc);

	if ((sqlite_rc & 0xff) == SQLITE_IOERR && db) {
		int sys = sqlite3_system_errno(db);

		if (sys == ENOSPC || sys == EACCES || sys == EPERM)
			rc = -sys;
	}
	/* The user's terms need no internal step ("schema version: ") before
	 * them: the command names the store. */
	if (text && rc != -SNAPFS_ECORRUPT)
		return error_set(rc, "%s", text);
	if (text)
		return error_set(rc, "%s: %s", what, text);
	return error_set(rc, "%s: %s", what,
			 db ? sqlite3_errmsg(db) : sqlite3_errstr(sqlite_rc));
}
