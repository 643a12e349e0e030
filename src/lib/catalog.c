// SPDX-License-Identifier: MIT
/*
 * The catalog: the only module of the core that speaks SQL. It opens
 * connections with the right pragmas, creates and upgrades the schema
 * (schema/snapfs.sql, compiled in), and wraps every statement snapfs runs
 * behind a function. All values are bound parameters.
 */
#include "catalog.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "blob_store.h"
#include "core_notes.h"
#include "errors.h"
#include "lock_holder.h"
#include "schema_check.h"

extern const char snapfs_schema_sql[];
extern const char snapfs_upgrade_v2_sql[];
extern const char snapfs_schema_v1_sql[];
extern const char snapfs_schema_v2_sql[];
extern const char snapfs_upgrade_v3_sql[];
extern const char snapfs_schema_v3_sql[];
extern const char snapfs_upgrade_v4_sql[];
extern const char snapfs_schema_v4_sql[];
extern const char snapfs_upgrade_v5_sql[];

/* How long a statement waits when SQLite finds the database busy (a
 * checkpoint waiting for readers...). Taking the write lock waits for
 * lock_wait.timeout_ms instead (snapfs_set_lock_wait). */
#define BUSY_TIMEOUT_MS 5000
/* Between two tries at a busy lock. */
#define BUSY_POLL_MS 10

enum stmt_id {
	ST_SNAP_BY_NAME,
	ST_SNAP_BY_ID,
	ST_SNAP_LIST,
	ST_SNAP_INSERT,
	ST_SNAP_FIGURES,
	ST_SNAP_CHILDREN,
	ST_SNAP_SEAL,
	ST_SNAP_RENAME,
	ST_SEG_INSERT,
	ST_SEG_LIST,
	ST_BLOB_INSERT,
	ST_BLOB_GET,
	ST_BLOB_MOVE,
	ST_SNAP_BLOB_BYTES,
	ST_INDEX_LOOKUP,
	ST_INDEX_PUT,
	ST_MAP_INSERT,
	ST_MAP_LOAD,
	ST_MAP_COUNT,
	ST_DATA_VERSION,
	ST_UNUSED_BLOBS,
	ST_DELETE_UNUSED,
	ST_DELETE_STALE_INDEX,
	ST_BLOB_IDS,
	ST_RECOUNT,
	ST_PACK_LAST,
	ST_PACK_NEW,
	ST_PACK_SET_LENGTH,
	ST_PACK_LIST,
	ST_PACK_DELETE,
	ST_PACK_EXTENTS,
	ST_PACK_BLOB_END,
	ST_PACK_UNLISTED,
	ST_DICT_INSERT,
	ST_DICT_AFTER,
	ST_DICT_NEWEST,
	ST_COUNT
};

#define SNAP_COLUMNS \
	"s.id, s.name, s.created_at, coalesce(s.parent_id, 0), " \
	"coalesce(p.name, ''), s.file_size, s.page_size, s.format, s.source, " \
	"s.notes, s.segment_count, s.committed_bytes, s.data_bytes, s.stored_bytes, " \
	"s.map_digest, s.meta_digest, s.comment " \
	"FROM snapshots s LEFT JOIN snapshots p ON p.id = s.parent_id "

/* Snapshots that rm did not hide for their readers (see "Claims" at the
 * end of this file): the only ones lookups and listings see. */
#define SNAP_VISIBLE \
	"NOT EXISTS (SELECT 1 FROM removed r WHERE r.snapshot_id = s.id) "

/* A blob's place and checks, read by loc_from_row(). */
#define BLOB_LOC_COLUMNS \
	"codec, page_count, stored_size, checksum, pack_id, pack_offset, dict_id"

static const char *const stmt_sql[ST_COUNT] = {
	[ST_SNAP_BY_NAME] = "SELECT " SNAP_COLUMNS "WHERE s.name = ?1 AND " SNAP_VISIBLE,
	[ST_SNAP_BY_ID] = "SELECT " SNAP_COLUMNS "WHERE s.id = ?1 AND " SNAP_VISIBLE,
	[ST_SNAP_LIST] = "SELECT " SNAP_COLUMNS "WHERE " SNAP_VISIBLE "ORDER BY s.name",
	[ST_SNAP_INSERT] =
		"INSERT INTO snapshots (name, created_at, parent_id, file_size, "
		"page_size, format, source, notes, comment) "
		"VALUES (?1, ?2, nullif(?3, 0), ?4, ?5, ?6, ?7, ?8, ?9)",
	[ST_SNAP_FIGURES] =
		"UPDATE snapshots SET segment_count = ?2, committed_bytes = ?3, "
		"data_bytes = ?4, stored_bytes = ?5, map_digest = ?6, meta_digest = ?7 "
		"WHERE id = ?1",
	[ST_SNAP_CHILDREN] =
		"SELECT id FROM snapshots WHERE parent_id = (SELECT id FROM snapshots WHERE name = ?1) "
		"ORDER BY id",
	[ST_SNAP_SEAL] = "UPDATE snapshots SET meta_digest = ?2 WHERE id = ?1",
	[ST_SNAP_RENAME] = "UPDATE snapshots SET name = ?2 WHERE id = ?1",
	[ST_SEG_INSERT] =
		"INSERT INTO segments (snapshot_id, start, end, kind, memcg_id, "
		"committed, label) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[ST_SEG_LIST] =
		"SELECT start, end, kind, memcg_id, committed, label FROM segments "
		"WHERE snapshot_id = ?1 ORDER BY start",
	[ST_BLOB_INSERT] =
		"INSERT INTO blobs (codec, page_count, stored_size, checksum, pack_id, "
		"pack_offset, dict_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[ST_BLOB_GET] =
		"SELECT " BLOB_LOC_COLUMNS " FROM blobs WHERE id = ?1",
	[ST_BLOB_MOVE] = "UPDATE blobs SET pack_id = ?2, pack_offset = ?3 WHERE id = ?1",
	[ST_SNAP_BLOB_BYTES] =
		"SELECT coalesce(sum(stored_size), 0) FROM blobs WHERE id IN "
		"(SELECT blob_id FROM page_map WHERE snapshot_id = ?1)",
	[ST_INDEX_LOOKUP] = "SELECT blob_id, slot FROM page_index WHERE digest = ?1",
	[ST_INDEX_PUT] =
		"INSERT OR REPLACE INTO page_index (digest, blob_id, slot) "
		"VALUES (?1, ?2, ?3)",
	[ST_MAP_INSERT] =
		"INSERT INTO page_map (snapshot_id, first_page, page_count, blob_id, "
		"slot, run_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_MAP_LOAD] =
		"SELECT m.first_page, m.page_count, m.blob_id, m.slot, m.run_hash, "
		"b.codec, b.page_count, b.stored_size, b.checksum, b.pack_id, b.pack_offset, "
		"b.dict_id FROM page_map m LEFT JOIN blobs b ON b.id = m.blob_id "
		"WHERE m.snapshot_id = ?1 ORDER BY m.first_page",
	[ST_MAP_COUNT] = "SELECT count(*) FROM page_map WHERE snapshot_id = ?1",
	[ST_DATA_VERSION] = "PRAGMA data_version",
	[ST_UNUSED_BLOBS] =
		"SELECT count(*), coalesce(sum(stored_size), 0) FROM blobs b "
		"WHERE NOT EXISTS (SELECT 1 FROM page_map m WHERE m.blob_id = b.id)",
	[ST_DELETE_UNUSED] =
		"DELETE FROM blobs WHERE id IN (SELECT id FROM blobs b WHERE NOT EXISTS "
		"(SELECT 1 FROM page_map m WHERE m.blob_id = b.id) LIMIT ?1)",
	[ST_DELETE_STALE_INDEX] =
		"DELETE FROM page_index WHERE NOT EXISTS "
		"(SELECT 1 FROM blobs b WHERE b.id = page_index.blob_id)",
	[ST_BLOB_IDS] =
		"SELECT id, " BLOB_LOC_COLUMNS " FROM blobs ORDER BY pack_id, pack_offset",
	[ST_RECOUNT] =
		"SELECT v.segment_count, v.committed_bytes, v.data_bytes, v.stored_bytes "
		"FROM snapshot_summary v JOIN snapshots s ON s.name = v.name WHERE s.id = ?1",
	[ST_PACK_LAST] = "SELECT id, length FROM packs ORDER BY id DESC LIMIT 1",
	[ST_PACK_NEW] = "INSERT INTO packs (length) VALUES (0)",
	[ST_PACK_SET_LENGTH] = "UPDATE packs SET length = ?2 WHERE id = ?1",
	[ST_PACK_LIST] = "SELECT id, length FROM packs ORDER BY id",
	[ST_PACK_DELETE] = "DELETE FROM packs WHERE id = ?1",
	[ST_DICT_INSERT] = "INSERT INTO dictionaries (codec, checksum, data) VALUES (?1, ?2, ?3)",
	[ST_DICT_AFTER] =
		"SELECT id, codec, checksum, data FROM dictionaries WHERE id > ?1 ORDER BY id",
	[ST_DICT_NEWEST] =
		"SELECT id, codec, checksum, data FROM dictionaries ORDER BY id DESC LIMIT 1",
	[ST_PACK_UNLISTED] =
		"SELECT count(*) FROM blobs WHERE pack_id NOT IN (SELECT id FROM packs)",
	[ST_PACK_BLOB_END] =
		"SELECT pack_offset + stored_size FROM blobs WHERE pack_id = ?1 "
		"ORDER BY pack_offset DESC LIMIT 1",
	[ST_PACK_EXTENTS] =
		"SELECT pack_offset, stored_size FROM blobs WHERE pack_id = ?1 "
		"ORDER BY pack_offset",
};

struct catalog {
	sqlite3 *db;
	bool readonly;
	char *holder_path;              /* STORE/lock-holder; NULL when read-only */
	bool taking_lock;               /* in BEGIN IMMEDIATE: busy means a writer */
	bool holding;                   /* wrote holder_path: clear it when done */
	struct timespec busy_since;     /* when the current wait began */
	struct catalog *next_open;      /* in the list the cancel watcher walks */
	struct catalog **prev_open;     /* NULL when not in it */
	sqlite3_stmt *stmt[ST_COUNT];
};

static int catalog_harden(struct catalog *cat, const char *path);
static int catalog_check_schema(struct catalog *cat, const char *path);
static bool catalog_cancelled(void);
static void catalog_unregister(struct catalog *cat);

/* Upgrade steps as SQL: entry N-2 turns version N-1 into version N. The
 * schema check replays them on an empty database; upgrade.c runs them
 * on a store (with the data moves SQL cannot do). */
static const char *const upgrade_steps[] = { snapfs_upgrade_v2_sql, snapfs_upgrade_v3_sql,
					       snapfs_upgrade_v4_sql, snapfs_upgrade_v5_sql };

