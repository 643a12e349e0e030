// SPDX-License-Identifier: MIT
/*
 * Fuzz target for the read path fed with crafted database rows: the input
 * is a list of edits (change a column of a snapshots, segments, page_map
 * or blobs row, flip bytes of a blob, delete or add a row, plant a trigger
 * or a view) applied to a copy of a small store. Then the whole image is read and sought through. Whatever the
 * edits, a read either fails or returns exactly the bytes that were saved
 * (zeros past the original end). Never a crash, never wrong bytes.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PAGES 96
#define TAIL 100
#define IMAGE_SIZE ((uint64_t)PAGES * SNAPFS_PAGE_SIZE + TAIL)

static char dir[64], store_dir[96], db_path[128];
static unsigned char *image;       /* the saved bytes */
static unsigned char *base_db;     /* the store's database file */
static size_t base_db_len;

static void write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);

	assert(fd >= 0);
	assert(write(fd, buf, len) == (ssize_t)len);
	close(fd);
}

static void cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

static void setup(void)
{
	struct snapfs_save_opts opts = { .codec = SNAPFS_CODEC_ZSTD };
	struct snapfs_store *store;
	char img_path[128];
	FILE *f;

	snprintf(dir, sizeof(dir), "/tmp/snapfs-fuzz-%d", (int)getpid());
	snprintf(store_dir, sizeof(store_dir), "%s/store", dir);
	snprintf(db_path, sizeof(db_path), "%s/" SNAPFS_DB_FILE, store_dir);
	snprintf(img_path, sizeof(img_path), "%s/image", dir);
	assert(mkdir(dir, 0700) == 0 || errno == EEXIST);
	atexit(cleanup);
	image = calloc(1, IMAGE_SIZE);
	for (uint64_t i = 0; i < IMAGE_SIZE; i++) {
		uint64_t page = i / SNAPFS_PAGE_SIZE;

		if (page % 5 == 1)
			continue; /* zero pages */
		image[i] = page % 3 ? (unsigned char)("fuzz me "[i % 8] + page)
				    : (unsigned char)((i * 2654435761u) >> 13);
	}
	write_file(img_path, image, IMAGE_SIZE);
	assert(snapfs_store_create(store_dir) == 0);
	assert(snapfs_store_open(store_dir, 0, &store) == 0);
	opts.codec = SNAPFS_CODEC_ZSTD;
	assert(snapfs_save(store, "a", img_path, &opts, NULL) == 0);
	opts.codec = SNAPFS_CODEC_LZ4;
	image[5] ^= 0xff; /* a second snapshot sharing most pages */
	write_file(img_path, image, IMAGE_SIZE);
	assert(snapfs_save(store, "b", img_path, &opts, NULL) == 0);
	snapfs_store_close(store);
	f = fopen(db_path, "rb");
	assert(f);
	fseek(f, 0, SEEK_END);
	base_db_len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	base_db = malloc(base_db_len);
	assert(fread(base_db, 1, base_db_len, f) == base_db_len);
	fclose(f);
}

