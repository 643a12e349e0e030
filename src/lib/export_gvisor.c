// SPDX-License-Identifier: MIT
/*
 * snapfs_export_gvisor(): write a snapshot out as a gVisor checkpoint's
 * memory files, the exact inverse of what source_gvisor.c reads:
 *  - pages_meta.img: an 8-byte little-endian length, then a
 *    MemoryFileMetadataProto (proto/pgalloc.proto) with version 1, one
 *    ChunkInfoProto (huge false) per GiB of the memory file, and one
 *    MemAcctRangeProto per segment (start, end, kind as gVisor's
 *    MemoryKind number, mem_cg_id, known_committed), in order;
 *  - pages.img: the bytes of the committed segments back to back, in
 *    order (zero runs left as holes: they read as zeros).
 * gVisor sizes a memory file in whole chunks of 1 GiB, so a re-import
 * has the file size rounded up to a GiB (the bytes past the snapshot's
 * size read as zeros); gVisor has no segment labels, so they are not
 * written. Both files are written to temporary files in the directory and
 * renamed into place: a failure leaves no partial checkpoint.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "pgalloc.pb-c.h"
#include "snapfs.h"

#define GVISOR_META_FILE "pages_meta.img"
#define GVISOR_PAGES_FILE "pages.img"
#define GVISOR_CHUNK_SIZE ((uint64_t)1 << 30)
#define EXPORT_CHUNK ((size_t)1 << 20)

/* gVisor's MemoryKind numbers (pkg/sentry/usage/memory.go). */
static const char *const gvisor_kinds[] = {
	"system", "anonymous", "pagecache", "tmpfs", "ramdiskfs", "mapped",
};

struct export_job {
	const char *dir;
	const struct snapfs_export_opts *opts;
	struct snapfs_image *img;
	struct snapfs_segment *segs;
	size_t seg_count;
	uint64_t file_size;
	uint64_t done, total;         /* progress: committed bytes */
	unsigned char *buf;
	char *tmp_pages, *tmp_meta;   /* temporary files, until renamed */
};

/* A segment's end as gVisor takes it: page-aligned (a raw snapshot's last
 * segment may end at an unaligned file size; the rest of its page reads
 * as zeros). */
static uint64_t seg_end(const struct snapfs_segment *g)
{
	return (g->end + SNAPFS_PAGE_SIZE - 1) / SNAPFS_PAGE_SIZE * SNAPFS_PAGE_SIZE;
}

static int kind_number(const char *kind, uint32_t *ret_kind)
{
	for (uint32_t i = 0; i < sizeof(gvisor_kinds) / sizeof(gvisor_kinds[0]); i++) {
		if (strcmp(kind, gvisor_kinds[i]) == 0) {
			*ret_kind = i;
			return 0;
		}
	}
	return -EINVAL;
}

static int write_at(int fd, const char *shown, const unsigned char *buf, size_t len,
		    uint64_t off)
{
	for (size_t put = 0; put < len;) {
		ssize_t n = pwrite(fd, buf + put, len - put, (off_t)(off + put));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return error_set(-errno, "output '%s': write at offset 0x%llx: %s", shown,
					 (unsigned long long)(off + put), errno_text(errno));
		}
		put += (size_t)n;
	}
	return 0;
}

/* Copy memory-file bytes [start, end) to pages.img at pages_off. */
static int copy_bytes(struct export_job *job, int fd, uint64_t start, uint64_t end,
		      uint64_t pages_off)
{
	const struct snapfs_progress *p = &job->opts->progress;

	for (uint64_t at = start; at < end;) {
		size_t len = end - at < EXPORT_CHUNK ? (size_t)(end - at) : EXPORT_CHUNK;
		ssize_t n;
		int rc;

		if (p->cancel && *p->cancel)
			return error_set(-SNAPFS_ECANCELED, "interrupted");
		n = snapfs_image_read(job->img, job->buf, len, at);
		if (n < 0)
			return error_set((int)n, "read at offset 0x%llx: %s",
					 (unsigned long long)at, snapfs_strerror((int)n));
		if ((size_t)n != len)
			return error_set(-EIO, "read at offset 0x%llx: short read",
					 (unsigned long long)at);
		rc = write_at(fd, GVISOR_PAGES_FILE, job->buf, len, pages_off + (at - start));
		if (rc < 0)
			return rc;
		at += len;
		job->done += len;
		if (p->fn)
			p->fn(p->data, job->done, job->total);
	}
	return 0;
}