/* --- the write lock: waiting for it, saying who holds it ---------------- */

static pthread_mutex_t lock_wait_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	int timeout_ms;
	char doing[160];
	snapfs_lock_wait_fn waiting;
	void *data;
} lock_wait = { .timeout_ms = SNAPFS_DEFAULT_LOCK_WAIT_MS };

void snapfs_set_lock_wait(int timeout_ms, const char *doing, snapfs_lock_wait_fn waiting,
			  void *data)
{
	pthread_mutex_lock(&lock_wait_lock);
	lock_wait.timeout_ms = timeout_ms < 0 ? 0 : timeout_ms;
	snprintf(lock_wait.doing, sizeof(lock_wait.doing), "%s", doing ? doing : "");
	lock_wait.waiting = waiting;
	lock_wait.data = data;
	pthread_mutex_unlock(&lock_wait_lock);
}

static int64_t ms_since(const struct timespec *from)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(now.tv_sec - from->tv_sec) * 1000 +
	       (now.tv_nsec - from->tv_nsec) / 1000000;
}

/* SQLite's busy handler: wait in short steps up to the limit; at the start
 * of a wait for the write lock, tell the caller whom it waits for. */
static int busy_wait(void *ctx, int tries)
{
	struct catalog *cat = ctx;
	struct snapfs_lock_holder holder;
	snapfs_lock_wait_fn waiting;
	int64_t limit, left;
	void *data;

	pthread_mutex_lock(&lock_wait_lock);
	limit = cat->taking_lock ? lock_wait.timeout_ms : BUSY_TIMEOUT_MS;
	waiting = lock_wait.waiting;
	data = lock_wait.data;
	pthread_mutex_unlock(&lock_wait_lock);
	if (tries == 0) {
		clock_gettime(CLOCK_MONOTONIC, &cat->busy_since);
		if (cat->taking_lock && waiting && limit > 0) {
			lock_holder_read(cat->holder_path, &holder);
			waiting(data, &holder);
		}
	}
	if (catalog_cancelled())
		return 0;
	left = limit - ms_since(&cat->busy_since);
	if (left <= 0)
		return 0;
	sqlite3_sleep((int)(left < BUSY_POLL_MS ? left : BUSY_POLL_MS));
	return 1;
}

/* The -EBUSY of a write lock not had in time, naming its holder. */
static int busy_error(struct catalog *cat)
{
	struct snapfs_lock_holder h;
	char who[200];
	int limit;

	pthread_mutex_lock(&lock_wait_lock);
	limit = lock_wait.timeout_ms;
	pthread_mutex_unlock(&lock_wait_lock);
	lock_holder_read(cat->holder_path, &h);
	if (h.pid && h.doing[0])
		snprintf(who, sizeof(who), "PID %ld (%s)", (long)h.pid, h.doing);
	else if (h.pid)
		snprintf(who, sizeof(who), "PID %ld", (long)h.pid);
	else
		snprintf(who, sizeof(who), "another process");
	if (catalog_cancelled())
		return error_set(-SNAPFS_ECANCELED, "interrupted while waiting for the store lock "
				 "held by %s", who);
	if (limit == 0)
		return error_set(-EBUSY, "store is busy: the store lock is held by %s (not "
				 "waited for: --lock-wait 0)", who);
	return error_set(-EBUSY, "store is busy: the store lock is held by %s; gave up after "
			 "%d.%03d s (--lock-wait SECONDS waits longer)", who, limit / 1000,
			 limit % 1000);
}

static int exec_sql(struct catalog *cat, const char *sql, const char *what)
{
	int rc = sqlite3_exec(cat->db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return error_sqlite(cat->db, rc, what);
	return 0;
}

/* The prepared statement id, reset and with bindings cleared. */
static int stmt_get(struct catalog *cat, enum stmt_id id, sqlite3_stmt **ret)
{
	int rc;

	if (catalog_cancelled())
		return error_set(-SNAPFS_ECANCELED, "interrupted");
	if (!cat->stmt[id]) {
		rc = sqlite3_prepare_v3(cat->db, stmt_sql[id], -1,
					SQLITE_PREPARE_PERSISTENT, &cat->stmt[id], NULL);
		if (rc != SQLITE_OK)
			return error_sqlite(cat->db, rc, "prepare statement");
	}
	*ret = cat->stmt[id];
	return 0;
}

/* Reset a statement after use and turn its last result into 0 / -errno. */
static int stmt_done(struct catalog *cat, sqlite3_stmt *st, int step_rc,
		     const char *what)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (step_rc == SQLITE_DONE || step_rc == SQLITE_ROW || step_rc == SQLITE_OK)
		return 0;
	return error_sqlite(cat->db, step_rc, what);
}

/* Whether path's write-ahead log holds commits not yet in the database
 * file (a -wal file that is not empty). */
static bool wal_pending(const char *path)
{
	char wal[4096];
	struct stat st;

	if (snprintf(wal, sizeof(wal), "%s-wal", path) >= (int)sizeof(wal))
		return true;
	return stat(wal, &st) == 0 && st.st_size > 0;
}

/* "file:PATH?immutable=1", PATH percent-encoded; NULL without memory. */
static char *immutable_uri(const char *path)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = strlen(path);
	char *uri = malloc(3 * n + sizeof("file:?immutable=1"));
	char *o = uri;

	if (!uri)
		return NULL;
	o += sprintf(o, "file:");
	for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
		if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		    (*c >= '0' && *c <= '9') || strchr("/._-", *c)) {
			*o++ = (char)*c;
		} else {
			*o++ = '%';
			*o++ = hex[*c >> 4];
			*o++ = hex[*c & 15];
		}
	}
	strcpy(o, "?immutable=1");
	return uri;
}

/* Open path as catalog_open() does; immutable: read the database file as
 * it is, without the -shm file or locks. *ret_no_shm tells a failure of
 * a read-only open for want of the -shm file. */
static int open_as(const char *path, bool readonly, bool immutable, bool *ret_no_shm,
		   struct catalog **ret_cat)
{
	struct catalog *cat;
	int flags = readonly ? SQLITE_OPEN_READONLY
			     : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	char *uri = NULL;
	int rc;

	*ret_no_shm = false;
	cat = calloc(1, sizeof(*cat));
	if (!cat)
		return -ENOMEM;
	cat->readonly = readonly;
	if (immutable && !(uri = immutable_uri(path))) {
		rc = -ENOMEM;
		goto out_close;
	}
	rc = sqlite3_open_v2(uri ? uri : path, &cat->db,
			     flags | SQLITE_OPEN_NOMUTEX | (uri ? SQLITE_OPEN_URI : 0), NULL);
	free(uri);
	if (rc != SQLITE_OK) {
		rc = error_sqlite(cat->db, rc, path);
		goto out_close;
	}
	sqlite3_extended_result_codes(cat->db, 1);
	sqlite3_busy_handler(cat->db, busy_wait, cat);
	if (!readonly) {
		cat->holder_path = lock_holder_path(path);
		if (!cat->holder_path) {
			rc = -ENOMEM;
			goto out_close;
		}
	}
	/* A store may come from anyone: harden the connection and check the
	 * schema before any other statement (end of this file). */
	rc = catalog_harden(cat, path);
	if (rc == 0)
		rc = catalog_check_schema(cat, path);
	if (rc < 0) {
		/* The first read of a read-only connection fails so (SQLite's
		 * READONLY_DIRECTORY, CANTINIT, CANTOPEN) when it cannot make
		 * or set up the -wal and -shm files WAL mode needs beside the
		 * database: a reader who may not write the store's directory
		 * (read-only media, someone else's store; ENOENT: a -shm file
		 * it could not make, the database itself being there). */
		*ret_no_shm = readonly && !immutable &&
			      (rc == -EROFS || rc == -EACCES ||
			       (rc == -ENOENT && access(path, R_OK) == 0));
		goto out_close;
	}
	rc = exec_sql(cat, "PRAGMA foreign_keys = ON", path);
	if (rc < 0)
		goto out_close;
	/* Read connections (one per reading thread) need only the b-tree
	 * pages above the blobs in their page cache: overflow pages are read
	 * straight into the blob. 512 KiB each instead of SQLite's 2 MiB
	 * keeps the mount within its memory bound with many threads. */
	rc = exec_sql(cat, readonly ? "PRAGMA cache_size = -512"
				    : "PRAGMA synchronous = FULL; PRAGMA cache_size = -65536; "
				      "PRAGMA journal_size_limit = 4194304",
		      path);
	if (rc < 0)
		goto out_close;
	*ret_cat = cat;
	return 0;

out_close:
	catalog_close(cat);
	return rc;
}

int catalog_open(const char *path, bool readonly, struct catalog **ret_cat)
{
	bool no_shm;
	int rc = open_as(path, readonly, false, &no_shm, ret_cat);

	if (rc == 0 || !no_shm)
		return rc;
	/* A reader who may not write the store: with no log pending, the
	 * database file alone holds every committed snapshot, and SQLite
	 * reads it without the -shm file. (A writer who saves meanwhile is
	 * not seen; what it changes under this reader fails the checks,
	 * never gives wrong bytes.) */
	if (wal_pending(path))
		return error_set(-EACCES, "permission denied: read-only store, and the "
				 "snapshots saved last are still in its write-ahead log (%s-wal), "
				 "which only a user who may write the store folds in (any snapfs "
				 "command of theirs does)", SNAPFS_DB_FILE);
	return open_as(path, readonly, true, &no_shm, ret_cat);
}

void catalog_close(struct catalog *cat)
{
	if (!cat)
		return;
	catalog_unregister(cat);
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(cat->stmt[i]);
	sqlite3_close_v2(cat->db);
	free(cat->holder_path);
	free(cat);
}

int catalog_create_schema(struct catalog *cat, const char *created_at)
{
	char sql[512];
	int rc;

	/* 4 KiB database pages: measured on a 1 GiB image with 25% data,
	 * 16 KiB pages left 8% of the blob pages unused, 4 KiB pages 2%.
	 * Incremental auto-vacuum lets gc give space back without rewriting
	 * the whole file. */
	rc = exec_sql(cat, "PRAGMA page_size = 4096; PRAGMA auto_vacuum = INCREMENTAL; "
		      "PRAGMA journal_mode = WAL", "set up database");
	if (rc < 0)
		return rc;
	rc = catalog_begin_write(cat);
	if (rc < 0)
		return rc;
	rc = exec_sql(cat, snapfs_schema_sql, "create schema");
	if (rc < 0)
		goto out_rollback;
	snprintf(sql, sizeof(sql),
		 "INSERT INTO store_info (key, value) VALUES "
		 "('page_size', %u), ('blob_pages', %d), ('created_at', '%s'), "
		 "('created_by', 'snapfs " SNAPFS_VERSION "'); "
		 "PRAGMA user_version = %d",
		 SNAPFS_PAGE_SIZE, BLOB_PAGES, created_at,
		 SNAPFS_SCHEMA_VERSION);
	rc = exec_sql(cat, sql, "create schema");
	if (rc < 0)
		goto out_rollback;
	return catalog_commit(cat);

out_rollback:
	catalog_rollback(cat);
	return rc;
}

