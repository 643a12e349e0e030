// SPDX-License-Identifier: MIT
/*
 * Store upgrades. Version 1 kept blob bytes in blobs.data; version 2 keeps
 * them in pack files. The move copies every blob into pack 1, makes the
 * pack durable, then commits the new tables in one transaction: until that
 * commit the store is a whole version-1 store, after it a whole version-2
 * one, and the pack bytes a failed attempt left are cut off by the next.
 * Version 3 adds snapshots.comment (one ALTER TABLE); from version 1 it
 * runs inside the transaction of the move, so that a crash leaves a whole
 * version-1 or a whole version-3 store, never one in between.
 * Version 4 adds the table core_notes, run in the same transaction as the
 * step before it.
 */
#include "upgrade.h"

#include <errno.h>

#include "blob_store.h"
#include "catalog.h"
#include "errors.h"
#include "seal.h"
#include "snapfs.h"

static int append_blob(void *ctx, const void *data, size_t len, uint64_t *ret_offset)
{
	return blob_store_append(ctx, data, len, ret_offset);
}

/* Version 2 seals every snapshot (snapshots.meta_digest). */
static int seal_all(struct catalog *cat)
{
	struct snapfs_snapshot *snaps = NULL;
	size_t count = 0;
	int rc = catalog_snapshot_list(cat, &snaps, &count);

	for (size_t i = 0; rc == 0 && i < count; i++)
		rc = snapshot_reseal(cat, snaps[i].id);
	snapfs_snapshot_list_free(snaps, count);
	return rc;
}

static int upgrade_from_v1(struct catalog *cat, struct blob_store *bs)
{
	uint64_t length = 0;
	int rc;

	rc = catalog_upgrade_v2_begin(cat);
	if (rc < 0)
		return rc;
	rc = blob_store_append_begin(bs, 1, 0);
	if (rc == 0)
		rc = catalog_upgrade_v2_blobs(cat, append_blob, bs);
	if (rc == 0)
		rc = blob_store_append_sync(bs, &length);
	if (rc == 0)
		rc = catalog_upgrade_v2_finish(cat, length);
	if (rc == 0)
		rc = catalog_upgrade_v3(cat);
	if (rc == 0)
		rc = catalog_upgrade_v4(cat);
	if (rc == 0)
		rc = catalog_upgrade_v5(cat);
	if (rc == 0)
		rc = seal_all(cat);
	rc = catalog_upgrade_v2_end(cat, rc == 0) ?: rc;
	blob_store_append_end(bs, rc == 0);
	if (rc == 0)
		rc = catalog_shrink(cat);
	return rc;
}

/* From version 2, 3 or 4 to the newest, in one transaction. */
static int upgrade_from_v2(struct catalog *cat, int from_version)
{
	int rc = catalog_begin_write(cat);

	if (rc < 0)
		return rc;
	rc = from_version < 3 ? catalog_upgrade_v3(cat) : 0;
	if (rc == 0 && from_version < 4)
		rc = catalog_upgrade_v4(cat);
	if (rc == 0)
		rc = catalog_upgrade_v5(cat);
	if (rc == 0)
		return catalog_commit(cat);
	catalog_rollback(cat);
	return rc;
}

int upgrade_store(struct catalog *cat, struct blob_store *bs, int from_version)
{
	int rc;

	if (from_version < 1 || from_version > SNAPFS_SCHEMA_VERSION)
		return error_set(-SNAPFS_ENOTSTORE, "unknown schema version %d", from_version);
	if (from_version < 2) {
		/* Straight to the newest version, in one transaction. */
		rc = upgrade_from_v1(cat, bs);
		if (rc < 0)
			return error_prefix(rc, "upgrade to schema version %d",
					    SNAPFS_SCHEMA_VERSION);
	} else if (from_version < SNAPFS_SCHEMA_VERSION) {
		rc = upgrade_from_v2(cat, from_version);
		if (rc < 0)
			return error_prefix(rc, "upgrade to schema version %d",
					    SNAPFS_SCHEMA_VERSION);
	}
	return 0;
}