static const char *const edits[] = {
	"UPDATE snapshots SET file_size = ?2 WHERE id = (SELECT id FROM snapshots LIMIT 1 OFFSET ?1 % 2)",
	"UPDATE snapshots SET page_size = ?2 WHERE id = (SELECT id FROM snapshots LIMIT 1 OFFSET ?1 % 2)",
	"UPDATE page_map SET first_page = ?2 WHERE (snapshot_id, first_page) = (SELECT snapshot_id, first_page FROM page_map LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM page_map))",
	"UPDATE page_map SET page_count = ?2 WHERE (snapshot_id, first_page) = (SELECT snapshot_id, first_page FROM page_map LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM page_map))",
	"UPDATE page_map SET blob_id = ?2 WHERE (snapshot_id, first_page) = (SELECT snapshot_id, first_page FROM page_map LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM page_map))",
	"UPDATE page_map SET slot = ?2 WHERE (snapshot_id, first_page) = (SELECT snapshot_id, first_page FROM page_map LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM page_map))",
	"UPDATE page_map SET snapshot_id = ?2 WHERE (snapshot_id, first_page) = (SELECT snapshot_id, first_page FROM page_map LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM page_map))",
	"UPDATE page_map SET run_hash = ?2 WHERE (snapshot_id, first_page) = (SELECT snapshot_id, first_page FROM page_map LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM page_map))",
	"UPDATE blobs SET codec = ?2 WHERE id = (SELECT id FROM blobs LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM blobs))",
	"UPDATE blobs SET page_count = ?2 WHERE id = (SELECT id FROM blobs LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM blobs))",
	"UPDATE blobs SET stored_size = ?2 WHERE id = (SELECT id FROM blobs LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM blobs))",
	"UPDATE blobs SET checksum = ?2 WHERE id = (SELECT id FROM blobs LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM blobs))",
	"UPDATE blobs SET data = substr(data, 1, ?2 % (length(data) + 1)) WHERE id = (SELECT id FROM blobs LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM blobs))",
	"UPDATE blobs SET data = zeroblob(?2 % 100000) WHERE id = (SELECT id FROM blobs LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM blobs))",
	"DELETE FROM blobs WHERE id = (SELECT id FROM blobs LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM blobs))",
	"DELETE FROM page_map WHERE (snapshot_id, first_page) = (SELECT snapshot_id, first_page FROM page_map LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM page_map))",
	"UPDATE blobs SET data = ?3, stored_size = length(?3) WHERE id = (SELECT id FROM blobs LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM blobs))",
	/* Snapshot rows: everything but the name (a name swap is issue 14's
	 * point 1: not yet bound to the content). */
	"UPDATE snapshots SET parent_id = ?2 WHERE id = (SELECT id FROM snapshots LIMIT 1 OFFSET ?1 % 2)",
	"UPDATE snapshots SET map_digest = ?2 WHERE id = (SELECT id FROM snapshots LIMIT 1 OFFSET ?1 % 2)",
	"UPDATE snapshots SET file_size = CAST(?3 AS TEXT) WHERE id = (SELECT id FROM snapshots LIMIT 1 OFFSET ?1 % 2)",
	"UPDATE snapshots SET id = ?2 WHERE id = (SELECT id FROM snapshots LIMIT 1 OFFSET ?1 % 2)",
	"UPDATE snapshots SET segment_count = ?2, data_bytes = ?2, stored_bytes = ?2, committed_bytes = ?2 WHERE id = (SELECT id FROM snapshots LIMIT 1 OFFSET ?1 % 2)",
	"UPDATE snapshots SET created_at = ?3, format = ?3, source = ?3, notes = ?3 WHERE id = (SELECT id FROM snapshots LIMIT 1 OFFSET ?1 % 2)",
	/* Segment rows. */
	"UPDATE segments SET start = ?2 WHERE (snapshot_id, start) = (SELECT snapshot_id, start FROM segments LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM segments))",
	"UPDATE segments SET end = ?2 WHERE (snapshot_id, start) = (SELECT snapshot_id, start FROM segments LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM segments))",
	"UPDATE segments SET snapshot_id = ?2 WHERE (snapshot_id, start) = (SELECT snapshot_id, start FROM segments LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM segments))",
	"UPDATE segments SET kind = CAST(?3 AS TEXT), label = ?3, memcg_id = ?2, committed = ?2 WHERE (snapshot_id, start) = (SELECT snapshot_id, start FROM segments LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM segments))",
	"INSERT OR REPLACE INTO segments (snapshot_id, start, end, kind, memcg_id, committed, label) VALUES (1 + ?1 % 2, ?2, ?2 + 4096 * (?1 % 64), 'mapped', ?1, ?1 % 2, ?3)",
	"DELETE FROM segments WHERE (snapshot_id, start) = (SELECT snapshot_id, start FROM segments LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM segments))",
	/* Planted schema: refused at open, before any read. */
	"CREATE TRIGGER IF NOT EXISTS planted AFTER INSERT ON snapshots BEGIN DELETE FROM page_map; END",
	"CREATE VIEW IF NOT EXISTS spin AS WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT x FROM n",
};