int catalog_check_store(struct catalog *cat)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(cat->db,
				"SELECT 1 FROM sqlite_master WHERE type = 'table' "
				"AND name = 'store_info'", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return -SNAPFS_ENOTSTORE;
	return error_sqlite(cat->db, rc, "read database");
}

static int query_int(struct catalog *cat, const char *sql, int64_t *ret,
		     const char *what)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(cat->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return error_sqlite(cat->db, rc, what);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*ret = sqlite3_column_int64(st, 0);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = error_set(-SNAPFS_ENOTSTORE, "%s: missing", what);
	} else {
		rc = error_sqlite(cat->db, rc, what);
	}
	sqlite3_finalize(st);
	return rc;
}

int catalog_schema_version(struct catalog *cat, int *ret_version)
{
	int64_t v;
	int rc = query_int(cat, "PRAGMA user_version", &v, "schema version");

	if (rc < 0)
		return rc;
	*ret_version = (int)v;
	return 0;
}

/* Part n ("-- @part n" up to the next marker) of schema/upgrade/v2.sql,
 * malloc'ed. */
static char *upgrade_part(int n)
{
	char marker[32], *start, *end;

	snprintf(marker, sizeof(marker), "-- @part %d", n);
	start = strstr(snapfs_upgrade_v2_sql, marker);
	if (!start)
		return NULL;
	end = strstr(start + strlen(marker), "-- @part ");
	return strndup(start, end ? (size_t)(end - start) : strlen(start));
}

static int exec_upgrade_part(struct catalog *cat, int n)
{
	char *sql = upgrade_part(n);
	int rc;

	if (!sql)
		return -ENOMEM;
	rc = exec_sql(cat, sql, "upgrade schema");
	free(sql);
	return rc;
}

int catalog_upgrade_v2_begin(struct catalog *cat)
{
	int rc;

	/* The old blobs table goes while page_map still names it. */
	rc = exec_sql(cat, "PRAGMA foreign_keys = OFF", "upgrade schema");
	if (rc < 0)
		return rc;
	rc = catalog_begin_write(cat);
	if (rc == 0)
		rc = exec_upgrade_part(cat, 1);
	if (rc < 0) {
		catalog_rollback(cat);
		exec_sql(cat, "PRAGMA foreign_keys = ON", "upgrade schema");
	}
	return rc;
}

int catalog_upgrade_v2_blobs(struct catalog *cat,
			     int (*append)(void *ctx, const void *data, size_t len,
					   uint64_t *ret_offset),
			     void *ctx)
{
	sqlite3_stmt *sel = NULL, *ins = NULL;
	int rc, step;

	rc = sqlite3_prepare_v2(cat->db,
				"SELECT id, codec, page_count, checksum, data FROM blobs ORDER BY id",
				-1, &sel, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(cat->db,
					"INSERT INTO blobs_v2 (id, codec, page_count, stored_size, "
					"checksum, pack_id, pack_offset) VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6)",
					-1, &ins, NULL);
	if (rc != SQLITE_OK) {
		rc = error_sqlite(cat->db, rc, "upgrade schema");
		goto out_finalize;
	}
	while ((step = sqlite3_step(sel)) == SQLITE_ROW) {
		const void *data = sqlite3_column_blob(sel, 4);
		size_t len = (size_t)sqlite3_column_bytes(sel, 4);
		uint64_t offset;

		rc = append(ctx, data, len, &offset);
		if (rc < 0)
			goto out_finalize;
		sqlite3_bind_int64(ins, 1, sqlite3_column_int64(sel, 0));
		sqlite3_bind_int64(ins, 2, sqlite3_column_int64(sel, 1));
		sqlite3_bind_int64(ins, 3, sqlite3_column_int64(sel, 2));
		sqlite3_bind_int64(ins, 4, (sqlite3_int64)len);
		sqlite3_bind_int64(ins, 5, sqlite3_column_int64(sel, 3));
		sqlite3_bind_int64(ins, 6, (sqlite3_int64)offset);
		step = sqlite3_step(ins);
		sqlite3_reset(ins);
		if (step != SQLITE_DONE) {
			rc = error_sqlite(cat->db, step, "upgrade schema: copy blob");
			goto out_finalize;
		}
	}
	rc = step == SQLITE_DONE ? 0 : error_sqlite(cat->db, step, "upgrade schema: read blob");
out_finalize:
	sqlite3_finalize(sel);
	sqlite3_finalize(ins);
	return rc;
}

int catalog_upgrade_v2_finish(struct catalog *cat, uint64_t pack_length)
{
	char sql[64];
	int rc = catalog_pack_set_length(cat, 1, pack_length);

	if (rc == 0)
		rc = exec_upgrade_part(cat, 2);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", 2);
	if (rc == 0)
		rc = exec_sql(cat, sql, "upgrade schema");
	return rc;
}

int catalog_upgrade_v2_end(struct catalog *cat, bool commit)
{
	int rc = commit ? catalog_commit(cat) : 0;

	if (!commit || rc < 0)
		catalog_rollback(cat);
	exec_sql(cat, "PRAGMA foreign_keys = ON", "upgrade schema");
	return rc;
}

int catalog_upgrade_v3(struct catalog *cat)
{
	int rc = exec_sql(cat, snapfs_upgrade_v3_sql, "upgrade schema");

	if (rc == 0)
		rc = exec_sql(cat, "PRAGMA user_version = 3", "upgrade schema");
	return rc;
}

int catalog_upgrade_v4(struct catalog *cat)
{
	int rc = exec_sql(cat, snapfs_upgrade_v4_sql, "upgrade schema");

	if (rc == 0)
		rc = exec_sql(cat, "PRAGMA user_version = 4", "upgrade schema");
	return rc;
}

int catalog_upgrade_v5(struct catalog *cat)
{
	int rc = exec_sql(cat, snapfs_upgrade_v5_sql, "upgrade schema");

	if (rc == 0)
		rc = exec_sql(cat, "PRAGMA user_version = 5", "upgrade schema");
	return rc;
}

int catalog_page_size(struct catalog *cat, uint32_t *ret_page_size)
{
	int64_t v;
	int rc = query_int(cat, "SELECT value FROM store_info WHERE key = 'page_size'",
			   &v, "store page size");

	if (rc < 0)
		return rc;
	if (v != SNAPFS_PAGE_SIZE)
		return error_set(-SNAPFS_ECORRUPT, "store page size %lld is not %u",
				 (long long)v, SNAPFS_PAGE_SIZE);
	*ret_page_size = (uint32_t)v;
	return 0;
}

int catalog_data_version(struct catalog *cat, int64_t *ret_version)
{
	sqlite3_stmt *st = NULL;
	int rc = stmt_get(cat, ST_DATA_VERSION, &st);

	if (rc < 0)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret_version = sqlite3_column_int64(st, 0);
	return stmt_done(cat, st, rc, "data version");
}

int catalog_begin_write(struct catalog *cat)
{
	char doing[sizeof(lock_wait.doing)];
	int rc;

	cat->taking_lock = true;
	rc = sqlite3_exec(cat->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	cat->taking_lock = false;
	if (rc == SQLITE_OK) {
		pthread_mutex_lock(&lock_wait_lock);
		memcpy(doing, lock_wait.doing, sizeof(doing));
		pthread_mutex_unlock(&lock_wait_lock);
		cat->holding = lock_holder_write(cat->holder_path, doing);
		return 0;
	}
	if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_INTERRUPT)
		return busy_error(cat);
	return error_sqlite(cat->db, rc, "begin transaction");
}

/* The holder lets go: empty the lock-holder file while the lock is still
 * held, so that it never erases the next holder's line. */
static void catalog_let_go(struct catalog *cat)
{
	if (cat->holding)
		lock_holder_clear(cat->holder_path);
	cat->holding = false;
}

int catalog_begin_read(struct catalog *cat)
{
	return exec_sql(cat, "BEGIN", "begin transaction");
}

int catalog_commit(struct catalog *cat)
{
	int rc;

	catalog_let_go(cat);
	rc = sqlite3_exec(cat->db, "COMMIT", NULL, NULL, NULL);

	if (rc == SQLITE_OK)
		return 0;
	rc = error_sqlite(cat->db, rc, "commit");
	catalog_rollback(cat);
	return rc;
}

void catalog_rollback(struct catalog *cat)
{
	if (!cat)
		return;
	catalog_let_go(cat);
	if (!sqlite3_get_autocommit(cat->db))
		sqlite3_exec(cat->db, "ROLLBACK", NULL, NULL, NULL);
}

void catalog_interrupt(struct catalog *cat)
{
	sqlite3_interrupt(cat->db);
}

int catalog_shrink(struct catalog *cat)
{
	int rc = exec_sql(cat, "PRAGMA incremental_vacuum", "give space back");

	if (rc < 0)
		return rc;
	rc = sqlite3_wal_checkpoint_v2(cat->db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
				       NULL, NULL);
	/* A reader still using the WAL makes the truncate wait for later; the
	 * data is safe either way. */
	if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY)
		return error_sqlite(cat->db, rc, "checkpoint");
	return 0;
}

/* --- snapshots --- */

static char *dup_text(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	return t ? strdup((const char *)t) : NULL;
}

