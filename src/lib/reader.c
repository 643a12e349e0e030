// SPDX-License-Identifier: MIT
/*
 * The read path shared by restore, verify, diff and the mount: offset ->
 * page map run -> decoded blob (through the shared cache) -> bytes, handed
 * out as slices of the cached blobs and of a buffer of zeros (the mount
 * writes them to the kernel as they are) or copied out of those. Every
 * blob is checked against its checksum before decoding and every run
 * against its hash before it is served, so damage reads as -EIO, never as
 * wrong bytes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blob_cache.h"
#include "blob_span.h"
#include "catalog.h"
#include "claims.h"
#include "decode_ahead.h"
#include "digest.h"
#include "errors.h"
#include "seal.h"
#include "reader.h"
#include "store.h"

enum run_state { RUN_UNCHECKED = 0, RUN_GOOD = 1, RUN_BAD = -1 };

struct image_run {
	struct map_run map;
	struct blob_loc loc;         /* where its blob is */
	atomic_int state;            /* enum run_state */
};

struct snapfs_image {
	struct snapfs_store *store;
	int64_t snapshot_id;
	int claim_fd;                /* holds the snapshot's claim; -1: none */
	uint64_t file_size;
	uint64_t page_count;         /* pages of file_size, the last partial */
	uint64_t data_pages;
	bool damaged;                /* the page map fails its digest: all -EIO */
	struct image_run *runs;      /* sorted by first_page */
	size_t run_count;
	atomic_size_t stream_run;    /* run index where the last read ended */
	atomic_uint streak;          /* sequential reads in a row */
	atomic_size_t ahead_run;     /* runs below this were sent to decode ahead */
};

int snapfs_image_open(struct snapfs_store *store, int64_t snapshot_id,
		      struct snapfs_image **ret_image)
{
	struct snapfs_snapshot snap;
	struct snapfs_image *img;
	struct map_run *runs = NULL;
	struct blob_loc *locs = NULL;
	struct catalog *cat;
	size_t count = 0;
	uint64_t prev_end = 0;
	int claim_fd, rc;

	error_clear();
	/* The claim first, the rows after: a remover either sees the claim
	 * and only hides the snapshot, or holds the claim until its delete
	 * is committed, and then the lookup below finds nothing. */
	rc = claims_open(store_dir(store), false, &claim_fd);
	if (rc < 0)
		return rc;
	rc = claim_shared_wait(claim_fd, snapshot_id);
	if (rc < 0)
		goto out_claim;
	rc = store_reader_get(store, &cat);
	if (rc < 0)
		goto out_claim;
	rc = catalog_begin_read(cat);
	if (rc < 0)
		goto out_put;
	rc = store_load_dicts(store, cat);
	if (rc < 0)
		goto out_end;
	rc = catalog_snapshot_get_id(cat, snapshot_id, &snap);
	if (rc < 0)
		goto out_end;
	rc = snapshot_check(cat, &snap);
	if (rc < 0) {
		snapfs_snapshot_release(&snap);
		goto out_end;
	}
	rc = catalog_map_load(cat, snapshot_id, &runs, &locs, &count);
	snapfs_snapshot_release(&snap);
	if (rc < 0)
		goto out_end;
	img = calloc(1, sizeof(*img));
	if (!img || (count && !(img->runs = calloc(count, sizeof(*img->runs))))) {
		free(img);
		rc = -ENOMEM;
		goto out_end;
	}
	img->store = store;
	img->snapshot_id = snapshot_id;
	img->claim_fd = claim_fd;
	claim_fd = -1;
	img->file_size = snap.file_size;
	img->page_count = (snap.file_size + SNAPFS_PAGE_SIZE - 1) / SNAPFS_PAGE_SIZE;
	img->run_count = count;
	img->damaged = map_digest(snapshot_id, snap.file_size, runs, count) != snap.map_digest;
	for (size_t i = 0; i < count; i++) {
		struct image_run *r = &img->runs[i];

		r->map = runs[i];
		r->loc = locs[i];
		/* A run that overlaps the one before it or reaches past the end
		 * of the file can only come from damage: its pages read as
		 * -EIO. */
		if (r->map.first_page < prev_end ||
		    r->map.first_page + r->map.page_count > img->page_count)
			atomic_store(&r->state, RUN_BAD);
		if (r->map.first_page + r->map.page_count > prev_end)
			prev_end = r->map.first_page + r->map.page_count;
		img->data_pages += r->map.page_count;
	}
	if (count)
		blob_cache_prepare(store_cache(store));
	*ret_image = img;
	rc = 0;
out_end:
	free(runs);
	free(locs);
	catalog_rollback(cat);
out_put:
	store_reader_put(store, cat);
out_claim:
	claims_close(claim_fd);
	return rc;
}