/* The data of segment [start, end) at pages_off of pages.img; holes stay
 * holes. Bytes past the memory file's end (a last partial page) are
 * zeros. */
static int copy_segment(struct export_job *job, int fd, const struct snapfs_segment *g,
			uint64_t pages_off)
{
	uint64_t end = g->end < job->file_size ? g->end : job->file_size, off = g->start;

	while (off < end) {
		int64_t data = snapfs_image_seek(job->img, off, SEEK_DATA), hole;
		int rc;

		if (data == -ENXIO || (data >= 0 && (uint64_t)data >= end))
			break;
		if (data < 0)
			return (int)data;
		hole = snapfs_image_seek(job->img, (uint64_t)data, SEEK_HOLE);
		if (hole < 0)
			return (int)hole;
		if ((uint64_t)hole > end)
			hole = (int64_t)end;
		rc = copy_bytes(job, fd, (uint64_t)data, (uint64_t)hole,
				pages_off + ((uint64_t)data - g->start));
		if (rc < 0)
			return rc;
		off = (uint64_t)hole;
	}
	return 0;
}

/* A new temporary file in the output directory for name. */
static int create_temp(const struct export_job *job, const char *name, char **ret_tmp,
		       int *ret_fd)
{
	char *tmp;
	mode_t mask;
	int fd;

	if (asprintf(&tmp, "%s/.%s.snapfs-XXXXXX", job->dir, name) < 0)
		return -ENOMEM;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		int rc = error_set(-errno, "output '%s': %s", job->dir, errno_text(errno));

		free(tmp);
		return rc;
	}
	mask = umask(0);
	umask(mask);
	fchmod(fd, 0666 & ~mask);
	*ret_tmp = tmp;
	*ret_fd = fd;
	return 0;
}

static int close_checked(int fd, const char *name)
{
	if (close(fd) < 0)
		return error_set(-errno, "output '%s': %s", name, errno_text(errno));
	return 0;
}

static int write_pages(struct export_job *job, uint64_t *ret_len)
{
	uint64_t pages_off = 0;
	int fd, rc;

	rc = create_temp(job, GVISOR_PAGES_FILE, &job->tmp_pages, &fd);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < job->seg_count && rc == 0; i++) {
		if (!job->segs[i].committed)
			continue;
		rc = copy_segment(job, fd, &job->segs[i], pages_off);
		pages_off += seg_end(&job->segs[i]) - job->segs[i].start;
	}
	if (rc == 0 && ftruncate(fd, (off_t)pages_off) < 0)
		rc = error_set(-errno, "output '%s': %s", GVISOR_PAGES_FILE, errno_text(errno));
	if (close_checked(fd, GVISOR_PAGES_FILE) < 0 && rc == 0)
		rc = -EIO;
	*ret_len = pages_off;
	return rc;
}

