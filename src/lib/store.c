// SPDX-License-Identifier: MIT
/*
 * Stores: creating and opening the snapfs.db of a store directory, schema
 * version checks, the pool of read connections, and the snapshot-level
 * operations that need nothing more (get, list, remove, segments, summary).
 */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "blob_cache.h"
#include "blob_store.h"
#include "catalog.h"
#include "claims.h"
#include "decode_ahead.h"
#include "digest.h"
#include "errors.h"
#include "prune.h"
#include "remote.h"
#include "seal.h"
#include "upgrade.h"

struct snapfs_store {
	char *dir;
	char *db_path;
	bool readonly;
	struct catalog *writer;         /* NULL when read-only */
	pthread_mutex_t pool_lock;      /* guards idle[] */
	struct catalog **idle;          /* read connections not in use */
	size_t idle_count, idle_cap;
	struct blob_store *blobs;       /* the pack files */
	struct remote *remote;          /* NULL for a local store */
	char *remote_url;
	struct blob_cache *cache;
	pthread_mutex_t ahead_lock;     /* guards ahead, ahead_tried */
	struct decode_ahead *ahead;     /* started by the first sequential read */
	bool ahead_tried;
	pthread_mutex_t watch_lock;     /* guards watcher */
	struct catalog *watcher;        /* polled for data_version */
	struct stat dir_st, db_st;      /* what dir and db_path were at open */
	atomic_bool replaced;           /* either is another file now */
	_Atomic int64_t checked_ms;     /* when snapfs_store_replaced() last looked */
};

static int store_same_files(struct snapfs_store *store);
static int store_remote_attach(struct snapfs_store *store);

void store_now_iso8601(char *buf, size_t cap)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static char *path_join(const char *dir, const char *file)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, file) < 0)
		return NULL;
	return p;
}

int snapfs_store_create(const char *dir)
{
	char created_at[32], *db_path;
	struct catalog *cat = NULL;
	struct stat st;
	int rc;

	error_clear();
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return error_set(-errno, "store '%s': %s", dir, errno_text(errno));
	if (stat(dir, &st) < 0)
		return error_set(-errno, "store '%s': %s", dir, errno_text(errno));
	if (!S_ISDIR(st.st_mode))
		return error_set(-ENOTDIR, "store '%s': not a directory", dir);
	db_path = path_join(dir, SNAPFS_DB_FILE);
	if (!db_path)
		return -ENOMEM;
	if (access(db_path, F_OK) == 0) {
		rc = error_set(-EEXIST, "store '%s': already a store", dir);
		goto out_free;
	}
	rc = catalog_open(db_path, false, &cat);
	if (rc < 0)
		goto out_unlink;
	store_now_iso8601(created_at, sizeof(created_at));
	rc = catalog_create_schema(cat, created_at);
	if (rc < 0)
		goto out_unlink;
	rc = claims_create(dir);
	if (rc < 0)
		goto out_unlink;
	catalog_close(cat);
	free(db_path);
	return 0;

out_unlink:
	error_prefix(rc, "store '%s'", dir);
	catalog_close(cat);
	unlink(db_path);
	for (const char *suffix = "-wal"; suffix; suffix = suffix[1] == 'w' ? "-shm" : NULL) {
		char *p;

		if (asprintf(&p, "%s%s", db_path, suffix) >= 0) {
			unlink(p);
			free(p);
		}
	}
out_free:
	free(db_path);
	return rc;
}

