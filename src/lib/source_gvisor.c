// SPDX-License-Identifier: MIT
/*
 * The gvisor source: the memory of a gVisor sandbox as `runsc checkpoint`
 * leaves it in an image directory. The memory file is the sentry's main
 * (application) MemoryFile; its usage set and kinds come from the
 * metadata. The layouts (README.md, "gVisor checkpoints", names the
 * gVisor commits of each):
 *  - pages_meta.img with MemoryFile metadata version 1 (protobuf), pages in
 *    pages.img: below;
 *  - pages_meta.img state-encoded (three generations of metadata, with
 *    or without data headers), pages in pages.img: see "the
 *    state-encoded metadata" further down;
 *  - checkpoint.img alone: the metadata (state-encoded, or version 1
 *    since 2026-08) and the pages inline in the state file's stream
 *    (gvisor_statefile.c: flate or not, keyed or not), after the kernel's
 *    object graphs (skipped with gvisor_wire.c);
 *  - checkpoint.img with pages.img (April 2024): the metadata and data
 *    headers in the stream, the bytes in pages.img.
 *
 * The version 1 layout is built on gVisor's source (github.com/google/gvisor,
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
 * Decision on several MemoryFiles (version 1): the application MemoryFile
 * is the memory file from offset 0; each private MemoryFile (filesystems'
 * own memory, see lay_out_private()) follows it at the next 1 GiB
 * boundary, as a region set: its segments carry the label
 * "private:CONTAINER:PATH" of its owner, so regions/ in the mount shows
 * them apart. The state-encoded layouts have no private MemoryFiles.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "gvisor_statefile.h"
#include "gvisor_wire.h"
#include "pgalloc.pb-c.h"
#include "source.h"
#include "source_pb.h"
#include "source_util.h"

#define GVISOR_META_FILE "pages_meta.img"
#define GVISOR_PAGES_FILE "pages.img"
#define GVISOR_STATE_FILE "checkpoint.img"
/* The largest --key-file read. */
#define GVISOR_MAX_KEY 4096
/* Type names of the 20221219 MemoryFile metadata (pgalloc_state_autogen.go). */
#define GVISOR_USAGE_SET "pkg/sentry/pgalloc.usageSet"
#define GVISOR_USAGE_SLICES "pkg/sentry/pgalloc.usageSegmentDataSlices"
#define GVISOR_USAGE_INFO "pkg/sentry/pgalloc.usageInfo"
/* The metadata version this reader understands. */
#define GVISOR_META_VERSION 1
/* pgalloc's chunkSize. */
#define GVISOR_CHUNK_SIZE ((uint64_t)1 << 30)

static const char *const gvisor_kinds[] = {
	"system", "anonymous", "pagecache", "tmpfs", "ramdiskfs", "mapped",
};

struct gvisor_source {
	int pages_fd;              /* pages.img, or the pages taken out of
	                            * checkpoint.img into an unlinked file */
	struct extent_list data;   /* file 0: pages_fd */
	const char *pages_name;    /* for messages */
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
				 src->path, gs->pages_name, (unsigned long long)file_off,
				 errno_text((int)-n));
	if ((size_t)n < len)
		return error_set(-EIO, "source '%s': %s: shrank while being read",
				 src->path, gs->pages_name);
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

/* Read and decode the MemoryFileMetadataProto at off of pages_meta.img
 * (fd, st_size bytes): an 8-byte little-endian length and the message.
 * *ret_end is the offset after it. */
static int read_metadata_at(const char *path, int fd, uint64_t off, uint64_t st_size,
			    struct pb_budget *budget, meta_proto **ret_meta, uint64_t *ret_end)
{
	unsigned char len_buf[8], *data = NULL;
	uint64_t len = 0;
	meta_proto *meta;
	ssize_t n;
	int rc;

	n = pread_full(fd, len_buf, sizeof(len_buf), off);
	if (n != (ssize_t)sizeof(len_buf))
		return n < 0 ? error_set((int)n, "source '%s': %s: %s", path, GVISOR_META_FILE,
					 errno_text((int)-n))
			     : meta_corrupt(path, "shorter than its 8-byte length header");
	for (int i = 7; i >= 0; i--)
		len = len << 8 | len_buf[i];
	if (len > st_size - off - sizeof(len_buf))
		return error_set(-SNAPFS_ECORRUPT, "source '%s': %s: metadata length %llu runs "
				 "past the end of the file (%llu bytes)", path, GVISOR_META_FILE,
				 (unsigned long long)len, (unsigned long long)st_size);
	data = malloc(len ? (size_t)len : 1);
	if (!data)
		return -ENOMEM;
	n = pread_full(fd, data, (size_t)len, off + sizeof(len_buf));
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
	*ret_end = off + sizeof(len_buf) + len;
	rc = 0;
out_free:
	free(data);
	return rc;
}

/* Where one MemoryFile goes in the snapshot's memory file. */
struct mf_place {
	uint64_t base;        /* its offset 0 in the memory file */
	uint64_t pages_off;   /* its first committed byte in pages.img */
	const char *label;    /* segments' label (private ones), or NULL */
	const char *where;    /* the metadata's file, for messages */
};

/* The usage set and extents from the metadata, at place; *ret_committed
 * is the byte count the committed ranges take in pages.img. */