static void copy_text(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

static int snapshot_from_row(sqlite3_stmt *st, struct snapfs_snapshot *s)
{
	memset(s, 0, sizeof(*s));
	s->id = sqlite3_column_int64(st, 0);
	copy_text(s->name, sizeof(s->name), st, 1);
	copy_text(s->created_at, sizeof(s->created_at), st, 2);
	s->parent_id = sqlite3_column_int64(st, 3);
	copy_text(s->parent, sizeof(s->parent), st, 4);
	s->file_size = (uint64_t)sqlite3_column_int64(st, 5);
	s->page_size = (uint32_t)sqlite3_column_int64(st, 6);
	copy_text(s->format, sizeof(s->format), st, 7);
	s->source = dup_text(st, 8);
	s->notes = dup_text(st, 9);
	s->segment_count = (uint64_t)sqlite3_column_int64(st, 10);
	s->committed_bytes = (uint64_t)sqlite3_column_int64(st, 11);
	s->data_bytes = (uint64_t)sqlite3_column_int64(st, 12);
	s->stored_bytes = (uint64_t)sqlite3_column_int64(st, 13);
	s->map_digest = sqlite3_column_int64(st, 14);
	s->meta_digest = sqlite3_column_int64(st, 15);
	s->comment = dup_text(st, 16);
	if (!s->source || (!s->comment && sqlite3_column_type(st, 16) != SQLITE_NULL)) {
		snapfs_snapshot_release(s);
		return -ENOMEM;
	}
	return 0;
}

void snapfs_snapshot_release(struct snapfs_snapshot *snap)
{
	if (!snap)
		return;
	free(snap->source);
	free(snap->notes);
	free(snap->comment);
	snap->source = NULL;
	snap->notes = NULL;
	snap->comment = NULL;
}

void snapfs_snapshot_list_free(struct snapfs_snapshot *snaps, size_t count)
{
	if (!snaps)
		return;
	for (size_t i = 0; i < count; i++)
		snapfs_snapshot_release(&snaps[i]);
	free(snaps);
}

static int snapshot_get(struct catalog *cat, enum stmt_id id, sqlite3_stmt *st,
			struct snapfs_snapshot *ret_snap)
{
	struct snapfs_snapshot snap;
	int rc, step;

	(void)id;
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		rc = snapshot_from_row(st, &snap);
		stmt_done(cat, st, SQLITE_DONE, "");
		if (rc == 0)
			*ret_snap = snap;
		return rc;
	}
	rc = stmt_done(cat, st, step, "read snapshot");
	return rc < 0 ? rc : -ENOENT;
}

int catalog_snapshot_get(struct catalog *cat, const char *name,
			 struct snapfs_snapshot *ret_snap)
{
	sqlite3_stmt *st = NULL;
	int rc = stmt_get(cat, ST_SNAP_BY_NAME, &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = snapshot_get(cat, ST_SNAP_BY_NAME, st, ret_snap);
	if (rc == -ENOENT)
		return error_set(rc, "snapshot '%s': no such snapshot", name);
	return rc;
}

int catalog_snapshot_get_id(struct catalog *cat, int64_t id,
			    struct snapfs_snapshot *ret_snap)
{
	sqlite3_stmt *st = NULL;
	int rc = stmt_get(cat, ST_SNAP_BY_ID, &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	rc = snapshot_get(cat, ST_SNAP_BY_ID, st, ret_snap);
	if (rc == -ENOENT)
		return error_set(rc, "snapshot #%lld: no such snapshot", (long long)id);
	return rc;
}

int catalog_snapshot_list(struct catalog *cat, struct snapfs_snapshot **ret_snaps,
			  size_t *ret_count)
{
	struct snapfs_snapshot *snaps = NULL, *bigger;
	size_t count = 0, cap = 0;
	sqlite3_stmt *st = NULL;
	int rc, step;

	rc = stmt_get(cat, ST_SNAP_LIST, &st);
	if (rc < 0)
		return rc;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			bigger = realloc(snaps, cap * sizeof(*snaps));
			if (!bigger) {
				rc = -ENOMEM;
				goto out_free;
			}
			snaps = bigger;
		}
		rc = snapshot_from_row(st, &snaps[count]);
		if (rc < 0)
			goto out_free;
		count++;
	}
	rc = stmt_done(cat, st, step, "list snapshots");
	if (rc < 0) {
		snapfs_snapshot_list_free(snaps, count);
		return rc;
	}
	*ret_snaps = snaps;
	*ret_count = count;
	return 0;

out_free:
	stmt_done(cat, st, SQLITE_DONE, "");
	snapfs_snapshot_list_free(snaps, count);
	return rc;
}

int catalog_snapshot_insert(struct catalog *cat, const struct snapfs_snapshot *s,
			    int64_t *ret_id)
{
	sqlite3_stmt *st = NULL;
	int rc = stmt_get(cat, ST_SNAP_INSERT, &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, s->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, s->created_at, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, s->parent_id);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)s->file_size);
	sqlite3_bind_int64(st, 5, s->page_size);
	sqlite3_bind_text(st, 6, s->format, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, s->source, -1, SQLITE_STATIC);
	if (s->notes)
		sqlite3_bind_text(st, 8, s->notes, -1, SQLITE_STATIC);
	if (s->comment)
		sqlite3_bind_text(st, 9, s->comment, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		stmt_done(cat, st, SQLITE_DONE, "");
		return error_set(-EEXIST, "snapshot '%s': name already taken", s->name);
	}
	rc = stmt_done(cat, st, rc, "insert snapshot");
	if (rc == 0)
		*ret_id = sqlite3_last_insert_rowid(cat->db);
	return rc;
}

int catalog_snapshot_set_figures(struct catalog *cat, const struct snapfs_snapshot *s)
{
	sqlite3_stmt *st = NULL;
	int rc = stmt_get(cat, ST_SNAP_FIGURES, &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, s->id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)s->segment_count);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)s->committed_bytes);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)s->data_bytes);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)s->stored_bytes);
	sqlite3_bind_int64(st, 6, s->map_digest);
	sqlite3_bind_int64(st, 7, s->meta_digest);
	return stmt_done(cat, st, sqlite3_step(st), "record snapshot figures");
}

int catalog_snapshot_children(struct catalog *cat, const char *name, int64_t **ret_ids,
			      size_t *ret_count)
{
	sqlite3_stmt *st = NULL;
	int64_t *ids = NULL;
	size_t count = 0;
	int rc = stmt_get(cat, ST_SNAP_CHILDREN, &st), step;

	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t *more = realloc(ids, (count + 1) * sizeof(*ids));

		if (!more) {
			stmt_done(cat, st, SQLITE_DONE, "");
			free(ids);
			return -ENOMEM;
		}
		ids = more;
		ids[count++] = sqlite3_column_int64(st, 0);
	}
	rc = stmt_done(cat, st, step, "list children");
	if (rc < 0) {
		free(ids);
		return rc;
	}
	*ret_ids = ids;
	*ret_count = count;
	return 0;
}

int catalog_snapshot_set_meta_digest(struct catalog *cat, int64_t id, int64_t digest)
{
	sqlite3_stmt *st = NULL;
	int rc = stmt_get(cat, ST_SNAP_SEAL, &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, digest);
	return stmt_done(cat, st, sqlite3_step(st), "record snapshot digest");
}

int catalog_snapshot_rename(struct catalog *cat, int64_t id, const char *name)
{
	sqlite3_stmt *st = NULL;
	int rc = stmt_get(cat, ST_SNAP_RENAME, &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		stmt_done(cat, st, SQLITE_DONE, "");
		return error_set(-EEXIST, "snapshot '%s': name already taken", name);
	}
	return stmt_done(cat, st, rc, "rename snapshot");
}

/* --- segments --- */

int catalog_segment_insert(struct catalog *cat, int64_t snapshot_id,
			   const struct snapfs_segment *seg)
{
	sqlite3_stmt *st = NULL;
	int rc = stmt_get(cat, ST_SEG_INSERT, &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, snapshot_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)seg->start);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)seg->end);
	sqlite3_bind_text(st, 4, seg->kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, seg->memcg_id);
	sqlite3_bind_int(st, 6, seg->committed ? 1 : 0);
	if (seg->label && seg->label[0])
		sqlite3_bind_text(st, 7, seg->label, -1, SQLITE_STATIC);
	return stmt_done(cat, st, sqlite3_step(st), "insert segment");
}

void snapfs_segments_free(struct snapfs_segment *segs, size_t count)
{
	if (!segs)
		return;
	for (size_t i = 0; i < count; i++)
		free(segs[i].label);
	free(segs);
}

int catalog_segments_get(struct catalog *cat, int64_t snapshot_id,
			 struct snapfs_segment **ret_segs, size_t *ret_count)
{
	struct snapfs_segment *segs = NULL, *bigger, *g;
	size_t count = 0, cap = 0;
	sqlite3_stmt *st = NULL;
	int rc, step;

	rc = stmt_get(cat, ST_SEG_LIST, &st);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, snapshot_id);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			bigger = realloc(segs, cap * sizeof(*segs));
			if (!bigger) {
				rc = -ENOMEM;
				goto out_free;
			}
			segs = bigger;
		}
		g = &segs[count];
		memset(g, 0, sizeof(*g));
		g->start = (uint64_t)sqlite3_column_int64(st, 0);
		g->end = (uint64_t)sqlite3_column_int64(st, 1);
		copy_text(g->kind, sizeof(g->kind), st, 2);
		g->memcg_id = sqlite3_column_int64(st, 3);
		g->committed = sqlite3_column_int(st, 4) != 0;
		g->label = dup_text(st, 5);
		count++;
	}
	rc = stmt_done(cat, st, step, "read segments");
	if (rc < 0) {
		snapfs_segments_free(segs, count);
		return rc;
	}
	*ret_segs = segs;
	*ret_count = count;
	return 0;

out_free:
	stmt_done(cat, st, SQLITE_DONE, "");
	snapfs_segments_free(segs, count);
	return rc;
}

/* --- blobs --- */

int catalog_blob_insert(struct catalog *cat, const struct blob_loc *loc,
			int64_t *ret_id)
{
	sqlite3_stmt *st = NULL;
	int rc = stmt_get(cat, ST_BLOB_INSERT, &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_int(st, 1, loc->codec);
	sqlite3_bind_int64(st, 2, loc->page_count);
	sqlite3_bind_int64(st, 3, loc->length);
	sqlite3_bind_int64(st, 4, loc->checksum);
	sqlite3_bind_int64(st, 5, loc->pack_id);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)loc->offset);
	sqlite3_bind_int64(st, 7, loc->dict_id);
	rc = stmt_done(cat, st, sqlite3_step(st), "store blob");
	if (rc == 0)
		*ret_id = sqlite3_last_insert_rowid(cat->db);
	return rc;
}

/* The blob_loc of blob id from BLOB_LOC_COLUMNS at column col. Values out
 * of range (damage) become ones the blob layer refuses (length 0). */
static void loc_from_row(sqlite3_stmt *st, int col, int64_t id, struct blob_loc *loc)
{
	int64_t pages = sqlite3_column_int64(st, col + 1);
	int64_t len = sqlite3_column_int64(st, col + 2);
	int64_t off = sqlite3_column_int64(st, col + 5);

	loc->id = id;
	loc->codec = sqlite3_column_int(st, col);
	loc->page_count = pages > 0 && pages <= BLOB_PAGES_MAX ? (uint32_t)pages : 0;
	loc->length = len > 0 && len <= UINT32_MAX ? (uint32_t)len : 0;
	loc->checksum = sqlite3_column_int64(st, col + 3);
	loc->pack_id = sqlite3_column_int64(st, col + 4);
	loc->offset = off >= 0 ? (uint64_t)off : 0;
	loc->dict_id = sqlite3_column_int64(st, col + 6);
	if (off < 0)
		loc->length = 0;
}

