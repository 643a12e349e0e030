// SPDX-License-Identifier: MIT
/*
 * snapfs_save(): capture a raw memory file as a snapshot. Everything is
 * checked before the write transaction starts (name, options, source,
 * usage set, parent); then the snapshot row, its segments, its blobs and
 * its page map are written in one transaction, so a failed, interrupted or
 * killed save leaves no trace.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob_store.h"
#include "blob_writer.h"
#include "catalog.h"
#include "codec.h"
#include "digest.h"
#include "errors.h"
#include "remote.h"
#include "seal.h"
#include "scanner.h"
#include "source.h"
#include "store.h"
#include "usage.h"

/* The dictionary a store's first zstd save trains: DICT_BYTES at most,
 * from about DICT_SAMPLE_BYTES of its pages taken evenly across the data
 * in blob-sized groups (zstd suggests ~100 times the dictionary's size);
 * not below DICT_MIN_DATA bytes of data. Measured on a 200 MiB process
 * core (BENCHMARKS.md): 8-page blobs 3.7 % smaller at level 9. */
#define DICT_BYTES ((size_t)112 << 10)
#define DICT_SAMPLE_BYTES ((uint64_t)16 << 20)
#define DICT_MIN_DATA ((uint64_t)4 << 20)
#define DICT_GROUP_PAGES BLOB_PAGES

struct dict_sample {
	unsigned char *buf;          /* groups of pages, end to end */
	size_t *sizes;               /* bytes of each group */
	unsigned groups, cap_groups;
	uint64_t stride;             /* keep one group in stride */
	uint64_t seen_pages;
};

struct save_job {
	struct snapfs_store *store;
	struct catalog *cat;
	const char *name;
	const struct snapfs_save_opts *opts;
	struct source src;
	struct segment_list usage;   /* from a usage file or the data ranges */
	struct segment_list *segs;   /* the usage set: usage or src.segments */
	struct snapfs_snapshot snap;
	struct blob_writer *writer;
	struct scan_stats scan;
	uint64_t total_bytes;        /* data bytes to scan, for progress */
	uint64_t ignored_bytes;      /* data outside committed segments */
	uint64_t data_bytes;         /* non-zero bytes within file_size */
	struct blob_writer_dict dict;
	void *dict_data;             /* owned: the dictionary's bytes */
	struct source premade;       /* snapfs_save_memory(): the source, opened
	                              * already (taken over by src) */
};

static int check_options(struct save_job *job)
{
	const struct snapfs_save_opts *o = job->opts;

	if (!snapfs_name_valid(job->name))
		return error_set(-SNAPFS_EBADNAME,
				 "snapshot '%s': invalid name: use 1-128 of A-Z a-z 0-9 . _ -, "
				 "not starting with '.' or '-'", job->name);
	if (o->format && !source_format_known(o->format))
		return error_set(-EINVAL, "format '%s': not supported", o->format);
	if (o->kind && !snapfs_kind_valid(o->kind))
		return error_set(-EINVAL,
				 "kind '%s': must be one of system anonymous pagecache tmpfs "
				 "ramdiskfs mapped", o->kind);
	if (o->kind && o->usage_path)
		return error_set(-EINVAL, "--kind and --usage: the usage file gives the kinds");
	if (o->level && !snapfs_codec_level_valid(o->codec, o->level))
		return error_set(-EINVAL, "level %d: not valid for codec %s", o->level,
				 snapfs_codec_name(o->codec));
	if (o->overlay && !o->parent)
		return error_set(-EINVAL, "--overlay: needs --parent (the snapshot the diff "
				 "file's holes read from)");
	if (o->overlay && o->format && strcmp(o->format, "raw") != 0)
		return error_set(-EINVAL, "--overlay: the diff is a raw memory file, not "
				 "format %s", o->format);
	if (o->parent && !snapfs_name_valid(o->parent))
		return error_set(-SNAPFS_EBADNAME, "parent '%s': invalid name", o->parent);
	if (o->comment && !snapfs_comment_valid(o->comment))
		return error_set(-SNAPFS_EUSAGE, "comment: at most %d bytes of UTF-8 text "
				 "without control characters", SNAPFS_COMMENT_MAX);
	if (!store_writer(job->store))
		return error_set(-EROFS, "store '%s': opened read-only", store_dir(job->store));
	return 0;
}

/* Bytes of source data inside committed segments (the progress total) and
 * outside them (not saved, reported). */