static void apply_edits(const uint8_t *data, size_t size)
{
	sqlite3 *db;

	assert(sqlite3_open(db_path, &db) == SQLITE_OK);
	sqlite3_exec(db, "PRAGMA foreign_keys = OFF", NULL, NULL, NULL);
	while (size >= 11) {
		sqlite3_stmt *st;
		unsigned which = data[0] % (sizeof(edits) / sizeof(edits[0]));
		unsigned row = data[1] | (unsigned)data[2] << 8;
		int64_t value;

		memcpy(&value, data + 3, 8);
		/* Mostly small values: they hit real ids and offsets. */
		if (data[0] & 0x80)
			value &= 0xff;
		if (sqlite3_prepare_v2(db, edits[which], -1, &st, NULL) == SQLITE_OK) {
			sqlite3_bind_int64(st, 1, row);
			sqlite3_bind_int64(st, 2, value);
			sqlite3_bind_blob(st, 3, data, (int)(size < 64 ? size : 64), SQLITE_TRANSIENT);
			sqlite3_step(st);
			sqlite3_finalize(st);
		}
		data += 11;
		size -= 11;
	}
	sqlite3_close(db);
}

static void check_snapshot(struct snapfs_store *store, const struct snapfs_snapshot *snap)
{
	static unsigned char buf[3 * 8192];
	struct snapfs_image *img;
	uint64_t end;

	if (snapfs_image_open(store, snap->id, &img) < 0)
		return;
	end = snapfs_image_size(img) < IMAGE_SIZE + 8192 ? snapfs_image_size(img) : IMAGE_SIZE + 8192;
	for (uint64_t off = 0; off < end; off += 5000) {
		ssize_t n = snapfs_image_read(img, buf, sizeof(buf), off);

		if (n < 0)
			continue;
		for (ssize_t i = 0; i < n; i++) {
			uint64_t at = off + (uint64_t)i;
			unsigned char want = at < IMAGE_SIZE ? image[at] : 0;

			/* Snapshot a is the image before the edit of byte 5. */
			if (at == 5 && strcmp(snap->name, "a") == 0)
				want ^= 0xff;
			assert(buf[i] == want);
		}
	}
	for (uint64_t off = 0; off < end; off += 4096) {
		snapfs_image_seek(img, off, SEEK_DATA);
		snapfs_image_seek(img, off, SEEK_HOLE);
	}
	snapfs_image_close(img);
}

/* The mount's text files of a snapshot: built from whatever the rows say,
 * never a crash. */
static void check_texts(struct snapfs_store *store, const struct snapfs_snapshot *snap)
{
	struct snapfs_segment *segs;
	size_t count, len;
	char *text;

	if (snapfs_info_text(snap, &text, &len) == 0)
		free(text);
	if (snapfs_segments_get(store, snap->id, &segs, &count) < 0)
		return;
	if (snapfs_segments_text(segs, count, &text, &len) == 0)
		free(text);
	snapfs_segments_free(segs, count);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snapfs_snapshot *snaps;
	struct snapfs_store *store;
	size_t count;
	char path[160];

	if (!image)
		setup();
	write_file(db_path, base_db, base_db_len);
	snprintf(path, sizeof(path), "%s-wal", db_path);
	unlink(path);
	snprintf(path, sizeof(path), "%s-shm", db_path);
	unlink(path);
	apply_edits(data, size);
	if (snapfs_store_open(store_dir, SNAPFS_OPEN_READONLY, &store) < 0)
		return 0;
	if (snapfs_snapshot_list(store, &snaps, &count) == 0) {
		for (size_t i = 0; i < count; i++) {
			check_snapshot(store, &snaps[i]);
			check_texts(store, &snaps[i]);
		}
		snapfs_snapshot_list_free(snaps, count);
	}
	snapfs_store_close(store);
	return 0;
}
