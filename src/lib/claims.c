// SPDX-License-Identifier: MIT
/*
 * Claims on snapshots: byte <id> of STORE/claims, locked with fcntl(2)
 * open-file-description locks (see claims.h for the protocol). OFD locks,
 * not flock(2) on a file per snapshot: one file, never unlinked, so there
 * is no race between a reader opening a claim file and a remover deleting
 * it, and nothing to clean up; unlike classic POSIX locks they belong to
 * the open file, so two images in one process hold two claims and closing
 * one does not drop the other's, and a remover in the same process as a
 * reader still sees the reader.
 */
#include "claims.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"

/* How long a reader waits for a remover's transaction, at most. */
#define CLAIM_WAIT_MS 5000

static char *claims_path(const char *dir)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, CLAIMS_FILE) < 0)
		return NULL;
	return p;
}

int claims_create(const char *dir)
{
	int fd, rc;

	rc = claims_open(dir, true, &fd);
	if (rc < 0)
		return rc;
	claims_close(fd);
	return 0;
}

int claims_open(const char *dir, bool exclusive, int *ret_fd)
{
	char *path = claims_path(dir);
	bool missing = false;
	int fd, err;

	if (!path)
		return -ENOMEM;
	if (exclusive) {
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	} else {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT) {
			missing = true;
			fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
		}
	}
	err = errno;
	free(path);
	if (fd < 0 && !exclusive && err == EROFS) {
		*ret_fd = -1;
		return 0;
	}
	if (fd < 0 && missing && err == EACCES)
		return error_set(-err, "store '%s': %s: missing, and this user cannot make "
				 "it (run 'snapfs gc %s' as the store's owner)", dir,
				 CLAIMS_FILE, dir);
	if (fd < 0)
		return error_set(-err, "store '%s': %s: %s", dir, CLAIMS_FILE, errno_text(err));
	*ret_fd = fd;
	return 0;
}

void claims_close(int fd)
{
	if (fd >= 0)
		close(fd);
}

int claim_try(int fd, int64_t id, bool exclusive)
{
	struct flock fl = {
		.l_type = exclusive ? F_WRLCK : F_RDLCK,
		.l_whence = SEEK_SET,
		.l_start = (off_t)id,
		.l_len = 1,
	};

	if (fd < 0)
		return 0;
	if (id < 0)
		return -EINVAL;
	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	if (errno == EAGAIN || errno == EACCES)
		return -EAGAIN;
	return error_set(-errno, "claim on snapshot #%lld: %s", (long long)id,
			 errno_text(errno));
}

int claim_shared_wait(int fd, int64_t id)
{
	struct timespec nap = { 0, 1000000 };
	long waited_ms = 0;
	int rc;

	/* A remover holds the claim only for its transaction (rm, or gc's
	 * first step): short. Poll rather than F_OFD_SETLKW, so that a
	 * stuck remover cannot block a reader for ever. */
	while ((rc = claim_try(fd, id, false)) == -EAGAIN && waited_ms < CLAIM_WAIT_MS) {
		nanosleep(&nap, NULL);
		waited_ms += nap.tv_nsec / 1000000;
		if (nap.tv_nsec < 32000000)
			nap.tv_nsec *= 2;
	}
	if (rc == -EAGAIN)
		return error_set(-EBUSY, "snapshot #%lld: being removed (store busy)",
				 (long long)id);
	return rc;
}
