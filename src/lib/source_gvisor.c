// SPDX-License-Identifier: MIT
/*
 * The gvisor source: the memory of a gVisor sandbox as `runsc checkpoint`
 * leaves it in an image directory, uncompressed, with MemoryFile metadata
 * version 1. The memory file is the sentry's main (application)
 * MemoryFile; its usage set and kinds come from the metadata, its bytes
 * from pages.img.
 *
 * What this is built on, from gVisor's source (github.com/google/gvisor,
 * checked at commit 3c5eee17dc45659fb86843531074f38e78e0cc35):
 *  - pkg/sentry/state/checkpointfiles/checkpointfiles.go: the files are
 *    PagesMetadataFileName = "pages_meta.img" and PagesFileName =
 *    "pages.img".
 *  - pkg/sentry/pgalloc/pgalloc.proto (copied to proto/pgalloc.proto):
 *    MemoryFileMetadataProto { version = 1; chunks = 2; mem_acct = 3
 *    (MemAcctRangeProto: start, end, kind, mem_cg_id, known_committed);
 *    unfree_*, unwaste_*, subreleased }.
 *  - pkg/sentry/pgalloc/save_restore.go: exportMetadataProto() writes
 *    Version: 1 and importMetadataProto() refuses any other version
 *    ("unsupported MemoryFileMetadataProto version"). MemoryFile.SaveTo()
 *    writes to the metadata stream an 8-byte little-endian length
 *    (binary.LittleEndian.PutUint64) and then the marshalled proto; with a
 *    pages file it queues every known-committed memAcct range, in order,
 *    to AsyncPagesFileSave, whose saveOff grows by each range's length:
 *    the committed ranges lie back to back in pages.img. LoadFrom() reads
 *    them back the same way and sizes the file as len(chunks) * chunkSize.
 *  - pkg/sentry/pgalloc/pgalloc.go: chunkShift = 30, chunkSize 1 GiB.
 *  - pkg/sentry/usage/memory.go: MemoryKind is System (0), Anonymous,
 *    PageCache, Tmpfs, Ramdiskfs, Mapped (5).
 *  - pkg/sentry/kernel/kernel.go, saveMemoryFiles(): the application
 *    MemoryFile (k.mf) is saved first, so its metadata opens
 *    pages_meta.img and its pages open pages.img; savePrivateMFs() then
 *    writes a state.Save()-encoded privateMemoryFileMetadata (gVisor's own
 *    object encoding, not protobuf) and each private MemoryFile after it.
 *
 * Decision on several MemoryFiles: the snapshot is the application
 * MemoryFile alone. Private MemoryFiles (filesystems' own memory) cannot
 * be found without decoding gVisor's state encoding; when pages_meta.img
 * holds more after the first metadata, the snapshot's notes say so.
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
#include "source.h"
#include "source_pb.h"
#include "source_util.h"

#define GVISOR_META_FILE "pages_meta.img"
#define GVISOR_PAGES_FILE "pages.img"
/* The metadata version this reader understands. */
#define GVISOR_META_VERSION 1
/* pgalloc's chunkSize. */
#define GVISOR_CHUNK_SIZE ((uint64_t)1 << 30)

static const char *const gvisor_kinds[] = {
	"system", "anonymous", "pagecache", "tmpfs", "ramdiskfs", "mapped",
};

struct gvisor_source {
	int pages_fd;
	struct extent_list data;   /* file 0: pages.img */
};

typedef Gvisor__Pgalloc__MemoryFileMetadataProto meta_proto;

static int gvisor_read_piece(void *ctx, const struct extent *ext, unsigned char *buf,
			     size_t len, uint64_t file_off)
{
	struct source *src = ctx;
	struct gvisor_source *gs = src->impl;
	ssize_t n = pread_full(gs->pages_fd, buf, len, file_off);

	(void)ext;
	if (n < 0)
		return error_set((int)n, "source '%s': %s: read at offset 0x%llx: %s",
				 src->path, GVISOR_PAGES_FILE, (unsigned long long)file_off,
				 errno_text((int)-n));
	if ((size_t)n < len)
		return error_set(-EIO, "source '%s': %s: shrank while being read",
				 src->path, GVISOR_PAGES_FILE);
	return 0;
}

static int gvisor_next_data(struct source *src, uint64_t off, uint64_t *ret_start,
			    uint64_t *ret_end)
{
	struct gvisor_source *gs = src->impl;

	return extent_list_next_data(&gs->data, off, ret_start, ret_end);
}