int catalog_blob_loc(struct catalog *cat, int64_t id, struct blob_loc *ret_loc)
{
	sqlite3_stmt *st = NULL;
	int rc, step;

	rc = stmt_get(cat, ST_BLOB_GET, &st);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	step = sqlite3_step(st);
	if (step != SQLITE_ROW) {
		rc = stmt_done(cat, st, step, "read blob");
		return rc < 0 ? rc : -ENOENT;
	}
	loc_from_row(st, 0, id, ret_loc);
	return stmt_done(cat, st, SQLITE_DONE, "read blob");
}

int catalog_blob_move(struct catalog *cat, int64_t id, int64_t pack_id, uint64_t offset)
{
	sqlite3_stmt *st = NULL;
	int rc = stmt_get(cat, ST_BLOB_MOVE, &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, pack_id);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)offset);
	return stmt_done(cat, st, sqlite3_step(st), "move blob");
}

int catalog_snapshot_blob_bytes(struct catalog *cat, int64_t snapshot_id,
				uint64_t *ret_bytes)
{
	sqlite3_stmt *st = NULL;
	int rc = stmt_get(cat, ST_SNAP_BLOB_BYTES, &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, snapshot_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret_bytes = (uint64_t)sqlite3_column_int64(st, 0);
	return stmt_done(cat, st, rc, "sum blob sizes");
}

/* --- content index --- */

int catalog_index_lookup(struct catalog *cat, int64_t digest,
			 int64_t *ret_blob_id, int *ret_slot)
{
	sqlite3_stmt *st = NULL;
	int rc, step;

	rc = stmt_get(cat, ST_INDEX_LOOKUP, &st);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, digest);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		*ret_blob_id = sqlite3_column_int64(st, 0);
		*ret_slot = sqlite3_column_int(st, 1);
		return stmt_done(cat, st, SQLITE_DONE, "");
	}
	rc = stmt_done(cat, st, step, "look up page digest");
	return rc < 0 ? rc : -ENOENT;
}

int catalog_index_put(struct catalog *cat, int64_t digest, int64_t blob_id,
		      int slot)
{
	sqlite3_stmt *st = NULL;
	int rc = stmt_get(cat, ST_INDEX_PUT, &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, digest);
	sqlite3_bind_int64(st, 2, blob_id);
	sqlite3_bind_int(st, 3, slot);
	return stmt_done(cat, st, sqlite3_step(st), "record page digest");
}

/* --- page map --- */

int catalog_map_insert(struct catalog *cat, int64_t snapshot_id,
		       const struct map_run *run)
{
	sqlite3_stmt *st = NULL;
	int rc = stmt_get(cat, ST_MAP_INSERT, &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, snapshot_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)run->first_page);
	sqlite3_bind_int64(st, 3, run->page_count);
	sqlite3_bind_int64(st, 4, run->blob_id);
	sqlite3_bind_int64(st, 5, run->slot);
	sqlite3_bind_int64(st, 6, run->hash);
	return stmt_done(cat, st, sqlite3_step(st), "insert page map");
}

int catalog_map_load(struct catalog *cat, int64_t snapshot_id,
		     struct map_run **ret_runs, struct blob_loc **ret_locs,
		     size_t *ret_count)
{
	struct map_run *runs = NULL, *r;
	struct blob_loc *locs = NULL;
	size_t count = 0, cap = 0;
	sqlite3_stmt *st = NULL;
	int64_t n = 0;
	int rc, step;

	/* Size the array first so that a huge map costs one allocation; the
	 * count is a hint only, a crafted row count cannot make us allocate
	 * more than the rows that really come back. */
	rc = stmt_get(cat, ST_MAP_COUNT, &st);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, snapshot_id);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	rc = stmt_done(cat, st, step, "count page map");
	if (rc < 0)
		return rc;
	cap = n > 0 && n < (1 << 26) ? (size_t)n : 16;
	runs = malloc(cap * sizeof(*runs));
	locs = ret_locs ? malloc(cap * sizeof(*locs)) : NULL;
	if (!runs || (ret_locs && !locs)) {
		rc = -ENOMEM;
		goto out_free;
	}

	rc = stmt_get(cat, ST_MAP_LOAD, &st);
	if (rc < 0)
		goto out_free;
	sqlite3_bind_int64(st, 1, snapshot_id);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t first = sqlite3_column_int64(st, 0);
		int64_t pages = sqlite3_column_int64(st, 1);
		int64_t slot = sqlite3_column_int64(st, 3);

		if (count == cap) {
			struct map_run *bigger;

			cap *= 2;
			bigger = realloc(runs, cap * sizeof(*runs));
			if (bigger)
				runs = bigger;
			if (bigger && locs) {
				struct blob_loc *more = realloc(locs, cap * sizeof(*locs));

				if (more)
					locs = more;
				else
					bigger = NULL;
			}
			if (!bigger) {
				rc = -ENOMEM;
				stmt_done(cat, st, SQLITE_DONE, "");
				goto out_free;
			}
		}
		if (first < 0 || pages <= 0 || pages > UINT32_MAX || slot < 0 ||
		    slot > UINT32_MAX) {
			stmt_done(cat, st, SQLITE_DONE, "");
			rc = error_set(-SNAPFS_ECORRUPT,
				       "snapshot #%lld: malformed page map row at page %lld",
				       (long long)snapshot_id, (long long)first);
			goto out_free;
		}
		r = &runs[count++];
		r->first_page = (uint64_t)first;
		r->page_count = (uint32_t)pages;
		r->blob_id = sqlite3_column_int64(st, 2);
		r->slot = (uint32_t)slot;
		r->hash = sqlite3_column_int64(st, 4);
		/* A run whose blob row is gone gets a place that reads as
		 * damage (length 0). */
		if (locs && sqlite3_column_type(st, 5) == SQLITE_NULL)
			locs[count - 1] = (struct blob_loc){ .id = r->blob_id };
		else if (locs)
			loc_from_row(st, 5, r->blob_id, &locs[count - 1]);
	}
	rc = stmt_done(cat, st, step, "read page map");
	if (rc < 0)
		goto out_free;
	*ret_runs = runs;
	if (ret_locs)
		*ret_locs = locs;
	*ret_count = count;
	return 0;

out_free:
	free(runs);
	free(locs);
	return rc;
}

/* --- gc --- */

int catalog_unused_blobs(struct catalog *cat, uint64_t *ret_count, uint64_t *ret_bytes)
{
	sqlite3_stmt *st = NULL;
	int rc = stmt_get(cat, ST_UNUSED_BLOBS, &st);

	if (rc < 0)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*ret_count = (uint64_t)sqlite3_column_int64(st, 0);
		*ret_bytes = (uint64_t)sqlite3_column_int64(st, 1);
	}
	return stmt_done(cat, st, rc, "count unused blobs");
}

static int delete_with(struct catalog *cat, enum stmt_id id, int limit,
		       uint64_t *ret_deleted, const char *what)
{
	sqlite3_stmt *st = NULL;
	int rc = stmt_get(cat, id, &st);

	if (rc < 0)
		return rc;
	if (limit)
		sqlite3_bind_int(st, 1, limit);
	rc = stmt_done(cat, st, sqlite3_step(st), what);
	if (rc == 0)
		*ret_deleted = (uint64_t)sqlite3_changes64(cat->db);
	return rc;
}

int catalog_delete_unused_blobs(struct catalog *cat, int limit, uint64_t *ret_deleted)
{
	return delete_with(cat, ST_DELETE_UNUSED, limit, ret_deleted, "delete unused blobs");
}

int catalog_delete_stale_index(struct catalog *cat, uint64_t *ret_deleted)
{
	return delete_with(cat, ST_DELETE_STALE_INDEX, 0, ret_deleted,
			   "delete stale content index rows");
}

/* --- packs --- */

int catalog_pack_last(struct catalog *cat, int64_t *ret_id, uint64_t *ret_length)
{
	sqlite3_stmt *st = NULL;
	int rc = stmt_get(cat, ST_PACK_LAST, &st), step;

	if (rc < 0)
		return rc;
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		int64_t len = sqlite3_column_int64(st, 1);

		*ret_id = sqlite3_column_int64(st, 0);
		*ret_length = len > 0 ? (uint64_t)len : 0;
	}
	rc = stmt_done(cat, st, step, "read packs");
	if (rc == 0 && step != SQLITE_ROW)
		rc = -ENOENT;
	return rc;
}

int catalog_pack_new(struct catalog *cat, int64_t *ret_id)
{
	sqlite3_stmt *st = NULL;
	int rc = stmt_get(cat, ST_PACK_NEW, &st);

	if (rc < 0)
		return rc;
	rc = stmt_done(cat, st, sqlite3_step(st), "add pack");
	if (rc == 0)
		*ret_id = sqlite3_last_insert_rowid(cat->db);
	return rc;
}

int catalog_pack_set_length(struct catalog *cat, int64_t id, uint64_t length)
{
	sqlite3_stmt *st = NULL;
	int rc = stmt_get(cat, ST_PACK_SET_LENGTH, &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)length);
	return stmt_done(cat, st, sqlite3_step(st), "record pack length");
}

int catalog_pack_delete(struct catalog *cat, int64_t id)
{
	sqlite3_stmt *st = NULL;
	int rc = stmt_get(cat, ST_PACK_DELETE, &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	return stmt_done(cat, st, sqlite3_step(st), "delete pack");
}

int catalog_pack_list(struct catalog *cat, int64_t **ret_ids, uint64_t **ret_lengths,
		      size_t *ret_count)
{
	int64_t *ids = NULL;
	uint64_t *lengths = NULL;
	size_t count = 0, cap = 0;
	sqlite3_stmt *st = NULL;
	int rc = stmt_get(cat, ST_PACK_LIST, &st), step;

	if (rc < 0)
		return rc;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t len = sqlite3_column_int64(st, 1);

		if (count == cap) {
			size_t n = cap ? cap * 2 : 16;
			int64_t *more_ids = realloc(ids, n * sizeof(*ids));
			uint64_t *more_lengths = more_ids ? realloc(lengths, n * sizeof(*lengths)) : NULL;

			if (more_ids)
				ids = more_ids;
			if (!more_lengths) {
				stmt_done(cat, st, SQLITE_DONE, "");
				free(ids);
				free(lengths);
				return -ENOMEM;
			}
			lengths = more_lengths;
			cap = n;
		}
		ids[count] = sqlite3_column_int64(st, 0);
		lengths[count++] = len > 0 ? (uint64_t)len : 0;
	}
	rc = stmt_done(cat, st, step, "list packs");
	if (rc < 0) {
		free(ids);
		free(lengths);
		return rc;
	}
	*ret_ids = ids;
	*ret_lengths = lengths;
	*ret_count = count;
	return 0;
}

