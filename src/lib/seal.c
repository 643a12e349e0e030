// SPDX-License-Identifier: MIT
/*
 * Seals: snapshots.meta_digest, the hash that binds a snapshot's name,
 * parent, size, page size, format, segments and page-map digest together
 * (digest.c computes it). A save seals what it wrote; every reader checks
 * the seal when it opens a snapshot, so a field changed outside snapfs is
 * caught before the first byte goes out.
 */
#include "seal.h"

#include <errno.h>

#include "catalog.h"
#include "digest.h"
#include "errors.h"

static int snapshot_digest_now(struct catalog *cat, const struct snapfs_snapshot *snap,
			       int64_t *ret_digest)
{
	struct snapfs_segment *segs = NULL;
	size_t count = 0;
	int rc = catalog_segments_get(cat, snap->id, &segs, &count);

	if (rc < 0)
		return rc;
	*ret_digest = snapshot_digest(snap, segs, count);
	snapfs_segments_free(segs, count);
	return 0;
}

int snapshot_seal(struct catalog *cat, struct snapfs_snapshot *snap)
{
	return snapshot_digest_now(cat, snap, &snap->meta_digest);
}

int snapshot_check(struct catalog *cat, const struct snapfs_snapshot *snap)
{
	int64_t digest;
	int rc = snapshot_digest_now(cat, snap, &digest);

	if (rc < 0)
		return rc;
	if (digest != snap->meta_digest)
		return error_set(-SNAPFS_ECORRUPT,
				 "snapshot '%s': changed outside snapfs (its name, parent, size, "
				 "format, segments or page map no longer match its digest)",
				 snap->name);
	return 0;
}

int snapshot_reseal(struct catalog *cat, int64_t id)
{
	struct snapfs_snapshot snap;
	int rc = catalog_snapshot_get_id(cat, id, &snap);

	if (rc < 0)
		return rc;
	rc = snapshot_seal(cat, &snap);
	if (rc == 0)
		rc = catalog_snapshot_set_meta_digest(cat, id, snap.meta_digest);
	snapfs_snapshot_release(&snap);
	return rc;
}
