/* SPDX-License-Identifier: MIT */
/*
 * What the capture formats (elf, criu, gvisor, pid) share, private to
 * src/: extent lists (where each byte range of the memory file lives in a
 * backing file or process, and the next_data/read walk over them), adding
 * labelled segments, collecting notes on what was skipped, and whole-file
 * reads bounded by the file's size.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "source.h"

/* The highest memory-file offset a source may use: file_size is an SQLite
 * integer and an off_t, so addresses above this (the x86-64 [vsyscall]
 * page, kernel virtual addresses) cannot be kept. Page-aligned. */
#define SOURCE_MAX_OFFSET ((uint64_t)INT64_MAX / SNAPFS_PAGE_SIZE * SNAPFS_PAGE_SIZE)

static inline uint64_t page_down(uint64_t x)
{
	return x / SNAPFS_PAGE_SIZE * SNAPFS_PAGE_SIZE;
}

/* x rounded up to a page; x must be at most SOURCE_MAX_OFFSET or so. */
static inline uint64_t page_round_up(uint64_t x)
{
	return (x + SNAPFS_PAGE_SIZE - 1) / SNAPFS_PAGE_SIZE * SNAPFS_PAGE_SIZE;
}

/* One run of bytes the source holds: memory-file bytes [start, end) are
 * bytes [file_off, file_off + end - start) of backing file `file` (a
 * number of the format's own choosing: a core's one fd, a CRIU dump level,
 * a process). Everything outside the extents reads as zeros. */
struct extent {
	uint64_t start;
	uint64_t end;       /* half-open, > start */
	uint64_t file_off;
	int file;
};

/* A growable array of extents. Once extent_list_sort() succeeded they are
 * sorted by start and do not overlap. */
struct extent_list {
	struct extent *ext;
	size_t count, cap;
};

/* Append an extent (merged into the last one when it continues it). */
int extent_list_push(struct extent_list *list, uint64_t start, uint64_t end,
		     int file, uint64_t file_off);
void extent_list_release(struct extent_list *list);
/* Sort by start. Returns false if two extents overlap; *ret_at is then
 * the offset where the second begins. */
bool extent_list_sort(struct extent_list *list, uint64_t *ret_at);
/* Index of the first extent that ends after off (count if none). */
size_t extent_list_find(const struct extent_list *list, uint64_t off);

/* source_ops.next_data over a sorted list: page-aligned runs of pages that
 * hold extent bytes, touching runs merged, at or after off. */
int extent_list_next_data(const struct extent_list *list, uint64_t off,
			  uint64_t *ret_start, uint64_t *ret_end);

/* Reads len bytes of an extent's backing file at file_off into buf. */
typedef int (*extent_read_fn)(void *ctx, const struct extent *ext,
			      unsigned char *buf, size_t len, uint64_t file_off);
/* source_ops.read over a sorted list: zeros, then every extent piece in
 * [off, off + len) through fn. */
int extent_list_read(const struct extent_list *list, unsigned char *buf,
		     size_t len, uint64_t off, extent_read_fn fn, void *ctx);

/* pread() until len bytes are in or the file ends: the count read, or
 * -errno. */
ssize_t pread_full(int fd, void *buf, size_t len, uint64_t off);

/* Append segment [start, end) to src's usage set and set has_segments
 * (label copied; NULL for none). Segments must be page-aligned, come in
 * order and not overlap the previous one: -EINVAL otherwise (a bug in the
 * caller's checks). */
int source_add_segment(struct source *src, uint64_t start, uint64_t end,
		       const char *kind, int64_t memcg, bool committed,
		       const char *label);

/* Notes on what a capture skipped: the first NOTES_MAX are kept word for
 * word, the rest only counted. note_list_finish() hands the text to
 * src->notes ("a; b; ... and N more"). */
#define NOTES_MAX 16
struct note_list {
	char *text;
	size_t count;
};
int note_add(struct note_list *notes, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int note_list_finish(struct note_list *notes, struct source *src);
void note_list_release(struct note_list *notes);

/*
 * Open dirfd/name (dirfd AT_FDCWD for a plain path) for reading, without
 * blocking on a FIFO, a socket or a device: the open is O_NONBLOCK, the file
 * is checked with fstat, and only then made blocking. Accepted: a regular
 * file, and a block device if allow_blk. Refused with -ENODEV: anything
 * else (FIFO, socket, character device) and, also -ENODEV, a regular
 * file that reports size 0 but is not empty (procfs, sysfs: files whose
 * size says nothing about what they read). Messages read "SHOWN: WHY",
 * shown being how the caller names the file ("source '/x'"). The fd in *ret_fd and the fstat in *ret_st (optional) belong
 * to the caller; both untouched on failure.
 */
int source_file_open(int dirfd, const char *name, const char *shown, bool allow_blk,
		     int *ret_fd, struct stat *ret_st);

/* Read the whole regular file at dirfd/name (dirfd may be AT_FDCWD) into
 * a new buffer, refusing files larger than max_size. *ret_buf is freed by
 * the caller. Errors name `shown` (the path as the user would see it). */
int read_whole_file(int dirfd, const char *name, const char *shown,
		    size_t max_size, unsigned char **ret_buf, size_t *ret_len);

/* Where sources put temporary data ($TMPDIR if it is an absolute path,
 * else /var/tmp). */
const char *source_spool_dir(void);
/* A new unnamed file there (O_TMPFILE, or a file unlinked at once), open
 * for reading and writing; its fd in *ret_fd, the caller's to close. */
int source_spool_file(int *ret_fd);
