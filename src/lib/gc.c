// SPDX-License-Identifier: MIT
/*
 * snapfs_gc(): delete the blobs no snapshot uses any more and give their
 * space back to the file system. The deletions are one transaction (a gc
 * killed at any moment leaves the store as it was, or as it is after).
 * Then, under the write lock, the packs give their space back: holes are
 * punched wherever no blob row names the bytes (so a gc killed before this
 * step leaves nothing behind: the next one punches them), a pack no blob
 * is left in is deleted, and a tail past a pack's committed length (a
 * killed save's) is cut. Last, the database file shrinks. Before all
 * this, snapshots that rm only hid because a reader had them open are
 * deleted if no reader claims them any more (claims.c).
 */
#include <errno.h>
#include <stdlib.h>

#include "blob_store.h"
#include "catalog.h"
#include "claims.h"
#include "errors.h"
#include "remote.h"
#include "store.h"

/* Blobs deleted per statement, between progress reports. */
#define GC_BATCH 256

struct pack_gaps {
	struct blob_store *bs;
	int64_t pack_id;
	uint64_t end;                /* of the live bytes seen so far */
	uint64_t blobs;
};

static int punch_gap(void *ctx, uint64_t offset, uint64_t length)
{
	struct pack_gaps *g = ctx;
	int rc = 0;

	if (offset > g->end)
		rc = blob_store_punch(g->bs, g->pack_id, g->end, offset - g->end);
	if (offset + length > g->end)
		g->end = offset + length;
	g->blobs++;
	return rc;
}

