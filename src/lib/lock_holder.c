// SPDX-License-Identifier: MIT
/*
 * The lock-holder file of a store (see lock_holder.h): written by the
 * holder of the write lock, read by writers that wait for it. The store
 * may come from anyone: the file is opened without following links and
 * without blocking, and only a regular file is used.
 */
#include "lock_holder.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOCK_HOLDER_FILE "lock-holder"

char *lock_holder_path(const char *db_path)
{
	const char *slash = strrchr(db_path, '/');
	char *p;

	if (asprintf(&p, "%.*s%s", slash ? (int)(slash - db_path + 1) : 0, db_path,
		     LOCK_HOLDER_FILE) < 0)
		return NULL;
	return p;
}

/* path opened with flags, if it is a regular file; -1 otherwise. */
static int open_regular(const char *path, int flags)
{
	struct stat st;
	int fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -1;
	}
	return fd;
}

bool lock_holder_write(const char *path, const char *doing)
{
	char line[256];
	int fd, len;
	bool ok;

	if (!path)
		return false;
	fd = open_regular(path, O_WRONLY | O_CREAT);
	if (fd < 0)
		return false;
	len = snprintf(line, sizeof(line), "%ld %s\n", (long)getpid(), doing ? doing : "");
	if (len >= (int)sizeof(line))
		len = sizeof(line) - 1;
	ok = ftruncate(fd, 0) == 0 && pwrite(fd, line, (size_t)len, 0) == len;
	close(fd);
	return ok;
}

void lock_holder_clear(const char *path)
{
	int fd = path ? open_regular(path, O_WRONLY) : -1;

	if (fd < 0)
		return;
	if (ftruncate(fd, 0) < 0) {
		/* Nothing to do: a stale line names a process a reader checks. */
	}
	close(fd);
}

void lock_holder_read(const char *path, struct snapfs_lock_holder *ret)
{
	char line[256], *end;
	ssize_t n;
	long pid;
	int fd;

	memset(ret, 0, sizeof(*ret));
	fd = path ? open_regular(path, O_RDONLY) : -1;
	if (fd < 0)
		return;
	n = pread(fd, line, sizeof(line) - 1, 0);
	close(fd);
	if (n <= 0)
		return;
	line[n] = '\0';
	errno = 0;
	pid = strtol(line, &end, 10);
	if (errno || end == line || *end != ' ' || pid <= 0 || pid == (long)getpid())
		return;
	if (kill((pid_t)pid, 0) < 0 && errno != EPERM)
		return;               /* it died: the lock is someone else's */
	ret->pid = (pid_t)pid;
	/* What it does: printable characters of the rest of the line. */
	end++;
	for (size_t i = 0; end[i] && end[i] != '\n' && i < sizeof(ret->doing) - 1; i++)
		ret->doing[i] = (end[i] >= 0x20 && end[i] < 0x7f) ? end[i] : '?';
}
