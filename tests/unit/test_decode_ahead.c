// SPDX-License-Identifier: MIT
/*
 * Decoding ahead of sequential readers: a reader that goes through a
 * snapshot in order finds the blobs after its position decoded (in the
 * cache) without asking for them; random reads start nothing; a damaged
 * blob met by the decode-ahead workers still fails the reader's own read
 * of it with -EIO and nothing else.
 */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blob_cache.h"
#include "blob_writer.h"
#include "catalog.h"
#include "expect.h"
#include "reader.h"
#include "snapfs.h"
#include "store.h"

#define PAGE 4096u
#define IMAGE_PAGES 4096u            /* 16 MiB of data, 128 blobs */
#define CHUNK (256u * 1024)

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t next_random(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Every page non-zero and different, half text-like, half random. */
static unsigned char *make_image(const char *path)
{
	size_t size = (size_t)IMAGE_PAGES * PAGE;
	unsigned char *src = malloc(size);
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);

	EXPECT(src != NULL && fd >= 0);
	for (size_t p = 0; p < IMAGE_PAGES; p++) {
		unsigned char *page = src + p * PAGE;

		for (unsigned i = 0; i < PAGE; i++)
			page[i] = p % 2 ? (unsigned char)next_random()
					: (unsigned char)("memory page "[i % 12] + p % 7);
		memcpy(page, &p, sizeof(p));
	}
	EXPECT(write(fd, src, size) == (ssize_t)size);
	close(fd);
	return src;
}

static int64_t snapshot_id(struct snapfs_store *store, const char *name)
{
	struct snapfs_snapshot s;
	int64_t id = -1;

	if (snapfs_snapshot_get(store, name, &s) == 0) {
		id = s.id;
		snapfs_snapshot_release(&s);
	}
	return id;
}

/* The blob that holds the page at off. */
static int64_t blob_at(struct snapfs_image *img, uint64_t off)
{
	uint64_t page = off / PAGE;

	for (size_t i = 0; i < image_run_count(img); i++) {
		const struct map_run *m = image_run(img, i);

		if (m->first_page <= page && page < m->first_page + m->page_count)
			return m->blob_id;
	}
	return -1;
}

/* Wait up to 5 s for blob id to be decoded into the cache. */
static bool cached_soon(struct snapfs_store *store, int64_t id)
{
	for (int i = 0; i < 500; i++) {
		if (blob_cache_contains(store_cache(store), id))
			return true;
		usleep(10000);
	}
	return false;
}

static void read_in_order(struct snapfs_image *img, const unsigned char *src,
			  uint64_t from, uint64_t to)
{
	static unsigned char buf[CHUNK];

	for (uint64_t off = from; off < to; off += CHUNK) {
		EXPECT(snapfs_image_read(img, buf, CHUNK, off) == CHUNK);
		EXPECT(memcmp(buf, src + off, CHUNK) == 0);
	}
}

int main(void)
{
	char dir[] = "/tmp/snapfs-ahead-XXXXXX", store_dir[256], path[256], db_path[300];
	struct snapfs_save_opts opts = { .codec = SNAPFS_CODEC_ZSTD };
	struct snapfs_save_result res;
	struct snapfs_store *store;
	struct snapfs_image *img;
	unsigned char *src, buf[PAGE];
	int64_t id, ahead;
	sqlite3 *db;

	EXPECT(mkdtemp(dir) != NULL);
	snprintf(store_dir, sizeof(store_dir), "%s/store", dir);
	snprintf(path, sizeof(path), "%s/img", dir);
	snprintf(db_path, sizeof(db_path), "%s/snapfs.db", store_dir);
	src = make_image(path);
	EXPECT_OK(snapfs_store_create(store_dir));
	EXPECT_OK(snapfs_store_open(store_dir, 0, &store));
	EXPECT_OK(snapfs_save(store, "img", path, &opts, &res));
	snapfs_store_close(store);

	/* In order: after 1 MiB read, the blob 2 MiB further on is decoded
	 * without anybody reading it. */
	EXPECT_OK(snapfs_store_open(store_dir, SNAPFS_OPEN_READONLY, &store));
	id = snapshot_id(store, "img");
	EXPECT_OK(snapfs_image_open(store, id, &img));
	ahead = blob_at(img, 3u << 20);
	EXPECT(ahead > 0 && !blob_cache_contains(store_cache(store), ahead));
	read_in_order(img, src, 0, 1u << 20);
	EXPECT(cached_soon(store, ahead));
	/* And the rest reads right. */
	read_in_order(img, src, 1u << 20, (uint64_t)IMAGE_PAGES * PAGE);
	snapfs_image_close(img);
	snapfs_store_close(store);

	/* Random 4 KiB reads far apart decode only what they read. */
	EXPECT_OK(snapfs_store_open(store_dir, SNAPFS_OPEN_READONLY, &store));
	EXPECT_OK(snapfs_image_open(store, id, &img));
	for (int i = 0; i < 8; i++) {
		uint64_t off = (uint64_t)(i * 7 % 8) * (2u << 20);

		EXPECT(snapfs_image_read(img, buf, PAGE, off) == PAGE);
		EXPECT(memcmp(buf, src + off, PAGE) == 0);
	}
	usleep(200000);
	EXPECT(blob_cache_bytes(store_cache(store)) == 8 * BLOB_PAGES * (size_t)PAGE);
	snapfs_image_close(img);
	snapfs_store_close(store);

	/* A damaged blob 1 MiB on: the workers meet it first; the reader's
	 * own read of it still fails with -EIO, and reads after it work. */
	EXPECT(sqlite3_open(db_path, &db) == SQLITE_OK);
	EXPECT_OK(snapfs_store_open(store_dir, SNAPFS_OPEN_READONLY, &store));
	EXPECT_OK(snapfs_image_open(store, id, &img));
	ahead = blob_at(img, 1u << 20);
	{
		char sql[200], pack[600];
		sqlite3_stmt *st = NULL;

		/* Zeros over the blob's bytes in its pack. */
		snprintf(sql, sizeof(sql),
			 "SELECT pack_id, pack_offset, stored_size FROM blobs WHERE id = %lld",
			 (long long)ahead);
		EXPECT(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK);
		EXPECT(sqlite3_step(st) == SQLITE_ROW);
		snprintf(pack, sizeof(pack), "%s/packs/%08lld.pack", store_dir,
			 (long long)sqlite3_column_int64(st, 0));
		{
			int fd = open(pack, O_WRONLY);
			size_t len = (size_t)sqlite3_column_int64(st, 2);
			unsigned char *zeros = calloc(1, len);

			EXPECT(fd >= 0 && zeros);
			EXPECT(pwrite(fd, zeros, len, sqlite3_column_int64(st, 1)) == (ssize_t)len);
			close(fd);
			free(zeros);
		}
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	read_in_order(img, src, 0, 768u * 1024);
	usleep(200000);
	EXPECT(!blob_cache_contains(store_cache(store), ahead));
	{
		static unsigned char chunk[CHUNK];

		EXPECT(snapfs_image_read(img, chunk, CHUNK, 1u << 20) == -EIO);
		EXPECT(snapfs_image_read(img, chunk, CHUNK, 1u << 20) == -EIO);
	}
	read_in_order(img, src, 2u << 20, 4u << 20);
	snapfs_image_close(img);
	snapfs_store_close(store);

	free(src);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		EXPECT(system(cmd) == 0);
	}
	return test_main_result("test_decode_ahead");
}
