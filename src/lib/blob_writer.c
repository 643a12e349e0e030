// SPDX-License-Identifier: MIT
/*
 * Packing pages into blobs and building the page map.
 *
 * Each page either reuses a stored slot (a page with the same content is
 * already in the store, or earlier in this save) or takes the next slot of
 * the pending batch. A full batch goes to the compression pool; batches are
 * written to the database (blob row, content-index rows, the runs that wait
 * for the blob's id) strictly in order, by this thread only. Until a batch
 * is written, runs name it by a stand-in id, -(seq + 1).
 *
 * Runs of the page map are built as pages arrive: a run grows while pages
 * are consecutive in the file and in one blob's slots.
 */
#include "blob_writer.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "codec.h"
#include "compress_pool.h"
#include "digest.h"
#include "errors.h"
#include "blob_store.h"

/* Batches in the ring: the pending one and those being compressed. */
#define RING 8
/* Closed runs that may wait for one batch; more (only pages that repeat
 * one unwritten page do that) write the batch early. */
#define WAITING_MAX (4 * BLOB_PAGES)

struct batch {
	uint64_t seq;
	unsigned char *raw;              /* BLOB_PAGES pages */
	int64_t digest[BLOB_PAGES];
	int count;                       /* pages in raw */
	struct compress_job job;
	struct map_run waiting[WAITING_MAX]; /* closed runs on this batch */
	int waiting_count;
	int64_t blob_id;                 /* once written */
};

struct blob_writer {
	struct catalog *cat;
	struct blob_store *bs;
	int64_t pack_id;                 /* the pack new blobs go to */
	int64_t dict_id;                 /* 0, or the dictionary of new blobs */
	struct codec_cdict *dict;
	int64_t snapshot_id;
	enum snapfs_codec codec;
	int level;
	struct compress_pool *pool;
	struct page_hasher *hasher;
	struct run_hasher *run_hasher;

	struct batch ring[RING];
	uint64_t next_seq;               /* the pending batch */
	uint64_t tail_seq;               /* the oldest batch not written */

	struct map_run run;              /* the run being built */
	bool run_open;

	int64_t seen_id;                 /* last blob decoded for a dedup check */
	unsigned char *seen;
	size_t seen_size;

	struct map_run *closed;          /* every run closed, in page order */
	size_t closed_count, closed_cap;

	struct blob_writer_stats stats;
};

static int64_t stand_in(uint64_t seq)
{
	return -(int64_t)(seq + 1);
}

static struct batch *batch_of(struct blob_writer *w, uint64_t seq)
{
	return &w->ring[seq % RING];
}

static struct batch *pending(struct blob_writer *w)
{
	return batch_of(w, w->next_seq);
}

int blob_writer_pack_begin(struct catalog *cat, struct blob_store *bs, int64_t *ret_pack_id)
{
	uint64_t length = 0, end = 0;
	int64_t pack_id;
	int rc;

	rc = catalog_pack_last(cat, &pack_id, &length);
	if (rc == -ENOENT || (rc == 0 && length >= PACK_MAX_BYTES)) {
		length = 0;
		rc = catalog_pack_new(cat, &pack_id);
	}
	if (rc < 0)
		return rc;
	/* What is cut is only what no row names, whatever packs.length says
	 * (a damaged length must not take blobs with it). */
	rc = catalog_pack_blob_end(cat, pack_id, &end);
	if (rc < 0)
		return rc;
	rc = blob_store_append_begin(bs, pack_id, end > length ? end : length);
	if (rc == 0)
		*ret_pack_id = pack_id;
	return rc;
}

int blob_writer_pack_end(struct catalog *cat, struct blob_store *bs)
{
	int64_t pack_id;
	uint64_t length;
	int rc;

	/* The bytes are durable before the rows that name them commit. */
	rc = blob_store_append_sync(bs, &length);
	if (rc < 0)
		return rc;
	blob_store_append_state(bs, &pack_id, &length);
	return catalog_pack_set_length(cat, pack_id, length);
}

int blob_writer_new(struct catalog *cat, struct blob_store *bs, int64_t snapshot_id,
		    enum snapfs_codec codec, int level, const struct blob_writer_dict *dict,
		    struct blob_writer **ret_writer)
{
	size_t raw_len = (size_t)BLOB_PAGES * SNAPFS_PAGE_SIZE;
	size_t out_cap = codec_bound(codec, raw_len);
	struct blob_writer *w = calloc(1, sizeof(*w));
	int rc;