void snapfs_image_close(struct snapfs_image *img)
{
	if (!img)
		return;
	claims_close(img->claim_fd);
	free(img->runs);
	free(img);
}

uint64_t snapfs_image_size(const struct snapfs_image *img)
{
	return img->file_size;
}

uint64_t snapfs_image_data_pages(const struct snapfs_image *img)
{
	return img->data_pages;
}

size_t image_run_count(const struct snapfs_image *img)
{
	return img->run_count;
}

const struct map_run *image_run(const struct snapfs_image *img, size_t i)
{
	return &img->runs[i].map;
}

bool image_damaged(const struct snapfs_image *img)
{
	return img->damaged;
}

/* Index of the first run that ends after page, or run_count. */
static size_t run_at_or_after(const struct snapfs_image *img, uint64_t page)
{
	size_t lo = 0, hi = img->run_count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct map_run *m = &img->runs[mid].map;

		if (m->first_page + m->page_count <= page)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

uint64_t snapfs_image_data_bytes(const struct snapfs_image *img,
				 uint64_t start, uint64_t end)
{
	uint64_t total = 0, counted = start;

	if (end > img->file_size)
		end = img->file_size;
	for (size_t i = run_at_or_after(img, start / SNAPFS_PAGE_SIZE);
	     i < img->run_count && counted < end; i++) {
		const struct map_run *m = &img->runs[i].map;
		uint64_t lo = m->first_page * SNAPFS_PAGE_SIZE;
		uint64_t hi = (m->first_page + m->page_count) * SNAPFS_PAGE_SIZE;

		/* counted only grows: runs that overlap (damage) count once. */
		if (lo < counted)
			lo = counted;
		if (hi > end)
			hi = end;
		if (lo < hi) {
			total += hi - lo;
			counted = hi;
		}
	}
	return total;
}

/* Zeros for holes and zero pages, shared by every read. */
#define ZERO_BYTES SNAPFS_READ_SLICES_BYTES
static unsigned char zero_bytes[ZERO_BYTES];
static pthread_once_t zero_bytes_once = PTHREAD_ONCE_INIT;

/* Back the zeros with pages of their own (1 MiB of memory). Left to the
 * kernel's shared zero page, as untouched .bss is, every reply that sends
 * them takes the slow path of get_user_pages (the zero page is a special
 * mapping): replies of holes cost several times more CPU. */
static void zero_bytes_populate(void)
{
	volatile unsigned char *p = zero_bytes;

	for (size_t i = 0; i < ZERO_BYTES; i += 4096)
		p[i] = 0;
}

static int run_damaged(const struct image_run *r)
{
	return error_set(-EIO, "page map run at offset 0x%llx: damaged",
			 (unsigned long long)(r->map.first_page * SNAPFS_PAGE_SIZE));
}

/* Hold the decoded blob of run r in the cache; let go with
 * blob_cache_put(). */
static int run_blob(struct snapfs_image *img, const struct image_run *r,
		    enum blob_use use, const struct cached_blob **ret_blob)
{
	int rc;

	rc = blob_cache_get(store_cache(img->store), &r->loc, use,
			    store_load_blob, store_blobs(img->store), ret_blob);
	if (rc < 0 && rc != -ENOMEM) {
		struct blob_loc now;

		/* The blob may have moved since the image was opened (a working
		 * set laid out, and gc has given the old place back): try its
		 * place now. Its bytes are checked all the same. */
		if (store_blob_loc(img->store, r->loc.id, &now) == 0 &&
		    (now.pack_id != r->loc.pack_id || now.offset != r->loc.offset))
			rc = blob_cache_get(store_cache(img->store), &now, use,
					    store_load_blob, store_blobs(img->store), ret_blob);
	}
	if (rc < 0) {
		/* The loading thread has the detail; this one may have waited. */
		if (rc == -ENOMEM)
			return rc;
		return error_set(-EIO, "blob %lld (offset 0x%llx): damaged or missing",
				 (long long)r->map.blob_id,
				 (unsigned long long)(r->map.first_page * SNAPFS_PAGE_SIZE));
	}
	return 0;
}

/* The bytes of run r within blob (its blob), checked against the run's
 * hash the first time. */
static int run_bytes(struct snapfs_image *img, struct image_run *r,
		     const struct cached_blob *blob, const unsigned char **ret_bytes)
{
	size_t len = (size_t)r->map.page_count * SNAPFS_PAGE_SIZE;
	size_t at = (size_t)r->map.slot * SNAPFS_PAGE_SIZE;
	const unsigned char *bytes;
	int state = atomic_load(&r->state);

	if (state == RUN_BAD)
		return run_damaged(r);
	if (at > blob->size || len > blob->size - at) {
		atomic_store(&r->state, RUN_BAD);
		return error_set(-EIO, "page map run at offset 0x%llx: slots beyond blob %lld",
				 (unsigned long long)(r->map.first_page * SNAPFS_PAGE_SIZE),
				 (long long)r->map.blob_id);
	}
	bytes = blob->data + at;
	if (state == RUN_UNCHECKED) {
		if (run_hash(bytes, len, img->snapshot_id, r->map.first_page) != r->map.hash) {
			atomic_store(&r->state, RUN_BAD);
			return error_set(-EIO, "page map run at offset 0x%llx: bytes of blob %lld "
					 "do not match the run's hash",
					 (unsigned long long)(r->map.first_page * SNAPFS_PAGE_SIZE),
					 (long long)r->map.blob_id);
		}
		atomic_store(&r->state, RUN_GOOD);
	}
	*ret_bytes = bytes;
	return 0;
}

/* arr (count entries of size bytes, room for *cap) with room for one
 * more: itself, or a larger copy on the heap, arr freed unless it is the
 * inline array. NULL when out of memory (arr is kept). */
static void *grow(void *arr, size_t *cap, size_t count, size_t size,
		  const void *inline_arr)
{
	size_t new_cap = *cap * 2;
	void *p;

	if (count < *cap)
		return arr;
	if (arr == inline_arr) {
		p = malloc(new_cap * size);
		if (p)
			memcpy(p, arr, count * size);
	} else {
		p = realloc(arr, new_cap * size);
	}
	if (p)
		*cap = new_cap;
	return p;
}

static bool is_zero_slice(const struct iovec *v)
{
	return v->iov_base == zero_bytes;
}

/* Append len bytes at data, merged with the slice before when they follow
 * it (zeros with zeros, data with data that is next in memory). */
static int slices_add(struct snapfs_read_slices *s, const void *data, size_t len)
{
	struct iovec *last = s->count ? &s->iov[s->count - 1] : NULL;
	bool zero = data == zero_bytes;
	struct iovec *iov;

	if (last && zero && is_zero_slice(last) && last->iov_len + len <= ZERO_BYTES) {
		last->iov_len += len;
		goto out_counted;
	}
	if (last && !zero && !is_zero_slice(last) &&
	    (uintptr_t)last->iov_base + last->iov_len == (uintptr_t)data) {
		last->iov_len += len;
		goto out_counted;
	}
	iov = grow(s->iov, &s->iov_cap, s->count, sizeof(*s->iov), s->iov_inline);
	if (!iov)
		return -ENOMEM;
	s->iov = iov;
	s->iov[s->count].iov_base = (void *)data;
	s->iov[s->count].iov_len = len;
	s->count++;
out_counted:
	s->len += len;
	return 0;
}

static int slices_add_zeros(struct snapfs_read_slices *s, uint64_t len)
{
	while (len) {
		size_t n = len < ZERO_BYTES ? (size_t)len : ZERO_BYTES;
		int rc = slices_add(s, zero_bytes, n);

		if (rc < 0)
			return rc;
		len -= n;
	}
	return 0;
}

static int slices_pin(struct snapfs_read_slices *s, const struct cached_blob *blob)
{
	const void **pins;

	pins = grow(s->pins, &s->pin_cap, s->pin_count, sizeof(*s->pins),
		    s->pins_inline);
	if (!pins)
		return -ENOMEM;
	s->pins = pins;
	s->pins[s->pin_count++] = blob;
	return 0;
}

/* Empty, on the inline arrays. */
static void slices_reset(struct snapfs_read_slices *s)
{
	s->iov = s->iov_inline;
	s->pins = s->pins_inline;
	s->iov_cap = s->pin_cap = SNAPFS_READ_SLICES_INLINE;
	s->count = s->pin_count = s->len = 0;
}

void snapfs_read_slices_release(struct snapfs_read_slices *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->pin_count; i++)
		blob_cache_put(store_cache(s->store), s->pins[i]);
	if (s->iov != s->iov_inline)
		free(s->iov);
	if (s->pins != s->pins_inline)
		free(s->pins);
	slices_reset(s);
}

