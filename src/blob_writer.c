// SPDX-License-Identifier: MIT
/*
 * Packing pages into blobs and building the page map.
 *
 * Each page either reuses a stored slot (a page with the same content is
 * already in the store, or earlier in this save) or takes the next slot of
 * the pending blob. Runs of the page map are built as pages arrive: a run
 * grows while pages are consecutive in the file and in one blob's slots.
 * Runs on the pending blob wait until it is written and has an id.
 */
#include "blob_writer.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "codec.h"
#include "digest.h"
#include "errors.h"
#include "reader.h"

/* The pending blob's stand-in id until it is written. */
#define PENDING_BLOB (-1)
/* Closed runs that may wait for the pending blob; more (only pages that
 * repeat one pending page do that) write the blob early. */
#define WAITING_MAX (4 * BLOB_PAGES)

struct blob_writer {
	struct catalog *cat;
	int64_t snapshot_id;
	enum snapfs_codec codec;
	int level;
	struct codec_ctx *codec_ctx;
	struct page_hasher *hasher;
	struct run_hasher *run_hasher;

	unsigned char *pending;          /* BLOB_PAGES pages */
	int64_t pending_digest[BLOB_PAGES];
	int pending_count;
	unsigned char *packed;           /* compression output */
	size_t packed_cap;

	struct map_run run;              /* the run being built */
	bool run_open;
	struct map_run waiting[WAITING_MAX]; /* closed runs on the pending blob */
	int waiting_count;

	int64_t flushed_id;              /* id of the last blob written */
	int64_t seen_id;                 /* last blob decoded for a dedup check */
	unsigned char *seen;
	size_t seen_size;

	struct map_run *closed;          /* every run closed, in page order */
	size_t closed_count, closed_cap;

	struct blob_writer_stats stats;
};

int blob_writer_new(struct catalog *cat, int64_t snapshot_id,
		    enum snapfs_codec codec, int level,
		    struct blob_writer **ret_writer)
{
	struct blob_writer *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->cat = cat;
	w->snapshot_id = snapshot_id;
	w->codec = codec;
	w->level = level;
	w->codec_ctx = codec_ctx_new();
	w->hasher = page_hasher_new();
	w->run_hasher = run_hasher_new();
	w->pending = malloc((size_t)BLOB_PAGES * SNAPFS_PAGE_SIZE);
	w->packed_cap = codec_bound(codec, (size_t)BLOB_PAGES * SNAPFS_PAGE_SIZE);
	w->packed = malloc(w->packed_cap);
	if (!w->codec_ctx || !w->hasher || !w->run_hasher || !w->pending || !w->packed) {
		blob_writer_free(w);
		return -ENOMEM;
	}
	*ret_writer = w;
	return 0;
}

void blob_writer_free(struct blob_writer *w)
{
	if (!w)
		return;
	codec_ctx_free(w->codec_ctx);
	page_hasher_free(w->hasher);
	run_hasher_free(w->run_hasher);
	free(w->pending);
	free(w->packed);
	free(w->seen);
	free(w->closed);
	free(w);
}

int64_t blob_writer_map_digest(const struct blob_writer *w, uint64_t file_size)
{
	return map_digest(w->snapshot_id, file_size, w->closed, w->closed_count);
}

void blob_writer_stats(const struct blob_writer *w, struct blob_writer_stats *ret)
{
	*ret = w->stats;
}

static int flush_pending(struct blob_writer *w);

static int run_store(struct blob_writer *w, struct map_run *run)
{
	int rc;

	if (run->blob_id == PENDING_BLOB) {
		if (w->waiting_count < WAITING_MAX) {
			w->waiting[w->waiting_count++] = *run;
			return 0;
		}
		rc = flush_pending(w);
		if (rc < 0)
			return rc;
		run->blob_id = w->flushed_id;
	}
	return catalog_map_insert(w->cat, w->snapshot_id, run);
}

static int run_close(struct blob_writer *w)
{
	if (!w->run_open)
		return 0;
	w->run_open = false;
	w->run.hash = run_hasher_end(w->run_hasher);
	if (w->closed_count == w->closed_cap) {
		size_t cap = w->closed_cap ? w->closed_cap * 2 : 256;
		struct map_run *bigger = realloc(w->closed, cap * sizeof(*bigger));

		if (!bigger)
			return -ENOMEM;
		w->closed = bigger;
		w->closed_cap = cap;
	}
	w->closed[w->closed_count++] = w->run;
	return run_store(w, &w->run);
}

/* Map page_no to (blob_id, slot), extending the open run if it can. */
static int run_add(struct blob_writer *w, uint64_t page_no, int64_t blob_id,
		   uint32_t slot, const unsigned char *page)
{
	int rc;

	if (w->run_open && w->run.blob_id == blob_id &&
	    w->run.first_page + w->run.page_count == page_no &&
	    w->run.slot + w->run.page_count == slot) {
		w->run.page_count++;
		run_hasher_update(w->run_hasher, page, SNAPFS_PAGE_SIZE);
		return 0;
	}
	rc = run_close(w);
	if (rc < 0)
		return rc;
	w->run = (struct map_run){ .first_page = page_no, .page_count = 1,
				   .slot = slot, .blob_id = blob_id };
	w->run_open = true;
	run_hasher_begin(w->run_hasher, w->snapshot_id, page_no);
	run_hasher_update(w->run_hasher, page, SNAPFS_PAGE_SIZE);
	return 0;
}

