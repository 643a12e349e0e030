// SPDX-License-Identifier: MIT
/*
 * Unit tests of the store through the public API: the scanner's data
 * ranges and zero pages, the blob writer's dedup, and the reader's bytes
 * (copied and as slices), SEEK_DATA/SEEK_HOLE answers and damage handling,
 * all checked against the source file on random images.
 */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "expect.h"
#include "snapfs.h"

#define PAGE 4096u

static uint64_t rng = 88172645463325252ull;

static uint64_t next_random(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* A file of pages pages: holes, zero pages written out, random pages,
 * text-like pages and repeats of one page; size may end mid-page. */
static void make_image(const char *path, uint64_t pages, uint64_t tail)
{
	unsigned char page[PAGE], repeat[PAGE];
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);

	for (unsigned i = 0; i < PAGE; i++)
		repeat[i] = (unsigned char)(i * 7);
	EXPECT(fd >= 0);
	EXPECT(ftruncate(fd, (off_t)(pages * PAGE + tail)) == 0);
	for (uint64_t p = 0; p < pages; p++) {
		unsigned kind = (unsigned)(next_random() % 10);

		if (kind < 4)
			continue; /* hole */
		if (kind == 4)
			memset(page, 0, PAGE);
		else if (kind == 5)
			memcpy(page, repeat, PAGE);
		else if (kind < 8)
			for (unsigned i = 0; i < PAGE; i++)
				page[i] = (unsigned char)next_random();
		else
			for (unsigned i = 0; i < PAGE; i++)
				page[i] = (unsigned char)("page text "[i % 10] + p % 3);
		EXPECT(pwrite(fd, page, PAGE, (off_t)(p * PAGE)) == PAGE);
	}
	if (tail) {
		memset(page, 'T', tail);
		EXPECT(pwrite(fd, page, tail, (off_t)(pages * PAGE)) == (ssize_t)tail);
	}
	close(fd);
}

static unsigned char *slurp(const char *path, uint64_t *ret_size)
{
	struct stat st;
	unsigned char *buf;
	int fd = open(path, O_RDONLY);

	EXPECT(fd >= 0 && fstat(fd, &st) == 0);
	buf = calloc(1, (size_t)st.st_size + 1);
	EXPECT(pread(fd, buf, (size_t)st.st_size, 0) == st.st_size);
	close(fd);
	*ret_size = (uint64_t)st.st_size;
	return buf;
}

