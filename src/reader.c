// SPDX-License-Identifier: MIT
/*
 * The read path shared by restore, verify, diff and the mount: offset ->
 * page map run -> decoded blob (through the shared cache) -> bytes. Every
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
#include "catalog.h"
#include "codec.h"
#include "digest.h"
#include "errors.h"
#include "reader.h"
#include "store.h"

enum run_state { RUN_UNCHECKED = 0, RUN_GOOD = 1, RUN_BAD = -1 };

struct image_run {
	struct map_run map;
	atomic_int state;            /* enum run_state */
};

struct snapfs_image {
	struct snapfs_store *store;
	int64_t snapshot_id;
	uint64_t file_size;
	uint64_t page_count;         /* pages of file_size, the last partial */
	uint64_t data_pages;
	bool damaged;                /* the page map fails its digest: all -EIO */
	struct image_run *runs;      /* sorted by first_page */
	size_t run_count;
};

int snapfs_image_open(struct snapfs_store *store, int64_t snapshot_id,
		      struct snapfs_image **ret_image)
{
	struct snapfs_snapshot snap;
	struct snapfs_image *img;
	struct map_run *runs = NULL;
	struct catalog *cat;
	size_t count = 0;
	uint64_t prev_end = 0;
	int rc;

	error_clear();
	rc = store_reader_get(store, &cat);
	if (rc < 0)
		return rc;
	rc = catalog_begin_read(cat);
	if (rc < 0)
		goto out_put;
	rc = catalog_snapshot_get_id(cat, snapshot_id, &snap);
	if (rc < 0)
		goto out_end;
	rc = catalog_map_load(cat, snapshot_id, &runs, &count);
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
	img->file_size = snap.file_size;
	img->page_count = (snap.file_size + SNAPFS_PAGE_SIZE - 1) / SNAPFS_PAGE_SIZE;
	img->run_count = count;
	img->damaged = map_digest(snapshot_id, snap.file_size, runs, count) != snap.map_digest;
	for (size_t i = 0; i < count; i++) {
		struct image_run *r = &img->runs[i];

		r->map = runs[i];
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
	*ret_image = img;
	rc = 0;
out_end:
	free(runs);
	catalog_rollback(cat);
out_put:
	store_reader_put(store, cat);
	return rc;
}

void snapfs_image_close(struct snapfs_image *img)
{
	if (!img)
		return;
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

struct blob_decode {
	struct codec_ctx *codec;
	unsigned char *out;
	size_t out_len;
	const char *why;             /* what was wrong, on -SNAPFS_ECORRUPT */
};

static int decode_row(void *ctx, const struct blob_row *row)
{
	struct blob_decode *d = ctx;
	size_t raw;
	int rc;

	if (row->page_count <= 0 || row->page_count > BLOB_PAGES_MAX ||
	    row->stored_size != (int64_t)row->data_len || !row->data) {
		d->why = "malformed row (page count or stored size)";
		return -SNAPFS_ECORRUPT;
	}
	if (blob_checksum(row->data, row->data_len) != row->checksum) {
		d->why = "checksum mismatch";
		return -SNAPFS_ECORRUPT;
	}
	raw = (size_t)row->page_count * SNAPFS_PAGE_SIZE;
	d->out = malloc(raw);
	if (!d->out)
		return -ENOMEM;
	rc = codec_decompress(d->codec, row->codec, row->data, row->data_len,
			      d->out, raw);
	if (rc < 0) {
		free(d->out);
		d->out = NULL;
		d->why = "does not decode";
		return rc;
	}
	d->out_len = raw;
	return 0;
}

/* Each thread decodes with a codec context of its own, freed when the
 * thread ends (FUSE worker threads come and go). */
static pthread_key_t codec_key;
static pthread_once_t codec_key_once = PTHREAD_ONCE_INIT;

static void codec_key_destroy(void *ctx)
{
	codec_ctx_free(ctx);
}

static void codec_key_create(void)
{
	pthread_key_create(&codec_key, codec_key_destroy);
}

static struct codec_ctx *thread_codec(void)
{
	struct codec_ctx *ctx;

	pthread_once(&codec_key_once, codec_key_create);
	ctx = pthread_getspecific(codec_key);
	if (!ctx) {
		ctx = codec_ctx_new();
		if (ctx && pthread_setspecific(codec_key, ctx) != 0) {
			codec_ctx_free(ctx);
			ctx = NULL;
		}
	}
	return ctx;
}

void reader_thread_release(void)
{
	pthread_once(&codec_key_once, codec_key_create);
	codec_ctx_free(pthread_getspecific(codec_key));
	pthread_setspecific(codec_key, NULL);
}

int blob_decode(struct catalog *cat, int64_t id, unsigned char **ret_data,
		size_t *ret_size)
{
	struct blob_decode d = { 0 };
	int rc;

	d.codec = thread_codec();
	if (!d.codec)
		return -ENOMEM;
	rc = catalog_blob_with(cat, id, decode_row, &d);
	if (rc == -ENOENT)
		return error_set(-SNAPFS_ECORRUPT, "blob %lld: missing", (long long)id);
	if (rc == -SNAPFS_ECORRUPT)
		return error_set(rc, "blob %lld: %s", (long long)id, d.why ? d.why : "damaged");
	if (rc < 0)
		return rc;
	*ret_data = d.out;
	*ret_size = d.out_len;
	return 0;
}

static int load_blob(void *ctx, int64_t id, unsigned char **ret_data,
		     size_t *ret_size)
{
	struct snapfs_store *store = ctx;
	struct catalog *cat;
	int rc;

	rc = store_reader_get(store, &cat);
	if (rc < 0)
		return rc;
	rc = blob_decode(cat, id, ret_data, ret_size);
	store_reader_put(store, cat);
	return rc;
}

/* The decoded bytes of run r, checked; release with blob_cache_put(). */
static int run_bytes(struct snapfs_image *img, struct image_run *r,
		     const struct cached_blob **ret_blob, const unsigned char **ret_bytes)
{
	struct blob_cache *cache = store_cache(img->store);
	const struct cached_blob *blob;
	const unsigned char *bytes;
	size_t len = (size_t)r->map.page_count * SNAPFS_PAGE_SIZE;
	size_t at = (size_t)r->map.slot * SNAPFS_PAGE_SIZE;
	int state = atomic_load(&r->state);
	int rc;

	if (state == RUN_BAD)
		return error_set(-EIO, "page map run at offset 0x%llx: damaged",
				 (unsigned long long)(r->map.first_page * SNAPFS_PAGE_SIZE));
	rc = blob_cache_get(cache, r->map.blob_id, load_blob, img->store, &blob);
	if (rc < 0) {
		/* The loading thread has the detail; this one may have waited. */
		if (rc == -ENOMEM)
			return rc;
		return error_set(-EIO, "blob %lld (offset 0x%llx): damaged or missing",
				 (long long)r->map.blob_id,
				 (unsigned long long)(r->map.first_page * SNAPFS_PAGE_SIZE));
	}
	if (at > blob->size || len > blob->size - at) {
		atomic_store(&r->state, RUN_BAD);
		blob_cache_put(cache, blob);
		return error_set(-EIO, "page map run at offset 0x%llx: slots beyond blob %lld",
				 (unsigned long long)(r->map.first_page * SNAPFS_PAGE_SIZE),
				 (long long)r->map.blob_id);
	}
	bytes = blob->data + at;
	if (state == RUN_UNCHECKED) {
		if (run_hash(bytes, len, img->snapshot_id, r->map.first_page) != r->map.hash) {
			atomic_store(&r->state, RUN_BAD);
			blob_cache_put(cache, blob);
			return error_set(-EIO, "page map run at offset 0x%llx: bytes of blob %lld "
					 "do not match the run's hash",
					 (unsigned long long)(r->map.first_page * SNAPFS_PAGE_SIZE),
					 (long long)r->map.blob_id);
		}
		atomic_store(&r->state, RUN_GOOD);
	}
	*ret_blob = blob;
	*ret_bytes = bytes;
	return 0;
}

ssize_t snapfs_image_read(struct snapfs_image *img, void *buf, size_t len,
			  uint64_t off)
{
	unsigned char *out = buf;
	uint64_t end, pos;
	size_t i;

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
	while (pos < end) {
		struct image_run *r = i < img->run_count ? &img->runs[i] : NULL;
		uint64_t run_start = r ? r->map.first_page * SNAPFS_PAGE_SIZE : end;
		uint64_t run_end = r ? (r->map.first_page + r->map.page_count) * SNAPFS_PAGE_SIZE : end;
		const struct cached_blob *blob = NULL;
		const unsigned char *bytes = NULL;
		uint64_t stop;
		int rc;

		if (pos < run_start) {
			/* A hole or zero pages up to the next run. */
			stop = run_start < end ? run_start : end;
			memset(out + (pos - off), 0, stop - pos);
			pos = stop;
			continue;
		}
		stop = run_end < end ? run_end : end;
		rc = run_bytes(img, r, &blob, &bytes);
		if (rc < 0)
			return rc;
		memcpy(out + (pos - off), bytes + (pos - run_start), stop - pos);
		blob_cache_put(store_cache(img->store), blob);
		pos = stop;
		i++;
	}
	return (ssize_t)(end - off);
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