/* Decoding ahead of sequential readers (restore, cp, dd, a VMM faulting
 * memory in order). Sequential is judged in runs, not bytes, so that a
 * reader that skips holes (restore, cp --sparse) still counts, and with
 * some slack, because the kernel's readahead sends requests out of order. */
#define AHEAD_RUNS (((size_t)4 << 20) / (BLOB_PAGES * SNAPFS_PAGE_SIZE)) /* runs (a blob or less each) kept decoded ahead: 4 MiB */
#define AHEAD_SLACK 4                /* runs a "sequential" read may be off by */
#define WANT_BATCH 32                /* blobs handed to the workers at once */

/* first: the index of the first run the read [.., end) touches or
 * follows. Returns how the read uses its blobs: BLOB_STREAM when it
 * follows the last one. */
static enum blob_use read_ahead(struct snapfs_image *img, size_t first, uint64_t end)
{
	size_t cur = run_at_or_after(img, end / SNAPFS_PAGE_SIZE);
	size_t last = atomic_exchange(&img->stream_run, cur);
	struct blob_loc want[WANT_BATCH];
	size_t target, ahead, i, count = 0;
	struct decode_ahead *da;
	int64_t prev_id = 0;

	if (first + AHEAD_SLACK < last || first > last + AHEAD_SLACK) {
		atomic_store(&img->streak, 0);
		atomic_store(&img->ahead_run, 0);
		return BLOB_RANDOM;
	}
	/* The second sequential read in a row starts decoding ahead. */
	if (atomic_fetch_add(&img->streak, 1) < 1)
		return BLOB_STREAM;
	target = cur + AHEAD_RUNS < img->run_count ? cur + AHEAD_RUNS : img->run_count;
	/* Claim the runs from where the last call stopped up to target. */
	ahead = atomic_load(&img->ahead_run);
	do {
		if (ahead >= target)
			return BLOB_STREAM;
	} while (!atomic_compare_exchange_weak(&img->ahead_run, &ahead, target));
	i = ahead < cur ? cur : ahead;
	da = store_decode_ahead(img->store);
	if (!da)
		return BLOB_STREAM;
	for (; i < target; i++) {
		const struct image_run *r = &img->runs[i];

		if (r->map.blob_id != prev_id && atomic_load(&r->state) != RUN_BAD) {
			want[count++] = r->loc;
			if (count == WANT_BATCH) {
				decode_ahead_want(da, want, count);
				count = 0;
			}
		}
		prev_id = r->map.blob_id;
	}
	if (count)
		decode_ahead_want(da, want, count);
	return BLOB_STREAM;
}

