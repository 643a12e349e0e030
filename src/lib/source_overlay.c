// SPDX-License-Identifier: MIT
/*
 * The overlay source: a sparse diff file laid over a stored snapshot, as
 * `snapfs save --parent P --overlay` reads a Firecracker diff snapshot.
 * Its memory file is what Firecracker's rebase-snap makes of the parent's
 * memory file and the diff: the diff's bytes wherever the diff file has
 * data (SEEK_DATA..SEEK_HOLE, byte exact, all-zero data included), the
 * parent's bytes everywhere else; the size is the larger of the parent's
 * size and the end of the diff's last data.
 *
 * Checked against Firecracker's source (github.com/firecracker-microvm/
 * firecracker, src/rebase-snap/src/main.rs at commit 074a6530a401): rebase()
 * walks the diff with seek_data/seek_hole (a data run ends at the next
 * hole or at the file's length) and sendfile()s each data run onto the
 * base file at the same offset; holes are never written, so a base larger
 * than the diff keeps its tail and a diff larger than the base grows it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "source.h"
#include "source_util.h"

struct overlay_source {
	int fd;                      /* the diff file */
	struct extent_list data;     /* its data runs, byte exact (file 0) */
	struct snapfs_image *parent;
	uint64_t parent_size;
};

static int overlay_next_data(struct source *src, uint64_t off, uint64_t *ret_start,
			     uint64_t *ret_end)
{
	struct overlay_source *ov = src->impl;
	uint64_t ds = 0, de = 0, ps = 0, pe = 0, limit = page_round_up(src->size);
	bool have_d, have_p = false;
	int rc;

	if (off >= src->size)
		return -ENXIO;
	rc = extent_list_next_data(&ov->data, off, &ds, &de);
	if (rc < 0 && rc != -ENXIO)
		return rc;
	have_d = rc == 0;
	if (off < ov->parent_size) {
		int64_t at = snapfs_image_seek(ov->parent, page_down(off), SEEK_DATA);

		if (at >= 0) {
			int64_t hole = snapfs_image_seek(ov->parent, (uint64_t)at, SEEK_HOLE);

			if (hole < 0)
				return (int)hole;
			ps = page_down((uint64_t)at);
			pe = page_round_up((uint64_t)hole);
			have_p = true;
		} else if (at != -ENXIO) {
			return (int)at;
		}
	}
	if (!have_d && !have_p)
		return -ENXIO;
	if (!have_p || (have_d && ds < ps)) {
		*ret_start = ds;
		*ret_end = have_p && ps <= de && pe > de ? pe : de;
	} else {
		*ret_start = ps;
		*ret_end = have_d && ds <= pe && de > pe ? de : pe;
	}
	if (*ret_start < page_down(off))
		*ret_start = page_down(off);
	if (*ret_end > limit)
		*ret_end = limit;
	return 0;
}

static int overlay_read(struct source *src, unsigned char *buf, size_t len, uint64_t off)
{
	struct overlay_source *ov = src->impl;
	uint64_t end = off + len;

	memset(buf, 0, len);
	if (off < ov->parent_size) {
		size_t want = ov->parent_size - off < len ? (size_t)(ov->parent_size - off) : len;
		ssize_t n = snapfs_image_read(ov->parent, buf, want, off);

		if (n < 0)
			return error_prefix((int)n, "source '%s': parent", src->path);
		if ((size_t)n != want)
			return error_set(-EIO, "source '%s': parent: short read at offset 0x%llx",
					 src->path, (unsigned long long)off);
	}
	for (size_t i = extent_list_find(&ov->data, off);
	     i < ov->data.count && ov->data.ext[i].start < end; i++) {
		const struct extent *e = &ov->data.ext[i];
		uint64_t s = e->start > off ? e->start : off;
		uint64_t t = e->end < end ? e->end : end;
		ssize_t n = pread_full(ov->fd, buf + (s - off), (size_t)(t - s), s);

		if (n < 0)
			return error_set((int)n, "source '%s': read at offset 0x%llx: %s",
					 src->path, (unsigned long long)s, errno_text((int)-n));
		if ((uint64_t)n != t - s)
			return error_set(-EIO, "source '%s': shrank while being read "
					 "(offset 0x%llx)", src->path, (unsigned long long)s);
	}
	return 0;
}

