// SPDX-License-Identifier: MIT
/*
 * snapfs_verify(): re-read and check everything a store holds. Database
 * integrity (SQLite's own check), every blob (checksum and decode), and per
 * snapshot its segments (sorted, page-aligned, non-overlapping, inside the
 * file), its page map (digest, runs inside the file, every run's bytes read
 * back through the read path) and its recorded figures against the ones
 * the views recompute. Problems are reported one line each; the caller
 * decides what they mean.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "errors.h"
#include "blob_store.h"
#include "digest.h"
#include "reader.h"
#include "seal.h"
#include "store.h"

/* Bytes read per call when reading a run back. */
#define VERIFY_CHUNK ((size_t)1 << 20)

struct verify_job {
	struct snapfs_store *store;
	struct catalog *cat;
	const struct snapfs_verify_opts *opts;
	uint64_t problems;
	uint64_t done, total;
	unsigned char *buf;
};

static void report(struct verify_job *job, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* true once the caller asked verify to stop (SIGINT, SIGTERM). */
static bool cancelled(const struct verify_job *job)
{
	const struct snapfs_progress *p = &job->opts->progress;

	return p->cancel && *p->cancel;
}

static void report(struct verify_job *job, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	/* After a stop, a statement cut short is not damage. */
	if (cancelled(job))
		return;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	job->problems++;
	if (job->opts->report)
		job->opts->report(job->opts->report_data, line);
}

static int advance(struct verify_job *job, uint64_t bytes)
{
	const struct snapfs_progress *p = &job->opts->progress;

	job->done += bytes;
	if (p->fn)
		p->fn(p->data, job->done, job->total);
	if (cancelled(job))
		return error_set(-SNAPFS_ECANCELED, "interrupted");
	return 0;
}

static int check_blob(void *ctx, const struct blob_loc *loc)
{
	struct verify_job *job = ctx;
	size_t size = (size_t)loc->page_count * SNAPFS_PAGE_SIZE;
	unsigned char *data = malloc(size ? size : 1);
	int rc;

	if (!data)
		return -ENOMEM;
	rc = blob_store_load(store_blobs(job->store), loc, true, data);
	if (rc == -SNAPFS_ECORRUPT || rc == -EIO)
		report(job, "blob %" PRId64 " (pack %" PRId64 ", offset %" PRIu64
		       "): damaged (missing pack, short pack, checksum or decode fails)",
		       loc->id, loc->pack_id, loc->offset);
	free(data);
	if (rc < 0 && rc != -SNAPFS_ECORRUPT && rc != -EIO)
		return rc;
	return advance(job, rc < 0 ? 0 : size);
}

static int check_dict(void *ctx, const struct dict_row *row)
{
	if (row->codec != SNAPFS_CODEC_ZSTD || blob_checksum(row->data, row->len) != row->checksum)
		report(ctx, "dictionary %" PRId64 ": damaged (codec or checksum)", row->id);
	return 0;
}

/* Every pack the database names is there and holds its committed bytes. */
static int check_packs(struct verify_job *job)
{
	int64_t *ids = NULL;
	uint64_t *lengths = NULL, disk, length, end, orphans = 0;
	size_t count = 0;
	int rc;

	rc = catalog_pack_list(job->cat, &ids, &lengths, &count);
	if (rc < 0)
		return rc;
	rc = catalog_blobs_without_pack(job->cat, &orphans);
	if (rc < 0)
		goto out_free;
	if (orphans)
		report(job, "blobs: %" PRIu64 " name a pack the packs table does not list", orphans);
	for (size_t i = 0; i < count; i++) {
		rc = catalog_pack_blob_end(job->cat, ids[i], &end);
		if (rc < 0)
			goto out_free;
		if (end > lengths[i])
			report(job, "pack %" PRId64 ": blobs reach byte %" PRIu64 ", past its recorded "
			       "length %" PRIu64, ids[i], end, lengths[i]);
		rc = blob_store_pack_size(store_blobs(job->store), ids[i], &disk, &length);
		if (rc == -ENOENT)
			report(job, "pack %" PRId64 ": missing", ids[i]);
		else if (rc < 0)
			report(job, "pack %" PRId64 ": cannot be read: %s", ids[i], snapfs_strerror(rc));
		else if (length < lengths[i])
			report(job, "pack %" PRId64 ": %" PRIu64 " bytes, %" PRIu64 " recorded",
			       ids[i], length, lengths[i]);
	}
	rc = 0;
out_free:
	free(ids);
	free(lengths);
	return rc;
}

static void check_segments(struct verify_job *job, const struct snapfs_snapshot *snap)
{
	uint64_t limit = (snap->file_size + SNAPFS_PAGE_SIZE - 1) / SNAPFS_PAGE_SIZE * SNAPFS_PAGE_SIZE;
	struct snapfs_segment *segs = NULL;
	uint64_t prev_end = 0;
	size_t count = 0;
	int rc;

	rc = catalog_segments_get(job->cat, snap->id, &segs, &count);
	if (rc < 0) {
		report(job, "snapshot '%s': segments cannot be read: %s", snap->name,
		       snapfs_errmsg());
		return;
	}
	for (size_t i = 0; i < count; i++) {
		const struct snapfs_segment *g = &segs[i];

		if (g->start % SNAPFS_PAGE_SIZE || g->end % SNAPFS_PAGE_SIZE || g->end <= g->start)
			report(job, "snapshot '%s': segment 0x%" PRIx64 "-0x%" PRIx64
			       ": not page-aligned or empty", snap->name, g->start, g->end);
		else if (g->end > limit)
			report(job, "snapshot '%s': segment 0x%" PRIx64 "-0x%" PRIx64
			       ": past the end of the file (0x%" PRIx64 ")", snap->name,
			       g->start, g->end, snap->file_size);
		if (i > 0 && g->start < prev_end)
			report(job, "snapshot '%s': segment 0x%" PRIx64 "-0x%" PRIx64
			       ": overlaps the one before it", snap->name, g->start, g->end);
		if (!snapfs_kind_valid(g->kind))
			report(job, "snapshot '%s': segment 0x%" PRIx64 "-0x%" PRIx64
			       ": unknown kind", snap->name, g->start, g->end);
		if (g->end > prev_end)
			prev_end = g->end;
	}
	if (count != snap->segment_count)
		report(job, "snapshot '%s': %zu segments, %" PRIu64 " recorded", snap->name,
		       count, snap->segment_count);
	snapfs_segments_free(segs, count);
}

static void check_figures(struct verify_job *job, const struct snapfs_snapshot *snap)
{
	struct snapfs_snapshot now = { 0 };

	if (catalog_snapshot_recount(job->cat, snap->id, &now) < 0) {
		report(job, "snapshot '%s': figures cannot be recomputed: %s", snap->name,
		       snapfs_errmsg());
		return;
	}
	if (now.committed_bytes != snap->committed_bytes || now.data_bytes != snap->data_bytes ||
	    now.stored_bytes != snap->stored_bytes)
		report(job, "snapshot '%s': recorded figures (committed %" PRIu64 ", data %" PRIu64
		       ", stored %" PRIu64 ") differ from snapshot_summary (%" PRIu64 ", %" PRIu64
		       ", %" PRIu64 ")", snap->name, snap->committed_bytes, snap->data_bytes,
		       snap->stored_bytes, now.committed_bytes, now.data_bytes, now.stored_bytes);
}

/* Read every run of the snapshot back through the read path. */
static int check_pages(struct verify_job *job, const struct snapfs_snapshot *snap)
{
	struct snapfs_image *img;
	uint64_t pages = (snap->file_size + SNAPFS_PAGE_SIZE - 1) / SNAPFS_PAGE_SIZE;
	uint64_t prev_end = 0;
	int rc;

	rc = snapfs_image_open(job->store, snap->id, &img);
	if (rc < 0) {
		report(job, "snapshot '%s': page map cannot be read: %s", snap->name,
		       snapfs_errmsg());
		return 0;
	}
	if (image_damaged(img)) {
		report(job, "snapshot '%s': page map fails its digest (runs deleted, moved or "
		       "changed, or file_size changed)", snap->name);
		goto out_close;
	}
	for (size_t i = 0; i < image_run_count(img); i++) {
		const struct map_run *r = image_run(img, i);
		uint64_t start = r->first_page * SNAPFS_PAGE_SIZE;
		uint64_t end = (r->first_page + r->page_count) * SNAPFS_PAGE_SIZE;

		if (r->first_page < prev_end || r->first_page + r->page_count > pages) {
			report(job, "snapshot '%s': bytes 0x%" PRIx64 "-0x%" PRIx64
			       ": page map run overlaps another or lies past the end",
			       snap->name, start, end);
			continue;
		}
		prev_end = r->first_page + r->page_count;
		if (end > snap->file_size)
			end = snap->file_size;
		for (uint64_t at = start; at < end;) {
			size_t len = end - at < VERIFY_CHUNK ? (size_t)(end - at) : VERIFY_CHUNK;
			ssize_t n = snapfs_image_read(img, job->buf, len, at);

			if (n < 0 && n != -EIO) {
				rc = (int)n;
				goto out_close;
			}
			if (n < 0) {
				report(job, "snapshot '%s': bytes 0x%" PRIx64 "-0x%" PRIx64
				       ": cannot be read back intact (blob %" PRId64
				       " damaged, missing, or not what the page map expects)",
				       snap->name, start, end, r->blob_id);
				break;
			}
			at += len;
			rc = advance(job, len);
			if (rc < 0)
				goto out_close;
		}
	}
out_close:
	snapfs_image_close(img);
	return rc;
}

static int check_snapshot(struct verify_job *job, const struct snapfs_snapshot *snap)
{
	bool sealed = snapshot_check(job->cat, snap) == 0;

	if (!sealed)
		report(job, "snapshot '%s': changed outside snapfs: its name, parent, size, format, "
		       "segments or page-map digest do not match its seal (meta_digest)", snap->name);
	check_segments(job, snap);
	check_figures(job, snap);
	/* Its pages are not read back when its seal fails: readers refuse
	 * it whole. */
	return sealed ? check_pages(job, snap) : 0;
}

int snapfs_verify(struct snapfs_store *store, const char *const *names,
		  size_t count, const struct snapfs_verify_opts *opts,
		  uint64_t *ret_problems)
{
	struct verify_job job = { .store = store, .opts = opts };
	struct snapfs_snapshot *snaps = NULL;
	struct snapfs_store_summary summary;
	size_t snap_count = 0;
	char msg[512];
	bool ok;
	int rc;

	error_clear();
	job.buf = malloc(VERIFY_CHUNK);
	if (!job.buf)
		return -ENOMEM;
	rc = store_reader_get(store, &job.cat);
	if (rc < 0)
		goto out_free;
	if (count == 0) {
		rc = catalog_integrity_check(job.cat, msg, sizeof(msg), &ok);
		if (rc < 0)
			goto out_put;
		if (!ok)
			report(&job, "database: %s", msg);
		rc = catalog_snapshot_list(job.cat, &snaps, &snap_count);
	} else {
		snaps = calloc(count, sizeof(*snaps));
		rc = snaps ? 0 : -ENOMEM;
		for (size_t i = 0; rc == 0 && i < count; i++) {
			rc = catalog_snapshot_get(job.cat, names[i], &snaps[i]);
			if (rc == 0)
				snap_count++;
		}
	}
	if (rc < 0) {
		if (rc == -SNAPFS_ECORRUPT) {
			report(&job, "database: cannot be read: %s", snapfs_errmsg());
			rc = 0;
		}
		goto out_put;
	}
	for (size_t i = 0; i < snap_count; i++)
		job.total += snaps[i].data_bytes;
	if (count == 0 && catalog_store_summary(job.cat, &summary) == 0)
		job.total += summary.unique_pages * SNAPFS_PAGE_SIZE;
	rc = store_load_dicts(store, job.cat);
	if (rc < 0)
		goto out_put;
	if (count == 0) {
		rc = catalog_dict_each(job.cat, 0, false, check_dict, &job);
		if (rc == 0)
			rc = check_packs(&job);
		if (rc == 0)
			rc = catalog_for_each_blob(job.cat, check_blob, &job);
		if (rc == -SNAPFS_ECORRUPT) {
			report(&job, "database: blob table cannot be read: %s", snapfs_errmsg());
			rc = 0;
		}
		if (rc < 0)
			goto out_put;
	}
	for (size_t i = 0; i < snap_count; i++) {
		rc = check_snapshot(&job, &snaps[i]);
		if (rc < 0)
			goto out_put;
	}
out_put:
	/* Stopped on the way (a statement interrupted, or between steps):
	 * interrupted, whatever was found so far. */
	if (rc >= 0 && cancelled(&job))
		rc = error_set(-SNAPFS_ECANCELED, "interrupted");
	if (rc == 0)
		*ret_problems = job.problems;
	snapfs_snapshot_list_free(snaps, snap_count);
	store_reader_put(store, job.cat);
out_free:
	free(job.buf);
	if (rc < 0)
		error_prefix(rc, "verify");
	return rc;
}
