// SPDX-License-Identifier: MIT
/*
 * Working sets: the pages a reader touched first after opening a
 * snapshot's memory file, recorded by a mount with `-o record` and read
 * back so that the next mount can prefetch them. This file checks the runs
 * against the snapshot and brackets the catalog's statements with the
 * store's connections and a transaction.
 */
#include <errno.h>
#include <stdlib.h>

#include "catalog.h"
#include "errors.h"
#include "store.h"

/* Pages of a memory file of size bytes, a last partial page counted. */
static uint64_t file_pages(uint64_t size)
{
	return (size + SNAPFS_PAGE_SIZE - 1) / SNAPFS_PAGE_SIZE;
}

/* true if every run is non-empty and ends within pages; else false, and
 * the index of the first bad run in *ret_bad. */
static bool runs_valid(const struct snapfs_page_run *runs, size_t count,
		       uint64_t pages, size_t *ret_bad)
{
	for (size_t i = 0; i < count; i++) {
		if (runs[i].page_count == 0 || runs[i].first_page >= pages ||
		    runs[i].page_count > pages - runs[i].first_page) {
			*ret_bad = i;
			return false;
		}
	}
	return true;
}

int snapfs_working_set_save(struct snapfs_store *store, int64_t snapshot_id,
			    const struct snapfs_page_run *runs, size_t count)
{
	struct catalog *cat = store_writer(store);
	struct snapfs_snapshot snap;
	size_t bad;
	int rc;

	error_clear();
	if (!cat)
		return error_set(-EROFS, "store '%s': opened read-only",
				 store_dir(store));
	rc = catalog_begin_write(cat);
	if (rc < 0)
		return rc;
	rc = catalog_snapshot_get_id(cat, snapshot_id, &snap);
	if (rc < 0)
		goto out_rollback;
	if (!runs_valid(runs, count, file_pages(snap.file_size), &bad)) {
		rc = error_set(-EINVAL, "snapshot '%s': working set run %zu "
			       "(pages %llu+%llu) is empty or past the end",
			       snap.name, bad,
			       (unsigned long long)runs[bad].first_page,
			       (unsigned long long)runs[bad].page_count);
		snapfs_snapshot_release(&snap);
		goto out_rollback;
	}
	snapfs_snapshot_release(&snap);
	rc = catalog_working_set_replace(cat, snapshot_id, runs, count);
	if (rc < 0)
		goto out_rollback;
	return catalog_commit(cat);

out_rollback:
	catalog_rollback(cat);
	return rc;
}

int snapfs_working_set_get(struct snapfs_store *store, int64_t snapshot_id,
			   struct snapfs_page_run **ret_runs, size_t *ret_count)
{
	struct snapfs_page_run *runs = NULL;
	struct snapfs_snapshot snap;
	struct catalog *cat;
	size_t count = 0, bad;
	int rc;

	error_clear();
	rc = store_reader_get(store, &cat);
	if (rc < 0)
		return rc;
	/* One read transaction: the snapshot and its record agree. */
	rc = catalog_begin_read(cat);
	if (rc < 0)
		goto out_put;
	rc = catalog_snapshot_get_id(cat, snapshot_id, &snap);
	if (rc < 0)
		goto out_rollback;
	rc = catalog_working_set_load(cat, snapshot_id, &runs, &count);
	if (rc == 0 && !runs_valid(runs, count, file_pages(snap.file_size), &bad)) {
		rc = error_set(-SNAPFS_ECORRUPT, "snapshot '%s': working set run "
			       "%zu (pages %llu+%llu) reaches past the end",
			       snap.name, bad,
			       (unsigned long long)runs[bad].first_page,
			       (unsigned long long)runs[bad].page_count);
		free(runs);
	}
	snapfs_snapshot_release(&snap);
	if (rc == 0) {
		*ret_runs = runs;
		*ret_count = count;
	}
out_rollback:
	catalog_rollback(cat);
out_put:
	store_reader_put(store, cat);
	return rc;
}