static bool page_is_zero(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* Every read and seek answer of img against the source bytes. */
static void check_image(struct snapfs_image *img, const unsigned char *src, uint64_t size)
{
	static unsigned char buf[3 * 65536];
	uint64_t pages = (size + PAGE - 1) / PAGE, data_pages = 0;

	EXPECT(snapfs_image_size(img) == size);
	for (uint64_t p = 0; p < pages; p++) {
		size_t len = p * PAGE + PAGE <= size ? PAGE : (size_t)(size - p * PAGE);
		bool zero = page_is_zero(src + p * PAGE, len);
		int64_t d = snapfs_image_seek(img, p * PAGE, SEEK_DATA);
		int64_t h = snapfs_image_seek(img, p * PAGE, SEEK_HOLE);

		data_pages += !zero;
		/* SEEK_DATA at a data page is that page; at a hole, beyond it. */
		EXPECT(zero ? (d == -ENXIO || d > (int64_t)(p * PAGE)) : d == (int64_t)(p * PAGE));
		EXPECT(zero ? h == (int64_t)(p * PAGE) : h > (int64_t)(p * PAGE));
	}
	EXPECT(snapfs_image_data_pages(img) == data_pages);
	EXPECT(snapfs_image_seek(img, size, SEEK_DATA) == -ENXIO);
	EXPECT(snapfs_image_seek(img, size, SEEK_HOLE) == -ENXIO);
	for (int i = 0; i < 2000; i++) {
		uint64_t off = next_random() % (size + 1000);
		size_t len = (size_t)(next_random() % sizeof(buf));
		ssize_t n = snapfs_image_read(img, buf, len, off);
		size_t want = off >= size ? 0 : (size - off < len ? (size_t)(size - off) : len);

		EXPECT(n == (ssize_t)want);
		if (n > 0)
			EXPECT(memcmp(buf, src + off, (size_t)n) == 0);
	}
	/* The same bytes as slices, in reads up to the whole file: long
	 * enough to outgrow the inline arrays. Zeros come merged. */
	for (int i = 0; i < 200; i++) {
		uint64_t off = i == 0 ? 0 : next_random() % (size + 1000);
		size_t len = i == 0 ? (size_t)size + 1 : (size_t)(next_random() % (size + 1));
		size_t want = off >= size ? 0 : (size - off < len ? (size_t)(size - off) : len);
		struct snapfs_read_slices s;
		size_t at = 0;

		EXPECT(snapfs_image_read_slices(img, off, len, &s) == 0);
		EXPECT(s.len == want);
		for (size_t k = 0; k < s.count; k++) {
			EXPECT(s.iov[k].iov_len > 0);
			/* Zeros follow data, never zeros (data may repeat
			 * itself: dedup). */
			EXPECT(k == 0 || s.iov[k].iov_base != s.iov[k - 1].iov_base ||
			       !page_is_zero(s.iov[k].iov_base, s.iov[k].iov_len));
			EXPECT(memcmp(s.iov[k].iov_base, src + off + at, s.iov[k].iov_len) == 0);
			at += s.iov[k].iov_len;
		}
		EXPECT(at == want);
		snapfs_read_slices_release(&s);
	}
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

static void sql(const char *db_path, const char *stmt)
{
	sqlite3 *db;

	EXPECT(sqlite3_open(db_path, &db) == SQLITE_OK);
	EXPECT(sqlite3_exec(db, stmt, NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
}

int main(void)
{
	char dir[] = "/tmp/snapfs-unit-XXXXXX", store_dir[256], img[256], db[300];
	struct snapfs_save_opts opts = { .codec = SNAPFS_CODEC_ZSTD };
	struct snapfs_save_result r1, r2;
	struct snapfs_store *store;
	struct snapfs_image *image;
	unsigned char *src, buf[PAGE * 4];
	uint64_t size;

	EXPECT(mkdtemp(dir) != NULL);
	snprintf(store_dir, sizeof(store_dir), "%s/store", dir);
	snprintf(img, sizeof(img), "%s/img", dir);
	snprintf(db, sizeof(db), "%s/snapfs.db", store_dir);
	EXPECT(snapfs_store_open(store_dir, 0, &store) == -SNAPFS_ENOTSTORE);
	EXPECT_OK(snapfs_store_create(store_dir));
	EXPECT(snapfs_store_create(store_dir) == -EEXIST);
	EXPECT_OK(snapfs_store_open(store_dir, 0, &store));

	for (int round = 0; round < 3; round++) {
		enum snapfs_codec codecs[] = { SNAPFS_CODEC_ZSTD, SNAPFS_CODEC_LZ4, SNAPFS_CODEC_NONE };
		char name[32];

		make_image(img, 300 + next_random() % 700, round == 1 ? 0 : next_random() % PAGE);
		src = slurp(img, &size);
		snprintf(name, sizeof(name), "img-%d", round);
		opts.codec = codecs[round];
		EXPECT_OK(snapfs_save(store, name, img, &opts, &r1));
		EXPECT(r1.file_size == size);
		EXPECT(r1.dedup_pages > 0); /* the repeated page */
		EXPECT_OK(snapfs_image_open(store, snapshot_id(store, name), &image));
		check_image(image, src, size);
		snapfs_image_close(image);
		free(src);
	}

	/* The same image again: every page is shared, nothing new stored. */
	opts.codec = SNAPFS_CODEC_ZSTD;
	EXPECT_OK(snapfs_save(store, "again", img, &opts, &r2));
	EXPECT(r2.new_pages == 0 && r2.new_blob_bytes == 0);
	EXPECT(r2.dedup_pages == r2.data_pages);
	EXPECT(snapfs_save(store, "again", img, &opts, &r2) == -EEXIST);
	EXPECT(snapfs_save(store, "../bad", img, &opts, &r2) == -SNAPFS_EBADNAME);
	EXPECT(snapfs_save(store, "dir", dir, &opts, &r2) == -EISDIR);

	/* Damage: a blob whose stored bytes no longer match its checksum
	 * fails reads of its pages with EIO; a page-map row pointed at
	 * another blob fails too. */
	src = slurp(img, &size);
	EXPECT_OK(snapfs_image_open(store, snapshot_id(store, "img-2"), &image));
	snapfs_image_close(image);
	sql(db, "UPDATE blobs SET checksum = checksum + 1 WHERE id = "
		"(SELECT blob_id FROM page_map WHERE snapshot_id = "
		"(SELECT id FROM snapshots WHERE name = 'again') ORDER BY first_page LIMIT 1)");
	{
		struct snapfs_store *fresh;
		int64_t first;
		bool other_ok = false;

		EXPECT_OK(snapfs_store_open(store_dir, SNAPFS_OPEN_READONLY, &fresh));
		EXPECT_OK(snapfs_image_open(fresh, snapshot_id(fresh, "again"), &image));
		first = snapfs_image_seek(image, 0, SEEK_DATA);
		EXPECT(first >= 0);
		EXPECT(snapfs_image_read(image, buf, PAGE, (uint64_t)first) == -EIO);
		/* Some page elsewhere still reads right. */
		for (uint64_t off = 0; off + PAGE <= size; off += PAGE) {
			if (snapfs_image_read(image, buf, PAGE, off) == PAGE &&
			    memcmp(buf, src + off, PAGE) == 0 && !page_is_zero(buf, PAGE)) {
				other_ok = true;
				break;
			}
		}
		EXPECT(other_ok);
		snapfs_image_close(image);
		snapfs_store_close(fresh);
	}
	sql(db, "UPDATE page_map SET blob_id = (SELECT max(id) FROM blobs) WHERE snapshot_id = "
		"(SELECT id FROM snapshots WHERE name = 'img-1') AND first_page = "
		"(SELECT max(first_page) FROM page_map WHERE snapshot_id = "
		"(SELECT id FROM snapshots WHERE name = 'img-1'))");
	{
		struct snapfs_store *fresh;
		int64_t last = -1, at = 0;
		int failures = 0;

		EXPECT_OK(snapfs_store_open(store_dir, SNAPFS_OPEN_READONLY, &fresh));
		EXPECT_OK(snapfs_image_open(fresh, snapshot_id(fresh, "img-1"), &image));
		while ((at = snapfs_image_seek(image, (uint64_t)at, SEEK_DATA)) >= 0) {
			last = at;
			at += PAGE;
		}
		EXPECT(last >= 0);
		/* The retargeted run reads as EIO, never as the other blob's bytes. */
		failures = snapfs_image_read(image, buf, PAGE, (uint64_t)last) == -EIO;
		EXPECT(failures == 1);
		/* As slices, a read of the whole file fails whole, the good
		 * runs before the bad one let go of. */
		{
			struct snapfs_read_slices s;

			EXPECT(snapfs_image_read_slices(image, 0, (size_t)snapfs_image_size(image),
							&s) == -EIO);
			EXPECT(s.count == 0 && s.pin_count == 0 && s.len == 0);
			snapfs_read_slices_release(&s);
		}
		snapfs_image_close(image);
		snapfs_store_close(fresh);
	}
	free(src);

	/* Removing a snapshot: gone from get, others stay. */
	{
		const char *names[] = { "img-0" };

		EXPECT_OK(snapfs_snapshot_remove(store, names, 1));
		EXPECT(snapshot_id(store, "img-0") == -1);
		EXPECT(snapfs_snapshot_remove(store, names, 1) == -ENOENT);
	}
	snapfs_store_close(store);

	/* A newer schema is refused, and the file is not touched. */
	sql(db, "PRAGMA user_version = 99");
	EXPECT(snapfs_store_open(store_dir, 0, &store) == -SNAPFS_ENEWER);

	{
		char cmd[400];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		EXPECT(system(cmd) == 0);
	}
	return test_main_result("test_store");
}
