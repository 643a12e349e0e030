// SPDX-License-Identifier: MIT
/*
 * snapfs_gc(): delete the blobs no snapshot uses any more and give their
 * space back to the file system. The deletions are one transaction (a gc
 * killed at any moment leaves the store as it was, or as it is after);
 * shrinking the file is a separate, equally atomic step.
 */
#include <errno.h>

#include "catalog.h"
#include "errors.h"
#include "store.h"

/* Blobs deleted per statement, between progress reports. */
#define GC_BATCH 256

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
	r.file_bytes_before = store_file_bytes(store);
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
	if (rc < 0)
		goto out_rollback;
	rc = catalog_commit(cat);
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
