// SPDX-License-Identifier: MIT
/*
 * Reading raw memory files and block devices: data ranges through
 * SEEK_DATA/SEEK_HOLE, large sequential reads, and the zero-page test on
 * every page read.
 */
#include "scanner.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"
#include "errors.h"

/* Bytes read per call: large enough for streaming, small enough for cache. */
#define SCAN_CHUNK ((size_t)1 << 20)

static uint64_t page_up(uint64_t x)
{
	return (x + SNAPFS_PAGE_SIZE - 1) / SNAPFS_PAGE_SIZE * SNAPFS_PAGE_SIZE;
}

int source_open(const char *path, struct source *ret_src)
{
	struct source src = { .fd = -1, .path = path };
	struct stat st;
	int rc;

	src.fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (src.fd < 0)
		return error_set(-errno, "source '%s': %s", path, errno_text(errno));
	if (fstat(src.fd, &st) < 0) {
		rc = error_set(-errno, "source '%s': %s", path, errno_text(errno));
		goto out_close;
	}
	if (S_ISDIR(st.st_mode)) {
		rc = error_set(-EISDIR, "source '%s': is a directory, not a memory file", path);
		goto out_close;
	}
	if (S_ISREG(st.st_mode)) {
		src.size = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		if (ioctl(src.fd, BLKGETSIZE64, &src.size) < 0) {
			rc = error_set(-errno, "source '%s': size of block device: %s",
				       path, errno_text(errno));
			goto out_close;
		}
		src.is_device = true;
	} else {
		rc = error_set(-ENODEV, "source '%s': not a regular file or block device", path);
		goto out_close;
	}
	posix_fadvise(src.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	src.buf = aligned_alloc(SNAPFS_PAGE_SIZE, SCAN_CHUNK);
	if (!src.buf) {
		rc = -ENOMEM;
		goto out_close;
	}
	*ret_src = src;
	return 0;

out_close:
	close(src.fd);
	return rc;
}

void source_close(struct source *src)
{
	if (!src)
		return;
	if (src->fd >= 0)
		close(src->fd);
	src->fd = -1;
	free(src->buf);
	src->buf = NULL;
}

int source_next_data(struct source *src, uint64_t off, uint64_t *ret_start,
		     uint64_t *ret_end)
{
	off_t data, hole;
	uint64_t limit = page_up(src->size);

	if (off >= src->size)
		return -ENXIO;
	if (src->is_device) {
		*ret_start = off / SNAPFS_PAGE_SIZE * SNAPFS_PAGE_SIZE;
		*ret_end = limit;
		return 0;
	}
	data = lseek(src->fd, (off_t)off, SEEK_DATA);
	if (data < 0) {
		if (errno == ENXIO)
			return -ENXIO;
		if (errno != EINVAL)
			return error_set(-errno, "source '%s': seek data: %s", src->path,
					 errno_text(errno));
		data = (off_t)off; /* no SEEK_DATA here: all data */
		hole = (off_t)src->size;
	} else {
		hole = lseek(src->fd, data, SEEK_HOLE);
		if (hole < 0)
			hole = (off_t)src->size;
	}
	*ret_start = (uint64_t)data / SNAPFS_PAGE_SIZE * SNAPFS_PAGE_SIZE;
	*ret_end = page_up((uint64_t)hole);
	if (*ret_end > limit)
		*ret_end = limit;
	return 0;
}

/* Read exactly len bytes at off; bytes past the end of the source read as
 * zeros (the last partial page). */
static int read_full(struct source *src, unsigned char *buf, size_t len, uint64_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(src->fd, buf + got, len - got, (off_t)(off + got));

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
		memset(buf + got, 0, len - got);
	}
	return 0;
}

int scan_range(struct source *src, uint64_t start, uint64_t end, page_fn fn,
	       void *ctx, struct scan_stats *stats,
	       const struct snapfs_progress *progress, uint64_t total)
{
	unsigned char *buf = src->buf;
	uint64_t off = start;
	int rc = 0;

	while (off < end) {
		uint64_t d_start, d_end;

		rc = source_next_data(src, off, &d_start, &d_end);
		if (rc == -ENXIO) {
			rc = 0;
			break;
		}
		if (rc < 0)
			return rc;
		if (d_start >= end)
			break;
		if (d_start < off)
			d_start = off;
		if (d_end > end)
			d_end = end;
		for (uint64_t at = d_start; at < d_end;) {
			size_t len = d_end - at < SCAN_CHUNK ? (size_t)(d_end - at) : SCAN_CHUNK;

			if (progress && progress->cancel && *progress->cancel)
				return error_set(-SNAPFS_ECANCELED, "interrupted");
			rc = read_full(src, buf, len, at);
			if (rc < 0)
				return rc;
			for (size_t p = 0; p < len; p += SNAPFS_PAGE_SIZE) {
				if (bytes_all_zero(buf + p, SNAPFS_PAGE_SIZE)) {
					stats->zero_pages++;
					continue;
				}
				rc = fn(ctx, (at + p) / SNAPFS_PAGE_SIZE, buf + p);
				if (rc < 0)
					return rc;
			}
			at += len;
			stats->scanned_bytes += len;
			if (progress && progress->fn)
				progress->fn(progress->data, stats->scanned_bytes, total);
		}
		off = d_end;
	}
	return rc;
}