/* A random read whose bytes lie in several blobs (the kernel's readahead
 * makes a 4 KiB read a 16 KiB request, which often spans two 16 KiB
 * blobs): the blobs after the first are handed to the decode-ahead
 * workers, so that they are read and decoded on the other core while this
 * thread loads the first; the loop below then finds them decoded, or
 * waits for them. */
static void load_rest_in_parallel(struct snapfs_image *img, size_t first, uint64_t end)
{
	int64_t first_id = 0;
	struct decode_ahead *da = NULL;

	for (size_t i = first; i < img->run_count; i++) {
		const struct image_run *r = &img->runs[i];

		if (r->map.first_page * SNAPFS_PAGE_SIZE >= end)
			break;
		if (!first_id) {
			first_id = r->map.blob_id;
			continue;
		}
		if (r->map.blob_id == first_id || atomic_load(&r->state) == RUN_BAD ||
		    blob_cache_contains(store_cache(img->store), r->map.blob_id))
			continue;
		if (!da && !(da = store_decode_ahead(img->store)))
			return;
		decode_ahead_want(da, &r->loc, 1);
	}
}

/* Load the blobs of [off, end) that the cache lacks in as few reads as
 * their places in the packs allow. */
static void warm(struct snapfs_image *img, uint64_t off, uint64_t end)
{
	struct blob_loc *locs = NULL;
	size_t count = 0, cap = 0;
	int64_t prev_id = 0;

	for (size_t i = run_at_or_after(img, off / SNAPFS_PAGE_SIZE);
	     i < img->run_count && img->runs[i].map.first_page * SNAPFS_PAGE_SIZE < end; i++) {
		const struct image_run *r = &img->runs[i];

		if (r->map.blob_id == prev_id || atomic_load(&r->state) == RUN_BAD ||
		    blob_cache_contains(store_cache(img->store), r->map.blob_id))
			continue;
		prev_id = r->map.blob_id;
		if (count == cap) {
			struct blob_loc *more;

			cap = cap ? cap * 2 : 64;
			more = realloc(locs, cap * sizeof(*locs));
			if (!more)
				break;          /* the read loads the rest one by one */
			locs = more;
		}
		locs[count++] = r->loc;
	}
	if (count)
		blob_span_load(store_cache(img->store), store_blobs(img->store), locs, count);
	free(locs);
}