/* Compress and write the pending blob, then the runs that waited for it. */
static int flush_pending(struct blob_writer *w)
{
	size_t raw, packed_len = 0;
	struct blob_row row = { 0 };
	int64_t id;
	int rc;

	if (w->pending_count == 0)
		return 0;
	if (w->run_open && w->run.blob_id == PENDING_BLOB) {
		/* Closing the run may itself write the blob (waiting full). */
		rc = run_close(w);
		if (rc < 0 || w->pending_count == 0)
			return rc;
	}
	raw = (size_t)w->pending_count * SNAPFS_PAGE_SIZE;
	row.codec = (int)w->codec;
	rc = codec_compress(w->codec_ctx, w->codec, w->level, w->pending, raw,
			    w->packed, w->packed_cap, &packed_len);
	if (rc < 0)
		return error_set(rc, "compress pages: %s", snapfs_strerror(rc));
	if (packed_len >= raw) {
		/* Incompressible: store as is, decoding costs a copy only. */
		row.codec = SNAPFS_CODEC_NONE;
		row.data = w->pending;
		packed_len = raw;
	} else {
		row.data = w->packed;
	}
	row.page_count = w->pending_count;
	row.data_len = packed_len;
	row.checksum = blob_checksum(row.data, row.data_len);
	rc = catalog_blob_insert(w->cat, &row, &id);
	if (rc < 0)
		return rc;
	for (int i = 0; i < w->pending_count; i++) {
		rc = catalog_index_put(w->cat, w->pending_digest[i], id, i);
		if (rc < 0)
			return rc;
	}
	for (int i = 0; i < w->waiting_count; i++) {
		w->waiting[i].blob_id = id;
		rc = catalog_map_insert(w->cat, w->snapshot_id, &w->waiting[i]);
		if (rc < 0)
			return rc;
	}
	w->flushed_id = id;
	w->stats.new_pages += (uint64_t)w->pending_count;
	w->stats.new_blob_bytes += packed_len;
	w->waiting_count = 0;
	w->pending_count = 0;
	return 0;
}

/* true if slot of stored blob id holds exactly page. A blob that is gone
 * or damaged is no match: the page is then stored anew. */
static int stored_page_equals(struct blob_writer *w, int64_t id, int slot,
			      const unsigned char *page, bool *ret_equal)
{
	unsigned char *data;
	size_t size;
	int rc;

	if (w->seen_id != id || !w->seen) {
		rc = blob_decode(w->cat, id, &data, &size);
		if (rc == -SNAPFS_ECORRUPT) {
			*ret_equal = false;
			return 0;
		}
		if (rc < 0)
			return rc;
		free(w->seen);
		w->seen = data;
		w->seen_size = size;
		w->seen_id = id;
	}
	*ret_equal = slot >= 0 &&
		     (size_t)(slot + 1) * SNAPFS_PAGE_SIZE <= w->seen_size &&
		     memcmp(w->seen + (size_t)slot * SNAPFS_PAGE_SIZE, page,
			    SNAPFS_PAGE_SIZE) == 0;
	return 0;
}

int blob_writer_add(struct blob_writer *w, uint64_t page_no,
		    const unsigned char *page)
{
	int64_t digest, blob_id;
	bool equal = false;
	int slot, rc;

	w->stats.data_pages++;
	rc = page_digest64(w->hasher, page, SNAPFS_PAGE_SIZE, &digest);
	if (rc < 0)
		return error_set(rc, "hash page");

	/* Earlier in the pending blob? */
	for (int i = 0; i < w->pending_count; i++) {
		if (w->pending_digest[i] == digest &&
		    memcmp(w->pending + (size_t)i * SNAPFS_PAGE_SIZE, page,
			   SNAPFS_PAGE_SIZE) == 0) {
			w->stats.dedup_pages++;
			return run_add(w, page_no, PENDING_BLOB, (uint32_t)i, page);
		}
	}
	/* Anywhere in the store? */
	rc = catalog_index_lookup(w->cat, digest, &blob_id, &slot);
	if (rc == 0) {
		rc = stored_page_equals(w, blob_id, slot, page, &equal);
		if (rc < 0)
			return rc;
		if (equal) {
			w->stats.dedup_pages++;
			return run_add(w, page_no, blob_id, (uint32_t)slot, page);
		}
	} else if (rc != -ENOENT) {
		return rc;
	}

	/* New content: the next slot of the pending blob. */
	slot = w->pending_count++;
	memcpy(w->pending + (size_t)slot * SNAPFS_PAGE_SIZE, page, SNAPFS_PAGE_SIZE);
	w->pending_digest[slot] = digest;
	rc = run_add(w, page_no, PENDING_BLOB, (uint32_t)slot, page);
	if (rc < 0)
		return rc;
	if (w->pending_count == BLOB_PAGES)
		return flush_pending(w);
	return 0;
}

int blob_writer_finish(struct blob_writer *w)
{
	int rc = flush_pending(w);

	if (rc < 0)
		return rc;
	return run_close(w);
}
