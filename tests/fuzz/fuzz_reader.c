// SPDX-License-Identifier: MIT
/*
 * Fuzz target for the read path fed with crafted database rows and
 * damaged pack bytes: the input is a list of edits (change a column of a
 * snapshots, segments, page_map, blobs or packs row, delete or add a row,
 * plant a trigger or a view; flip, zero, overwrite or cut off a blob's
 * stored bytes in its pack file) applied to
 * a copy of a small store (snapfs.db and packs/00000001.pack). Then the
 * whole image is read and sought through. Whatever the edits, a read
 * either fails or returns exactly the bytes that were saved (zeros past
 * the original end). Never a crash, never wrong bytes.
 *
 * Each edit is 11 bytes: which edit, a row number (u16), a value (i64).
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

static char dir[64], store_dir[96], db_path[128], pack_path[160];
static unsigned char *image;       /* the saved bytes */
static unsigned char *base_db;     /* the store's database file */
static size_t base_db_len;
static unsigned char *base_pack;   /* its only pack file */
static size_t base_pack_len;

static void write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);

	assert(fd >= 0);
	assert(write(fd, buf, len) == (ssize_t)len);
	close(fd);
}

static unsigned char *read_file(const char *path, size_t *ret_len)
{
	unsigned char *buf;
	FILE *f = fopen(path, "rb");

	assert(f);
	fseek(f, 0, SEEK_END);
	*ret_len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(*ret_len ? *ret_len : 1);
	assert(buf && fread(buf, 1, *ret_len, f) == *ret_len);
	fclose(f);
	return buf;
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
	char img_path[128], other[192];
	struct stat st;

	snprintf(dir, sizeof(dir), "/tmp/snapfs-fuzz-%d", (int)getpid());
	snprintf(store_dir, sizeof(store_dir), "%s/store", dir);
	snprintf(db_path, sizeof(db_path), "%s/" SNAPFS_DB_FILE, store_dir);
	snprintf(pack_path, sizeof(pack_path), "%s/packs/00000001.pack", store_dir);
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
	base_db = read_file(db_path, &base_db_len);
	/* The small store keeps every blob in pack 1. */
	base_pack = read_file(pack_path, &base_pack_len);
	assert(base_pack_len > 0);
	snprintf(other, sizeof(other), "%s/packs/00000002.pack", store_dir);
	assert(stat(other, &st) < 0 && errno == ENOENT);
}

/* What an edit does besides its SQL statement (which, for the pack edits,
 * selects the blob whose stored bytes are damaged in pack 1). */
enum edit_kind {
	EDIT_SQL,
	PACK_CUT,       /* cut the pack file value % (stored_size + 1) bytes into the blob */
	PACK_ZERO,      /* zero value % (stored_size + 1) of the blob's first bytes */
	PACK_WRITE,     /* write up to 64 input bytes over the blob; stored_size = their count */
	PACK_FLIP,      /* flip bits of byte value % stored_size of the blob */
};

#define BLOB_ROW "(SELECT id FROM blobs LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM blobs))"
#define BLOB_PLACE "SELECT id, pack_offset, stored_size FROM blobs WHERE id = " BLOB_ROW

/* The first entries keep their numbers, so that the seeds keep their
 * meaning: 12, 13 and 16 edited blobs.data before schema version 2. */