/* Check that path is a store this library can use; version in *ret. */
static int store_check(const char *dir, const char *db_path, int *ret_version)
{
	struct catalog *cat = NULL;
	struct stat st;
	int rc, version;

	if (stat(dir, &st) < 0)
		return error_set(-SNAPFS_ENOTSTORE, "'%s': not a store: %s (create one with 'snapfs init')",
				 dir, errno_text(errno));
	if (!S_ISDIR(st.st_mode))
		return error_set(-SNAPFS_ENOTSTORE,
				 "'%s': not a store: not a directory (create one with 'snapfs init')", dir);
	if (stat(db_path, &st) < 0) {
		if (errno == ENOENT)
			return error_set(-SNAPFS_ENOTSTORE,
					 "'%s': not a store: no %s (create one with 'snapfs init')",
					 dir, SNAPFS_DB_FILE);
		return error_set(-errno, "store '%s': %s", dir, errno_text(errno));
	}
	if (access(db_path, R_OK) < 0)
		return error_set(-errno, "store '%s': %s", dir, errno_text(errno));
	rc = catalog_open(db_path, true, &cat);
	if (rc < 0)
		return error_prefix(rc, "store '%s'", dir);
	rc = catalog_check_store(cat);
	if (rc == -SNAPFS_ENOTSTORE) {
		rc = error_set(rc, "'%s': %s is not a snapfs database (create a store with 'snapfs init')",
			       dir, SNAPFS_DB_FILE);
		goto out_close;
	}
	if (rc < 0) {
		rc = error_prefix(rc, "store '%s'", dir);
		goto out_close;
	}
	rc = catalog_schema_version(cat, &version);
	if (rc < 0) {
		error_prefix(rc, "store '%s'", dir);
		goto out_close;
	}
	if (version > SNAPFS_SCHEMA_VERSION) {
		rc = error_set(-SNAPFS_ENEWER,
			       "store '%s': schema version %d is newer than this snapfs supports (%d); "
			       "use a newer snapfs, the store was not modified",
			       dir, version, SNAPFS_SCHEMA_VERSION);
		goto out_close;
	}
	if (version < 1) {
		rc = error_set(-SNAPFS_ENOTSTORE, "store '%s': no schema version", dir);
		goto out_close;
	}
	*ret_version = version;
out_close:
	catalog_close(cat);
	return rc;
}

int snapfs_store_open(const char *dir, unsigned flags,
		      struct snapfs_store **ret_store)
{
	struct snapfs_store *store;
	uint32_t page_size;
	int rc, version = 0;

	error_clear();
	store = calloc(1, sizeof(*store));
	if (!store)
		return -ENOMEM;
	pthread_mutex_init(&store->pool_lock, NULL);
	pthread_mutex_init(&store->ahead_lock, NULL);
	pthread_mutex_init(&store->watch_lock, NULL);
	store->readonly = flags & SNAPFS_OPEN_READONLY;
	store->dir = strdup(dir);
	store->db_path = path_join(dir, SNAPFS_DB_FILE);
	store->cache = blob_cache_new(SNAPFS_DEFAULT_CACHE_SIZE);
	if (!store->dir || !store->db_path || !store->cache ||
	    blob_store_open(dir, !store->readonly, &store->blobs) < 0) {
		rc = -ENOMEM;
		goto out_close;
	}
	/* What the store is now: every connection opened later must open
	 * this very file (store_same_files). */
	if (stat(dir, &store->dir_st) < 0 || stat(store->db_path, &store->db_st) < 0)
		memset(&store->db_st, 0, sizeof(store->db_st));
	rc = store_check(dir, store->db_path, &version);
	if (rc < 0)
		goto out_close;
	if (!store->readonly) {
		rc = catalog_open(store->db_path, false, &store->writer);
		if (rc < 0) {
			error_prefix(rc, "store '%s'", dir);
			goto out_close;
		}
		rc = store_same_files(store);
		if (rc < 0)
			goto out_close;
		rc = upgrade_store(store->writer, store->blobs, version);
		if (rc < 0) {
			error_prefix(rc, "store '%s'", dir);
			goto out_close;
		}
		rc = catalog_page_size(store->writer, &page_size);
		if (rc < 0) {
			error_prefix(rc, "store '%s'", dir);
			goto out_close;
		}
		/* Readers find it there, even where they cannot make it. */
		rc = claims_create(dir);
		if (rc < 0)
			goto out_close;
	} else if (version != SNAPFS_SCHEMA_VERSION) {
		rc = error_set(-SNAPFS_ENEWER,
			       "store '%s': schema version %d needs an upgrade: run 'snapfs gc %s' "
			       "(it upgrades the store in place)", dir, version, dir);
		goto out_close;
	}
	rc = store_remote_attach(store);
	if (rc < 0)
		goto out_close;
	*ret_store = store;
	return 0;

out_close:
	snapfs_store_close(store);
	return rc;
}

