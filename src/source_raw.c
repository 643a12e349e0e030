// SPDX-License-Identifier: MIT
/*
 * The raw source: a memory file or a block device, read as it is. Data
 * ranges come from SEEK_DATA/SEEK_HOLE, so holes cost nothing.
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