/* The MemoryFileMetadataProto of the snapshot, packed into *ret_buf. */
static int pack_metadata(const struct export_job *job, unsigned char **ret_buf,
			 size_t *ret_len)
{
	Gvisor__Pgalloc__MemoryFileMetadataProto meta =
		GVISOR__PGALLOC__MEMORY_FILE_METADATA_PROTO__INIT;
	Gvisor__Pgalloc__ChunkInfoProto chunk = GVISOR__PGALLOC__CHUNK_INFO_PROTO__INIT;
	Gvisor__Pgalloc__MemAcctRangeProto *ranges = NULL, **range_ptrs = NULL;
	Gvisor__Pgalloc__ChunkInfoProto **chunk_ptrs = NULL;
	uint64_t top = job->file_size;
	unsigned char *buf = NULL;
	size_t chunks, len;
	int rc = 0;

	for (size_t i = 0; i < job->seg_count; i++)
		if (seg_end(&job->segs[i]) > top)
			top = seg_end(&job->segs[i]);
	chunks = (size_t)((top + GVISOR_CHUNK_SIZE - 1) / GVISOR_CHUNK_SIZE);
	chunk_ptrs = calloc(chunks ? chunks : 1, sizeof(*chunk_ptrs));
	ranges = calloc(job->seg_count ? job->seg_count : 1, sizeof(*ranges));
	range_ptrs = calloc(job->seg_count ? job->seg_count : 1, sizeof(*range_ptrs));
	if (!chunk_ptrs || !ranges || !range_ptrs) {
		rc = -ENOMEM;
		goto out_free;
	}
	for (size_t i = 0; i < chunks; i++)
		chunk_ptrs[i] = &chunk;
	for (size_t i = 0; i < job->seg_count; i++) {
		const struct snapfs_segment *g = &job->segs[i];
		Gvisor__Pgalloc__MemAcctRangeProto init =
			GVISOR__PGALLOC__MEM_ACCT_RANGE_PROTO__INIT;

		ranges[i] = init;
		if (kind_number(g->kind, &ranges[i].kind) < 0) {
			rc = error_set(-SNAPFS_ECORRUPT, "segment 0x%llx-0x%llx: unknown kind '%s'",
				       (unsigned long long)g->start, (unsigned long long)g->end,
				       g->kind);
			goto out_free;
		}
		if (g->memcg_id < 0 || g->memcg_id > UINT32_MAX) {
			rc = error_set(-ERANGE, "segment 0x%llx-0x%llx: memcg %lld does not fit "
				       "gVisor's 32-bit memory cgroup id",
				       (unsigned long long)g->start, (unsigned long long)g->end,
				       (long long)g->memcg_id);
			goto out_free;
		}
		ranges[i].start = g->start;
		ranges[i].end = seg_end(g);
		ranges[i].mem_cg_id = (uint32_t)g->memcg_id;
		ranges[i].known_committed = g->committed;
		range_ptrs[i] = &ranges[i];
	}
	meta.version = 1;
	meta.n_chunks = chunks;
	meta.chunks = chunk_ptrs;
	meta.n_mem_acct = job->seg_count;
	meta.mem_acct = range_ptrs;
	len = gvisor__pgalloc__memory_file_metadata_proto__get_packed_size(&meta);
	buf = malloc(8 + len);
	if (!buf) {
		rc = -ENOMEM;
		goto out_free;
	}
	for (int i = 0; i < 8; i++)
		buf[i] = (unsigned char)((uint64_t)len >> (8 * i));
	gvisor__pgalloc__memory_file_metadata_proto__pack(&meta, buf + 8);
	*ret_buf = buf;
	*ret_len = 8 + len;
out_free:
	free(chunk_ptrs);
	free(ranges);
	free(range_ptrs);
	return rc;
}

static int write_metadata(struct export_job *job)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	int fd, rc;

	rc = pack_metadata(job, &buf, &len);
	if (rc < 0)
		return rc;
	rc = create_temp(job, GVISOR_META_FILE, &job->tmp_meta, &fd);
	if (rc == 0) {
		rc = write_at(fd, GVISOR_META_FILE, buf, len, 0);
		if (close_checked(fd, GVISOR_META_FILE) < 0 && rc == 0)
			rc = -EIO;
	}
	free(buf);
	return rc;
}

/* The output directory: made if missing; its checkpoint files must not
 * exist unless force. */