static int measure_data(struct save_job *job)
{
	uint64_t off = 0, start, end;
	size_t i = 0;
	int rc;

	while ((rc = source_next_data(&job->src, off, &start, &end)) == 0) {
		uint64_t inside = 0;

		for (; i < job->segs->count && job->segs->segs[i].end <= start; i++)
			;
		for (size_t k = i; k < job->segs->count && job->segs->segs[k].start < end; k++) {
			const struct snapfs_segment *g = &job->segs->segs[k];
			uint64_t s = g->start > start ? g->start : start;
			uint64_t e = g->end < end ? g->end : end;

			if (g->committed && e > s)
				inside += e - s;
		}
		job->total_bytes += inside;
		job->ignored_bytes += (end - start) - inside;
		off = end;
	}
	return rc == -ENXIO ? 0 : rc;
}

static int prepare(struct save_job *job, const char *source_path)
{
	const struct snapfs_save_opts *o = job->opts;
	struct snapfs_snapshot parent;
	int rc;

	rc = check_options(job);
	if (rc < 0)
		return rc;
	rc = snapfs_snapshot_get(job->store, job->name, &parent);
	if (rc == 0) {
		snapfs_snapshot_release(&parent);
		return error_set(-EEXIST, "snapshot '%s': name already taken", job->name);
	}
	if (rc != -ENOENT)
		return rc;
	if (o->parent) {
		rc = snapfs_snapshot_get(job->store, o->parent, &parent);
		if (rc < 0)
			return error_prefix(rc, "parent");
		job->snap.parent_id = parent.id;
		snapfs_snapshot_release(&parent);
	}
	if (job->premade.ops) {
		job->src = job->premade;
		job->premade = (struct source){ 0 };
		rc = 0;
	} else if (o->overlay) {
		rc = source_open_overlay(source_path, job->store, job->snap.parent_id, &job->src);
	} else {
		rc = source_open_keyed(source_path, o->format, o->key_file, &job->src);
	}
	if (rc < 0)
		return rc;
	job->segs = &job->usage;
	if (job->src.has_segments) {
		if (o->usage_path || o->kind)
			return error_set(-EINVAL, "--usage and --kind are for raw sources: "
					 "format %s gives its own usage set", job->src.ops->format);
		job->segs = &job->src.segments;
	} else if (o->usage_path) {
		rc = usage_parse_file(o->usage_path, job->src.size, &job->usage);
	} else {
		rc = usage_from_data(&job->src, o->kind ? o->kind : "anonymous", &job->usage);
	}
	if (rc < 0)
		return rc;
	rc = measure_data(job);
	if (rc < 0)
		return rc;
	job->snap.file_size = job->src.size;
	job->snap.page_size = SNAPFS_PAGE_SIZE;
	snprintf(job->snap.name, sizeof(job->snap.name), "%s", job->name);
	snprintf(job->snap.format, sizeof(job->snap.format), "%s", job->src.ops->format);
	store_now_iso8601(job->snap.created_at, sizeof(job->snap.created_at));
	job->snap.source = strdup(job->src.description);
	if (job->src.notes)
		job->snap.notes = strdup(job->src.notes);
	/* An empty comment is none. */
	if (o->comment && o->comment[0])
		job->snap.comment = strdup(o->comment);
	if (!job->snap.source || (job->src.notes && !job->snap.notes) ||
	    (o->comment && o->comment[0] && !job->snap.comment))
		return -ENOMEM;
	return 0;
}

static int add_page(void *ctx, uint64_t page_no, const unsigned char *page)
{
	struct save_job *job = ctx;
	uint64_t off = page_no * SNAPFS_PAGE_SIZE;
	uint64_t left = job->src.size - off;

	job->data_bytes += left < SNAPFS_PAGE_SIZE ? left : SNAPFS_PAGE_SIZE;
	return blob_writer_add(job->writer, page_no, page);
}

static int sample_page(void *ctx, uint64_t page_no, const unsigned char *page)
{
	struct dict_sample *d = ctx;
	uint64_t group = d->seen_pages / DICT_GROUP_PAGES;
	size_t slot = (size_t)(d->seen_pages % DICT_GROUP_PAGES);

	(void)page_no;
	d->seen_pages++;
	if (group % d->stride != 0)
		return 0;
	if (slot == 0) {
		if (d->groups == d->cap_groups)
			return 1;            /* full: stop the scan */
		d->sizes[d->groups++] = 0;
	}
	memcpy(d->buf + (size_t)(d->groups - 1) * DICT_GROUP_PAGES * SNAPFS_PAGE_SIZE +
	       slot * SNAPFS_PAGE_SIZE, page, SNAPFS_PAGE_SIZE);
	d->sizes[d->groups - 1] += SNAPFS_PAGE_SIZE;
	return 0;
}