static int lay_out(struct source *src, const meta_proto *meta, const struct mf_place *at,
		   uint64_t *ret_committed)
{
	struct gvisor_source *gs = src->impl;
	const char *path = src->path;
	uint64_t prev_end = 0, pages_off = at->pages_off, size;
	int rc;

	if (meta->version > GVISOR_META_VERSION)
		return error_set(-EINVAL, "source '%s': %s: metadata version %llu is newer than "
				 "this snapfs reads (version %d): a newer gVisor wrote it", path,
				 at->where, (unsigned long long)meta->version,
				 GVISOR_META_VERSION);
	if (meta->version != GVISOR_META_VERSION)
		return error_set(-SNAPFS_ECORRUPT, "source '%s': %s: no metadata version (0): "
				 "not MemoryFileMetadataProto metadata", path, at->where);
	if (meta->n_chunks > (SOURCE_MAX_OFFSET - at->base) / GVISOR_CHUNK_SIZE)
		return error_set(-SNAPFS_ECORRUPT, "source '%s': %s: more chunks than a memory "
				 "file can have", path, at->where);
	size = (uint64_t)meta->n_chunks * GVISOR_CHUNK_SIZE;
	src->size = at->base + size;
	for (size_t i = 0; i < meta->n_mem_acct; i++) {
		const Gvisor__Pgalloc__MemAcctRangeProto *r = meta->mem_acct[i];

		if (r->start >= r->end || r->start % SNAPFS_PAGE_SIZE || r->end % SNAPFS_PAGE_SIZE)
			return error_set(-SNAPFS_ECORRUPT, "source '%s': %s: range %zu "
					 "(0x%llx-0x%llx) is not a page-aligned range", path,
					 at->where, i, (unsigned long long)r->start,
					 (unsigned long long)r->end);
		if (r->start < prev_end)
			return error_set(-SNAPFS_ECORRUPT, "source '%s': %s: range %zu "
					 "(0x%llx-0x%llx) is out of order or overlaps the one "
					 "before", path, at->where, i,
					 (unsigned long long)r->start, (unsigned long long)r->end);
		if (r->end > size)
			return error_set(-SNAPFS_ECORRUPT, "source '%s': %s: range %zu "
					 "(0x%llx-0x%llx) lies past the end of the memory file "
					 "(%zu chunks of 1 GiB)", path, at->where, i,
					 (unsigned long long)r->start, (unsigned long long)r->end,
					 meta->n_chunks);
		if (r->kind >= sizeof(gvisor_kinds) / sizeof(gvisor_kinds[0]))
			return error_set(-SNAPFS_ECORRUPT, "source '%s': %s: range %zu: "
					 "unknown memory kind %u", path, at->where, i,
					 r->kind);
		rc = source_add_segment(src, at->base + r->start, at->base + r->end,
					gvisor_kinds[r->kind], r->mem_cg_id, r->known_committed,
					at->label);
		if (rc < 0)
			return rc;
		if (r->known_committed) {
			rc = extent_list_push(&gs->data, at->base + r->start, at->base + r->end, 0,
					      pages_off);
			if (rc < 0)
				return rc;
			pages_off += r->end - r->start;
		}
		prev_end = r->end;
	}
	src->has_segments = true;
	*ret_committed = pages_off - at->pages_off;
	return 0;
}

/* --- the state-encoded metadata (gVisor 20221219 and the seed era) ------- */

/*
 * MemoryFile.SaveTo() of gVisor release 20221219
 * (pkg/sentry/pgalloc/save_restore.go; the seed's save_restore.go writes
 * the same to pages_meta.img, the page bytes to pages.img):
 * state.Save(&f.fileSize), state.Save(&f.usage), then per known-committed
 * usage segment, in order, state.WriteHeader(length, false) and (in the
 * same stream or in the pages file) the segment's bytes. The usage set
 * saves as usageSegmentDataSlices {Start, End []uint64; Values
 * []usageInfo {kind, knownCommitted, refs}} (usage_set.go saveRoot()).
 */
struct mf_seg {
	uint64_t start, end, kind;
	uint32_t memcg;
	bool committed;
};

struct mf_meta {
	uint64_t file_size;
	struct mf_seg *segs;
	size_t count;
};

static int state_corrupt(const char *shown, const char *what, const char *detail)
{
	return error_set(-SNAPFS_ECORRUPT, "%s: MemoryFile metadata: %s%s", shown, what,
			 detail ? detail : "");
}

/* A slice field's backing array and where the slice starts in it; a nil
 * slice gives *ret_len 0. */
static int slice_elements(const struct gw_graph *g, const struct gw_obj *sl, const char *shown,
			  const char *name, struct gw_obj *const **ret_elems, uint64_t *ret_len)
{
	const struct gw_obj *arr;
	uint64_t at = 0;

	*ret_len = 0;
	if (!sl || sl->kind == GW_NIL)
		return 0;
	if (sl->kind != GW_SLICE)
		return state_corrupt(shown, name, " is not a slice");
	if (sl->u2 == 0)
		return 0;
	if (sl->dot_field || sl->n > 1)
		return state_corrupt(shown, name, " points into a struct, not at an array");
	if (sl->n == 1)
		at = sl->dot;
	arr = gw_graph_object(g, sl->u);
	if (!arr || arr->kind != GW_ARRAY)
		return state_corrupt(shown, name, " points at no array");
	if (at > arr->n || sl->u2 > arr->n - at)
		return state_corrupt(shown, name, " runs past the end of its array");
	*ret_elems = arr->kids + at;
	*ret_len = sl->u2;
	return 0;
}

/* Later state-encoded layouts (gVisor's history, checked to 3c5eee17dc45):
 *  - commit 88d35cd8f (2023-11-17): segment sets save their root as
 *    []FlatSegment {Start, End, Value} (pkg/segment/set.go), so the usage
 *    set's root is a slice of usageFlatSegment; a87aa7369 (2023-07-18)
 *    had added memCgID to usageInfo;
 *  - commit a5573312e (2024-06-28) to 6acfb4158 (2026-08-10): one
 *    state.Save of memoryFileSaved {unwasteSmall, unwasteHuge, unfreeSmall,
 *    unfreeHuge, subreleased, memAcct *memAcctSet, chunks []chunkInfo};
 *    memAcctSet's root is []memAcctFlatSegment, whose Value is a
 *    memAcctInfo {kind, memCgID, knownCommitted, wasteOrReleasing,
 *    commitSeq}; the file is len(chunks) chunks of 1 GiB. */
#define GVISOR_USAGE_FLAT "pkg/sentry/pgalloc.usageFlatSegment"
#define GVISOR_MF_SAVED "pkg/sentry/pgalloc.memoryFileSaved"
#define GVISOR_MA_SET "pkg/sentry/pgalloc.memAcctSet"
#define GVISOR_MA_FLAT "pkg/sentry/pgalloc.memAcctFlatSegment"
#define GVISOR_MA_INFO "pkg/sentry/pgalloc.memAcctInfo"

/* Names of one generation's set types. */
struct set_names {
	const char *set, *flat, *info;
};

static const struct set_names usage_names = { GVISOR_USAGE_SET, GVISOR_USAGE_FLAT,
					      GVISOR_USAGE_INFO };
static const struct set_names memacct_names = { GVISOR_MA_SET, GVISOR_MA_FLAT, GVISOR_MA_INFO };