static int prepare_dir(const struct export_job *job)
{
	static const char *const names[] = { GVISOR_META_FILE, GVISOR_PAGES_FILE };
	struct stat st;

	if (mkdir(job->dir, 0777) < 0 && errno != EEXIST)
		return error_set(-errno, "output '%s': %s", job->dir, errno_text(errno));
	if (stat(job->dir, &st) < 0)
		return error_set(-errno, "output '%s': %s", job->dir, errno_text(errno));
	if (!S_ISDIR(st.st_mode))
		return error_set(-ENOTDIR, "output '%s': not a directory", job->dir);
	for (size_t i = 0; i < 2 && !job->opts->force; i++) {
		char path[4200];

		snprintf(path, sizeof(path), "%s/%s", job->dir, names[i]);
		if (lstat(path, &st) == 0)
			return error_set(-EEXIST, "output '%s': exists (use --force to replace it)",
					 path);
	}
	return 0;
}

static int move_into_place(struct export_job *job, char **tmp, const char *name)
{
	char path[4200];
	int rc;

	snprintf(path, sizeof(path), "%s/%s", job->dir, name);
	if (job->opts->force)
		rc = rename(*tmp, path) < 0 ? -errno : 0;
	else
		rc = renameat2(AT_FDCWD, *tmp, AT_FDCWD, path, RENAME_NOREPLACE) < 0 ? -errno : 0;
	if (rc < 0)
		return error_set(rc, "output '%s': %s", path, errno_text(-rc));
	free(*tmp);
	*tmp = NULL;
	return 0;
}

static int export_files(struct export_job *job)
{
	uint64_t pages_len = 0;
	int rc;

	rc = prepare_dir(job);
	if (rc == 0)
		rc = write_pages(job, &pages_len);
	if (rc == 0)
		rc = write_metadata(job);
	if (rc == 0)
		rc = move_into_place(job, &job->tmp_pages, GVISOR_PAGES_FILE);
	if (rc == 0) {
		rc = move_into_place(job, &job->tmp_meta, GVISOR_META_FILE);
		if (rc < 0) {
			char path[4200];

			/* No half checkpoint: pages.img goes too. */
			snprintf(path, sizeof(path), "%s/%s", job->dir, GVISOR_PAGES_FILE);
			unlink(path);
		}
	}
	return rc;
}

int snapfs_export_gvisor(struct snapfs_store *store, const char *name, const char *dir,
			 const struct snapfs_export_opts *opts)
{
	struct export_job job = { .dir = dir, .opts = opts };
	struct snapfs_snapshot snap;
	int rc;

	error_clear();
	if (!snapfs_name_valid(name))
		return error_set(-SNAPFS_EBADNAME, "snapshot '%s': invalid name", name);
	rc = snapfs_snapshot_get(store, name, &snap);
	if (rc < 0)
		return rc;
	rc = snapfs_image_open(store, snap.id, &job.img);
	if (rc == 0)
		rc = snapfs_segments_get(store, snap.id, &job.segs, &job.seg_count);
	snapfs_snapshot_release(&snap);
	if (rc < 0)
		goto out_close;
	job.file_size = snapfs_image_size(job.img);
	for (size_t i = 0; i < job.seg_count; i++)
		if (job.segs[i].committed)
			job.total += job.segs[i].end - job.segs[i].start;
	job.buf = malloc(EXPORT_CHUNK);
	if (!job.buf) {
		rc = -ENOMEM;
		goto out_close;
	}
	rc = export_files(&job);
out_close:
	if (rc < 0)
		error_prefix(rc, "export '%s'", name);
	if (job.tmp_pages)
		unlink(job.tmp_pages);
	if (job.tmp_meta)
		unlink(job.tmp_meta);
	free(job.tmp_pages);
	free(job.tmp_meta);
	free(job.buf);
	snapfs_segments_free(job.segs, job.seg_count);
	snapfs_image_close(job.img);
	return rc;
}