	if (!w)
		return -ENOMEM;
	w->cat = cat;
	w->bs = bs;
	w->snapshot_id = snapshot_id;
	w->codec = codec;
	w->level = level;
	w->hasher = page_hasher_new();
	w->run_hasher = run_hasher_new();
	if (!w->hasher || !w->run_hasher)
		goto out_nomem;
	if (dict && dict->id && codec == SNAPFS_CODEC_ZSTD) {
		w->dict = codec_cdict_new(dict->data, dict->len, level);
		if (!w->dict)
			goto out_nomem;
		w->dict_id = dict->id;
	}
	for (int i = 0; i < RING; i++) {
		struct batch *b = &w->ring[i];

		b->raw = malloc(raw_len);
		b->job.out = malloc(out_cap);
		b->job.out_cap = out_cap;
		if (!b->raw || !b->job.out)
			goto out_nomem;
	}
	rc = compress_pool_new(0, &w->pool);
	if (rc == 0)
		rc = blob_writer_pack_begin(cat, bs, &w->pack_id);
	if (rc < 0) {
		blob_writer_free(w);
		return rc;
	}
	pending(w)->seq = 0;
	*ret_writer = w;
	return 0;

out_nomem:
	blob_writer_free(w);
	return -ENOMEM;
}

void blob_writer_free(struct blob_writer *w)
{
	if (!w)
		return;
	/* Batches still being compressed use our buffers: wait for them. */
	for (uint64_t seq = w->tail_seq; w->pool && seq < w->next_seq; seq++)
		compress_pool_wait(w->pool, &batch_of(w, seq)->job);
	compress_pool_free(w->pool);
	/* Never cut here: the caller may have committed. */
	blob_store_append_end(w->bs, true);
	for (int i = 0; i < RING; i++) {
		free(w->ring[i].raw);
		free(w->ring[i].job.out);
	}
	codec_cdict_free(w->dict);
	page_hasher_free(w->hasher);
	run_hasher_free(w->run_hasher);
	free(w->seen);
	free(w->closed);
	free(w);
}

void blob_writer_stats(const struct blob_writer *w, struct blob_writer_stats *ret)
{
	*ret = w->stats;
}

int64_t blob_writer_map_digest(const struct blob_writer *w, uint64_t file_size)
{
	return map_digest(w->snapshot_id, file_size, w->closed, w->closed_count);
}

/* Write the oldest batch: wait for its compression, insert the blob, its
 * content-index rows and the runs that waited for its id. */
static int retire_oldest(struct blob_writer *w)
{
	struct batch *b = batch_of(w, w->tail_seq);
	struct blob_loc loc = { 0 };
	int rc;

	compress_pool_wait(w->pool, &b->job);
	if (b->job.rc < 0)
		return error_set(b->job.rc, "compress pages: %s", snapfs_strerror(b->job.rc));
	loc.codec = b->job.stored_codec;
	loc.page_count = (uint32_t)b->count;
	loc.length = (uint32_t)b->job.stored_len;
	loc.checksum = b->job.checksum;
	loc.pack_id = w->pack_id;
	/* Only what was compressed names the dictionary. */
	loc.dict_id = b->job.stored_codec == SNAPFS_CODEC_ZSTD ? w->dict_id : 0;
	rc = blob_store_append(w->bs, b->job.stored, b->job.stored_len, &loc.offset);
	if (rc < 0)
		return rc;
	rc = catalog_blob_insert(w->cat, &loc, &b->blob_id);
	if (rc < 0)
		return rc;
	for (int i = 0; i < b->count; i++) {
		rc = catalog_index_put(w->cat, b->digest[i], b->blob_id, i);
		if (rc < 0)
			return rc;
	}
	for (int i = 0; i < b->waiting_count; i++) {
		b->waiting[i].blob_id = b->blob_id;
		rc = catalog_map_insert(w->cat, w->snapshot_id, &b->waiting[i]);
		if (rc < 0)
			return rc;
	}
	if (w->run_open && w->run.blob_id == stand_in(b->seq))
		w->run.blob_id = b->blob_id;
	w->stats.new_pages += (uint64_t)b->count;
	w->stats.new_blob_bytes += b->job.stored_len;
	w->tail_seq++;
	return 0;
}

