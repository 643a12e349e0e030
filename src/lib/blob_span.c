// SPDX-License-Identifier: MIT
/*
 * Spans of blobs: sort the wanted blobs by their place in the packs, read
 * neighbours with one pread(2), and decode each from the span's buffer
 * into the blob cache (which decodes a blob once however many threads
 * want it).
 */
#include "blob_span.h"

#include <stdlib.h>

#include "snapfs.h"

static int loc_by_place(const void *a, const void *b)
{
	const struct blob_loc *x = a, *y = b;

	if (x->pack_id != y->pack_id)
		return x->pack_id < y->pack_id ? -1 : 1;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Where blob_store_decode() finds the blobs of a span. */
struct span {
	struct blob_store *bs;
	int64_t pack_id;
	uint64_t offset;             /* of bytes in the pack */
	uint64_t len;
	const unsigned char *bytes;
};

static int load_from_span(void *ctx, const struct blob_loc *loc, bool sequential,
			  unsigned char *dst)
{
	const struct span *sp = ctx;
	int rc;

	if (loc->pack_id == sp->pack_id && loc->offset >= sp->offset &&
	    loc->length <= sp->len && loc->offset - sp->offset <= sp->len - loc->length) {
		rc = blob_store_decode(sp->bs, loc, sp->bytes + (loc->offset - sp->offset),
				       dst);
		/* The span may have come from a remote store's cache, whose
		 * copy is never trusted blindly: a blob that fails is loaded
		 * on its own, which fetches it again from where its pack lives
		 * (a local pack is only read again). A reader waiting for this
		 * blob would otherwise take the failure. */
		if (rc != -SNAPFS_ECORRUPT)
			return rc;
	}
	return blob_store_load(sp->bs, loc, sequential, dst);
}

/* The end of the span that starts at locs[a]: the index after its last
 * blob, and its end in the pack in *ret_stop. */
static size_t span_end(const struct blob_loc *locs, size_t a, size_t count, uint64_t *ret_stop)
{
	uint64_t start = locs[a].offset, stop = start + locs[a].length;
	size_t b;

	for (b = a + 1; b < count; b++) {
		uint64_t end = locs[b].offset + locs[b].length;

		if (locs[b].pack_id != locs[a].pack_id ||
		    locs[b].offset > stop + BLOB_SPAN_GAP_BYTES ||
		    (end > stop ? end : stop) - start > BLOB_STORE_SPAN_MAX)
			break;
		if (end > stop)
			stop = end;
	}
	*ret_stop = stop;
	return b;
}

void blob_span_load(struct blob_cache *cache, struct blob_store *bs,
		    struct blob_loc *locs, size_t count)
{
	size_t a, b, kept = 0;

	/* Blobs held or being decoded already cost no read (a sequential
	 * reader going over data it read before). */
	for (size_t i = 0; i < count; i++)
		if (!blob_cache_contains(cache, locs[i].id))
			locs[kept++] = locs[i];
	count = kept;
	qsort(locs, count, sizeof(*locs), loc_by_place);
	for (a = 0; a < count; a = b) {
		struct span sp = { .bs = bs, .pack_id = locs[a].pack_id, .offset = locs[a].offset };
		uint64_t stop;

		b = span_end(locs, a, count, &stop);
		sp.len = stop - sp.offset;
		if (blob_store_read_span(bs, &locs[a], sp.len, &sp.bytes) < 0)
			continue;
		for (size_t k = a; k < b; k++)
			if (k == a || locs[k].id != locs[k - 1].id)
				blob_cache_load_ahead(cache, &locs[k], load_from_span, &sp);
	}
}