void snapfs_store_close(struct snapfs_store *store)
{
	if (!store)
		return;
	/* First: its workers use the connections and the cache. */
	decode_ahead_free(store->ahead);
	pthread_mutex_destroy(&store->ahead_lock);
	for (size_t i = 0; i < store->idle_count; i++)
		catalog_close(store->idle[i]);
	free(store->idle);
	/* Give the WAL's space back now, even while a mount (another
	 * connection) keeps SQLite from deleting it at close. */
	if (store->writer)
		catalog_wal_truncate(store->writer);
	catalog_close(store->writer);
	catalog_close(store->watcher);
	pthread_mutex_destroy(&store->watch_lock);
	blob_cache_free(store->cache);
	blob_store_close(store->blobs);
	remote_close(store->remote);
	free(store->remote_url);
	blob_store_thread_release();
	pthread_mutex_destroy(&store->pool_lock);
	free(store->db_path);
	free(store->dir);
	free(store);
}

void snapfs_store_set_cache_size(struct snapfs_store *store, size_t bytes)
{
	blob_cache_set_limit(store->cache, bytes);
}

int store_load_blob(void *ctx, const struct blob_loc *loc, bool sequential,
		    unsigned char *dst)
{
	return blob_store_load(ctx, loc, sequential, dst);
}

static int add_dict(void *ctx, const struct dict_row *row)
{
	/* One that fails its checksum stays unknown: its blobs read as
	 * damage and verify names it. */
	if (row->codec != SNAPFS_CODEC_ZSTD || blob_checksum(row->data, row->len) != row->checksum)
		return 0;
	return blob_store_add_dict(ctx, row->id, row->data, row->len);
}

int store_load_dicts(struct snapfs_store *store, struct catalog *cat)
{
	return catalog_dict_each(cat, blob_store_dict_max(store->blobs), false, add_dict,
				 store->blobs);
}

struct blob_store *store_blobs(struct snapfs_store *store)
{
	return store->blobs;
}

struct decode_ahead *store_decode_ahead(struct snapfs_store *store)
{
	struct decode_ahead *da;

	pthread_mutex_lock(&store->ahead_lock);
	if (!store->ahead_tried) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		store->ahead_tried = true;
		/* One worker per core, a few at most: they only keep a
		 * sequential reader's next blobs decoded. */
		if (decode_ahead_new(store->cache, store->blobs,
				     cpus < 1 ? 1 : cpus > 4 ? 4 : (unsigned)cpus,
				     &store->ahead) < 0)
			store->ahead = NULL;
	}
	da = store->ahead;
	pthread_mutex_unlock(&store->ahead_lock);
	return da;
}

struct catalog *store_writer(struct snapfs_store *store)
{
	return store->writer;
}

struct blob_cache *store_cache(struct snapfs_store *store)
{
	return store->cache;
}

const char *store_dir(const struct snapfs_store *store)
{
	return store->dir;
}

/* Has st the same file as recorded? */
static bool same_file(const char *path, const struct stat *recorded)
{
	struct stat st;

	return stat(path, &st) == 0 && st.st_dev == recorded->st_dev &&
	       st.st_ino == recorded->st_ino;
}

/*
 * One database for the life of an open store: 0 while the store directory
 * and its snapfs.db are the files they were at open, else -EIO from then
 * on. Connections opened by path after a replacement would read another
 * database and mix its pages with the first one's, so none is opened; the
 * connections already open keep the old file and stay consistent, but
 * are not used any more either: every read fails the same way.
 */
static int store_same_files(struct snapfs_store *store)
{
	if (!atomic_load(&store->replaced) &&
	    (!same_file(store->dir, &store->dir_st) ||
	     !same_file(store->db_path, &store->db_st)))
		atomic_store(&store->replaced, true);
	if (atomic_load(&store->replaced))
		return error_set(-EIO, "store '%s': %s was moved or replaced since it was "
				 "opened: not reading from another database (open the "
				 "store again)", store->dir, SNAPFS_DB_FILE);
	return 0;
}