static const struct edit {
	enum edit_kind kind;
	const char *sql;
} edits[] = {
	{ EDIT_SQL, "UPDATE snapshots SET file_size = ?2 WHERE id = (SELECT id FROM snapshots LIMIT 1 OFFSET ?1 % 2)" },
	{ EDIT_SQL, "UPDATE snapshots SET page_size = ?2 WHERE id = (SELECT id FROM snapshots LIMIT 1 OFFSET ?1 % 2)" },
	{ EDIT_SQL, "UPDATE page_map SET first_page = ?2 WHERE (snapshot_id, first_page) = (SELECT snapshot_id, first_page FROM page_map LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM page_map))" },
	{ EDIT_SQL, "UPDATE page_map SET page_count = ?2 WHERE (snapshot_id, first_page) = (SELECT snapshot_id, first_page FROM page_map LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM page_map))" },
	{ EDIT_SQL, "UPDATE page_map SET blob_id = ?2 WHERE (snapshot_id, first_page) = (SELECT snapshot_id, first_page FROM page_map LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM page_map))" },
	{ EDIT_SQL, "UPDATE page_map SET slot = ?2 WHERE (snapshot_id, first_page) = (SELECT snapshot_id, first_page FROM page_map LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM page_map))" },
	{ EDIT_SQL, "UPDATE page_map SET snapshot_id = ?2 WHERE (snapshot_id, first_page) = (SELECT snapshot_id, first_page FROM page_map LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM page_map))" },
	{ EDIT_SQL, "UPDATE page_map SET run_hash = ?2 WHERE (snapshot_id, first_page) = (SELECT snapshot_id, first_page FROM page_map LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM page_map))" },
	{ EDIT_SQL, "UPDATE blobs SET codec = ?2 WHERE id = " BLOB_ROW },
	{ EDIT_SQL, "UPDATE blobs SET page_count = ?2 WHERE id = " BLOB_ROW },
	{ EDIT_SQL, "UPDATE blobs SET stored_size = ?2 WHERE id = " BLOB_ROW },
	{ EDIT_SQL, "UPDATE blobs SET checksum = ?2 WHERE id = " BLOB_ROW },
	{ PACK_CUT, BLOB_PLACE },
	{ PACK_ZERO, BLOB_PLACE },
	{ EDIT_SQL, "DELETE FROM blobs WHERE id = " BLOB_ROW },
	{ EDIT_SQL, "DELETE FROM page_map WHERE (snapshot_id, first_page) = (SELECT snapshot_id, first_page FROM page_map LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM page_map))" },
	{ PACK_WRITE, BLOB_PLACE },
	{ EDIT_SQL, "UPDATE blobs SET pack_id = ?2 WHERE id = " BLOB_ROW },
	{ EDIT_SQL, "UPDATE blobs SET pack_offset = ?2 WHERE id = " BLOB_ROW },
	{ EDIT_SQL, "UPDATE packs SET length = ?2 WHERE id = (SELECT id FROM packs LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM packs))" },
	{ EDIT_SQL, "DELETE FROM packs WHERE id = (SELECT id FROM packs LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM packs))" },
	{ PACK_FLIP, BLOB_PLACE },
	/* Another blob's place: the page map and checksums must catch it. */
	{ EDIT_SQL, "UPDATE blobs SET (pack_offset, stored_size) = (SELECT pack_offset, stored_size FROM blobs LIMIT 1 OFFSET ?2 % (SELECT count(*) FROM blobs)) WHERE id = " BLOB_ROW },
	{ EDIT_SQL, "UPDATE blobs SET dict_id = ?2 WHERE id = " BLOB_ROW },
	/* From here on, merged after the pack edits (seeds renumbered). */
	/* Snapshot rows, the name too: the seal (meta_digest) catches a
	 * changed one before any byte goes out. */
	{ EDIT_SQL, "UPDATE snapshots SET name = CAST(?3 AS TEXT) WHERE id = (SELECT id FROM snapshots LIMIT 1 OFFSET ?1 % 2)" },
	{ EDIT_SQL, "UPDATE snapshots SET parent_id = ?2 WHERE id = (SELECT id FROM snapshots LIMIT 1 OFFSET ?1 % 2)" },
	{ EDIT_SQL, "UPDATE snapshots SET map_digest = ?2 WHERE id = (SELECT id FROM snapshots LIMIT 1 OFFSET ?1 % 2)" },
	{ EDIT_SQL, "UPDATE snapshots SET file_size = CAST(?3 AS TEXT) WHERE id = (SELECT id FROM snapshots LIMIT 1 OFFSET ?1 % 2)" },
	{ EDIT_SQL, "UPDATE snapshots SET id = ?2 WHERE id = (SELECT id FROM snapshots LIMIT 1 OFFSET ?1 % 2)" },
	{ EDIT_SQL, "UPDATE snapshots SET segment_count = ?2, data_bytes = ?2, stored_bytes = ?2, committed_bytes = ?2 WHERE id = (SELECT id FROM snapshots LIMIT 1 OFFSET ?1 % 2)" },
	{ EDIT_SQL, "UPDATE snapshots SET created_at = ?3, format = ?3, source = ?3, notes = ?3 WHERE id = (SELECT id FROM snapshots LIMIT 1 OFFSET ?1 % 2)" },
	/* Segment rows. */
	{ EDIT_SQL, "UPDATE segments SET start = ?2 WHERE (snapshot_id, start) = (SELECT snapshot_id, start FROM segments LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM segments))" },
	{ EDIT_SQL, "UPDATE segments SET end = ?2 WHERE (snapshot_id, start) = (SELECT snapshot_id, start FROM segments LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM segments))" },
	{ EDIT_SQL, "UPDATE segments SET snapshot_id = ?2 WHERE (snapshot_id, start) = (SELECT snapshot_id, start FROM segments LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM segments))" },
	{ EDIT_SQL, "UPDATE segments SET kind = CAST(?3 AS TEXT), label = ?3, memcg_id = ?2, committed = ?2 WHERE (snapshot_id, start) = (SELECT snapshot_id, start FROM segments LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM segments))" },
	{ EDIT_SQL, "INSERT OR REPLACE INTO segments (snapshot_id, start, end, kind, memcg_id, committed, label) VALUES (1 + ?1 % 2, ?2, ?2 + 4096 * (?1 % 64), 'mapped', ?1, ?1 % 2, ?3)" },
	{ EDIT_SQL, "DELETE FROM segments WHERE (snapshot_id, start) = (SELECT snapshot_id, start FROM segments LIMIT 1 OFFSET ?1 % (SELECT count(*) FROM segments))" },
	/* Planted schema: refused at open, before any read. */
	{ EDIT_SQL, "CREATE TRIGGER IF NOT EXISTS planted AFTER INSERT ON snapshots BEGIN DELETE FROM page_map; END" },
	{ EDIT_SQL, "CREATE VIEW IF NOT EXISTS spin AS WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT x FROM n" },
};

