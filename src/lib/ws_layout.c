// SPDX-License-Identifier: MIT
/*
 * Laying a working set out for its prefetch: the blobs that hold a
 * snapshot's recorded working set are copied, in the order their pages
 * were first touched, to the end of the newest pack, and their rows point
 * there from the same transaction on, so that a prefetch finds them one
 * after the other and reads them in a few large reads. The copies are
 * durable before the commit; a crash leaves an unnamed tail that the next
 * writer cuts off. The old copies become gaps that no row names, which gc
 * punches out; a reader that loaded the old places before the move finds
 * the new ones through the database (reader.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blob_store.h"
#include "blob_writer.h"
#include "catalog.h"
#include "digest.h"
#include "errors.h"
#include "remote.h"
#include "seal.h"
#include "store.h"

/* A set of blob ids, open addressing (id 0 is never a blob). */
struct id_set {
	int64_t *slots;
	size_t mask;
};

static int id_set_init(struct id_set *set, size_t expect)
{
	size_t n = 64;

	while (n < expect * 2)
		n *= 2;
	set->slots = calloc(n, sizeof(*set->slots));
	set->mask = n - 1;
	return set->slots ? 0 : -ENOMEM;
}

/* true if id was not in the set (it is now). */
static bool id_set_add(struct id_set *set, int64_t id)
{
	size_t i = (size_t)((uint64_t)id * 0x9E3779B97F4A7C15ull >> 20) & set->mask;

	while (set->slots[i]) {
		if (set->slots[i] == id)
			return false;
		i = (i + 1) & set->mask;
	}
	set->slots[i] = id;
	return true;
}

/* Index of the map run that holds page, or count. */
static size_t run_holding(const struct map_run *map, size_t count, uint64_t page)
{
	size_t lo = 0, hi = count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (map[mid].first_page + map[mid].page_count <= page)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < count && map[lo].first_page <= page ? lo : count;
}

/* The places of the blobs that hold the working set's stored pages, in
 * first-touch order, each once (*ret_locs malloc'ed). */
static int ws_blobs(const struct snapfs_page_run *ws, size_t ws_count,
		    const struct map_run *map, const struct blob_loc *locs, size_t map_count,
		    struct blob_loc **ret_locs, size_t *ret_count)
{
	struct blob_loc *out = NULL;
	struct id_set seen;
	size_t n = 0;
	int rc;

	rc = id_set_init(&seen, map_count);
	if (rc < 0)
		return rc;
	out = malloc((map_count ? map_count : 1) * sizeof(*out));
	if (!out) {
		free(seen.slots);
		return -ENOMEM;
	}
	for (size_t k = 0; k < ws_count; k++) {
		uint64_t page = ws[k].first_page, end = page + ws[k].page_count;

		while (page < end) {
			size_t i = run_holding(map, map_count, page);

			if (i == map_count) {
				page++;                  /* a zero page or a hole */
				continue;
			}
			if (id_set_add(&seen, map[i].blob_id))
				out[n++] = locs[i];
			page = map[i].first_page + map[i].page_count;
		}
	}
	free(seen.slots);
	*ret_locs = out;
	*ret_count = n;
	return 0;
}

/* Stretches of locs that lie one right after the other in one pack. */
static uint64_t stretches(const struct blob_loc *locs, size_t count)
{
	uint64_t n = count ? 1 : 0;

	for (size_t k = 1; k < count; k++)
		if (locs[k].pack_id != locs[k - 1].pack_id ||
		    locs[k].offset != locs[k - 1].offset + locs[k - 1].length)
			n++;
	return n;
}

/* Copy each blob of locs to the pack being appended to, checked on the
 * way (damaged bytes are never copied); their new offsets in locs. */
static int copy_blobs(struct blob_store *bs, struct blob_loc *locs, size_t count,
		      int64_t pack_id, uint64_t *ret_bytes)
{
	uint64_t bytes = 0;

	for (size_t k = 0; k < count; k++) {
		const unsigned char *stored;
		uint64_t offset;
		int rc;

		rc = blob_store_read_span(bs, &locs[k], locs[k].length, &stored);
		if (rc == 0 && blob_checksum(stored, locs[k].length) != locs[k].checksum)
			rc = error_set(-SNAPFS_ECORRUPT, "blob %lld: checksum mismatch "
				       "(run 'snapfs verify')", (long long)locs[k].id);
		if (rc == 0)
			rc = blob_store_append(bs, stored, locs[k].length, &offset);
		if (rc < 0)
			return rc;
		locs[k].pack_id = pack_id;
		locs[k].offset = offset;
		bytes += locs[k].length;
	}
	*ret_bytes = bytes;
	return 0;
}