/* How often snapfs_store_replaced() looks at the files again. */
#define REPLACED_CHECK_MS 100

bool snapfs_store_replaced(struct snapfs_store *store)
{
	struct timespec now;
	int64_t ms;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	if (!atomic_load(&store->replaced) &&
	    ms - atomic_load(&store->checked_ms) >= REPLACED_CHECK_MS) {
		atomic_store(&store->checked_ms, ms);
		store_same_files(store);
	}
	/* Again when replaced: the message for this thread. */
	return atomic_load(&store->replaced) && store_same_files(store) < 0;
}

int store_reader_get(struct snapfs_store *store, struct catalog **ret_cat)
{
	struct catalog *cat = NULL;
	int rc;

	if (atomic_load(&store->replaced))
		return store_same_files(store);
	pthread_mutex_lock(&store->pool_lock);
	if (store->idle_count > 0)
		cat = store->idle[--store->idle_count];
	pthread_mutex_unlock(&store->pool_lock);
	if (cat) {
		*ret_cat = cat;
		return 0;
	}
	rc = catalog_open(store->db_path, true, &cat);
	if (rc < 0)
		return error_prefix(rc, "store '%s'", store->dir);
	/* Checked after the open: the connection has the file it checked. */
	rc = store_same_files(store);
	if (rc < 0) {
		catalog_close(cat);
		return rc;
	}
	*ret_cat = cat;
	return 0;
}

void store_reader_put(struct snapfs_store *store, struct catalog *cat)
{
	struct catalog **bigger;

	pthread_mutex_lock(&store->pool_lock);
	if (store->idle_count == store->idle_cap) {
		size_t cap = store->idle_cap ? store->idle_cap * 2 : 8;

		bigger = realloc(store->idle, cap * sizeof(*bigger));
		if (!bigger) {
			pthread_mutex_unlock(&store->pool_lock);
			catalog_close(cat);
			return;
		}
		store->idle = bigger;
		store->idle_cap = cap;
	}
	store->idle[store->idle_count++] = cat;
	pthread_mutex_unlock(&store->pool_lock);
}

int64_t snapfs_store_generation(struct snapfs_store *store)
{
	int64_t version = 0;
	int rc = 0;

	/* data_version is per connection: always poll the same one. */
	pthread_mutex_lock(&store->watch_lock);
	if (!store->watcher)
		rc = catalog_open(store->db_path, true, &store->watcher);
	/* Polled about once a second by a mount: a replaced database is
	 * noticed within that, even without new connections. */
	if (rc == 0)
		rc = store_same_files(store);
	if (rc == 0)
		rc = catalog_data_version(store->watcher, &version);
	pthread_mutex_unlock(&store->watch_lock);
	return rc < 0 ? rc : version;
}

/* The value of call, made on a reader connection borrowed for it and
 * named cat inside it; or the error of borrowing one. */
#define WITH_READER(store, call) ({                                       \
	struct catalog *cat;                                               \
	int with_reader_rc;                                                \
									   \
	error_clear();                                                     \
	with_reader_rc = store_reader_get((store), &cat);                  \
	if (with_reader_rc == 0) {                                         \
		with_reader_rc = (call);                                   \
		store_reader_put((store), cat);                            \
	}                                                                  \
	with_reader_rc;                                                    \
})

/* ---- remote stores (remote.c) ---- */

static int remote_lookup(void *ctx, int64_t pack_id, char **ret_object, uint64_t *ret_length)
{
	struct snapfs_store *store = ctx;
	struct catalog *cat;
	int rc = store_reader_get(store, &cat);

	if (rc < 0)
		return rc;
	rc = catalog_remote_pack_get(cat, pack_id, ret_object, ret_length);
	store_reader_put(store, cat);
	if (rc == -ENOENT)
		rc = error_set(-SNAPFS_ECORRUPT, "pack %" PRId64 ": no object in the bucket's index",
			       pack_id);
	return rc;
}

/* A remote store: bind to its bucket, pull the newest index (where the
 * store can be written), and read packs through the bucket from now on.
 * A local store: nothing. */
