// SPDX-License-Identifier: MIT
/*
 * Helpers shared by the capture formats: extent lists and the walk over
 * them, segments with labels, notes on skipped ranges, bounded whole-file
 * reads.
 */
#include "source_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "errors.h"

/* File systems whose files report a size unrelated to what they read. */
#define PROC_MAGIC 0x9fa0
#define SYSFS_MAGIC 0x62656572
#define DEBUGFS_MAGIC 0x64626720
#define TRACEFS_MAGIC 0x74726163
#define CONFIGFS_MAGIC 0x62656570

int extent_list_push(struct extent_list *list, uint64_t start, uint64_t end,
		     int file, uint64_t file_off)
{
	struct extent *last = list->count ? &list->ext[list->count - 1] : NULL;

	if (end <= start)
		return 0;
	if (last && last->end == start && last->file == file &&
	    last->file_off + (last->end - last->start) == file_off) {
		last->end = end;
		return 0;
	}
	if (list->count == list->cap) {
		size_t cap = list->cap ? list->cap * 2 : 16;
		struct extent *bigger = realloc(list->ext, cap * sizeof(*bigger));

		if (!bigger)
			return -ENOMEM;
		list->ext = bigger;
		list->cap = cap;
	}
	list->ext[list->count++] = (struct extent){
		.start = start, .end = end, .file_off = file_off, .file = file,
	};
	return 0;
}

void extent_list_release(struct extent_list *list)
{
	free(list->ext);
	*list = (struct extent_list){ 0 };
}

static int extent_cmp(const void *a, const void *b)
{
	const struct extent *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

bool extent_list_sort(struct extent_list *list, uint64_t *ret_at)
{
	if (list->count > 1)
		qsort(list->ext, list->count, sizeof(*list->ext), extent_cmp);
	for (size_t i = 1; i < list->count; i++) {
		if (list->ext[i].start < list->ext[i - 1].end) {
			*ret_at = list->ext[i].start;
			return false;
		}
	}
	return true;
}

size_t extent_list_find(const struct extent_list *list, uint64_t off)
{
	size_t lo = 0, hi = list->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (list->ext[mid].end <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int extent_list_next_data(const struct extent_list *list, uint64_t off,
			  uint64_t *ret_start, uint64_t *ret_end)
{
	size_t i = extent_list_find(list, page_down(off));
	uint64_t start, end;

	if (i == list->count)
		return -ENXIO;
	start = page_down(list->ext[i].start);
	if (start < page_down(off))
		start = page_down(off);
	end = page_round_up(list->ext[i].end);
	for (i++; i < list->count && page_down(list->ext[i].start) <= end; i++) {
		uint64_t e = page_round_up(list->ext[i].end);

		if (e > end)
			end = e;
	}
	*ret_start = start;
	*ret_end = end;
	return 0;
}

int extent_list_read(const struct extent_list *list, unsigned char *buf,
		     size_t len, uint64_t off, extent_read_fn fn, void *ctx)
{
	uint64_t end = off + len;

	memset(buf, 0, len);
	for (size_t i = extent_list_find(list, off);
	     i < list->count && list->ext[i].start < end; i++) {
		const struct extent *e = &list->ext[i];
		uint64_t s = e->start > off ? e->start : off;
		uint64_t t = e->end < end ? e->end : end;
		int rc = fn(ctx, e, buf + (s - off), (size_t)(t - s),
			    e->file_off + (s - e->start));

		if (rc < 0)
			return rc;
	}
	return 0;
}

ssize_t pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, (unsigned char *)buf + got, len - got,
				  (off_t)(off + got));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

int source_add_segment(struct source *src, uint64_t start, uint64_t end,
		       const char *kind, int64_t memcg, bool committed,
		       const char *label)
{
	struct segment_list *list = &src->segments;
	struct snapfs_segment seg = { .start = start, .end = end, .memcg_id = memcg,
				      .committed = committed };
	int rc;

	if (start >= end || start % SNAPFS_PAGE_SIZE || end % SNAPFS_PAGE_SIZE ||
	    (list->count && list->segs[list->count - 1].end > start))
		return error_set(-EINVAL, "source '%s': segment 0x%llx-0x%llx out of order",
				 src->path, (unsigned long long)start,
				 (unsigned long long)end);
	snprintf(seg.kind, sizeof(seg.kind), "%s", kind);
	if (label && !(seg.label = strdup(label)))
		return -ENOMEM;
	rc = segment_list_push(list, &seg);
	if (rc < 0)
		free(seg.label);
	src->has_segments = true;
	return rc;
}

int note_add(struct note_list *notes, const char *fmt, ...)
{
	char *one, *joined;
	va_list ap;
	int n;

	if (notes->count++ >= NOTES_MAX)
		return 0;
	va_start(ap, fmt);
	n = vasprintf(&one, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	if (!notes->text) {
		notes->text = one;
		return 0;
	}
	n = asprintf(&joined, "%s; %s", notes->text, one);
	free(one);
	if (n < 0)
		return -ENOMEM;
	free(notes->text);
	notes->text = joined;
	return 0;
}

int note_list_finish(struct note_list *notes, struct source *src)
{
	char *joined;

	if (!notes->text)
		return 0;
	if (notes->count > NOTES_MAX) {
		if (asprintf(&joined, "%s; ... and %zu more", notes->text,
			     notes->count - NOTES_MAX) < 0)
			return -ENOMEM;
		free(notes->text);
		notes->text = joined;
	}
	free(src->notes);
	src->notes = notes->text;
	*notes = (struct note_list){ 0 };
	return 0;
}

void note_list_release(struct note_list *notes)
{
	free(notes->text);
	*notes = (struct note_list){ 0 };
}

static const char *file_kind(mode_t mode)
{
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISSOCK(mode))
		return "a socket";
	if (S_ISCHR(mode))
		return "a character device";
	if (S_ISBLK(mode))
		return "a block device";
	return "not a regular file";
}

/* A regular file of size 0 holds nothing if a read at 0 says end of file
 * and it is not on a pseudo file system. */
static int check_empty(int fd, const char *shown)
{
	struct statfs sfs;
	unsigned char byte;
	ssize_t n;

	if (fstatfs(fd, &sfs) == 0 &&
	    (sfs.f_type == PROC_MAGIC || sfs.f_type == SYSFS_MAGIC ||
	     sfs.f_type == DEBUGFS_MAGIC || sfs.f_type == TRACEFS_MAGIC ||
	     sfs.f_type == CONFIGFS_MAGIC))
		return error_set(-ENODEV, "%s: a file of procfs or sysfs, whose size (0) is not "
				 "what it holds; for a process's memory use pid:N", shown);
	do
		n = pread(fd, &byte, 1, 0);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return 0;
	if (n < 0)
		return error_set(-ENODEV, "%s: reports size 0 but a read fails (%s): not a "
				 "memory file", shown, errno_text(errno));
	return error_set(-ENODEV, "%s: reports size 0 but reads data: its size is not what "
			 "it holds, not a memory file", shown);
}

int source_file_open(int dirfd, const char *name, const char *shown, bool allow_blk,
		     int *ret_fd, struct stat *ret_st)
{
	struct stat st;
	int fd, flags, rc;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 && errno == ENXIO && fstatat(dirfd, name, &st, 0) == 0 &&
	    S_ISSOCK(st.st_mode))
		return error_set(-ENODEV, "%s: a socket, not a memory file", shown);
	if (fd < 0)
		return error_set(-errno, "%s: %s", shown, errno_text(errno));
	if (fstat(fd, &st) < 0) {
		rc = error_set(-errno, "%s: %s", shown, errno_text(errno));
		goto out_close;
	}
	if (S_ISDIR(st.st_mode)) {
		rc = error_set(-EISDIR, "%s: is a directory, not a memory file", shown);
		goto out_close;
	}
	if (!S_ISREG(st.st_mode) && !(allow_blk && S_ISBLK(st.st_mode))) {
		rc = error_set(-ENODEV, "%s: %s, not a %s", shown, file_kind(st.st_mode),
			       allow_blk ? "regular file or block device" : "regular file");
		goto out_close;
	}
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
		rc = error_set(-errno, "%s: %s", shown, errno_text(errno));
		goto out_close;
	}
	if (S_ISREG(st.st_mode) && st.st_size == 0) {
		rc = check_empty(fd, shown);
		if (rc < 0)
			goto out_close;
	}
	*ret_fd = fd;
	if (ret_st)
		*ret_st = st;
	return 0;

out_close:
	close(fd);
	return rc;
}