static bool listed(const int64_t *ids, size_t count, int64_t id)
{
	for (size_t i = 0; i < count; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/* Pack files no packs row names (a save killed after it made a new pack,
 * a gc killed before it unlinked one): nothing can reference them. Runs
 * under the write lock, so no save is making one now. */
static int remove_strays(struct blob_store *bs, const int64_t *ids, size_t count,
			 struct snapfs_gc_result *r)
{
	int64_t *found = NULL;
	size_t n = 0;
	int rc = blob_store_list_packs(bs, &found, &n);

	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (listed(ids, count, found[i]))
			continue;
		rc = blob_store_remove(bs, found[i]);
		if (rc == 0)
			r->packs_removed++;
	}
	free(found);
	return rc;
}

/* Give back the space of every pack that no blob row names. */
static int reclaim_packs(struct snapfs_store *store, struct catalog *cat,
			 struct snapfs_gc_result *r)
{
	struct blob_store *bs = store_blobs(store);
	int64_t *ids = NULL;
	uint64_t *lengths = NULL, disk, length;
	size_t count = 0, dead = 0;
	int rc;

	rc = catalog_begin_write(cat);
	if (rc < 0)
		return rc;
	rc = catalog_pack_list(cat, &ids, &lengths, &count);
	if (rc < 0)
		goto out_rollback;
	for (size_t i = 0; i < count; i++) {
		struct pack_gaps g = { .bs = bs, .pack_id = ids[i] };

		if (blob_store_pack_size(bs, ids[i], &disk, &length) < 0)
			continue;       /* missing: verify reports it */
		rc = catalog_pack_extents(cat, ids[i], punch_gap, &g);
		if (rc < 0)
			goto out_rollback;
		if (g.blobs == 0) {
			rc = catalog_pack_delete(cat, ids[i]);
			if (rc < 0)
				goto out_rollback;
			ids[dead++] = ids[i];   /* unlinked after the commit */
			continue;
		}
		/* Never below the last blob, whatever packs.length says. */
		if (lengths[i] < g.end)
			lengths[i] = g.end;
		if (length > lengths[i])
			rc = blob_store_truncate(bs, ids[i], lengths[i]);
		if (rc == 0 && lengths[i] > g.end)
			rc = blob_store_punch(bs, ids[i], g.end, lengths[i] - g.end);
		if (rc < 0)
			goto out_rollback;
	}
	rc = remove_strays(bs, ids, count, r);
	if (rc < 0)
		goto out_rollback;
	rc = catalog_commit(cat);
	for (size_t i = 0; rc == 0 && i < dead; i++) {
		rc = blob_store_remove(bs, ids[i]);
		if (rc == 0)
			r->packs_removed++;
	}
	free(ids);
	free(lengths);
	return rc;

out_rollback:
	catalog_rollback(cat);
	free(ids);
	free(lengths);
	return rc;
}

/* Delete the hidden snapshots whose claim can be taken: nobody reads
 * them any more. One short transaction, the claims held until it ends
 * (readers wait for them, then find the snapshot gone). */
static int purge_removed(struct snapfs_store *store, struct catalog *cat,
			 struct snapfs_gc_result *r)
{
	int64_t *ids = NULL;
	size_t count = 0;
	int claims_fd, rc;

	rc = claims_open(store_dir(store), true, &claims_fd);
	if (rc < 0)
		return rc;
	rc = catalog_begin_write(cat);
	if (rc < 0)
		goto out_claims;
	rc = catalog_removed_list(cat, &ids, &count);
	for (size_t i = 0; rc == 0 && i < count; i++) {
		rc = claim_try(claims_fd, ids[i], true);
		if (rc == -EAGAIN) {
			r->removed_kept++;
			rc = 0;
			continue;
		}
		if (rc == 0)
			rc = catalog_snapshot_delete_id(cat, ids[i]);
		if (rc == 0)
			r->removed_purged++;
	}
	free(ids);
	if (rc == 0)
		rc = catalog_commit(cat);
	else
		catalog_rollback(cat);
out_claims:
	claims_close(claims_fd);
	return rc;
}

int snapfs_gc(struct snapfs_store *store, const struct snapfs_progress *progress,
	      struct snapfs_gc_result *ret_result)
{
	struct snapfs_gc_result r = { 0 };
	struct catalog *cat = store_writer(store);
	uint64_t count = 0, bytes = 0, deleted;
	int rc;

	error_clear();
	if (!cat)
		return error_set(-EROFS, "store '%s': opened read-only", store_dir(store));
	/* A remote store: snapshots are never removed there, so no blob is
	 * unused; what gc gives back is the bucket's objects no index names.
	 * The local copy of the index is the bucket's: not changed here. */
	if (store_remote(store)) {
		rc = remote_gc(store_remote(store), cat, &r.remote_objects_removed,
			       &r.remote_bytes_removed);
		if (rc < 0)
			return error_prefix(rc, "gc");
		if (ret_result)
			*ret_result = r;
		return 0;
	}
	r.file_bytes_before = store_file_bytes(store);
	rc = purge_removed(store, cat, &r);
	if (rc < 0)
		return error_prefix(rc, "gc");
	rc = catalog_begin_write(cat);
	if (rc < 0)
		return error_prefix(rc, "gc");
	rc = catalog_unused_blobs(cat, &count, &bytes);
	if (rc < 0)
		goto out_rollback;
	do {
		if (progress && progress->cancel && *progress->cancel) {
			rc = error_set(-SNAPFS_ECANCELED, "interrupted");
			goto out_rollback;
		}
		rc = catalog_delete_unused_blobs(cat, GC_BATCH, &deleted);
		if (rc < 0)
			goto out_rollback;
		r.blobs_removed += deleted;
		if (progress && progress->fn)
			progress->fn(progress->data, r.blobs_removed, count);
	} while (deleted > 0);
	r.blob_bytes_removed = bytes;
	rc = catalog_delete_stale_index(cat, &r.index_rows_removed);
	if (rc == 0 && r.removed_kept)
		rc = catalog_removed_kept(cat, &r.kept_blobs, &r.kept_bytes);
	if (rc < 0)
		goto out_rollback;
	rc = catalog_commit(cat);
	if (rc < 0)
		return error_prefix(rc, "gc");
	rc = reclaim_packs(store, cat, &r);
	if (rc < 0)
		return error_prefix(rc, "gc");
	rc = catalog_shrink(cat);
	if (rc < 0)
		return error_prefix(rc, "gc");
	r.file_bytes_after = store_file_bytes(store);
	if (ret_result)
		*ret_result = r;
	return 0;

out_rollback:
	catalog_rollback(cat);
	return error_prefix(rc, "gc");
}