int catalog_blobs_without_pack(struct catalog *cat, uint64_t *ret_count)
{
	sqlite3_stmt *st = NULL;
	int rc = stmt_get(cat, ST_PACK_UNLISTED, &st), step;

	if (rc < 0)
		return rc;
	step = sqlite3_step(st);
	*ret_count = step == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
	return stmt_done(cat, st, step, "count blobs without a pack");
}

int catalog_pack_blob_end(struct catalog *cat, int64_t id, uint64_t *ret_end)
{
	sqlite3_stmt *st = NULL;
	int rc = stmt_get(cat, ST_PACK_BLOB_END, &st), step;

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	step = sqlite3_step(st);
	*ret_end = 0;
	if (step == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0)
		*ret_end = (uint64_t)sqlite3_column_int64(st, 0);
	return stmt_done(cat, st, step, "read pack end");
}

int catalog_pack_extents(struct catalog *cat, int64_t id,
			 int (*fn)(void *ctx, uint64_t offset, uint64_t length), void *ctx)
{
	sqlite3_stmt *st = NULL;
	int rc = stmt_get(cat, ST_PACK_EXTENTS, &st), step;

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t off = sqlite3_column_int64(st, 0), len = sqlite3_column_int64(st, 1);

		rc = fn(ctx, off > 0 ? (uint64_t)off : 0, len > 0 ? (uint64_t)len : 0);
		if (rc < 0) {
			stmt_done(cat, st, SQLITE_DONE, "");
			return rc;
		}
	}
	return stmt_done(cat, st, step, "list pack extents");
}

/* --- dictionaries --- */

int catalog_dict_insert(struct catalog *cat, int codec, int64_t checksum,
			const void *data, size_t len, int64_t *ret_id)
{
	sqlite3_stmt *st = NULL;
	int rc = stmt_get(cat, ST_DICT_INSERT, &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_int(st, 1, codec);
	sqlite3_bind_int64(st, 2, checksum);
	sqlite3_bind_blob64(st, 3, data, len, SQLITE_STATIC);
	rc = stmt_done(cat, st, sqlite3_step(st), "store dictionary");
	if (rc == 0)
		*ret_id = sqlite3_last_insert_rowid(cat->db);
	return rc;
}

int catalog_dict_each(struct catalog *cat, int64_t after_id, bool newest_only,
		      int (*fn)(void *ctx, const struct dict_row *row), void *ctx)
{
	sqlite3_stmt *st = NULL;
	int rc = stmt_get(cat, newest_only ? ST_DICT_NEWEST : ST_DICT_AFTER, &st), step;

	if (rc < 0)
		return rc;
	if (!newest_only)
		sqlite3_bind_int64(st, 1, after_id);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct dict_row row = {
			.id = sqlite3_column_int64(st, 0),
			.codec = sqlite3_column_int(st, 1),
			.checksum = sqlite3_column_int64(st, 2),
			.data = sqlite3_column_blob(st, 3),
			.len = (size_t)sqlite3_column_bytes(st, 3),
		};

		rc = fn(ctx, &row);
		if (rc < 0) {
			stmt_done(cat, st, SQLITE_DONE, "");
			return rc;
		}
	}
	return stmt_done(cat, st, step, "read dictionaries");
}

/* --- verify --- */

int catalog_for_each_blob(struct catalog *cat,
			  int (*fn)(void *ctx, const struct blob_loc *loc), void *ctx)
{
	sqlite3_stmt *st = NULL;
	struct blob_loc *locs = NULL;
	size_t count = 0, cap = 0;
	int rc, step;

	/* Collect first: fn may use this same connection. */
	rc = stmt_get(cat, ST_BLOB_IDS, &st);
	if (rc < 0)
		return rc;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			size_t n = cap ? cap * 2 : 1024;
			struct blob_loc *more = realloc(locs, n * sizeof(*more));

			if (!more) {
				stmt_done(cat, st, SQLITE_DONE, "");
				rc = -ENOMEM;
				goto out_free;
			}
			locs = more;
			cap = n;
		}
		loc_from_row(st, 1, sqlite3_column_int64(st, 0), &locs[count++]);
	}
	rc = stmt_done(cat, st, step, "list blobs");
	for (size_t i = 0; rc == 0 && i < count; i++)
		rc = fn(ctx, &locs[i]);
out_free:
	free(locs);
	return rc;
}

int catalog_snapshot_recount(struct catalog *cat, int64_t snapshot_id,
			     struct snapfs_snapshot *ret)
{
	sqlite3_stmt *st = NULL;
	int rc = stmt_get(cat, ST_RECOUNT, &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, snapshot_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		ret->segment_count = (uint64_t)sqlite3_column_int64(st, 0);
		ret->committed_bytes = (uint64_t)sqlite3_column_int64(st, 1);
		ret->data_bytes = (uint64_t)sqlite3_column_int64(st, 2);
		ret->stored_bytes = (uint64_t)sqlite3_column_int64(st, 3);
	}
	return stmt_done(cat, st, rc, "recount snapshot");
}

int catalog_integrity_check(struct catalog *cat, char *buf, size_t cap, bool *ret_ok)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(cat->db, "PRAGMA integrity_check(20)", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		snprintf(buf, cap, "%s", sqlite3_errmsg(cat->db));
		*ret_ok = false;
		return 0;
	}
	rc = sqlite3_step(st);
	if ((rc & 0xff) == SQLITE_INTERRUPT || catalog_cancelled()) {
		sqlite3_finalize(st);
		return error_set(-SNAPFS_ECANCELED, "interrupted");
	}
	if (rc == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 0);

		snprintf(buf, cap, "%s", t ? (const char *)t : "");
		*ret_ok = t && strcmp((const char *)t, "ok") == 0;
		/* Collect further lines of the report. */
		while (!*ret_ok && sqlite3_step(st) == SQLITE_ROW) {
			size_t len = strlen(buf);

			t = sqlite3_column_text(st, 0);
			if (t && len + 3 < cap)
				snprintf(buf + len, cap - len, "; %s", (const char *)t);
		}
	} else {
		snprintf(buf, cap, "%s", sqlite3_errmsg(cat->db));
		*ret_ok = false;
	}
	sqlite3_finalize(st);
	return 0;
}

/* --- store-wide --- */

int catalog_store_summary(struct catalog *cat, struct snapfs_store_summary *ret)
{
	static const char sql[] =
		"SELECT (SELECT count(*) FROM snapshots s WHERE " SNAP_VISIBLE "), "
		"(SELECT coalesce(sum(file_size), 0) FROM snapshots s WHERE " SNAP_VISIBLE "), "
		"(SELECT coalesce(sum(data_bytes), 0) FROM snapshots s WHERE " SNAP_VISIBLE "), "
		"(SELECT coalesce(sum(page_count), 0) FROM blobs), "
		"(SELECT count(*) FROM blobs), "
		"(SELECT coalesce(sum(stored_size), 0) FROM blobs)";
	struct snapfs_store_summary s = { 0 };
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(cat->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return error_sqlite(cat->db, rc, "store summary");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		s.snapshot_count = (uint64_t)sqlite3_column_int64(st, 0);
		s.logical_bytes = (uint64_t)sqlite3_column_int64(st, 1);
		s.data_bytes = (uint64_t)sqlite3_column_int64(st, 2);
		s.unique_pages = (uint64_t)sqlite3_column_int64(st, 3);
		s.blob_count = (uint64_t)sqlite3_column_int64(st, 4);
		s.blob_bytes = (uint64_t)sqlite3_column_int64(st, 5);
		rc = SQLITE_DONE;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return error_sqlite(cat->db, rc, "store summary");
	*ret = s;
	return 0;
}

/* --- working sets --------------------------------------------------------
 * Kept apart from the statement table above: these run once per record or
 * per first open of a memory file, so they are prepared on each use. */

int catalog_working_set_replace(struct catalog *cat, int64_t snapshot_id,
				const struct snapfs_page_run *runs, size_t count)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(cat->db, "DELETE FROM working_set WHERE snapshot_id = ?1",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return error_sqlite(cat->db, rc, "clear working set");
	sqlite3_bind_int64(st, 1, snapshot_id);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return error_sqlite(cat->db, rc, "clear working set");
	if (count == 0)
		return 0;
	rc = sqlite3_prepare_v2(cat->db,
				"INSERT INTO working_set (snapshot_id, seq, first_page, "
				"page_count) VALUES (?1, ?2, ?3, ?4)", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return error_sqlite(cat->db, rc, "save working set");
	sqlite3_bind_int64(st, 1, snapshot_id);
	for (size_t i = 0; i < count; i++) {
		sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)runs[i].first_page);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)runs[i].page_count);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			rc = error_sqlite(cat->db, rc, "save working set");
			goto out_finalize;
		}
	}
	rc = 0;
out_finalize:
	sqlite3_finalize(st);
	return rc;
}