/* Damage the stored bytes of the blob the statement st selected, in
 * pack 1 (the only file; a row whose pack_offset lies outside it is left
 * alone: its reads fail whatever the file holds). */
static void damage_pack(sqlite3 *db, sqlite3_stmt *st, enum edit_kind kind, int64_t value,
			const uint8_t *bytes, size_t len)
{
	int64_t id, off, stored;
	unsigned char buf[64];
	struct stat sb;
	uint64_t n;
	int fd;

	if (sqlite3_step(st) != SQLITE_ROW)
		return;
	id = sqlite3_column_int64(st, 0);
	off = sqlite3_column_int64(st, 1);
	stored = sqlite3_column_int64(st, 2);
	fd = open(pack_path, O_RDWR);
	if (fd < 0)
		return;
	assert(fstat(fd, &sb) == 0);
	if (off < 0 || off > sb.st_size || stored < 0 || stored > (int64_t)1 << 30)
		goto out_close;
	n = (uint64_t)value % ((uint64_t)stored + 1);
	switch (kind) {
	case PACK_CUT:
		if ((int64_t)(off + n) < sb.st_size)
			assert(ftruncate(fd, off + (off_t)n) == 0);
		break;
	case PACK_ZERO:
		memset(buf, 0, sizeof(buf));
		for (uint64_t done = 0; done < n && off + (int64_t)done < sb.st_size;
		     done += sizeof(buf)) {
			size_t k = n - done < sizeof(buf) ? n - done : sizeof(buf);

			assert(pwrite(fd, buf, k, off + (off_t)done) == (ssize_t)k);
		}
		break;
	case PACK_WRITE: {
		sqlite3_stmt *up;

		assert(pwrite(fd, bytes, len, off) == (ssize_t)len);
		if (sqlite3_prepare_v2(db, "UPDATE blobs SET stored_size = ?2 WHERE id = ?1", -1,
				       &up, NULL) == SQLITE_OK) {
			sqlite3_bind_int64(up, 1, id);
			sqlite3_bind_int64(up, 2, (int64_t)len);
			sqlite3_step(up);
			sqlite3_finalize(up);
		}
		break;
	}
	case PACK_FLIP:
		if (stored > 0 && off + (int64_t)((uint64_t)value % (uint64_t)stored) < sb.st_size) {
			off_t at = off + (off_t)((uint64_t)value % (uint64_t)stored);

			assert(pread(fd, buf, 1, at) == 1);
			buf[0] ^= (unsigned char)((uint64_t)value >> 8) | 1;
			assert(pwrite(fd, buf, 1, at) == 1);
		}
		break;
	case EDIT_SQL:
		break;
	}
out_close:
	close(fd);
}

static void apply_edits(const uint8_t *data, size_t size)
{
	sqlite3 *db;

	assert(sqlite3_open(db_path, &db) == SQLITE_OK);
	sqlite3_exec(db, "PRAGMA foreign_keys = OFF", NULL, NULL, NULL);
	while (size >= 11) {
		sqlite3_stmt *st;
		const struct edit *e = &edits[data[0] % (sizeof(edits) / sizeof(edits[0]))];
		unsigned row = data[1] | (unsigned)data[2] << 8;
		int64_t value;

		memcpy(&value, data + 3, 8);
		/* Mostly small values: they hit real ids and offsets. */
		if (data[0] & 0x80)
			value &= 0xff;
		if (sqlite3_prepare_v2(db, e->sql, -1, &st, NULL) == SQLITE_OK) {
			sqlite3_bind_int64(st, 1, row);
			if (sqlite3_bind_parameter_count(st) >= 2)
				sqlite3_bind_int64(st, 2, value);
			if (e->kind == EDIT_SQL)
				sqlite3_step(st);
			else
				damage_pack(db, st, e->kind, value, data, size < 64 ? size : 64);
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
	write_file(pack_path, base_pack, base_pack_len);
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