static int store_remote_attach(struct snapfs_store *store)
{
	struct catalog *cat = store->writer, *own = NULL;
	struct pack_backend be;
	bool can_pull = true;
	int rc;

	if (!cat) {
		rc = catalog_open(store->db_path, false, &own);
		if (rc < 0) {
			can_pull = false;
			rc = catalog_open(store->db_path, true, &own);
			if (rc < 0)
				return error_prefix(rc, "store '%s'", store->dir);
		}
		cat = own;
	}
	rc = catalog_remote_get(cat, &store->remote_url, NULL, NULL);
	if (rc == -ENOENT) {
		rc = 0;
		goto out_close;
	}
	if (rc == 0)
		rc = remote_open(store->dir, store->remote_url, remote_lookup, store,
				 &store->remote);
	if (rc == 0 && can_pull)
		rc = remote_pull(store->remote, cat, false);
	if (rc == 0) {
		remote_backend(store->remote, &be);
		blob_store_set_backend(store->blobs, &be);
	}
	if (rc < 0)
		error_prefix(rc, "store '%s'", store->dir);
out_close:
	catalog_close(own);
	return rc;
}

struct remote *store_remote(struct snapfs_store *store)
{
	return store->remote;
}

const char *snapfs_store_remote_url(const struct snapfs_store *store)
{
	return store->remote ? store->remote_url : NULL;
}

int64_t snapfs_store_remote_generation(struct snapfs_store *store)
{
	int64_t generation = 0;

	if (!store->remote)
		return 0;
	if (WITH_READER(store, catalog_remote_get(cat, NULL, &generation, NULL)) < 0)
		return 0;
	return generation;
}

int snapfs_store_create_remote(const char *dir, const char *url)
{
	struct catalog *cat = NULL;
	char *db_path;
	int rc;

	rc = snapfs_store_create(dir);
	if (rc < 0)
		return rc;
	db_path = path_join(dir, SNAPFS_DB_FILE);
	if (!db_path)
		return -ENOMEM;
	rc = catalog_open(db_path, false, &cat);
	if (rc == 0)
		rc = remote_init(dir, url, cat);
	catalog_close(cat);
	if (rc < 0) {
		/* Nothing half made: the store goes with its error. */
		error_prefix(rc, "store '%s'", dir);
		for (const char *suffix = ""; suffix;
		     suffix = !*suffix ? "-wal" : suffix[1] == 'w' ? "-shm" : NULL) {
			char *p;

			if (asprintf(&p, "%s%s", db_path, suffix) >= 0) {
				unlink(p);
				free(p);
			}
		}
	}
	free(db_path);
	return rc;
}

/* Removing and renaming are refused on a remote store: the bucket's index
 * only grows (no publish step for them yet). */
static int refuse_remote(struct snapfs_store *store, const char *what)
{
	if (!store->remote)
		return 0;
	return error_set(-ENOTSUP, "%s: store '%s' is remote (%s): snapshots are not removed "
			 "or renamed there (not supported yet)", what, store->dir, store->remote_url);
}

int snapfs_snapshot_check(struct snapfs_store *store, const struct snapfs_snapshot *snap)
{
	return WITH_READER(store, snapshot_check(cat, snap));
}

int store_blob_loc(struct snapfs_store *store, int64_t id, struct blob_loc *ret_loc)
{
	return WITH_READER(store, catalog_blob_loc(cat, id, ret_loc));
}

int snapfs_snapshot_get(struct snapfs_store *store, const char *name,
			struct snapfs_snapshot *ret_snap)
{
	return WITH_READER(store, catalog_snapshot_get(cat, name, ret_snap));
}

int snapfs_snapshot_list(struct snapfs_store *store,
			 struct snapfs_snapshot **ret_snaps, size_t *ret_count)
{
	return WITH_READER(store, catalog_snapshot_list(cat, ret_snaps, ret_count));
}

int snapfs_segments_get(struct snapfs_store *store, int64_t snapshot_id,
			struct snapfs_segment **ret_segs, size_t *ret_count)
{
	return WITH_READER(store, catalog_segments_get(cat, snapshot_id, ret_segs, ret_count));
}