static int read_slices(struct snapfs_image *img, uint64_t off, size_t len,
		       bool prefetch, struct snapfs_read_slices *s)
{
	const struct cached_blob *blob = NULL;   /* the last one pinned */
	enum blob_use use;
	uint64_t end, pos;
	size_t i;
	int rc;

	slices_reset(s);
	s->store = img->store;
	pthread_once(&zero_bytes_once, zero_bytes_populate);
	if (img->damaged)
		return error_set(-EIO, "snapshot #%lld: page map fails its digest",
				 (long long)img->snapshot_id);
	if (off >= img->file_size || len == 0)
		return 0;
	end = off + len;
	if (end > img->file_size || end < off)
		end = img->file_size;
	pos = off;
	i = run_at_or_after(img, pos / SNAPFS_PAGE_SIZE);
	if (prefetch) {
		/* Not a reader's read: leaves the sequential reader's state
		 * alone. Its bytes go to the kernel's cache, so its blobs go
		 * when it lets go: their memory serves the next blobs instead
		 * of fresh pages (a page fault and a cleared page each). */
		use = BLOB_ONCE;
		warm(img, off, end);
	} else {
		use = read_ahead(img, i, end);
		if (use == BLOB_RANDOM)
			load_rest_in_parallel(img, i, end);
	}
	while (pos < end) {
		struct image_run *r = i < img->run_count ? &img->runs[i] : NULL;
		uint64_t run_start = r ? r->map.first_page * SNAPFS_PAGE_SIZE : end;
		uint64_t run_end = r ? (r->map.first_page + r->map.page_count) * SNAPFS_PAGE_SIZE : end;
		const unsigned char *bytes = NULL;
		uint64_t stop;

		if (pos < run_start) {
			/* A hole or zero pages up to the next run. */
			stop = run_start < end ? run_start : end;
			rc = slices_add_zeros(s, stop - pos);
			if (rc < 0)
				goto out_release;
			pos = stop;
			continue;
		}
		stop = run_end < end ? run_end : end;
		if (atomic_load(&r->state) == RUN_BAD) {
			rc = run_damaged(r);
			goto out_release;
		}
		/* Runs that share a blob share its pin. */
		if (!blob || blob->id != r->map.blob_id) {
			rc = run_blob(img, r, use, &blob);
			if (rc < 0)
				goto out_release;
			rc = slices_pin(s, blob);
			if (rc < 0) {
				blob_cache_put(store_cache(img->store), blob);
				goto out_release;
			}
		}
		rc = run_bytes(img, r, blob, &bytes);
		if (rc < 0)
			goto out_release;
		rc = slices_add(s, bytes + (pos - run_start), (size_t)(stop - pos));
		if (rc < 0)
			goto out_release;
		pos = stop;
		i++;
	}
	return 0;

out_release:
	snapfs_read_slices_release(s);
	return rc;
}

