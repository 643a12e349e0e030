// SPDX-License-Identifier: MIT
/*
 * snapfs_diff(): the byte ranges where two snapshots' memory differs. The
 * two page maps are swept together; where both map a page to the same
 * stored slot the page is equal without reading it, elsewhere pages are
 * read through the read path and compared.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "errors.h"
#include "reader.h"

struct diff_job {
	struct snapfs_image *a, *b;
	uint64_t size;                 /* the larger file size */
	snapfs_diff_fn fn;
	void *data;
	bool open;                     /* a range is pending */
	uint64_t start, end;           /* pending range, in pages */
	enum snapfs_diff_status status;
	unsigned char page_a[SNAPFS_PAGE_SIZE], page_b[SNAPFS_PAGE_SIZE];
};

const char *snapfs_diff_status_name(enum snapfs_diff_status status)
{
	switch (status) {
	case SNAPFS_DIFF_CHANGED:
		return "changed";
	case SNAPFS_DIFF_ADDED:
		return "added";
	case SNAPFS_DIFF_REMOVED:
		return "removed";
	}
	return "unknown";
}

static int flush(struct diff_job *job)
{
	uint64_t start = job->start * SNAPFS_PAGE_SIZE, end = job->end * SNAPFS_PAGE_SIZE;

	if (!job->open)
		return 0;
	job->open = false;
	if (end > job->size)
		end = job->size;
	return job->fn(job->data, start, end, job->status);
}

/* Report pages [first, last) with status, merging with the pending range. */
static int emit(struct diff_job *job, uint64_t first, uint64_t last,
		enum snapfs_diff_status status)
{
	int rc;

	if (job->open && job->end == first && job->status == status) {
		job->end = last;
		return 0;
	}
	rc = flush(job);
	if (rc)
		return rc;
	job->open = true;
	job->start = first;
	job->end = last;
	job->status = status;
	return 0;
}

static int read_page(struct snapfs_image *img, uint64_t page, unsigned char *buf)
{
	ssize_t n;

	memset(buf, 0, SNAPFS_PAGE_SIZE);
	n = snapfs_image_read(img, buf, SNAPFS_PAGE_SIZE, page * SNAPFS_PAGE_SIZE);
	if (n < 0)
		return error_set((int)n, "read at offset 0x%llx: %s",
				 (unsigned long long)(page * SNAPFS_PAGE_SIZE),
				 snapfs_strerror((int)n));
	return 0;
}

/* Pages [p, q) are data in both: equal where they share slots, else read. */
static int compare_both(struct diff_job *job, const struct map_run *ra,
			const struct map_run *rb, uint64_t p, uint64_t q)
{
	int rc;

	if (ra->blob_id == rb->blob_id &&
	    ra->slot + (p - ra->first_page) == rb->slot + (p - rb->first_page))
		return flush(job); /* same slots all along: equal */
	for (uint64_t page = p; page < q; page++) {
		rc = read_page(job->a, page, job->page_a);
		if (rc < 0)
			return rc;
		rc = read_page(job->b, page, job->page_b);
		if (rc < 0)
			return rc;
		if (memcmp(job->page_a, job->page_b, SNAPFS_PAGE_SIZE) != 0)
			rc = emit(job, page, page + 1, SNAPFS_DIFF_CHANGED);
		else
			rc = flush(job);
		if (rc)
			return rc;
	}
	return 0;
}

static int sweep(struct diff_job *job)
{
	size_t na = image_run_count(job->a), nb = image_run_count(job->b);
	size_t ia = 0, ib = 0;
	uint64_t p = 0;
	int rc;

	while (ia < na || ib < nb) {
		const struct map_run *ra = ia < na ? image_run(job->a, ia) : NULL;
		const struct map_run *rb = ib < nb ? image_run(job->b, ib) : NULL;
		uint64_t a_start = ra ? ra->first_page : UINT64_MAX;
		uint64_t a_end = ra ? ra->first_page + ra->page_count : UINT64_MAX;
		uint64_t b_start = rb ? rb->first_page : UINT64_MAX;
		uint64_t b_end = rb ? rb->first_page + rb->page_count : UINT64_MAX;
		bool in_a, in_b;
		uint64_t q;

		if (p < a_start && p < b_start) {
			/* Neither has data here: a gap ends any pending range. */
			rc = flush(job);
			if (rc)
				return rc;
			p = a_start < b_start ? a_start : b_start;
			continue;
		}
		in_a = p >= a_start;
		in_b = p >= b_start;
		q = UINT64_MAX;
		if (in_a && a_end < q)
			q = a_end;
		if (in_b && b_end < q)
			q = b_end;
		if (!in_a && a_start < q)
			q = a_start;
		if (!in_b && b_start < q)
			q = b_start;
		if (q <= p)
			rc = 0; /* overlapping runs (damage): move on */
		else if (in_a && in_b)
			rc = compare_both(job, ra, rb, p, q);
		else
			rc = emit(job, p, q, in_a ? SNAPFS_DIFF_REMOVED : SNAPFS_DIFF_ADDED);
		if (rc)
			return rc;
		p = q;
		if (ra && p >= a_end)
			ia++;
		if (rb && p >= b_end)
			ib++;
	}
	return flush(job);
}

static int open_named(struct snapfs_store *store, const char *name,
		      struct snapfs_image **ret_img)
{
	struct snapfs_snapshot snap;
	int rc;

	if (!snapfs_name_valid(name))
		return error_set(-SNAPFS_EBADNAME, "snapshot '%s': invalid name", name);
	rc = snapfs_snapshot_get(store, name, &snap);
	if (rc < 0)
		return rc;
	rc = snapfs_image_open(store, snap.id, ret_img);
	snapfs_snapshot_release(&snap);
	if (rc == 0 && image_damaged(*ret_img)) {
		snapfs_image_close(*ret_img);
		return error_set(-EIO, "snapshot '%s': page map is damaged", name);
	}
	return rc;
}

int snapfs_diff(struct snapfs_store *store, const char *name_a,
		const char *name_b, snapfs_diff_fn fn, void *data)
{
	struct diff_job *job;
	int rc;

	error_clear();
	job = calloc(1, sizeof(*job));
	if (!job)
		return -ENOMEM;
	job->fn = fn;
	job->data = data;
	rc = open_named(store, name_a, &job->a);
	if (rc < 0)
		goto out_free;
	rc = open_named(store, name_b, &job->b);
	if (rc < 0)
		goto out_close;
	job->size = snapfs_image_size(job->a) > snapfs_image_size(job->b)
			    ? snapfs_image_size(job->a) : snapfs_image_size(job->b);
	rc = sweep(job);
	if (rc < 0)
		error_prefix(rc, "diff '%s' '%s'", name_a, name_b);
out_close:
	snapfs_image_close(job->b);
	snapfs_image_close(job->a);
out_free:
	free(job);
	return rc;
}