/* kind, knownCommitted and (if there) memCgID of a usage value. */
static int seg_value(const struct gw_graph *g, const struct gw_obj *v, const char *shown,
		     const char *info, struct mf_seg *seg)
{
	const struct gw_type *t = gw_graph_struct_type(g, v);
	const struct gw_obj *memcg;
	uint64_t committed, cg = 0;

	if (!t || strcmp(t->name, info) != 0)
		return state_corrupt(shown, "a usage value is not a ", info);
	memcg = gw_graph_field(g, v, "memCgID");
	if (!gw_obj_uint(gw_graph_field(g, v, "kind"), &seg->kind) ||
	    !gw_obj_uint(gw_graph_field(g, v, "knownCommitted"), &committed) ||
	    (memcg && (!gw_obj_uint(memcg, &cg) || cg > UINT32_MAX)))
		return state_corrupt(shown, "a usage segment without an integer kind, "
				     "knownCommitted or memCgID", NULL);
	seg->committed = committed != 0;
	seg->memcg = (uint32_t)cg;
	return 0;
}

/* A root saved as []FlatSegment. */
static int flat_segments(const struct gw_graph *g, const struct gw_obj *root, const char *shown,
			 const struct set_names *names, struct mf_meta *meta)
{
	struct gw_obj *const *elems = NULL;
	uint64_t n = 0;
	int rc;

	rc = slice_elements(g, root, shown, "the set's root", &elems, &n);
	if (rc < 0)
		return rc;
	meta->segs = calloc(n ? n : 1, sizeof(*meta->segs));
	if (!meta->segs)
		return -ENOMEM;
	for (uint64_t i = 0; i < n; i++) {
		const struct gw_type *t = gw_graph_struct_type(g, elems[i]);
		struct mf_seg *seg = &meta->segs[i];

		if (!t || strcmp(t->name, names->flat) != 0)
			return state_corrupt(shown, "a segment is not a ", names->flat);
		if (!gw_obj_uint(gw_graph_field(g, elems[i], "Start"), &seg->start) ||
		    !gw_obj_uint(gw_graph_field(g, elems[i], "End"), &seg->end))
			return state_corrupt(shown, "a segment without an integer Start or End",
					     NULL);
		rc = seg_value(g, gw_graph_field(g, elems[i], "Value"), shown, names->info, seg);
		if (rc < 0)
			return rc;
		meta->count++;
	}
	return 0;
}

static int usage_from_graph(const struct gw_graph *g, const struct gw_obj *set,
			    const char *shown, const struct set_names *names, struct mf_meta *meta)
{
	const struct gw_obj *root, *sds;
	const struct gw_type *t = gw_graph_struct_type(g, set);
	struct gw_obj *const *starts = NULL, *const *ends = NULL, *const *values = NULL;
	uint64_t n_start, n_end, n_value;
	int rc;

	if (!t || strcmp(t->name, names->set) != 0)
		return error_set(-SNAPFS_ECORRUPT, "%s: MemoryFile metadata: the usage set is "
				 "a '%s', not a '%s'", shown,
				 t ? t->name : gw_kind_name(set ? set->kind : GW_NIL),
				 names->set);
	root = gw_graph_field(g, set, "root");
	if (!root || root->kind == GW_NIL)
		return 0; /* no segments */
	if (root->kind == GW_SLICE)
		return flat_segments(g, root, shown, names, meta);
	if (names != &usage_names || root->kind != GW_REF || root->n)
		return state_corrupt(shown, "the usage set's root is neither a slice nor a "
				     "plain reference", NULL);
	sds = gw_graph_object(g, root->u);
	t = gw_graph_struct_type(g, sds);
	if (!t || strcmp(t->name, GVISOR_USAGE_SLICES) != 0)
		return state_corrupt(shown, "the usage set's root is not a ",
				     GVISOR_USAGE_SLICES);
	rc = slice_elements(g, gw_graph_field(g, sds, "Start"), shown, "Start", &starts, &n_start);
	if (rc == 0)
		rc = slice_elements(g, gw_graph_field(g, sds, "End"), shown, "End", &ends, &n_end);
	if (rc == 0)
		rc = slice_elements(g, gw_graph_field(g, sds, "Values"), shown, "Values", &values,
				    &n_value);
	if (rc < 0)
		return rc;
	if (n_start != n_end || n_start != n_value)
		return state_corrupt(shown, "Start, End and Values differ in length", NULL);
	meta->segs = calloc(n_start ? n_start : 1, sizeof(*meta->segs));
	if (!meta->segs)
		return -ENOMEM;
	for (uint64_t i = 0; i < n_start; i++) {
		struct mf_seg *seg = &meta->segs[i];

		if (!gw_obj_uint(starts[i], &seg->start) || !gw_obj_uint(ends[i], &seg->end))
			return state_corrupt(shown, "a usage segment without an integer start, "
					     "end, kind or knownCommitted", NULL);
		rc = seg_value(g, values[i], shown, GVISOR_USAGE_INFO, seg);
		if (rc < 0)
			return rc;
		meta->count++;
	}
	return 0;
}

/* memoryFileSaved (graph g, object 1): the size from its chunks, the
 * segments from memAcct. */
static int saved_from_graph(const struct gw_graph *g, const char *shown, struct mf_meta *meta)
{
	const struct gw_obj *mfs = gw_graph_object(g, 1), *ma, *set;
	struct gw_obj *const *chunks = NULL;
	uint64_t n_chunks = 0;
	int rc;

	rc = slice_elements(g, gw_graph_field(g, mfs, "chunks"), shown, "chunks", &chunks,
			    &n_chunks);
	if (rc < 0)
		return rc;
	if (n_chunks > SOURCE_MAX_OFFSET / GVISOR_CHUNK_SIZE)
		return state_corrupt(shown, "more chunks than a memory file can have", NULL);
	meta->file_size = n_chunks * GVISOR_CHUNK_SIZE;
	ma = gw_graph_field(g, mfs, "memAcct");
	if (!ma || ma->kind == GW_NIL)
		return 0;
	if (ma->kind != GW_REF || ma->n)
		return state_corrupt(shown, "memAcct is not a plain reference", NULL);
	set = gw_graph_object(g, ma->u);
	return usage_from_graph(g, set, shown, &memacct_names, meta);
}

/* fileSize and the usage set (two graphs from in), or memoryFileSaved
 * (one graph). */
