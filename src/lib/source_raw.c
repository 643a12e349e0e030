// SPDX-License-Identifier: MIT
/*
 * The raw source: a memory file or a block device, read as it is. Data
 * ranges come from SEEK_DATA/SEEK_HOLE, so holes cost nothing. "-" is
 * standard input (a pipe, say): read once into an unnamed sparse file in
 * $TMPDIR (default /var/tmp) with its zero pages left out as holes, then
 * read from there like any raw file.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "source.h"
#include "source_util.h"

struct raw_source {
	int fd;
	bool is_device;
};

static uint64_t page_up(uint64_t x)
{
	return (x + SNAPFS_PAGE_SIZE - 1) / SNAPFS_PAGE_SIZE * SNAPFS_PAGE_SIZE;
}

static int raw_next_data(struct source *src, uint64_t off, uint64_t *ret_start,
			 uint64_t *ret_end)
{
	struct raw_source *raw = src->impl;
	uint64_t limit = page_up(src->size);
	off_t data, hole;

	if (off >= src->size)
		return -ENXIO;
	if (raw->is_device) {
		*ret_start = off / SNAPFS_PAGE_SIZE * SNAPFS_PAGE_SIZE;
		*ret_end = limit;
		return 0;
	}
	data = lseek(raw->fd, (off_t)off, SEEK_DATA);
	if (data < 0) {
		if (errno == ENXIO)
			return -ENXIO;
		if (errno != EINVAL)
			return error_set(-errno, "source '%s': seek data: %s", src->path,
					 errno_text(errno));
		data = (off_t)off; /* no SEEK_DATA here: all data */
		hole = (off_t)src->size;
	} else {
		hole = lseek(raw->fd, data, SEEK_HOLE);
		if (hole < 0)
			hole = (off_t)src->size;
	}
	*ret_start = (uint64_t)data / SNAPFS_PAGE_SIZE * SNAPFS_PAGE_SIZE;
	*ret_end = page_up((uint64_t)hole);
	if (*ret_end > limit)
		*ret_end = limit;
	return 0;
}

static int raw_read(struct source *src, unsigned char *buf, size_t len, uint64_t off)
{
	struct raw_source *raw = src->impl;
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(raw->fd, buf + got, len - got, (off_t)(off + got));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return error_set(-errno, "source '%s': read at offset 0x%llx: %s",
					 src->path, (unsigned long long)(off + got),
					 errno_text(errno));
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got < len) {
		if (off + got < src->size)
			return error_set(-EIO, "source '%s': shrank while being read (offset 0x%llx)",
					 src->path, (unsigned long long)(off + got));
		memset(buf + got, 0, len - got); /* the last partial page */
	}
	return 0;
}

static void raw_close(struct source *src)
{
	struct raw_source *raw = src->impl;

	if (!raw)
		return;
	if (raw->fd >= 0)
		close(raw->fd);
	free(raw);
	src->impl = NULL;
}

static const struct source_ops raw_ops = {
	.format = "raw",
	.next_data = raw_next_data,
	.read = raw_read,
	.close = raw_close,
};

/* Where standard input is spooled. */
static const char *spool_dir(void)
{
	const char *d = getenv("TMPDIR");

	return d && d[0] == '/' ? d : "/var/tmp";
}

static bool page_is_zero(const unsigned char *p, size_t len)
{
	return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

/* Read up to len bytes of fd; fewer only at its end. */
static ssize_t read_full(int fd, unsigned char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n < 0) {
			/* Our signal handlers have no SA_RESTART: a signal
			 * asks us to stop. */
			if (errno == EINTR)
				return error_set(-SNAPFS_ECANCELED, "source '-': interrupted");
			return error_set(-errno, "source '-' (standard input): read: %s",
					 errno_text(errno));
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Copy standard input into a new unnamed file, zero pages as holes: the
 * file's descriptor in *ret_fd, its size in *ret_size. */
static int spool_stdin(unsigned char *buf, int *ret_fd, uint64_t *ret_size)
{
	const char *dir = spool_dir();
	uint64_t size = 0;
	char *tmpl;
	ssize_t n;
	int fd, rc = 0;

	if (asprintf(&tmpl, "%s/snapfs-stdin-XXXXXX", dir) < 0)
		return -ENOMEM;
	fd = mkostemp(tmpl, O_CLOEXEC);
	if (fd < 0) {
		rc = error_set(-errno, "source '-': temporary file in '%s': %s", dir,
			       errno_text(errno));
		free(tmpl);
		return rc;
	}
	unlink(tmpl);
	free(tmpl);
	while ((n = read_full(STDIN_FILENO, buf, SOURCE_BUF_BYTES)) > 0) {
		for (size_t at = 0; at < (size_t)n; at += SNAPFS_PAGE_SIZE) {
			size_t len = (size_t)n - at < SNAPFS_PAGE_SIZE ? (size_t)n - at
								       : SNAPFS_PAGE_SIZE;

			if (page_is_zero(buf + at, len))
				continue;
			errno = 0;
			if (pwrite(fd, buf + at, len, (off_t)(size + at)) != (ssize_t)len) {
				rc = error_set(errno ? -errno : -EIO, "source '-': temporary "
					       "file in '%s': %s", dir, errno_text(errno ? errno : EIO));
				goto out_close;
			}
		}
		size += (uint64_t)n;
		if ((size_t)n < SOURCE_BUF_BYTES)
			break;
	}
	if (n < 0) {
		rc = (int)n;
		goto out_close;
	}
	if (ftruncate(fd, (off_t)size) < 0) {
		rc = error_set(-errno, "source '-': temporary file in '%s': %s", dir,
			       errno_text(errno));
		goto out_close;
	}
	*ret_fd = fd;
	*ret_size = size;
	return 0;

out_close:
	close(fd);
	return rc;
}

static int open_stdin(struct source *src, struct raw_source *raw)
{
	int rc = spool_stdin(src->buf, &raw->fd, &src->size);

	if (rc < 0)
		return rc;
	src->description = strdup("stdin");
	return src->description ? 0 : -ENOMEM;
}

int source_open_raw(const char *path, struct source *src)
{
	struct raw_source *raw;
	char shown[4200];
	struct stat st;
	int rc;

	raw = calloc(1, sizeof(*raw));
	if (!raw)
		return -ENOMEM;
	src->ops = &raw_ops;
	src->impl = raw;
	raw->fd = -1;
	if (strcmp(path, "-") == 0)
		return open_stdin(src, raw);
	snprintf(shown, sizeof(shown), "source '%s'", path);
	rc = source_file_open(AT_FDCWD, path, shown, true, &raw->fd, &st);
	if (rc < 0)
		return rc;
	if (S_ISREG(st.st_mode)) {
		src->size = (uint64_t)st.st_size;
	} else {
		if (ioctl(raw->fd, BLKGETSIZE64, &src->size) < 0)
			return error_set(-errno, "source '%s': size of block device: %s",
					 path, errno_text(errno));
		raw->is_device = true;
	}
	posix_fadvise(raw->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	return 0;
}