int snapfs_image_read_slices(struct snapfs_image *img, uint64_t off,
			     size_t len, struct snapfs_read_slices *s)
{
	return read_slices(img, off, len, false, s);
}

int snapfs_image_prefetch_slices(struct snapfs_image *img, uint64_t off,
				 size_t len, struct snapfs_read_slices *s)
{
	return read_slices(img, off, len, true, s);
}

ssize_t snapfs_image_read(struct snapfs_image *img, void *buf, size_t len,
			  uint64_t off)
{
	struct snapfs_read_slices s;
	unsigned char *out = buf;
	size_t done = 0;
	int rc;

	/* In pieces that fit the slices' inline arrays. */
	do {
		size_t want = len - done < SNAPFS_READ_SLICES_BYTES ?
			      len - done : SNAPFS_READ_SLICES_BYTES;
		size_t got;

		rc = snapfs_image_read_slices(img, off + done, want, &s);
		if (rc < 0)
			return rc;
		for (size_t k = 0; k < s.count; k++) {
			if (is_zero_slice(&s.iov[k]))
				memset(out + done, 0, s.iov[k].iov_len);
			else
				memcpy(out + done, s.iov[k].iov_base, s.iov[k].iov_len);
			done += s.iov[k].iov_len;
		}
		got = s.len;
		snapfs_read_slices_release(&s);
		if (got < want)
			break;          /* the end of the file */
	} while (done < len);
	return (ssize_t)done;
}

int64_t snapfs_image_seek(struct snapfs_image *img, uint64_t off, int whence)
{
	uint64_t page = off / SNAPFS_PAGE_SIZE, at;
	size_t i;

	if (img->damaged)
		return -EIO;
	if (off >= img->file_size)
		return -ENXIO;
	i = run_at_or_after(img, page);
	if (whence == SEEK_DATA) {
		if (i == img->run_count)
			return -ENXIO;
		at = img->runs[i].map.first_page * SNAPFS_PAGE_SIZE;
		if (at < off)
			at = off;
		return at < img->file_size ? (int64_t)at : -ENXIO;
	}
	if (whence != SEEK_HOLE)
		return -EINVAL;
	if (i == img->run_count || img->runs[i].map.first_page > page)
		return (int64_t)off;
	/* Inside data: follow runs that touch until a gap. */
	while (i + 1 < img->run_count &&
	       img->runs[i].map.first_page + img->runs[i].map.page_count ==
		       img->runs[i + 1].map.first_page)
		i++;
	at = (img->runs[i].map.first_page + img->runs[i].map.page_count) * SNAPFS_PAGE_SIZE;
	return (int64_t)(at < img->file_size ? at : img->file_size);
}