/* Hand the pending batch to the pool and start the next one. */
static int submit_pending(struct blob_writer *w)
{
	struct batch *b = pending(w);

	if (b->count == 0)
		return 0;
	b->job.raw = b->raw;
	b->job.raw_len = (size_t)b->count * SNAPFS_PAGE_SIZE;
	b->job.codec = w->codec;
	b->job.level = w->level;
	b->job.dict = w->dict;
	compress_pool_submit(w->pool, &b->job);
	w->next_seq++;
	if (w->next_seq - w->tail_seq >= RING) {
		int rc = retire_oldest(w);

		if (rc < 0)
			return rc;
	}
	b = pending(w);
	b->seq = w->next_seq;
	b->count = 0;
	b->waiting_count = 0;
	b->blob_id = 0;
	return 0;
}

/* Store a closed run: at once if its blob is written, else with its
 * batch. */
static int run_store(struct blob_writer *w, struct map_run *run)
{
	uint64_t seq;
	struct batch *b;
	int rc;

	if (run->blob_id < 0) {
		seq = (uint64_t)(-run->blob_id - 1);
		b = batch_of(w, seq);
		if (b->waiting_count < WAITING_MAX) {
			b->waiting[b->waiting_count++] = *run;
			return 0;
		}
		if (seq == w->next_seq) {
			rc = submit_pending(w);
			if (rc < 0)
				return rc;
		}
		while (w->tail_seq <= seq) {
			rc = retire_oldest(w);
			if (rc < 0)
				return rc;
		}
		run->blob_id = b->blob_id;
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

/* true if slot of stored blob id holds exactly page. A blob that is gone
 * or damaged is no match: the page is then stored anew. */
static int stored_page_equals(struct blob_writer *w, int64_t id, int slot,
			      const unsigned char *page, bool *ret_equal)
{
	unsigned char *data = NULL;
	size_t size = 0;
	int rc;

	if (w->seen_id != id || !w->seen) {
		struct blob_loc loc;

		rc = catalog_blob_loc(w->cat, id, &loc);
		if (rc == 0) {
			size = (size_t)loc.page_count * SNAPFS_PAGE_SIZE;
			data = malloc(size ? size : 1);
			rc = data ? blob_store_load(w->bs, &loc, false, data) : -ENOMEM;
		}
		if (rc < 0)
			free(data);
		if (rc == -SNAPFS_ECORRUPT || rc == -ENOENT) {
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

/* A page with this content in a batch not yet written? */
static bool find_unwritten(struct blob_writer *w, int64_t digest,
			   const unsigned char *page, uint64_t *ret_seq, int *ret_slot)
{
	for (uint64_t seq = w->tail_seq; seq <= w->next_seq; seq++) {
		const struct batch *b = batch_of(w, seq);

		for (int i = 0; i < b->count; i++) {
			if (b->digest[i] == digest &&
			    memcmp(b->raw + (size_t)i * SNAPFS_PAGE_SIZE, page,
				   SNAPFS_PAGE_SIZE) == 0) {
				*ret_seq = seq;
				*ret_slot = i;
				return true;
			}
		}
	}
	return false;
}

int blob_writer_add(struct blob_writer *w, uint64_t page_no,
		    const unsigned char *page)
{
	struct batch *b;
	int64_t digest, blob_id;
	bool equal = false;
	uint64_t seq;
	int slot, rc;

	w->stats.data_pages++;
	rc = page_digest64(w->hasher, page, SNAPFS_PAGE_SIZE, &digest);
	if (rc < 0)
		return error_set(rc, "hash page");

	/* Earlier in this save, not written yet? */
	if (find_unwritten(w, digest, page, &seq, &slot)) {
		w->stats.dedup_pages++;
		return run_add(w, page_no, stand_in(seq), (uint32_t)slot, page);
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

	/* New content: the next slot of the pending batch. */
	b = pending(w);
	slot = b->count++;
	memcpy(b->raw + (size_t)slot * SNAPFS_PAGE_SIZE, page, SNAPFS_PAGE_SIZE);
	b->digest[slot] = digest;
	rc = run_add(w, page_no, stand_in(b->seq), (uint32_t)slot, page);
	if (rc < 0)
		return rc;
	if (b->count == BLOB_PAGES)
		return submit_pending(w);
	return 0;
}

int blob_writer_finish(struct blob_writer *w)
{
	int rc = run_close(w);

	if (rc < 0)
		return rc;
	rc = submit_pending(w);
	while (rc == 0 && w->tail_seq < w->next_seq)
		rc = retire_oldest(w);
	if (rc < 0)
		return rc;
	return blob_writer_pack_end(w->cat, w->bs);
}

void blob_writer_abort(struct blob_writer *w)
{
	if (w)
		blob_store_append_end(w->bs, false);
}
