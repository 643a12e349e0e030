// SPDX-License-Identifier: MIT
/*
 * Seals: snapshots.meta_digest, the hash that binds a snapshot's name,
 * parent, size, page size, format, segments and page-map digest together
 * (digest.c computes it). A save seals what it wrote; every reader checks
 * the seal when it opens a snapshot, so a field changed outside snapfs is
 * caught before the first byte goes out. A process snapshot's stored
 * notes (core_notes: they decide the bytes of its core file) are sealed
 * too, folded in only when there are any, so that seals made before
 * version 4 stay valid.
 */
#include "seal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "core_notes.h"
#include "digest.h"
#include "errors.h"

/* digest with the notes folded in: XXH3 of the digest and every note's
 * owner, type, length and bytes. */
static int fold_notes(const struct core_note_list *notes, int64_t *digest)
{
	size_t len = 8, at = 0;
	unsigned char *buf;

	for (size_t i = 0; i < notes->count; i++)
		len += strlen(notes->notes[i].owner) + 1 + 4 + 8 + notes->notes[i].len;
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, digest, 8);
	at = 8;
	for (size_t i = 0; i < notes->count; i++) {
		const struct core_note *n = &notes->notes[i];
		uint64_t nlen = n->len;
		size_t olen = strlen(n->owner) + 1;

		memcpy(buf + at, n->owner, olen);
		at += olen;
		memcpy(buf + at, &n->type, 4);
		memcpy(buf + at + 4, &nlen, 8);
		at += 12;
		if (n->len)
			memcpy(buf + at, n->descr, n->len);
		at += n->len;
	}
	*digest = blob_checksum(buf, at);
	free(buf);
	return 0;
}

static int snapshot_digest_now(struct catalog *cat, const struct snapfs_snapshot *snap,
			       int64_t *ret_digest)
{
	struct core_note_list notes = { 0 };
	struct snapfs_segment *segs = NULL;
	size_t count = 0;
	int64_t digest;
	int rc = catalog_segments_get(cat, snap->id, &segs, &count);

	if (rc < 0)
		return rc;
	digest = snapshot_digest(snap, segs, count);
	snapfs_segments_free(segs, count);
	rc = catalog_core_notes_load(cat, snap->id, &notes);
	if (rc == 0 && notes.count)
		rc = fold_notes(&notes, &digest);
	core_note_list_release(&notes);
	if (rc < 0)
		return rc;
	*ret_digest = digest;
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