static int read_state_meta(struct gw_input *in, struct mf_meta *meta)
{
	struct gw_graph g = { 0 };
	const struct gw_obj *fs;
	const struct gw_type *t;
	int rc;

	rc = gw_graph_read(in, true, &g);
	if (rc < 0)
		return rc;
	fs = gw_graph_object(&g, 1);
	t = gw_graph_struct_type(&g, fs);
	if (t && strcmp(t->name, GVISOR_MF_SAVED) == 0) {
		rc = saved_from_graph(&g, in->shown, meta);
		gw_graph_release(&g);
		return rc;
	}
	if (!gw_obj_uint(fs, &meta->file_size) || meta->file_size > SOURCE_MAX_OFFSET ||
	    meta->file_size % SNAPFS_PAGE_SIZE) {
		if (t)
			rc = error_set(-SNAPFS_ECORRUPT, "%s: MemoryFile metadata: a '%s', neither "
				       "fileSize nor a '%s'", in->shown, t->name, GVISOR_MF_SAVED);
		else
			rc = state_corrupt(in->shown, "fileSize is not a page-aligned size", NULL);
		gw_graph_release(&g);
		return rc;
	}
	gw_graph_release(&g);
	rc = gw_graph_read(in, true, &g);
	if (rc < 0)
		return rc;
	rc = usage_from_graph(&g, gw_graph_object(&g, 1), in->shown, &usage_names, meta);
	gw_graph_release(&g);
	return rc;
}

/* The segments into src, checked. */
static int lay_out_state(struct source *src, const struct mf_meta *meta, const char *shown,
			 uint64_t base, const char *label)
{
	uint64_t prev_end = 0;
	int rc;

	if (meta->file_size > SOURCE_MAX_OFFSET - base)
		return state_corrupt(shown, "the MemoryFiles together are larger than a memory "
				     "file can be", NULL);
	src->size = base + meta->file_size;
	for (size_t i = 0; i < meta->count; i++) {
		const struct mf_seg *r = &meta->segs[i];

		const char *why = NULL;

		if (r->start >= r->end || r->start % SNAPFS_PAGE_SIZE || r->end % SNAPFS_PAGE_SIZE)
			why = "is not a page-aligned range";
		else if (r->start < prev_end)
			why = "overlaps the one before or is out of order";
		else if (r->end > meta->file_size)
			why = "lies past fileSize";
		if (why)
			return error_set(-SNAPFS_ECORRUPT, "%s: usage segment %zu (0x%llx-0x%llx) "
					 "%s (fileSize 0x%llx)", shown, i,
					 (unsigned long long)r->start, (unsigned long long)r->end, why,
					 (unsigned long long)meta->file_size);
		if (r->kind >= sizeof(gvisor_kinds) / sizeof(gvisor_kinds[0]))
			return error_set(-SNAPFS_ECORRUPT, "%s: usage segment %zu: unknown memory "
					 "kind %llu", shown, i, (unsigned long long)r->kind);
		rc = source_add_segment(src, base + r->start, base + r->end, gvisor_kinds[r->kind],
					r->memcg, r->committed, label);
		if (rc < 0)
			return rc;
		prev_end = r->end;
	}
	src->has_segments = true;
	return 0;
}

/* The data header before a committed segment's bytes. */
static int read_data_header(struct gw_input *in, const struct mf_seg *seg)
{
	uint64_t len;
	bool object;
	int rc = gw_read_header(in, &len, &object);

	if (rc < 0)
		return rc;
	if (object || len != seg->end - seg->start)
		return error_set(-SNAPFS_ECORRUPT, "%s: the header before the bytes of "
				 "0x%llx-0x%llx says %s%llu, not %llu bytes of data", in->shown,
				 (unsigned long long)seg->start, (unsigned long long)seg->end,
				 object ? "an object graph of " : "", (unsigned long long)len,
				 (unsigned long long)(seg->end - seg->start));
	return 0;
}

/* pages_meta.img read in order from off, for a gw_input. */
struct meta_file {
	int fd;
	uint64_t off;
	char shown[4200];            /* "source 'PATH': pages_meta.img" */
};

static ssize_t file_read(void *ctx, unsigned char *buf, size_t len)
{
	struct meta_file *f = ctx;
	ssize_t n = pread_full(f->fd, buf, len, f->off);

	if (n < 0)
		return error_set((int)n, "%s: read at offset %llu: %s", f->shown,
				 (unsigned long long)f->off, errno_text((int)-n));
	f->off += (uint64_t)n;
	return n;
}

/* A gw_input over pages_meta.img (fd) from off, reading through f (the
 * caller's, alive as long as the input). Free with free(); NULL when out
 * of memory. */
static struct gw_input *meta_input_open(const struct source *src, int fd, uint64_t off,
					struct meta_file *f)
{
	struct gw_input *in = malloc(sizeof(*in));

	f->fd = fd;
	f->off = off;
	snprintf(f->shown, sizeof(f->shown), "source '%s': %s", src->path, GVISOR_META_FILE);
	if (in)
		gw_input_init(in, file_read, f, f->shown);
	return in;
}

/* true if b (10 bytes) is a state graph header: a 10-byte varint with
 * bit 63 (the object flag) set. */
static bool starts_object(const unsigned char *b)
{
	for (int i = 0; i < 9; i++)
		if (b[i] < 0x80)
			return false;
	return b[9] == 0x01;
}

/* true if the file starts with a state graph header: a 10-byte varint
 * with bit 63 (the object flag) set. A v1 metadata file starts with a
 * small little-endian length instead. */