static void overlay_close(struct source *src)
{
	struct overlay_source *ov = src->impl;

	if (!ov)
		return;
	if (ov->fd >= 0)
		close(ov->fd);
	extent_list_release(&ov->data);
	snapfs_image_close(ov->parent);
	free(ov);
	src->impl = NULL;
}

static const struct source_ops overlay_ops = {
	.format = "raw",
	.next_data = overlay_next_data,
	.read = overlay_read,
	.close = overlay_close,
};

/* The diff file's data runs, as rebase-snap walks them. */
static int find_data(struct source *src, struct overlay_source *ov, uint64_t file_size)
{
	uint64_t off = 0;

	while (off < file_size) {
		off_t data = lseek(ov->fd, (off_t)off, SEEK_DATA), hole;
		int rc;

		if (data < 0) {
			if (errno == ENXIO)
				break;
			return error_set(-errno, "source '%s': seek data: %s%s", src->path,
					 errno_text(errno), errno == EINVAL ?
					 " (--overlay needs a file system that reports holes)" : "");
		}
		hole = lseek(ov->fd, data, SEEK_HOLE);
		if (hole < 0)
			return error_set(-errno, "source '%s': seek hole: %s", src->path,
					 errno_text(errno));
		if ((uint64_t)hole > file_size)
			hole = (off_t)file_size;
		if (hole <= data)
			break;
		rc = extent_list_push(&ov->data, (uint64_t)data, (uint64_t)hole, 0,
					  (uint64_t)data);
		if (rc < 0)
			return rc;
		off = (uint64_t)hole;
	}
	return 0;
}

static int open_overlay(const char *path, struct snapfs_store *store, int64_t parent_id,
			struct source *src)
{
	struct overlay_source *ov;
	char shown[4200];
	struct stat st;
	int rc;

	ov = calloc(1, sizeof(*ov));
	if (!ov)
		return -ENOMEM;
	ov->fd = -1;
	src->ops = &overlay_ops;
	src->impl = ov;
	if (strcmp(path, "-") == 0)
		return error_set(-EINVAL, "source '-': --overlay reads a sparse diff file, "
				 "not standard input (its holes would be lost)");
	snprintf(shown, sizeof(shown), "source '%s'", path);
	rc = source_file_open(AT_FDCWD, path, shown, false, &ov->fd, &st);
	if (rc < 0)
		return rc;
	if ((uint64_t)st.st_size > SOURCE_MAX_OFFSET)
		return error_set(-EFBIG, "source '%s': larger than a memory file can be", path);
	rc = find_data(src, ov, (uint64_t)st.st_size);
	if (rc < 0)
		return rc;
	rc = snapfs_image_open(store, parent_id, &ov->parent);
	if (rc < 0)
		return error_prefix(rc, "parent");
	ov->parent_size = snapfs_image_size(ov->parent);
	src->size = ov->parent_size;
	if (ov->data.count && ov->data.ext[ov->data.count - 1].end > src->size)
		src->size = ov->data.ext[ov->data.count - 1].end;
	posix_fadvise(ov->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	return 0;
}

int source_open_overlay(const char *path, struct snapfs_store *store, int64_t parent_id,
			struct source *ret_src)
{
	struct source src = { .path = path };
	int rc;

	src.buf = aligned_alloc(SNAPFS_PAGE_SIZE, SOURCE_BUF_BYTES);
	if (!src.buf)
		return -ENOMEM;
	rc = open_overlay(path, store, parent_id, &src);
	if (rc == 0) {
		src.description = realpath(path, NULL);
		if (!src.description)
			rc = -ENOMEM;
	}
	if (rc < 0) {
		source_close(&src);
		return rc;
	}
	*ret_src = src;
	return 0;
}