static int gvisor_read(struct source *src, unsigned char *buf, size_t len, uint64_t off)
{
	struct gvisor_source *gs = src->impl;

	return extent_list_read(&gs->data, buf, len, off, gvisor_read_piece, src);
}

static void gvisor_close(struct source *src)
{
	struct gvisor_source *gs = src->impl;

	if (!gs)
		return;
	if (gs->pages_fd >= 0)
		close(gs->pages_fd);
	extent_list_release(&gs->data);
	free(gs);
	src->impl = NULL;
}

static const struct source_ops gvisor_ops = {
	.format = "gvisor",
	.next_data = gvisor_next_data,
	.read = gvisor_read,
	.close = gvisor_close,
};

static int meta_corrupt(const char *path, const char *what)
{
	return error_set(-SNAPFS_ECORRUPT, "source '%s': %s: %s", path, GVISOR_META_FILE, what);
}

/* Read and decode the first MemoryFileMetadataProto of pages_meta.img;
 * *ret_rest is the count of bytes after it. */
static int read_metadata(const char *path, int dirfd, struct pb_budget *budget,
			 meta_proto **ret_meta, uint64_t *ret_rest)
{
	unsigned char len_buf[8], *data = NULL;
	char shown[4200];
	uint64_t len = 0;
	struct stat st;
	meta_proto *meta;
	ssize_t n;
	int fd, rc;

	snprintf(shown, sizeof(shown), "source '%s': %s", path, GVISOR_META_FILE);
	rc = source_file_open(dirfd, GVISOR_META_FILE, shown, false, &fd, &st);
	if (rc < 0)
		return rc == -ENODEV ? -EINVAL : rc;
	n = pread_full(fd, len_buf, sizeof(len_buf), 0);
	if (n != (ssize_t)sizeof(len_buf)) {
		rc = n < 0 ? error_set((int)n, "source '%s': %s: %s", path, GVISOR_META_FILE,
				       errno_text((int)-n))
			   : meta_corrupt(path, "shorter than its 8-byte length header");
		goto out_close;
	}
	for (int i = 7; i >= 0; i--)
		len = len << 8 | len_buf[i];
	if (len > (uint64_t)st.st_size - sizeof(len_buf)) {
		rc = error_set(-SNAPFS_ECORRUPT, "source '%s': %s: metadata length %llu runs "
			       "past the end of the file (%llu bytes)", path, GVISOR_META_FILE,
			       (unsigned long long)len, (unsigned long long)st.st_size);
		goto out_close;
	}
	data = malloc(len ? (size_t)len : 1);
	if (!data) {
		rc = -ENOMEM;
		goto out_close;
	}
	n = pread_full(fd, data, (size_t)len, sizeof(len_buf));
	if (n != (ssize_t)len) {
		rc = n < 0 ? error_set((int)n, "source '%s': %s: %s", path, GVISOR_META_FILE,
				       errno_text((int)-n))
			   : meta_corrupt(path, "shrank while being read");
		goto out_free;
	}
	pb_budget_init(budget, pb_budget_for((size_t)len));
	meta = gvisor__pgalloc__memory_file_metadata_proto__unpack(&budget->alloc,
								    (size_t)len, data);
	if (!meta) {
		rc = meta_corrupt(path, "the metadata is not a MemoryFileMetadataProto");
		goto out_free;
	}
	*ret_meta = meta;
	*ret_rest = (uint64_t)st.st_size - sizeof(len_buf) - len;
	rc = 0;
out_free:
	free(data);
out_close:
	close(fd);
	return rc;
}

/* The usage set and extents from the metadata; *ret_committed is the
 * byte count the committed ranges take in pages.img. */