static bool starts_state_encoded(int fd)
{
	unsigned char b[10];

	if (pread_full(fd, b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return false;
	for (int i = 0; i < 9; i++)
		if (b[i] < 0x80)
			return false;
	return b[9] == 0x01;
}

/* Where a state-encoded MemoryFile's bytes are. */
enum mf_bytes {
	MF_BYTES_AUTO,     /* pages.img; data headers in pages_meta.img or not */
	MF_BYTES_APART,    /* pages.img; data headers in the stream */
	MF_BYTES_INLINE,   /* data headers and bytes in the stream */
};

static int spill(struct source *src, struct gw_input *in, uint64_t len, uint64_t off);
static int private_owners(struct gw_input *in, bool strict, char ***ret_labels,
			  size_t *ret_count);
static int data_headers_follow(struct gw_input *in);

/* The committed ranges of a state-encoded MemoryFile laid out at base:
 * their data headers and (inline) bytes, copied to the spill file; *off
 * is where the next range's bytes are (pages.img) or go (spill file). */
static int state_ranges(struct source *src, struct gw_input *in, const struct mf_meta *meta,
			uint64_t base, enum mf_bytes how, uint64_t *off)
{
	struct gvisor_source *gs = src->impl;
	int headers = how == MF_BYTES_AUTO ? data_headers_follow(in) : 1;

	if (headers < 0)
		return headers;
	for (size_t i = 0; i < meta->count; i++) {
		const struct mf_seg *seg = &meta->segs[i];
		uint64_t len = seg->end - seg->start;
		int rc = 0;

		if (!seg->committed)
			continue;
		if (headers)
			rc = read_data_header(in, seg);
		if (rc == 0 && how == MF_BYTES_INLINE)
			rc = spill(src, in, len, *off);
		if (rc == 0)
			rc = extent_list_push(&gs->data, base + seg->start, base + seg->end, 0, *off);
		if (rc < 0)
			return rc;
		*off += len;
	}
	return 0;
}

/*
 * After a state-encoded main MemoryFile: the private ones (kernel.go
 * savePrivateMFs(), since commit d8eb29ed6, 2024-02-09): the state-encoded
 * privateMemoryFileMetadata, then each MemoryFile as the main one, each at
 * the next 1 GiB boundary with its owner as label (as for version 1).
 * Anything else after the main MemoryFile is noted as skipped.
 */
static int state_privates(struct source *src, struct gw_input *in, enum mf_bytes how,
			  uint64_t *off, const char *file, struct note_list *notes)
{
	char **labels = NULL;
	size_t count = 0;
	uint64_t pos = in->pos;
	int rc = gw_input_at_end(in);

	if (rc != 0)
		return rc < 0 ? rc : 0;
	rc = private_owners(in, false, &labels, &count);
	if (rc == 1)
		return note_add(notes, "skipped: %s holds more after the main MemoryFile (from "
				"byte %llu)", file, (unsigned long long)pos);
	for (size_t i = 0; i < count && rc == 0; i++) {
		uint64_t base = (src->size + GVISOR_CHUNK_SIZE - 1) / GVISOR_CHUNK_SIZE *
				GVISOR_CHUNK_SIZE;
		struct mf_meta meta = { 0 };

		rc = read_state_meta(in, &meta);
		if (rc == 0)
			rc = lay_out_state(src, &meta, in->shown, base, labels[i]);
		if (rc == 0)
			rc = state_ranges(src, in, &meta, base, how, off);
		free(meta.segs);
	}
	if (rc == 0)
		rc = gw_input_at_end(in);
	if (rc == 0)
		rc = note_add(notes, "skipped: %s holds more after the private MemoryFiles "
			      "(from byte %llu)", file, (unsigned long long)in->pos);
	else if (rc > 0)
		rc = 0;
	for (size_t i = 0; i < count; i++)
		free(labels[i]);
	free(labels);
	return rc;
}

/* The seed-era directory: state-encoded pages_meta.img, pages.img. */
/*
 * Whether data headers follow the metadata in pages_meta.img: gVisor wrote
 * state.WriteHeader(length, false) per committed range there (the bytes
 * in pages.img) until commit 478d83e70 (2025-10-02, async page saving),
 * and nothing since. A header is a small varint; what else may follow is
 * a state object header (bit 63 set: 10 bytes, the 8th with its high bit)
 * or the end. 1: headers, 0: none, -errno.
 */
static int data_headers_follow(struct gw_input *in)
{
	unsigned char b[10];
	int n = gw_input_peek(in, b, sizeof(b));

	if (n < 0)
		return n;
	return !(n == 0 || (n == 10 && starts_object(b)));
}

/* A state-encoded MemoryFile whose metadata in reads from meta_name and
 * whose bytes are in pages.img: its segments and committed ranges (and
 * the private MemoryFiles after it), then pages.img opened and checked to
 * hold every committed range. how: where the data headers are. */
static int open_state_with_pages(struct source *src, int dirfd, struct gw_input *in,
				 enum mf_bytes how, const char *meta_name,
				 struct note_list *notes)
{
	struct gvisor_source *gs = src->impl;
	struct mf_meta meta = { 0 };
	uint64_t pages_off = 0;
	char pshown[4200];
	struct stat st;
	int rc;

	rc = read_state_meta(in, &meta);
	if (rc == 0)
		rc = lay_out_state(src, &meta, in->shown, 0, NULL);
	if (rc == 0)
		rc = state_ranges(src, in, &meta, 0, how, &pages_off);
	if (rc == 0)
		rc = state_privates(src, in, how, &pages_off, meta_name, notes);
	if (rc < 0)
		goto out_free;
	snprintf(pshown, sizeof(pshown), "source '%s': %s", src->path, GVISOR_PAGES_FILE);
	rc = source_file_open(dirfd, GVISOR_PAGES_FILE, pshown, false, &gs->pages_fd, &st);
	if (rc < 0) {
		rc = rc == -ENODEV ? -EINVAL : rc;
		goto out_free;
	}
	if ((uint64_t)st.st_size < pages_off)
		rc = error_set(-SNAPFS_ECORRUPT, "source '%s': %s holds %llu bytes, but the "
			       "committed ranges in %s take %llu", src->path, GVISOR_PAGES_FILE,
			       (unsigned long long)st.st_size, meta_name,
			       (unsigned long long)pages_off);
out_free:
	free(meta.segs);
	return rc;
}

static int open_state_meta(struct source *src, int meta_fd, int dirfd, struct note_list *notes)
{
	struct meta_file f;
	struct gw_input *in = meta_input_open(src, meta_fd, 0, &f);
	int rc;

	if (!in)
		return -ENOMEM;
	rc = open_state_with_pages(src, dirfd, in, MF_BYTES_AUTO, GVISOR_META_FILE, notes);
	free(in);
	return rc;
}

/* --- checkpoint.img (gVisor 20221219: everything in one state file) ------ */

static int read_key(const char *key_file, unsigned char **ret_key, size_t *ret_len)
{
	char shown[4200];

	snprintf(shown, sizeof(shown), "key file '%s'", key_file);
	return read_whole_file(AT_FDCWD, key_file, shown, GVISOR_MAX_KEY, ret_key, ret_len);
}

/* An unlinked file for the pages taken out of the stream. */
static int open_spill(const char *path)
{
	const char *dir = getenv("TMPDIR");
	int fd;

	/* As standard input's spool (source_raw.c). */
	if (!dir || dir[0] != '/')
		dir = "/var/tmp";
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return error_set(-errno, "source '%s': a temporary file in '%s' for the pages "
				 "of %s: %s", path, dir, GVISOR_STATE_FILE, errno_text(errno));
	return fd;
}

/* Copy len bytes of the stream to the spill file at off. */
static int spill(struct source *src, struct gw_input *in, uint64_t len, uint64_t off)
{
	struct gvisor_source *gs = src->impl;

	while (len) {
		size_t take = len < SOURCE_BUF_BYTES ? (size_t)len : SOURCE_BUF_BYTES;
		ssize_t n;
		int rc;

		rc = gw_input_read(in, src->buf, take, "a memory range's bytes");
		if (rc < 0)
			return rc;
		n = pwrite(gs->pages_fd, src->buf, take, (off_t)off);
		if (n != (ssize_t)take)
			return error_set(n < 0 ? -errno : -ENOSPC, "source '%s': writing the pages "
					 "of %s to a temporary file: %s", src->path,
					 GVISOR_STATE_FILE, n < 0 ? errno_text(errno)
								  : "short write");
		len -= take;
		off += take;
	}
	return 0;
}

/*
 * The MemoryFile inline in the stream, version 1 (gVisor since commit
 * 6acfb4158, 2026-08-10, when written without a pages file, i.e. with
 * --compression=flate-best-speed): save_restore.go SaveTo() writes an
 * 8-byte little-endian length and the MemoryFileMetadataProto, then per
 * known-committed memAcct range, in order, state.WriteHeader(length,
 * false) and the range's bytes. kernel.go savePrivateMFs() follows with
 * the state-encoded privateMemoryFileMetadata and each private MemoryFile
 * the same way.
 */
#define GVISOR_MAX_INLINE_META ((uint64_t)256 << 20)

/* true if the stream goes on with a v1 metadata length, not a state
 * object: a state object header is a 10-byte varint whose 8th byte has
 * its high bit set, where a length under 2^56 has a zero byte. */
static int next_is_proto(struct gw_input *in)
{
	unsigned char b[10];
	int n = gw_input_peek(in, b, sizeof(b));

	if (n < 0)
		return n;
	return n >= 8 && b[7] == 0;
}

static int read_inline_proto(struct source *src, struct gw_input *in, struct pb_budget *budget,
			     meta_proto **ret_meta)
{
	unsigned char lb[8], *data;
	uint64_t len = 0;
	int rc;

	(void)src;
	rc = gw_input_read(in, lb, sizeof(lb), "a MemoryFile metadata length");
	if (rc < 0)
		return rc;
	for (int i = 7; i >= 0; i--)
		len = len << 8 | lb[i];
	if (len > GVISOR_MAX_INLINE_META)
		return error_set(-SNAPFS_ECORRUPT, "%s: MemoryFile metadata length %llu is over "
				 "snapfs's limit of 256 MiB", in->shown, (unsigned long long)len);
	data = malloc(len ? (size_t)len : 1);
	if (!data)
		return -ENOMEM;
	rc = gw_input_read(in, data, (size_t)len, "the MemoryFile metadata");
	if (rc == 0) {
		pb_budget_init(budget, pb_budget_for((size_t)len));
		*ret_meta = gvisor__pgalloc__memory_file_metadata_proto__unpack(&budget->alloc,
										 (size_t)len, data);
		if (!*ret_meta)
			rc = error_set(-SNAPFS_ECORRUPT, "%s: the MemoryFile metadata in the "
				       "stream is not a MemoryFileMetadataProto", in->shown);
	}
	free(data);
	return rc;
}

/* One MemoryFile (metadata and pages) from the stream, laid out at at. */
static int inline_v1(struct source *src, struct gw_input *in, struct mf_place *at,
		     uint64_t *spill_off)
{
	struct pb_budget budget;
	meta_proto *meta = NULL;
	uint64_t committed = 0;
	int rc;

	pb_budget_init(&budget, 0);
	rc = read_inline_proto(src, in, &budget, &meta);
	if (rc == 0)
		rc = lay_out(src, meta, at, &committed);
	for (size_t i = 0; rc == 0 && i < meta->n_mem_acct; i++) {
		const Gvisor__Pgalloc__MemAcctRangeProto *r = meta->mem_acct[i];
		struct mf_seg seg = { .start = r->start, .end = r->end, .committed = true };

		if (!r->known_committed)
			continue;
		rc = read_data_header(in, &seg);
		if (rc == 0)
			rc = spill(src, in, r->end - r->start, *spill_off);
		*spill_off += r->end - r->start;
	}
	if (meta)
		gvisor__pgalloc__memory_file_metadata_proto__free_unpacked(meta, &budget.alloc);
	return rc;
}

/* The main MemoryFile and the private ones after it, all inline (v1). */
static int open_inline_v1(struct source *src, struct gw_input *in, struct note_list *notes)
{
	struct mf_place at = { .where = GVISOR_STATE_FILE };
	uint64_t spill_off = 0;
	char **labels = NULL;
	size_t count = 0;
	int rc;

	rc = inline_v1(src, in, &at, &spill_off);
	if (rc < 0)
		return rc;
	rc = gw_input_at_end(in);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	rc = private_owners(in, true, &labels, &count);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < count && rc == 0; i++) {
		struct mf_place p = { .base = src->size, .pages_off = spill_off,
				      .label = labels[i], .where = GVISOR_STATE_FILE };

		rc = inline_v1(src, in, &p, &spill_off);
	}
	if (rc == 0)
		rc = gw_input_at_end(in);
	if (rc == 0)
		rc = note_add(notes, "skipped: the state stream of %s goes on after the "
			      "private MemoryFiles (from byte %llu)", GVISOR_STATE_FILE,
			      (unsigned long long)in->pos);
	else if (rc > 0)
		rc = 0;
	for (size_t i = 0; i < count; i++)
		free(labels[i]);
	free(labels);
	return rc;
}

static bool dir_has_file(int dirfd, const char *name);

/* The state-encoded MemoryFile in the stream, its bytes in pages.img. */
static int open_pages_apart(struct source *src, int dirfd, struct gw_input *in,
			    struct note_list *notes)
{
	struct gvisor_source *gs = src->impl;

	gs->pages_name = GVISOR_PAGES_FILE;
	return open_state_with_pages(src, dirfd, in, MF_BYTES_APART, GVISOR_STATE_FILE, notes);
}

static int open_statefile(struct source *src, int dirfd, struct note_list *notes)
{
	struct gvisor_source *gs = src->impl;
	struct gvisor_statefile *sf = NULL;
	struct mf_meta meta = { 0 };
	unsigned char *key = NULL;
	size_t key_len = 0;
	struct gw_input *in = NULL;
	char shown[4200];
	uint64_t spill_off = 0;
	int fd, rc;

	snprintf(shown, sizeof(shown), "source '%s': %s", src->path, GVISOR_STATE_FILE);
	gs->pages_name = GVISOR_STATE_FILE;
	if (src->key_file) {
		rc = read_key(src->key_file, &key, &key_len);
		if (rc < 0)
			return rc;
	}
	rc = source_file_open(dirfd, GVISOR_STATE_FILE, shown, false, &fd, NULL);
	if (rc < 0) {
		rc = rc == -ENODEV ? -EINVAL : rc;
		goto out_key;
	}
	rc = gvisor_statefile_open(fd, shown, key, key_len, &sf);
	if (rc < 0)
		goto out_close;
	in = malloc(sizeof(*in));
	if (!in) {
		rc = -ENOMEM;
		goto out_sf;
	}
	gw_input_init(in, gvisor_statefile_read, sf, shown);
	/* kernel.SaveTo(): the CPU feature set, the kernel, then k.mf. */
	rc = gw_graph_read(in, false, NULL);
	if (rc == 0)
		rc = gw_graph_read(in, false, NULL);
	if (rc < 0)
		goto out_sf;
	/* gVisor 5e9207a96 (2024-04-12) to a3ae7f25a (2024-04-30) with
	 * compression none: the data headers in the stream, the bytes in
	 * pages.img. */
	if (dir_has_file(dirfd, GVISOR_PAGES_FILE)) {
		rc = open_pages_apart(src, dirfd, in, notes);
		goto out_sf;
	}
	rc = open_spill(src->path);
	if (rc < 0)
		goto out_sf;
	gs->pages_fd = rc;
	rc = next_is_proto(in);
	if (rc < 0)
		goto out_sf;
	if (rc == 1) {
		rc = open_inline_v1(src, in, notes);
		goto out_sf;
	}
	rc = read_state_meta(in, &meta);
	if (rc == 0)
		rc = lay_out_state(src, &meta, shown, 0, NULL);
	if (rc == 0)
		rc = state_ranges(src, in, &meta, 0, MF_BYTES_INLINE, &spill_off);
	if (rc == 0)
		rc = state_privates(src, in, MF_BYTES_INLINE, &spill_off, GVISOR_STATE_FILE, notes);
out_sf:
	free(meta.segs);
	free(in);
	gvisor_statefile_close(sf);
out_close:
	close(fd);
out_key:
	if (key)
		explicit_bzero(key, key_len);
	free(key);
	return rc;
}

/* What a gVisor checkpoint directory holds, for the choice and messages. */
static bool dir_has_file(int dirfd, const char *name)
{
	return faccessat(dirfd, name, F_OK, 0) == 0;
}

/*
 * The private MemoryFiles after the main one in a version 1 pages_meta.img
 * (kernel.go savePrivateMFs() at commit 3c5eee17dc45): state.Save() of
 * privateMemoryFileMetadata {owners []checkpoint.ResourceID
 * {ContainerName, Path}} (earlier gVisor: owners []string), then each
 * private MemoryFile's metadata in that order; their committed ranges
 * follow the main one's in pages.img, in the same order.
 */
#define GVISOR_PRIVATE_META "pkg/sentry/kernel.privateMemoryFileMetadata"
#define GVISOR_RESOURCE_ID "pkg/sentry/checkpoint.ResourceID"
#define GVISOR_MAX_LABEL 200

static const char *string_of(const struct gw_obj *o)
{
	return o && o->kind == GW_STRING ? o->str : "";
}

/* "private:CONTAINER:PATH", control characters as '?', cut short. */
static int owner_label(const struct gw_graph *g, const struct gw_obj *o, char **ret)
{
	char buf[GVISOR_MAX_LABEL + 1];
	const struct gw_type *t = gw_graph_struct_type(g, o);

	if (o && o->kind == GW_STRING)
		snprintf(buf, sizeof(buf), "private:%s", o->str);
	else if (t && strcmp(t->name, GVISOR_RESOURCE_ID) == 0)
		snprintf(buf, sizeof(buf), "private:%s:%s",
			 string_of(gw_graph_field(g, o, "ContainerName")),
			 string_of(gw_graph_field(g, o, "Path")));
	else
		return -EINVAL;
	for (char *c = buf; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	*ret = strdup(buf);
	return *ret ? 0 : -ENOMEM;
}

/* The owners' labels, in order. */
static int private_owners(struct gw_input *in, bool strict, char ***ret_labels,
			  size_t *ret_count)
{
	struct gw_obj *const *elems = NULL;
	const struct gw_obj *meta;
	const struct gw_type *t;
	struct gw_graph g = { 0 };
	char **labels = NULL;
	uint64_t n = 0;
	int rc;

	rc = gw_graph_read(in, true, &g);
	if (rc < 0)
		return rc;
	meta = gw_graph_object(&g, 1);
	t = gw_graph_struct_type(&g, meta);
	if ((!t || strcmp(t->name, GVISOR_PRIVATE_META) != 0) && !strict) {
		rc = 1;
		goto out_release;
	}
	if (!t || strcmp(t->name, GVISOR_PRIVATE_META) != 0) {
		rc = error_set(-SNAPFS_ECORRUPT, "%s: after the main MemoryFile comes a '%s', "
			       "not a '%s'", in->shown, t ? t->name : "value that is no struct",
			       GVISOR_PRIVATE_META);
		goto out_release;
	}
	rc = slice_elements(&g, gw_graph_field(&g, meta, "owners"), in->shown, "owners", &elems,
			    &n);
	if (rc < 0)
		goto out_release;
	labels = calloc(n ? n : 1, sizeof(*labels));
	if (!labels) {
		rc = -ENOMEM;
		goto out_release;
	}
	for (uint64_t i = 0; i < n && rc == 0; i++) {
		rc = owner_label(&g, elems[i], &labels[i]);
		if (rc == -EINVAL)
			rc = state_corrupt(in->shown, "a private MemoryFile's owner is neither a "
					   "string nor a ", GVISOR_RESOURCE_ID);
	}
	if (rc < 0) {
		for (uint64_t i = 0; i < n; i++)
			free(labels[i]);
		free(labels);
		goto out_release;
	}
	*ret_labels = labels;
	*ret_count = n;
out_release:
	gw_graph_release(&g);
	return rc;
}

/* Lay out each private MemoryFile from off on, after the main one: each at
 * the next 1 GiB boundary, its segments labelled with its owner. */
static int lay_out_private(struct source *src, int fd, uint64_t off, uint64_t st_size,
			   uint64_t *pages_off, struct note_list *notes)
{
	struct meta_file f;
	struct gw_input *in = meta_input_open(src, fd, off, &f);
	char **labels = NULL;
	size_t count = 0;
	int rc;

	if (!in)
		return -ENOMEM;
	rc = private_owners(in, true, &labels, &count);
	if (rc < 0)
		goto out_free;
	off += in->pos;
	for (size_t i = 0; i < count && rc == 0; i++) {
		struct mf_place at = { .base = src->size, .pages_off = *pages_off,
				       .label = labels[i], .where = GVISOR_META_FILE };
		struct pb_budget budget;
		meta_proto *meta = NULL;
		uint64_t committed = 0;

		pb_budget_init(&budget, 0);
		rc = read_metadata_at(src->path, fd, off, st_size, &budget, &meta, &off);
		if (rc == 0)
			rc = lay_out(src, meta, &at, &committed);
		*pages_off += committed;
		if (meta)
			gvisor__pgalloc__memory_file_metadata_proto__free_unpacked(meta,
										   &budget.alloc);
	}
	if (rc == 0 && off < st_size)
		rc = note_add(notes, "skipped: %llu bytes of %s after the private MemoryFiles",
			      (unsigned long long)(st_size - off), GVISOR_META_FILE);
	for (size_t i = 0; i < count; i++)
		free(labels[i]);
	free(labels);
out_free:
	free(in);
	return rc;
}

static int open_v1(struct source *src, int meta_fd, uint64_t meta_size, int dirfd,
		   struct note_list *notes)
{
	struct gvisor_source *gs = src->impl;
	const char *path = src->path;
	struct mf_place at = { .where = GVISOR_META_FILE };
	struct pb_budget budget;
	meta_proto *meta = NULL;
	uint64_t end = 0, committed = 0;
	char shown[4200];
	struct stat st;
	int rc;

	pb_budget_init(&budget, 0);
	rc = read_metadata_at(path, meta_fd, 0, meta_size, &budget, &meta, &end);
	if (rc < 0)
		return rc;
	rc = lay_out(src, meta, &at, &committed);
	gvisor__pgalloc__memory_file_metadata_proto__free_unpacked(meta, &budget.alloc);
	if (rc == 0 && end < meta_size)
		rc = lay_out_private(src, meta_fd, end, meta_size, &committed, notes);
	if (rc < 0)
		return rc;
	snprintf(shown, sizeof(shown), "source '%s': %s", path, GVISOR_PAGES_FILE);
	rc = source_file_open(dirfd, GVISOR_PAGES_FILE, shown, false, &gs->pages_fd, &st);
	if (rc < 0)
		return rc == -ENODEV ? -EINVAL : rc;
	if ((uint64_t)st.st_size != committed)
		return error_set(-SNAPFS_ECORRUPT, "source '%s': %s holds %llu bytes, but the "
				 "committed ranges in %s take %llu", path, GVISOR_PAGES_FILE,
				 (unsigned long long)st.st_size, GVISOR_META_FILE,
				 (unsigned long long)committed);
	return 0;
}

/*
 * Which layout: pages_meta.img (v1 protobuf or state-encoded, by its first
 * bytes) with pages.img; else checkpoint.img alone (20221219); a
 * filesystem-only checkpoint (fscheckpoint.pb, multitar.img, no
 * checkpoint.img) holds no application memory and is refused.
 */
int source_open_gvisor(const char *path, struct source *src)
{
	struct note_list notes = { 0 };
	struct gvisor_source *gs;
	bool has_meta, has_state;
	int dirfd, meta_fd, rc;

	gs = calloc(1, sizeof(*gs));
	if (!gs)
		return -ENOMEM;
	gs->pages_fd = -1;
	gs->pages_name = GVISOR_PAGES_FILE;
	src->ops = &gvisor_ops;
	src->impl = gs;
	dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return error_set(-errno, "source '%s': %s", path,
				 errno == ENOTDIR ? "not a directory (a gVisor checkpoint is one)"
						  : errno_text(errno));
	has_meta = dir_has_file(dirfd, GVISOR_META_FILE);
	has_state = dir_has_file(dirfd, GVISOR_STATE_FILE);
	if (!has_state && (dir_has_file(dirfd, "fscheckpoint.pb") ||
			   dir_has_file(dirfd, "multitar.img"))) {
		rc = error_set(-EINVAL, "source '%s': a filesystem-only gVisor checkpoint "
			       "(fscheckpoint.pb, multitar.img, no %s): it holds no "
			       "application memory; snapfs reads full checkpoints (%s, or %s "
			       "with %s)", path, GVISOR_STATE_FILE, GVISOR_STATE_FILE,
			       GVISOR_META_FILE, GVISOR_PAGES_FILE);
		goto out_close;
	}
	if (src->key_file && (has_meta || !has_state)) {
		rc = error_set(-EINVAL, "source '%s': --key-file is for a checkpoint whose "
			       "memory is in %s; this one has %s", path, GVISOR_STATE_FILE,
			       has_meta ? GVISOR_META_FILE : "neither");
		goto out_close;
	}
	if (has_meta) {
		char shown[4200];
		struct stat st;

		snprintf(shown, sizeof(shown), "source '%s': %s", path, GVISOR_META_FILE);
		rc = source_file_open(dirfd, GVISOR_META_FILE, shown, false, &meta_fd, &st);
		if (rc < 0) {
			rc = rc == -ENODEV ? -EINVAL : rc;
			goto out_close;
		}
		if (starts_state_encoded(meta_fd))
			rc = open_state_meta(src, meta_fd, dirfd, &notes);
		else
			rc = open_v1(src, meta_fd, (uint64_t)st.st_size, dirfd, &notes);
		close(meta_fd);
	} else if (has_state) {
		rc = open_statefile(src, dirfd, &notes);
	} else {
		rc = error_set(-EINVAL, "source '%s': no gVisor checkpoint here: neither %s "
			       "(gVisor 20221219) nor %s with %s", path, GVISOR_STATE_FILE,
			       GVISOR_META_FILE, GVISOR_PAGES_FILE);
	}
	if (rc == 0)
		rc = note_list_finish(&notes, src);
	if (rc == 0)
		posix_fadvise(gs->pages_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
out_close:
	close(dirfd);
	note_list_release(&notes);
	return rc;
}