/* Train the store's first dictionary from this save's pages and record
 * it. Samples too few or too alike to make one leave the store without
 * (blobs are then compressed alone). */
static int train_dictionary(struct save_job *job)
{
	size_t group_bytes = (size_t)DICT_GROUP_PAGES * SNAPFS_PAGE_SIZE, len = 0;
	struct snapfs_progress cancel_only = { .cancel = job->opts->progress.cancel };
	struct dict_sample d = { 0 };
	struct scan_stats unused = { 0 };
	int rc = 0;

	d.cap_groups = (unsigned)(DICT_SAMPLE_BYTES / group_bytes);
	d.stride = job->total_bytes / DICT_SAMPLE_BYTES + 1;
	d.buf = malloc((size_t)d.cap_groups * group_bytes);
	d.sizes = malloc(d.cap_groups * sizeof(*d.sizes));
	job->dict_data = malloc(DICT_BYTES);
	if (!d.buf || !d.sizes || !job->dict_data) {
		rc = -ENOMEM;
		goto out_free;
	}
	/* Segments in order until the sample is full. */
	for (size_t i = 0; rc == 0 && i < job->segs->count && d.groups < d.cap_groups; i++) {
		const struct snapfs_segment *g = &job->segs->segs[i];

		if (g->committed)
			rc = scan_range(&job->src, g->start, g->end, sample_page, &d, &unused,
					&cancel_only, 0);
	}
	if (rc < 0)
		goto out_free;
	rc = codec_dict_train(d.buf, d.sizes, d.groups, job->dict_data, DICT_BYTES, &len,
			      job->opts->progress.cancel);
	if (rc == -SNAPFS_ECANCELED) {
		rc = error_set(rc, "interrupted");
		goto out_free;
	}
	if (rc < 0) {
		rc = rc == -ENOMEM ? rc : 0;   /* no dictionary: not an error */
		goto out_free;
	}
	rc = catalog_dict_insert(job->cat, SNAPFS_CODEC_ZSTD, blob_checksum(job->dict_data, len),
				 job->dict_data, len, &job->dict.id);
	if (rc < 0)
		goto out_free;
	job->dict.data = job->dict_data;
	job->dict.len = len;
	rc = blob_store_add_dict(store_blobs(job->store), job->dict.id, job->dict_data, len);
out_free:
	free(d.buf);
	free(d.sizes);
	return rc;
}

static int take_newest(void *ctx, const struct dict_row *row)
{
	struct save_job *job = ctx;

	if (row->codec != SNAPFS_CODEC_ZSTD || blob_checksum(row->data, row->len) != row->checksum)
		return 0;            /* damaged: compress without (verify names it) */
	job->dict_data = malloc(row->len);
	if (!job->dict_data)
		return -ENOMEM;
	memcpy(job->dict_data, row->data, row->len);
	job->dict = (struct blob_writer_dict){ .id = row->id, .data = job->dict_data,
					       .len = row->len };
	return 0;
}

/* The dictionary new zstd blobs use: the store's newest, or a new one. */
static int choose_dictionary(struct save_job *job)
{
	int rc;

	if (job->opts->codec != SNAPFS_CODEC_ZSTD)
		return 0;
	rc = catalog_dict_each(job->cat, 0, true, take_newest, job);
	if (rc < 0 || job->dict.id || job->total_bytes < DICT_MIN_DATA)
		return rc;
	return train_dictionary(job);
}

static int write_snapshot(struct save_job *job)
{
	const struct snapfs_save_opts *o = job->opts;
	struct catalog *cat = job->cat;
	int rc;

	rc = catalog_snapshot_insert(cat, &job->snap, &job->snap.id);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < job->segs->count; i++) {
		const struct snapfs_segment *g = &job->segs->segs[i];

		rc = catalog_segment_insert(cat, job->snap.id, g);
		if (rc < 0)
			return rc;
		job->snap.segment_count++;
		if (g->committed)
			job->snap.committed_bytes += g->end - g->start;
	}
	rc = catalog_core_notes_insert(cat, job->snap.id, &job->src.core_notes);
	if (rc < 0)
		return rc;
	rc = store_load_dicts(job->store, cat);
	if (rc == 0)
		rc = choose_dictionary(job);
	if (rc < 0)
		return rc;
	rc = blob_writer_new(cat, store_blobs(job->store), job->snap.id, o->codec, o->level,
			     &job->dict, &job->writer);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < job->segs->count; i++) {
		const struct snapfs_segment *g = &job->segs->segs[i];

		if (!g->committed)
			continue;
		rc = scan_range(&job->src, g->start, g->end, add_page, job, &job->scan,
				&o->progress, job->total_bytes);
		if (rc < 0)
			return rc;
	}
	rc = blob_writer_finish(job->writer);
	if (rc < 0)
		return rc;
	job->snap.data_bytes = job->data_bytes;
	job->snap.map_digest = blob_writer_map_digest(job->writer, job->snap.file_size);
	rc = snapshot_seal(cat, &job->snap);
	if (rc < 0)
		return rc;
	rc = catalog_snapshot_blob_bytes(cat, job->snap.id, &job->snap.stored_bytes);
	if (rc < 0)
		return rc;
	return catalog_snapshot_set_figures(cat, &job->snap);
}