static int lay_out(struct source *src, const meta_proto *meta, uint64_t *ret_committed)
{
	struct gvisor_source *gs = src->impl;
	const char *path = src->path;
	uint64_t prev_end = 0, pages_off = 0;
	int rc;

	if (meta->version > GVISOR_META_VERSION)
		return error_set(-EINVAL, "source '%s': %s: metadata version %llu is newer than "
				 "this snapfs reads (version %d): a newer gVisor wrote it", path,
				 GVISOR_META_FILE, (unsigned long long)meta->version,
				 GVISOR_META_VERSION);
	if (meta->version != GVISOR_META_VERSION)
		return meta_corrupt(path, "no metadata version (0): not MemoryFileMetadataProto "
				    "metadata");
	if (meta->n_chunks > SOURCE_MAX_OFFSET / GVISOR_CHUNK_SIZE)
		return meta_corrupt(path, "more chunks than a memory file can have");
	src->size = (uint64_t)meta->n_chunks * GVISOR_CHUNK_SIZE;
	for (size_t i = 0; i < meta->n_mem_acct; i++) {
		const Gvisor__Pgalloc__MemAcctRangeProto *r = meta->mem_acct[i];

		if (r->start >= r->end || r->start % SNAPFS_PAGE_SIZE || r->end % SNAPFS_PAGE_SIZE)
			return error_set(-SNAPFS_ECORRUPT, "source '%s': %s: range %zu "
					 "(0x%llx-0x%llx) is not a page-aligned range", path,
					 GVISOR_META_FILE, i, (unsigned long long)r->start,
					 (unsigned long long)r->end);
		if (r->start < prev_end)
			return error_set(-SNAPFS_ECORRUPT, "source '%s': %s: range %zu "
					 "(0x%llx-0x%llx) is out of order or overlaps the one "
					 "before", path, GVISOR_META_FILE, i,
					 (unsigned long long)r->start, (unsigned long long)r->end);
		if (r->end > src->size)
			return error_set(-SNAPFS_ECORRUPT, "source '%s': %s: range %zu "
					 "(0x%llx-0x%llx) lies past the end of the memory file "
					 "(%zu chunks of 1 GiB)", path, GVISOR_META_FILE, i,
					 (unsigned long long)r->start, (unsigned long long)r->end,
					 meta->n_chunks);
		if (r->kind >= sizeof(gvisor_kinds) / sizeof(gvisor_kinds[0]))
			return error_set(-SNAPFS_ECORRUPT, "source '%s': %s: range %zu: "
					 "unknown memory kind %u", path, GVISOR_META_FILE, i,
					 r->kind);
		rc = source_add_segment(src, r->start, r->end, gvisor_kinds[r->kind],
					r->mem_cg_id, r->known_committed, NULL);
		if (rc < 0)
			return rc;
		if (r->known_committed) {
			rc = extent_list_push(&gs->data, r->start, r->end, 0, pages_off);
			if (rc < 0)
				return rc;
			pages_off += r->end - r->start;
		}
		prev_end = r->end;
	}
	src->has_segments = true;
	*ret_committed = pages_off;
	return 0;
}

int source_open_gvisor(const char *path, struct source *src)
{
	struct note_list notes = { 0 };
	struct gvisor_source *gs;
	struct pb_budget budget;
	meta_proto *meta = NULL;
	uint64_t rest = 0, committed = 0;
	char shown[4200];
	struct stat st;
	int dirfd, rc;

	pb_budget_init(&budget, 0);
	gs = calloc(1, sizeof(*gs));
	if (!gs)
		return -ENOMEM;
	gs->pages_fd = -1;
	src->ops = &gvisor_ops;
	src->impl = gs;
	dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return error_set(-errno, "source '%s': %s", path,
				 errno == ENOTDIR ? "not a directory (a gVisor checkpoint is one)"
						  : errno_text(errno));
	rc = read_metadata(path, dirfd, &budget, &meta, &rest);
	if (rc < 0)
		goto out_close;
	rc = lay_out(src, meta, &committed);
	if (rc < 0)
		goto out_free;
	snprintf(shown, sizeof(shown), "source '%s': %s", path, GVISOR_PAGES_FILE);
	rc = source_file_open(dirfd, GVISOR_PAGES_FILE, shown, false, &gs->pages_fd, &st);
	if (rc < 0) {
		if (rc == -ENODEV)
			rc = -EINVAL;
		goto out_free;
	}
	if ((uint64_t)st.st_size < committed || (rest == 0 && (uint64_t)st.st_size != committed)) {
		rc = error_set(-SNAPFS_ECORRUPT, "source '%s': %s holds %llu bytes, but the "
			       "committed ranges in %s take %llu", path, GVISOR_PAGES_FILE,
			       (unsigned long long)st.st_size, GVISOR_META_FILE,
			       (unsigned long long)committed);
		goto out_free;
	}
	if (rest) {
		rc = note_add(&notes, "skipped: the private MemoryFiles after the main one "
			      "(%llu bytes of %s; %llu bytes of %s from offset %llu)",
			      (unsigned long long)rest, GVISOR_META_FILE,
			      (unsigned long long)((uint64_t)st.st_size - committed),
			      GVISOR_PAGES_FILE, (unsigned long long)committed);
		if (rc < 0)
			goto out_free;
	}
	rc = note_list_finish(&notes, src);
	if (rc == 0)
		posix_fadvise(gs->pages_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
out_free:
	gvisor__pgalloc__memory_file_metadata_proto__free_unpacked(meta, &budget.alloc);
out_close:
	close(dirfd);
	note_list_release(&notes);
	return rc;
}