/* Inside rm's transaction: delete the snapshot name, or hide it if a
 * reader claims it (the claim taken stays on claims_fd until it is closed
 * after the commit). Its children lose their parent either way: each child
 * whose seal held before is sealed again; one that was already changed
 * outside snapfs stays caught. 1 when hidden, 0 when deleted. */
static int remove_one(struct catalog *cat, int claims_fd, const char *name)
{
	struct snapfs_snapshot snap, child;
	int64_t *ids = NULL;
	size_t count = 0;
	bool *sound = NULL;
	bool hidden = false;
	char now[32];
	int rc;

	rc = catalog_snapshot_get(cat, name, &snap);
	if (rc < 0)
		return rc;
	snapfs_snapshot_release(&snap);
	rc = catalog_snapshot_children(cat, name, &ids, &count);
	if (rc < 0)
		return rc;
	sound = calloc(count + 1, sizeof(*sound));
	if (!sound) {
		rc = -ENOMEM;
		goto out_free;
	}
	for (size_t i = 0; i < count; i++) {
		rc = catalog_snapshot_get_id(cat, ids[i], &child);
		if (rc < 0)
			goto out_free;
		sound[i] = snapshot_check(cat, &child) == 0;
		snapfs_snapshot_release(&child);
	}
	error_clear();
	rc = claim_try(claims_fd, snap.id, true);
	if (rc == 0) {
		rc = catalog_snapshot_delete_id(cat, snap.id);
	} else if (rc == -EAGAIN) {
		store_now_iso8601(now, sizeof(now));
		rc = catalog_snapshot_hide(cat, snap.id, name, now);
		hidden = true;
	}
	for (size_t i = 0; rc == 0 && i < count; i++) {
		if (sound[i])
			rc = snapshot_reseal(cat, ids[i]);
	}
out_free:
	free(sound);
	free(ids);
	return rc < 0 ? rc : hidden;
}

int snapfs_snapshot_remove(struct snapfs_store *store,
			   const char *const *names, size_t count)
{
	struct catalog *cat = store->writer;
	int claims_fd, rc, hidden = 0;

	error_clear();
	if (!cat)
		return error_set(-EROFS, "store '%s': opened read-only", store->dir);
	if (store->remote)
		return refuse_remote(store, "rm");
	for (size_t i = 0; i < count; i++)
		if (!snapfs_name_valid(names[i]))
			return error_set(-SNAPFS_EBADNAME, "snapshot '%s': invalid name", names[i]);
	rc = claims_open(store->dir, true, &claims_fd);
	if (rc < 0)
		return rc;
	rc = catalog_begin_write(cat);
	if (rc < 0)
		goto out_claims;
	for (size_t i = 0; i < count; i++) {
		rc = remove_one(cat, claims_fd, names[i]);
		if (rc < 0)
			goto out_rollback;
		hidden += rc;
	}
	/* The claims are let go only after the commit: a reader that waited
	 * for one then finds the snapshot gone. */
	rc = catalog_commit(cat);
	claims_close(claims_fd);
	return rc < 0 ? rc : hidden;

out_rollback:
	catalog_rollback(cat);
out_claims:
	claims_close(claims_fd);
	return rc;
}

static int rename_one(struct catalog *cat, const char *old_name,
		      const char *new_name)
{
	struct snapfs_snapshot snap;
	int rc = catalog_snapshot_get(cat, old_name, &snap);

	if (rc == -ENOENT)
		return error_set(rc, "snapshot '%s': no such snapshot", old_name);
	if (rc < 0)
		return rc;
	/* Reseal only what snapfs sealed: a snapshot changed outside snapfs
	 * stays refused under any name. */
	rc = snapshot_check(cat, &snap);
	if (rc == 0)
		rc = catalog_snapshot_rename(cat, snap.id, new_name);
	if (rc == 0)
		rc = snapshot_reseal(cat, snap.id);
	snapfs_snapshot_release(&snap);
	return rc;
}