/* Save the job's source (a path, or job_in->premade, taken over) as
 * job_in->name: everything snapfs_save() promises. */
static int save_job_run(struct save_job *job_in, const char *source,
			struct snapfs_save_result *ret_result)
{
	struct save_job job = *job_in;
	const char *name = job.name;
	struct snapfs_store *store = job.store;
	struct remote *remote = store_writer(store) ? store_remote(store) : NULL;
	struct blob_writer_stats ws = { 0 };
	int64_t remote_pack = 0;
	int rc;

	/* A remote store: the bucket's lock and its newest index first. */
	if (remote) {
		rc = remote_save_begin(remote, store_writer(store));
		if (rc < 0) {
			remote = NULL;
			goto out_release;
		}
	}
	rc = prepare(&job, source);
	if (rc < 0)
		goto out_release;
	job.cat = store_writer(store);
	rc = catalog_begin_write(job.cat);
	if (rc < 0)
		goto out_release;
	/* Remote: new blobs go to a pack of their own, uploaded whole after
	 * the commit; until it is published this copy is dirty. */
	if (remote) {
		rc = catalog_pack_new(job.cat, &remote_pack);
		if (rc == 0)
			rc = catalog_remote_mark_dirty(job.cat);
		if (rc < 0) {
			catalog_rollback(job.cat);
			goto out_release;
		}
	}
	rc = write_snapshot(&job);
	if (rc < 0) {
		catalog_rollback(job.cat);
		blob_writer_abort(job.writer);
		goto out_release;
	}
	rc = catalog_commit(job.cat);
	if (rc < 0) {
		blob_writer_abort(job.writer);
		goto out_release;
	}
	blob_writer_stats(job.writer, &ws);
	if (ret_result)
		*ret_result = (struct snapfs_save_result){
			.id = job.snap.id,
			.file_size = job.snap.file_size,
			.scanned_bytes = job.scan.scanned_bytes,
			.zero_pages = job.scan.zero_pages,
			.data_pages = ws.data_pages,
			.new_pages = ws.new_pages,
			.dedup_pages = ws.dedup_pages,
			.new_blob_bytes = ws.new_blob_bytes,
			.ignored_bytes = job.ignored_bytes,
		};
out_release:
	/* Published (or this copy put back to the bucket's index) before the
	 * locks go. */
	blob_writer_free(job.writer);
	job.writer = NULL;
	if (remote) {
		int pub = remote_save_end(remote, store_writer(store), remote_pack, rc == 0);

		rc = rc < 0 ? rc : pub;
	}
	if (rc < 0 && rc != -SNAPFS_EBADNAME)
		error_prefix(rc, "save '%s'", name);
	blob_writer_free(job.writer);
	free(job.dict_data);
	segment_list_release(&job.usage);
	source_close(&job.src);
	source_close(&job.premade);
	snapfs_snapshot_release(&job.snap);
	return rc;
}

int snapfs_save(struct snapfs_store *store, const char *name,
		const char *source, const struct snapfs_save_opts *opts,
		struct snapfs_save_result *ret_result)
{
	struct save_job job = { .store = store, .name = name, .opts = opts };

	error_clear();
	return save_job_run(&job, source, ret_result);
}

int snapfs_save_memory(struct snapfs_store *store, const char *name,
		       const struct snapfs_mem_region *regions, size_t count,
		       uint64_t file_size, const struct snapfs_save_opts *opts,
		       struct snapfs_save_result *ret_result)
{
	struct save_job job = { .store = store, .name = name, .opts = opts };
	int rc;

	error_clear();
	if (opts->format || opts->usage_path || opts->kind)
		return error_set(-EINVAL, "save '%s': from memory: no format, usage file or kind "
				 "(the regions give them)", name);
	if (count && !regions)
		return error_set(-EINVAL, "save '%s': from memory: no regions", name);
	rc = source_open_memory(regions, count, file_size, &job.premade);
	if (rc < 0)
		return error_prefix(rc, "save '%s'", name);
	return save_job_run(&job, "memory", ret_result);
}