/* Inside the write transaction: lay out the working set of snap. */
static int lay_out(struct snapfs_store *store, struct catalog *cat,
		   const struct snapfs_snapshot *snap, struct snapfs_ws_layout *ret)
{
	struct snapfs_page_run *ws = NULL;
	struct map_run *map = NULL;
	struct blob_loc *locs = NULL, *order = NULL;
	size_t ws_count = 0, map_count = 0, count = 0;
	int64_t pack_id;
	int rc;

	memset(ret, 0, sizeof(*ret));
	rc = catalog_working_set_load(cat, snap->id, &ws, &ws_count);
	if (rc == 0)
		rc = catalog_map_load(cat, snap->id, &map, &locs, &map_count);
	if (rc == 0)
		rc = ws_blobs(ws, ws_count, map, locs, map_count, &order, &count);
	if (rc < 0)
		goto out_free;
	ret->blobs = count;
	ret->stretches_before = ret->stretches_after = stretches(order, count);
	if (ret->stretches_before <= 1)
		goto out_free;                   /* laid out already (or empty) */
	rc = blob_writer_pack_begin(cat, store_blobs(store), &pack_id);
	if (rc == 0)
		rc = copy_blobs(store_blobs(store), order, count, pack_id, &ret->moved_bytes);
	if (rc == 0)
		rc = blob_writer_pack_end(cat, store_blobs(store));
	for (size_t k = 0; rc == 0 && k < count; k++)
		rc = catalog_blob_move(cat, order[k].id, order[k].pack_id, order[k].offset);
	if (rc == 0) {
		ret->moved = count;
		ret->stretches_after = stretches(order, count);
	}
out_free:
	free(ws);
	free(map);
	free(locs);
	free(order);
	return rc;
}

static int lay_out_name(struct snapfs_store *store, struct catalog *cat, const char *name,
			int64_t *ret_remote_pack, struct snapfs_ws_layout *ret_layout)
{
	struct snapfs_ws_layout layout;
	struct snapfs_snapshot snap;
	int rc;

	rc = catalog_begin_write(cat);
	if (rc < 0)
		return rc;
	/* Remote: the copies go to a pack of their own, uploaded whole and
	 * published as a save's are (remote.c). */
	if (ret_remote_pack) {
		rc = catalog_pack_new(cat, ret_remote_pack);
		if (rc == 0)
			rc = catalog_remote_mark_dirty(cat);
		if (rc < 0)
			goto out_rollback;
	}
	rc = catalog_snapshot_get(cat, name, &snap);
	if (rc < 0)
		goto out_rollback;
	/* Never move the blobs of a snapshot changed outside snapfs. */
	rc = snapshot_check(cat, &snap);
	if (rc == 0)
		rc = lay_out(store, cat, &snap, &layout);
	snapfs_snapshot_release(&snap);
	if (rc < 0)
		goto out_rollback;
	rc = catalog_commit(cat);
	if (rc < 0)
		goto out_abort;
	blob_store_append_end(store_blobs(store), true);
	*ret_layout = layout;
	return 0;

out_rollback:
	catalog_rollback(cat);
out_abort:
	blob_store_append_end(store_blobs(store), false);
	return rc;
}

int snapfs_working_set_lay_out(struct snapfs_store *store, const char *name,
			       struct snapfs_ws_layout *ret_layout)
{
	struct catalog *cat = store_writer(store);
	struct remote *remote = cat ? store_remote(store) : NULL;
	int64_t remote_pack = 0;
	int rc, pub;

	error_clear();
	if (!cat)
		return error_set(-EROFS, "store '%s': opened read-only", store_dir(store));
	if (!remote)
		return lay_out_name(store, cat, name, NULL, ret_layout);
	rc = remote_save_begin(remote, cat);
	if (rc < 0)
		return rc;
	rc = lay_out_name(store, cat, name, &remote_pack, ret_layout);
	pub = remote_save_end(remote, cat, remote_pack, rc == 0);
	return rc < 0 ? rc : pub;
}