int read_whole_file(int dirfd, const char *name, const char *shown,
		    size_t max_size, unsigned char **ret_buf, size_t *ret_len)
{
	unsigned char *buf = NULL;
	char quoted[4200];
	struct stat st;
	ssize_t got;
	int fd, rc;

	snprintf(quoted, sizeof(quoted), "'%s'", shown);
	rc = source_file_open(dirfd, name, quoted, false, &fd, &st);
	if (rc < 0)
		return rc == -ENODEV ? -EINVAL : rc;
	if ((uint64_t)st.st_size > max_size) {
		rc = error_set(-SNAPFS_ECORRUPT, "'%s': %llu bytes, more than the %zu this "
			       "kind of file may have", shown,
			       (unsigned long long)st.st_size, max_size);
		goto out_close;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out_close;
	}
	got = pread_full(fd, buf, (size_t)st.st_size, 0);
	if (got < 0) {
		rc = error_set((int)got, "'%s': %s", shown, errno_text((int)-got));
		goto out_free;
	}
	if ((size_t)got != (size_t)st.st_size) {
		rc = error_set(-EIO, "'%s': shrank while being read", shown);
		goto out_free;
	}
	*ret_buf = buf;
	*ret_len = (size_t)got;
	close(fd);
	return 0;
out_free:
	free(buf);
out_close:
	close(fd);
	return rc;
}

const char *source_spool_dir(void)
{
	const char *d = getenv("TMPDIR");

	return d && d[0] == '/' ? d : "/var/tmp";
}

int source_spool_file(int *ret_fd)
{
	const char *dir = source_spool_dir();
	char *tmpl;
	int fd, rc;

	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0) {
		*ret_fd = fd;
		return 0;
	}
	if (asprintf(&tmpl, "%s/snapfs-spool-XXXXXX", dir) < 0)
		return -ENOMEM;
	fd = mkostemp(tmpl, O_CLOEXEC);
	if (fd < 0) {
		rc = error_set(-errno, "temporary file in '%s': %s", dir, errno_text(errno));
		free(tmpl);
		return rc;
	}
	unlink(tmpl);
	free(tmpl);
	*ret_fd = fd;
	return 0;
}