int catalog_working_set_load(struct catalog *cat, int64_t snapshot_id,
			     struct snapfs_page_run **ret_runs, size_t *ret_count)
{
	struct snapfs_page_run *runs = NULL, *bigger;
	size_t count = 0, cap = 0;
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(cat->db,
				"SELECT first_page, page_count FROM working_set "
				"WHERE snapshot_id = ?1 ORDER BY seq", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return error_sqlite(cat->db, rc, "read working set");
	sqlite3_bind_int64(st, 1, snapshot_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t first = sqlite3_column_int64(st, 0);
		int64_t pages = sqlite3_column_int64(st, 1);

		if (first < 0 || pages <= 0) {
			rc = error_set(-SNAPFS_ECORRUPT, "snapshot #%lld: working set "
				       "run %zu: bad pages %lld+%lld",
				       (long long)snapshot_id, count,
				       (long long)first, (long long)pages);
			goto out_free;
		}
		if (count == cap) {
			cap = cap ? cap * 2 : 64;
			bigger = realloc(runs, cap * sizeof(*runs));
			if (!bigger) {
				rc = -ENOMEM;
				goto out_free;
			}
			runs = bigger;
		}
		runs[count].first_page = (uint64_t)first;
		runs[count].page_count = (uint64_t)pages;
		count++;
	}
	if (rc != SQLITE_DONE) {
		rc = error_sqlite(cat->db, rc, "read working set");
		goto out_free;
	}
	sqlite3_finalize(st);
	*ret_runs = runs;
	*ret_count = count;
	return 0;

out_free:
	sqlite3_finalize(st);
	free(runs);
	return rc;
}

/* --- untrusted stores: hardening, schema check, cancellation --- */

/* The schema text that creates a store of version v; entry v. The current
 * version's is schema/snapfs.sql; older ones are frozen copies kept in
 * schema/history/ (see its README). */
static const char *const schema_texts[] = {
	[1] = snapfs_schema_v1_sql,
	[2] = snapfs_schema_v2_sql,
	[3] = snapfs_schema_v3_sql,
	[4] = snapfs_schema_v4_sql,
};

#define SCHEMA_TEXT_COUNT (int)(sizeof(schema_texts) / sizeof(schema_texts[0]))

/* Run this many SQLite virtual-machine steps between looks at the flag. */
#define CANCEL_CHECK_STEPS 1000

/* How often the cancel watcher looks at the flag. */
#define CANCEL_POLL_NS (20 * 1000 * 1000)

static volatile sig_atomic_t *cancel_flag;
/* Every open connection, for the cancel watcher: a statement that is one
 * long step (PRAGMA integrity_check) never calls the progress handler,
 * only sqlite3_interrupt() stops it. */
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static struct catalog *open_list;
static bool watcher_started;

static void catalog_register(struct catalog *cat)
{
	pthread_mutex_lock(&open_lock);
	cat->next_open = open_list;
	if (open_list)
		open_list->prev_open = &cat->next_open;
	cat->prev_open = &open_list;
	open_list = cat;
	pthread_mutex_unlock(&open_lock);
}

static void catalog_unregister(struct catalog *cat)
{
	pthread_mutex_lock(&open_lock);
	if (cat->prev_open) {
		*cat->prev_open = cat->next_open;
		if (cat->next_open)
			cat->next_open->prev_open = cat->prev_open;
		cat->prev_open = NULL;
	}
	pthread_mutex_unlock(&open_lock);
}

/* Each time the flag gets set: interrupt every open connection once. */
static void *cancel_watcher(void *unused)
{
	const struct timespec pause = { .tv_nsec = CANCEL_POLL_NS };

	(void)unused;
	for (;;) {
		while (!catalog_cancelled())
			nanosleep(&pause, NULL);
		pthread_mutex_lock(&open_lock);
		for (struct catalog *c = open_list; c; c = c->next_open)
			sqlite3_interrupt(c->db);
		pthread_mutex_unlock(&open_lock);
		while (catalog_cancelled())
			nanosleep(&pause, NULL);
	}
	return NULL;
}

void snapfs_set_cancel_flag(volatile sig_atomic_t *flag)
{
	pthread_attr_t attr;
	pthread_t thread;

	pthread_mutex_lock(&open_lock);
	cancel_flag = flag;
	if (flag && !watcher_started && pthread_attr_init(&attr) == 0) {
		/* Signals go to the caller's threads, not to this one. */
		sigset_t all, old;

		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		watcher_started = pthread_create(&thread, &attr, cancel_watcher, NULL) == 0;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		pthread_attr_destroy(&attr);
	}
	pthread_mutex_unlock(&open_lock);
}

static bool catalog_cancelled(void)
{
	volatile sig_atomic_t *flag = cancel_flag;

	return flag && *flag;
}

static int cancel_progress(void *unused)
{
	(void)unused;
	return catalog_cancelled();
}

/*
 * SQLite's defensive mode (no writable_schema, no shadow-table writes),
 * trusted_schema off (functions with side effects cannot run from the
 * schema), no extension loading, no triggers at all (snapfs has none, so
 * a planted one could never fire even if the schema check missed it), and
 * the cancel flag looked at while statements run.
 */
static int catalog_harden(struct catalog *cat, const char *path)
{
	static const int settings[][2] = {
		{ SQLITE_DBCONFIG_DEFENSIVE, 1 },
		{ SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0 },
		{ SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0 },
		{ SQLITE_DBCONFIG_ENABLE_TRIGGER, 0 },
	};
	int got, rc;

	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
		rc = sqlite3_db_config(cat->db, settings[i][0], settings[i][1], &got);
		if (rc != SQLITE_OK)
			return error_sqlite(cat->db, rc, path);
		if (got != settings[i][1])
			return error_set(-EIO, "%s: cannot set up a safe connection", path);
	}
	sqlite3_progress_handler(cat->db, CANCEL_CHECK_STEPS, cancel_progress, NULL);
	catalog_register(cat);
	return exec_sql(cat, "PRAGMA trusted_schema = OFF", path);
}

/* The rows of db's sqlite_schema. */
static int schema_read(sqlite3 *db, struct schema *ret)
{
	struct schema s = { 0 };
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(db, "SELECT type, name, tbl_name, sql FROM sqlite_schema",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return error_sqlite(db, rc, "read schema");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		rc = schema_add(&s, (const char *)sqlite3_column_text(st, 0),
				(const char *)sqlite3_column_text(st, 1),
				(const char *)sqlite3_column_text(st, 2),
				(const char *)sqlite3_column_text(st, 3));
		if (rc < 0)
			goto out_release;
	}
	if (rc != SQLITE_DONE) {
		rc = error_sqlite(db, rc, "read schema");
		goto out_release;
	}
	sqlite3_finalize(st);
	schema_sort(&s);
	*ret = s;
	return 0;

out_release:
	sqlite3_finalize(st);
	schema_release(&s);
	return rc;
}

/* The schema of a version-`version` store made at version `from` and
 * brought up by the upgrade steps: built in an in-memory database. */