int snapfs_snapshot_rename(struct snapfs_store *store, const char *old_name,
			   const char *new_name)
{
	struct catalog *cat = store->writer;
	int rc;

	error_clear();
	if (!cat)
		return error_set(-EROFS, "store '%s': opened read-only", store->dir);
	if (store->remote)
		return refuse_remote(store, "rename");
	if (!snapfs_name_valid(old_name))
		return error_set(-SNAPFS_EBADNAME, "rename '%s': invalid name", old_name);
	if (!snapfs_name_valid(new_name))
		return error_set(-SNAPFS_EBADNAME, "rename '%s': new name '%s': invalid name",
				 old_name, new_name);
	rc = catalog_begin_write(cat);
	if (rc == 0)
		rc = rename_one(cat, old_name, new_name);
	if (rc == 0)
		rc = catalog_commit(cat);
	else
		catalog_rollback(cat);
	return rc < 0 ? error_prefix(rc, "rename '%s'", old_name) : 0;
}

static bool prune_rules_valid(const struct snapfs_prune_rules *r)
{
	return r->keep_last || r->keep_within > 0 || r->keep_hourly || r->keep_daily ||
	       r->keep_weekly || r->keep_monthly;
}

/* Plan, then remove what no rule keeps: inside the caller's transaction. */
static int prune_locked(struct catalog *cat, int claims_fd,
			const struct snapfs_prune_rules *rules, bool dry_run,
			struct snapfs_prune_item **ret_items, size_t *ret_count)
{
	struct snapfs_snapshot *snaps = NULL;
	struct snapfs_prune_item *items = NULL;
	size_t snap_count = 0, count = 0;
	int rc, hidden = 0;

	rc = catalog_snapshot_list(cat, &snaps, &snap_count);
	if (rc == 0)
		rc = prune_plan(snaps, snap_count, rules, &items, &count);
	snapfs_snapshot_list_free(snaps, snap_count);
	for (size_t i = 0; rc >= 0 && !dry_run && i < count; i++) {
		if (items[i].keep)
			continue;
		rc = remove_one(cat, claims_fd, items[i].name);
		hidden += rc > 0;
	}
	if (rc < 0) {
		free(items);
		return rc;
	}
	*ret_items = items;
	*ret_count = count;
	return hidden;
}

int snapfs_prune(struct snapfs_store *store, const struct snapfs_prune_rules *rules,
		 bool dry_run, struct snapfs_prune_item **ret_items, size_t *ret_count)
{
	struct catalog *cat = store->writer;
	struct snapfs_prune_item *items = NULL;
	size_t count = 0;
	int claims_fd, rc;

	error_clear();
	if (!cat)
		return error_set(-EROFS, "store '%s': opened read-only", store->dir);
	if (store->remote)
		return refuse_remote(store, "prune");
	if (!prune_rules_valid(rules))
		return error_set(-EINVAL, "no --keep-* rule: refusing to remove every snapshot");
	rc = claims_open(store->dir, true, &claims_fd);
	if (rc < 0)
		return rc;
	rc = catalog_begin_write(cat);
	if (rc == 0)
		rc = prune_locked(cat, claims_fd, rules, dry_run, &items, &count);
	if (rc >= 0 && !dry_run) {
		int commit = catalog_commit(cat);

		rc = commit < 0 ? commit : rc;
	} else {
		catalog_rollback(cat);
	}
	/* The claims are let go only after the commit (as rm does). */
	claims_close(claims_fd);
	if (rc < 0) {
		free(items);
		return error_prefix(rc, "prune '%s'", store->dir);
	}
	*ret_items = items;
	*ret_count = count;
	return rc;
}

static uint64_t file_bytes(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

uint64_t store_file_bytes(const struct snapfs_store *store)
{
	uint64_t bytes = file_bytes(store->db_path) + blob_store_disk_bytes(store->blobs);
	char *wal;

	if (asprintf(&wal, "%s-wal", store->db_path) >= 0) {
		bytes += file_bytes(wal);
		free(wal);
	}
	return bytes;
}

int snapfs_store_summary(struct snapfs_store *store,
			 struct snapfs_store_summary *ret_summary)
{
	struct snapfs_store_summary s;
	int rc;

	rc = WITH_READER(store, catalog_store_summary(cat, &s));
	if (rc < 0)
		return rc;
	s.file_bytes = store_file_bytes(store);
	*ret_summary = s;
	return 0;
}
