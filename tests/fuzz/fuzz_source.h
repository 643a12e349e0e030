/* SPDX-License-Identifier: MIT */
/*
 * What the capture-format fuzz targets (fuzz_elf, fuzz_criu, fuzz_gvisor)
 * share: laying an input out as files in a scratch directory, and opening
 * a source on it and walking all of its data the way a save would, with
 * the invariants every source must keep checked by assert().
 *
 * Directory inputs are a list of records: one byte choosing the file (its
 * number modulo the target's file count), a little-endian u32 length,
 * that many bytes (cut short at the end of the input). A name ending in
 * "/parent" is a symlink whose target is chosen by the record's first
 * byte among a few (other dumps of the scratch tree, itself, a missing
 * path). Later records replace earlier ones.
 */
#pragma once

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapfs.h"
#include "source.h"
#include "source_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Bytes of data read per input at most, to keep runs fast. */
#define FUZZ_READ_LIMIT ((uint64_t)64 << 20)

static char fuzz_root[64];

static inline void fuzz_cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fuzz_root);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", fuzz_root);
}

/* A scratch directory for this process, removed at exit. */
static inline const char *fuzz_scratch(void)
{
	if (!fuzz_root[0]) {
		snprintf(fuzz_root, sizeof(fuzz_root), "/tmp/snapfs-fuzz-src-%d", (int)getpid());
		assert(mkdir(fuzz_root, 0700) == 0 || errno == EEXIST);
		atexit(fuzz_cleanup);
	}
	return fuzz_root;
}

/* Remove everything inside the directory dirfd (which stays open). */
static inline void fuzz_empty(int dirfd)
{
	int fd = dup(dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;

	assert(d);
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (unlinkat(dirfd, e->d_name, 0) == 0)
			continue;
		assert(errno == EISDIR || errno == EPERM);
		int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		assert(sub >= 0);
		fuzz_empty(sub);
		close(sub);
		assert(unlinkat(dirfd, e->d_name, AT_REMOVEDIR) == 0);
	}
	closedir(d);
}

/* Empty the scratch tree and make dir (relative to it) afresh. */
static inline void fuzz_reset(const char *dir)
{
	int root = open(fuzz_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	assert(root >= 0);
	fuzz_empty(root);
	assert(mkdirat(root, dir, 0700) == 0);
	close(root);
}

static inline void fuzz_write(const char *path, const uint8_t *data, size_t len)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);

	assert(fd >= 0);
	assert(write(fd, data, len) == (ssize_t)len);
	close(fd);
}

/* Lay the records of data out as files named by names[] (relative to the
 * scratch root, their directories made as needed). */
static inline void fuzz_lay_out(const uint8_t *data, size_t size, const char *const *names,
			 size_t nnames, const char *const *targets, size_t ntargets)
{
	size_t off = 0;

	while (size - off >= 5) {
		const char *name = names[data[off] % nnames];
		uint32_t len = (uint32_t)data[off + 1] | (uint32_t)data[off + 2] << 8 |
			       (uint32_t)data[off + 3] << 16 | (uint32_t)data[off + 4] << 24;
		char path[256], dir[256], *slash;

		off += 5;
		if (len > size - off)
			len = (uint32_t)(size - off);
		snprintf(path, sizeof(path), "%s/%s", fuzz_root, name);
		snprintf(dir, sizeof(dir), "%s", path);
		slash = strrchr(dir, '/');
		*slash = '\0';
		mkdir(dir, 0700);
		unlink(path);
		if (strlen(name) >= 6 && strcmp(name + strlen(name) - 6, "parent") == 0) {
			const char *target = targets[(len ? data[off] : 0) % ntargets];

			assert(symlink(target, path) == 0);
		} else {
			fuzz_write(path, data + off, len);
		}
		off += len;
	}
}

/* Open path as format and walk everything, checking the invariants. */
static inline void fuzz_source(const char *path, const char *format)
{
	struct source src;
	uint64_t off = 0, start, end, done = 0, limit;
	int rc = source_open(path, format, &src);

	if (rc < 0) {
		/* Crafted contents are -SNAPFS_ECORRUPT or -EINVAL (a wrong
		 * HMAC -EACCES); a file the input left out is -ENOENT. */
		if (rc != -SNAPFS_ECORRUPT && rc != -EINVAL && rc != -ENOENT && rc != -EACCES) {
			fprintf(stderr, "unexpected error %d: %s\n", rc, snapfs_errmsg());
			assert(0);
		}
		assert(snapfs_errmsg()[0] != '\0');
		return;
	}
	limit = page_round_up(src.size);
	assert(src.size <= SOURCE_MAX_OFFSET);
	assert(src.has_segments);
	for (size_t i = 0; i < src.segments.count; i++) {
		const struct snapfs_segment *g = &src.segments.segs[i];

		assert(g->start < g->end);
		assert(g->start % SNAPFS_PAGE_SIZE == 0 && g->end % SNAPFS_PAGE_SIZE == 0);
		assert(g->end <= limit);
		assert(i == 0 || src.segments.segs[i - 1].end <= g->start);
		assert(snapfs_kind_valid(g->kind));
	}
	while (done < FUZZ_READ_LIMIT && source_next_data(&src, off, &start, &end) == 0) {
		assert(start >= off && start < end && end <= limit);
		assert(start % SNAPFS_PAGE_SIZE == 0 && end % SNAPFS_PAGE_SIZE == 0);
		for (uint64_t at = start; at < end && done < FUZZ_READ_LIMIT;) {
			size_t len = end - at < (1u << 20) ? (size_t)(end - at) : (1u << 20);

			rc = src.ops->read(&src, src.buf, len, at);
			if (rc < 0) {
				assert(snapfs_errmsg()[0] != '\0');
				goto out_close;
			}
			at += len;
			done += len;
		}
		off = end;
	}
out_close:
	source_close(&src);
}