static int schema_expected(int version, int from, struct schema *ret)
{
	const char *text = NULL;
	sqlite3 *db = NULL;
	int rc;

	if (from == SNAPFS_SCHEMA_VERSION)
		text = snapfs_schema_sql;
	else if (from >= 1 && from < SCHEMA_TEXT_COUNT)
		text = schema_texts[from];
	if (!text)
		return -ENOENT;
	rc = sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		goto out_sqlite;
	rc = sqlite3_exec(db, text, NULL, NULL, NULL);
	for (int v = from + 1; rc == SQLITE_OK && v <= version; v++)
		rc = sqlite3_exec(db, upgrade_steps[v - 2], NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		goto out_sqlite;
	rc = schema_read(db, ret);
	sqlite3_close(db);
	return rc;

out_sqlite:
	rc = error_sqlite(db, rc, "expected schema");
	sqlite3_close(db);
	return rc;
}

/* The current version's schema, built on first use (never freed: one
 * small copy for the life of the process). */
static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static struct schema current_schema;
static bool current_built;

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* Compare the store's schema with the one its version has, made fresh or
 * reached by upgrade steps from an older version. Read in one transaction
 * with user_version. A database of version 0 (new, or not a store) or of a
 * newer version is left to the store's own checks (store.c), which refuse
 * it. */
static int compare_schema(struct catalog *cat, const char *path, int version)
{
	struct schema got = { 0 }, want = { 0 };
	char diff[600] = "";
	int rc;

	rc = schema_read(cat->db, &got);
	if (rc < 0)
		return rc;
	/* The usual case first, from a copy made once per process. */
	pthread_mutex_lock(&current_lock);
	rc = 0;
	if (!current_built && version == SNAPFS_SCHEMA_VERSION) {
		rc = schema_expected(version, version, &current_schema);
		current_built = rc == 0;
	}
	if (rc == 0 && version == SNAPFS_SCHEMA_VERSION &&
	    schema_compare(&current_schema, &got, diff, sizeof(diff)) == 0) {
		pthread_mutex_unlock(&current_lock);
		goto out_release;
	}
	pthread_mutex_unlock(&current_lock);
	if (rc < 0)
		goto out_release;
	for (int from = version; from >= 1; from--) {
		char other[600];

		schema_release(&want);
		rc = schema_expected(version, from, &want);
		if (rc == -ENOENT)
			continue;
		if (rc < 0)
			goto out_release;
		if (schema_compare(&want, &got, from == version ? diff : other,
				   from == version ? sizeof(diff) : sizeof(other)) == 0)
			goto out_release;
	}
	rc = error_set(-SNAPFS_ENOTSTORE, "%s: not the schema of a version %d store: %s "
		       "(edited or made outside snapfs; refused, not modified)",
		       base_name(path), version, diff[0] ? diff : "no schema known");
out_release:
	schema_release(&want);
	schema_release(&got);
	return rc;
}

static int catalog_check_schema(struct catalog *cat, const char *path)
{
	int64_t version;
	int rc;

	rc = exec_sql(cat, "BEGIN", path);
	if (rc < 0)
		return rc;
	rc = query_int(cat, "PRAGMA user_version", &version, "schema version");
	if (rc == 0 && version >= 1 && version <= SNAPFS_SCHEMA_VERSION)
		rc = compare_schema(cat, path, (int)version);
	sqlite3_exec(cat->db, "COMMIT", NULL, NULL, NULL);
	return rc;
}

/* --- Claims: snapshots removed while a reader holds them ------------------
 * rm hides a claimed snapshot instead of deleting it (table removed); gc
 * deletes it once nobody claims it (claims.c has the locks). Prepared
 * on each use: these run once per rm or gc. */

/* Run sql with ?1 = a, ?2 = b text (NULL: unbound), ?3 = c text. */
static int exec_bound(struct catalog *cat, const char *sql, int64_t a,
		      const char *b, const char *c, const char *what)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(cat->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return error_sqlite(cat->db, rc, what);
	sqlite3_bind_int64(st, 1, a);
	if (b)
		sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
	if (c)
		sqlite3_bind_text(st, 3, c, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return error_sqlite(cat->db, rc, what);
	return 0;
}

int catalog_snapshot_hide(struct catalog *cat, int64_t id, const char *name,
			  const char *removed_at)
{
	int rc;

	rc = exec_bound(cat, "INSERT INTO removed (snapshot_id, name, removed_at) "
			"VALUES (?1, ?2, ?3)", id, name, removed_at, "hide snapshot");
	/* '.removed-<id>': no valid name starts with '.', ids are never
	 * reused: the name is free at once and this one never clashes. */
	if (rc == 0)
		rc = exec_bound(cat, "UPDATE snapshots SET name = '.removed-' || id "
				"WHERE id = ?1", id, NULL, NULL, "hide snapshot");
	/* As a delete would: children have no parent any more. */
	if (rc == 0)
		rc = exec_bound(cat, "UPDATE snapshots SET parent_id = NULL "
				"WHERE parent_id = ?1", id, NULL, NULL, "hide snapshot");
	return rc;
}

int catalog_snapshot_delete_id(struct catalog *cat, int64_t id)
{
	int rc = exec_bound(cat, "DELETE FROM snapshots WHERE id = ?1", id, NULL, NULL,
			    "remove snapshot");

	if (rc == 0 && sqlite3_changes(cat->db) == 0)
		return error_set(-ENOENT, "snapshot #%lld: no such snapshot", (long long)id);
	return rc;
}

int catalog_removed_list(struct catalog *cat, int64_t **ret_ids, size_t *ret_count)
{
	int64_t *ids = NULL, *bigger;
	size_t count = 0, cap = 0;
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(cat->db, "SELECT snapshot_id FROM removed ORDER BY snapshot_id",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return error_sqlite(cat->db, rc, "list removed snapshots");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			bigger = realloc(ids, cap * sizeof(*ids));
			if (!bigger) {
				rc = -ENOMEM;
				goto out_free;
			}
			ids = bigger;
		}
		ids[count++] = sqlite3_column_int64(st, 0);
	}
	if (rc != SQLITE_DONE) {
		rc = error_sqlite(cat->db, rc, "list removed snapshots");
		goto out_free;
	}
	sqlite3_finalize(st);
	*ret_ids = ids;
	*ret_count = count;
	return 0;

out_free:
	sqlite3_finalize(st);
	free(ids);
	return rc;
}

int catalog_removed_kept(struct catalog *cat, uint64_t *ret_blobs, uint64_t *ret_bytes)
{
	/* Blobs that only removed snapshots still use: what gc would have
	 * given back without their readers. */
	static const char sql[] =
		"SELECT count(*), coalesce(sum(b.stored_size), 0) FROM blobs b "
		"WHERE b.id IN (SELECT m.blob_id FROM page_map m JOIN removed r "
		"ON r.snapshot_id = m.snapshot_id) AND NOT EXISTS (SELECT 1 FROM "
		"page_map m WHERE m.blob_id = b.id AND m.snapshot_id NOT IN "
		"(SELECT snapshot_id FROM removed))";
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(cat->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return error_sqlite(cat->db, rc, "count kept blobs");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*ret_blobs = (uint64_t)sqlite3_column_int64(st, 0);
		*ret_bytes = (uint64_t)sqlite3_column_int64(st, 1);
		rc = SQLITE_DONE;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return error_sqlite(cat->db, rc, "count kept blobs");
	return 0;
}

/* --- the WAL on a writer's way out (issue 15) --- */

int catalog_wal_truncate(struct catalog *cat)
{
	int rc;

	/* Without waiting: a writer, or a reader still on an older snapshot
	 * (a read transaction open), makes it give up at once with
	 * SQLITE_BUSY after copying what it can; the next writer then
	 * starts the WAL over and cuts it to journal_size_limit. */
	sqlite3_busy_handler(cat->db, NULL, NULL);
	/* After Ctrl-C too: out of the cancel watcher's reach, and its
	 * pending sqlite3_interrupt() spent on a statement of no weight
	 * (a checkpoint gives up while one is pending). */
	catalog_unregister(cat);
	sqlite3_exec(cat->db, "SELECT 1", NULL, NULL, NULL);
	rc = sqlite3_wal_checkpoint_v2(cat->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	sqlite3_busy_handler(cat->db, busy_wait, cat);
	if (rc == SQLITE_OK)
		return 0;
	if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
		return -EBUSY;
	return error_sqlite(cat->db, rc, "checkpoint");
}

/* --- process notes (issue 17, schema version 4) ---------------------------
 * Prepared on each use: written once per save, read once per core opened
 * or snapshot sealed. */

int catalog_core_notes_insert(struct catalog *cat, int64_t snapshot_id,
			      const struct core_note_list *notes)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (notes->count == 0)
		return 0;
	rc = sqlite3_prepare_v2(cat->db,
				"INSERT INTO core_notes (snapshot_id, seq, owner, type, descr) "
				"VALUES (?1, ?2, ?3, ?4, ?5)", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return error_sqlite(cat->db, rc, "save process notes");
	sqlite3_bind_int64(st, 1, snapshot_id);
	for (size_t i = 0; i < notes->count; i++) {
		const struct core_note *n = &notes->notes[i];

		sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
		sqlite3_bind_text(st, 3, n->owner, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)n->type);
		sqlite3_bind_blob64(st, 5, n->len ? (const void *)n->descr : "", n->len,
				    SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			rc = error_sqlite(cat->db, rc, "save process notes");
			goto out_finalize;
		}
	}
	rc = 0;
out_finalize:
	sqlite3_finalize(st);
	return rc;
}

int catalog_core_notes_load(struct catalog *cat, int64_t snapshot_id,
			    struct core_note_list *list)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(cat->db,
				"SELECT owner, type, descr FROM core_notes "
				"WHERE snapshot_id = ?1 ORDER BY seq", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return error_sqlite(cat->db, rc, "read process notes");
	sqlite3_bind_int64(st, 1, snapshot_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *owner = (const char *)sqlite3_column_text(st, 0);
		int64_t type = sqlite3_column_int64(st, 1);
		const void *descr = sqlite3_column_blob(st, 2);
		int len = sqlite3_column_bytes(st, 2);

		if (sqlite3_column_type(st, 0) != SQLITE_TEXT ||
		    sqlite3_column_type(st, 1) != SQLITE_INTEGER ||
		    (sqlite3_column_type(st, 2) != SQLITE_BLOB && len != 0) || !owner ||
		    type < 0 || type > UINT32_MAX || len < 0) {
			rc = error_set(-SNAPFS_ECORRUPT, "snapshot #%lld: process note %zu: "
				       "not a note", (long long)snapshot_id, list->count);
			goto out_finalize;
		}
		rc = core_note_list_add(list, owner, (uint32_t)type, descr, (size_t)len);
		if (rc == -EINVAL)
			rc = error_set(-SNAPFS_ECORRUPT, "snapshot #%lld: process note %zu: "
				       "owner or size out of bounds", (long long)snapshot_id,
				       list->count);
		if (rc < 0)
			goto out_finalize;
	}
	if (rc != SQLITE_DONE) {
		rc = error_sqlite(cat->db, rc, "read process notes");
		goto out_finalize;
	}
	rc = 0;
out_finalize:
	sqlite3_finalize(st);
	return rc;
}

/* --- Remote stores (schema v5: tables remote, remote_packs) ---------------
 * Prepared on each use: these run once per open, save or new pack. */

int catalog_remote_get(struct catalog *cat, char **ret_url, int64_t *ret_generation,
		       bool *ret_dirty)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(cat->db, "SELECT url, generation, dirty FROM remote WHERE id = 1",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return error_sqlite(cat->db, rc, "read remote");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *url = (const char *)sqlite3_column_text(st, 0);

		rc = 0;
		if (ret_url) {
			*ret_url = url ? strdup(url) : NULL;
			if (!*ret_url)
				rc = -ENOMEM;
		}
		if (ret_generation)
			*ret_generation = sqlite3_column_int64(st, 1);
		if (ret_dirty)
			*ret_dirty = sqlite3_column_int64(st, 2) != 0;
	} else if (rc == SQLITE_DONE) {
		rc = -ENOENT;
	} else {
		rc = error_sqlite(cat->db, rc, "read remote");
	}
	sqlite3_finalize(st);
	return rc;
}

int catalog_remote_set(struct catalog *cat, const char *url, int64_t generation, bool dirty)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(cat->db,
				"INSERT INTO remote (id, url, generation, dirty) VALUES (1, ?1, ?2, ?3) "
				"ON CONFLICT (id) DO UPDATE SET url = excluded.url, "
				"generation = excluded.generation, dirty = excluded.dirty",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return error_sqlite(cat->db, rc, "record remote");
	sqlite3_bind_text(st, 1, url, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, generation);
	sqlite3_bind_int(st, 3, dirty);
	rc = sqlite3_step(st);
	rc = rc == SQLITE_DONE ? 0 : error_sqlite(cat->db, rc, "record remote");
	sqlite3_finalize(st);
	return rc;
}

int catalog_remote_mark_dirty(struct catalog *cat)
{
	return exec_sql(cat, "UPDATE remote SET dirty = 1 WHERE id = 1", "record remote");
}

int catalog_remote_pack_get(struct catalog *cat, int64_t pack_id, char **ret_object,
			    uint64_t *ret_length)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(cat->db,
				"SELECT r.object, p.length FROM remote_packs r "
				"JOIN packs p ON p.id = r.pack_id WHERE r.pack_id = ?1",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return error_sqlite(cat->db, rc, "read remote packs");
	sqlite3_bind_int64(st, 1, pack_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *object = (const char *)sqlite3_column_text(st, 0);
		int64_t length = sqlite3_column_int64(st, 1);

		*ret_object = object ? strdup(object) : NULL;
		*ret_length = length > 0 ? (uint64_t)length : 0;
		rc = *ret_object ? 0 : -ENOMEM;
	} else if (rc == SQLITE_DONE) {
		rc = -ENOENT;
	} else {
		rc = error_sqlite(cat->db, rc, "read remote packs");
	}
	sqlite3_finalize(st);
	return rc;
}

int catalog_remote_object_named(struct catalog *cat, const char *object)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(cat->db, "SELECT 1 FROM remote_packs WHERE object = ?1", -1, &st,
				NULL);
	if (rc != SQLITE_OK)
		return error_sqlite(cat->db, rc, "read remote packs");
	sqlite3_bind_text(st, 1, object, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	rc = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : error_sqlite(cat->db, rc, "read remote packs");
	sqlite3_finalize(st);
	return rc;
}

int catalog_remote_pack_put(struct catalog *cat, int64_t pack_id, const char *object)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(cat->db,
				"INSERT INTO remote_packs (pack_id, object) VALUES (?1, ?2)",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return error_sqlite(cat->db, rc, "record remote pack");
	sqlite3_bind_int64(st, 1, pack_id);
	sqlite3_bind_text(st, 2, object, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	rc = rc == SQLITE_DONE ? 0 : error_sqlite(cat->db, rc, "record remote pack");
	sqlite3_finalize(st);
	return rc;
}

int catalog_vacuum_into(struct catalog *cat, const char *path)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(cat->db, "VACUUM INTO ?1", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return error_sqlite(cat->db, rc, "copy the index");
	sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	rc = rc == SQLITE_DONE ? 0 : error_sqlite(cat->db, rc, "copy the index");
	sqlite3_finalize(st);
	return rc;
}

int catalog_copy_from(struct catalog *dest, const char *src_path)
{
	sqlite3_backup *b;
	sqlite3 *src = NULL;
	int rc;

	rc = sqlite3_open_v2(src_path, &src, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		rc = error_sqlite(src, rc, "read the pulled index");
		sqlite3_close(src);
		return rc;
	}
	b = sqlite3_backup_init(dest->db, "main", src, "main");
	if (!b) {
		rc = error_sqlite(dest->db, sqlite3_errcode(dest->db), "install the pulled index");
		sqlite3_close(src);
		return rc;
	}
	/* All pages in one step: readers of the store see the old index or
	 * the new one, never a mix (it is one write transaction). */
	while ((rc = sqlite3_backup_step(b, -1)) == SQLITE_BUSY || rc == SQLITE_LOCKED)
		sqlite3_sleep(BUSY_POLL_MS);
	sqlite3_backup_finish(b);
	rc = rc == SQLITE_DONE ? 0 : error_sqlite(dest->db, rc, "install the pulled index");
	sqlite3_close(src);
	return rc;
}
