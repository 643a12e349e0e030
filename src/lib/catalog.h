/* SPDX-License-Identifier: MIT */
/*
 * The catalog: one SQLite connection to a store and every SQL statement
 * snapfs runs. No other file of src/ holds SQL. Statements are prepared once
 * per connection and reset after each use, on every path. A catalog is used
 * by one thread at a time.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "map_run.h"
#include "snapfs.h"

struct catalog;

/* Open path. Read-only connections never write; read-write ones use WAL,
 * synchronous=FULL and foreign keys. */
int catalog_open(const char *path, bool readonly, struct catalog **ret_cat);
void catalog_close(struct catalog *cat);

/* Make a new, empty store database: page size, auto-vacuum, schema,
 * store_info rows, user_version. */
int catalog_create_schema(struct catalog *cat, const char *created_at);
/* 0 if the database has the tables of a store, -SNAPFS_ENOTSTORE if it
 * has not, -SNAPFS_ECORRUPT if it cannot be read as a database. */
int catalog_check_store(struct catalog *cat);
int catalog_schema_version(struct catalog *cat, int *ret_version);
/* Version 1 -> 2 (schema/upgrade/v2.sql), driven by upgrade.c: begin
 * (write transaction, foreign keys off, new tables), copy every blob's
 * bytes through append() into pack 1 with a new row each, then end:
 * commit with the pack's length (the pack durable by then), or roll
 * back. */
int catalog_upgrade_v2_begin(struct catalog *cat);
int catalog_upgrade_v2_blobs(struct catalog *cat,
			     int (*append)(void *ctx, const void *data, size_t len,
					   uint64_t *ret_offset),
			     void *ctx);
/* Part 2 of v2.sql with the pack's length and the new user_version, in
 * the transaction (the caller seals the snapshots before it ends). */
int catalog_upgrade_v2_finish(struct catalog *cat, uint64_t pack_length);
int catalog_upgrade_v2_end(struct catalog *cat, bool commit);
/* Version 2 -> 3 (schema/upgrade/v3.sql) and the new user_version, inside
 * the caller's write transaction. */
int catalog_upgrade_v3(struct catalog *cat);
/* Version 3 -> 4: the table core_notes (inside the caller's transaction). */
int catalog_upgrade_v4(struct catalog *cat);
int catalog_upgrade_v5(struct catalog *cat);
int catalog_page_size(struct catalog *cat, uint32_t *ret_page_size);
int catalog_data_version(struct catalog *cat, int64_t *ret_version);

/* Transactions. begin_write takes the write lock at once (BEGIN
 * IMMEDIATE), so that a busy store fails before any work. */
int catalog_begin_write(struct catalog *cat);
int catalog_begin_read(struct catalog *cat);
int catalog_commit(struct catalog *cat);
/* Roll back if a transaction is open; safe to call at any time. */
void catalog_rollback(struct catalog *cat);
/* Ask a running statement on this connection to stop (any thread). */
void catalog_interrupt(struct catalog *cat);
/* Give freed pages back to the file system (incremental vacuum) and
 * checkpoint the WAL into the database file. */
int catalog_shrink(struct catalog *cat);
/* Checkpoint the WAL and cut it to zero bytes, without waiting for anyone:
 * -EBUSY when another writer or a reader on an older snapshot keeps it
 * (nothing lost; the next writer restarts the WAL and cuts it to 4 MiB). */
int catalog_wal_truncate(struct catalog *cat);

/* --- snapshots --- */
int catalog_snapshot_get(struct catalog *cat, const char *name,
			 struct snapfs_snapshot *ret_snap);
int catalog_snapshot_get_id(struct catalog *cat, int64_t id,
			    struct snapfs_snapshot *ret_snap);
int catalog_snapshot_list(struct catalog *cat, struct snapfs_snapshot **ret_snaps,
			  size_t *ret_count);
/* Insert the row of a new snapshot (figures zero); -EEXIST if taken. */
int catalog_snapshot_insert(struct catalog *cat, const struct snapfs_snapshot *snap,
			    int64_t *ret_id);
/* Record the figures of a finished save. */
int catalog_snapshot_set_figures(struct catalog *cat, const struct snapfs_snapshot *snap);
/* The ids of the snapshots whose parent is name; caller frees *ret_ids. */
int catalog_snapshot_children(struct catalog *cat, const char *name, int64_t **ret_ids,
			      size_t *ret_count);
int catalog_snapshot_set_meta_digest(struct catalog *cat, int64_t id, int64_t digest);
/* Give snapshot id a new name (the caller reseals it); -EEXIST if taken. */
int catalog_snapshot_rename(struct catalog *cat, int64_t id, const char *name);

/* --- segments --- */
int catalog_segment_insert(struct catalog *cat, int64_t snapshot_id,
			   const struct snapfs_segment *seg);
int catalog_segments_get(struct catalog *cat, int64_t snapshot_id,
			 struct snapfs_segment **ret_segs, size_t *ret_count);

/* --- blobs --- */
struct blob_loc;
/* Insert a blob row for loc (its id is ignored); the new id in *ret_id. */
int catalog_blob_insert(struct catalog *cat, const struct blob_loc *loc,
			int64_t *ret_id);
/* The place of blob id, or -ENOENT. */
int catalog_blob_loc(struct catalog *cat, int64_t id, struct blob_loc *ret_loc);
/* Blob id's stored bytes are now at offset of pack pack_id. */
int catalog_blob_move(struct catalog *cat, int64_t id, int64_t pack_id, uint64_t offset);
/* Sum of stored_size of the blobs a snapshot's page map uses. */
int catalog_snapshot_blob_bytes(struct catalog *cat, int64_t snapshot_id,
				uint64_t *ret_bytes);

/* --- content index --- */
/* The slot recorded for a page digest, or -ENOENT. */
int catalog_index_lookup(struct catalog *cat, int64_t digest,
			 int64_t *ret_blob_id, int *ret_slot);
/* Record (or replace) the slot of a page digest. */
int catalog_index_put(struct catalog *cat, int64_t digest, int64_t blob_id,
		      int slot);

/* --- page map (struct map_run: map_run.h) --- */
int catalog_map_insert(struct catalog *cat, int64_t snapshot_id,
		       const struct map_run *run);
/* All runs of a snapshot, ordered by first_page, and (ret_locs not NULL)
 * the place of each run's blob (a run whose blob row is missing gets a
 * place of length 0); caller frees *ret_runs and *ret_locs. */
int catalog_map_load(struct catalog *cat, int64_t snapshot_id,
		     struct map_run **ret_runs, struct blob_loc **ret_locs,
		     size_t *ret_count);

/* --- gc --- */
/* Number and stored bytes of blobs no page map uses. */
int catalog_unused_blobs(struct catalog *cat, uint64_t *ret_count, uint64_t *ret_bytes);
/* Delete up to limit unused blobs; the number deleted in *ret_deleted. */
int catalog_delete_unused_blobs(struct catalog *cat, int limit, uint64_t *ret_deleted);
/* Delete content-index rows whose blob is gone; the number in *ret_deleted. */
int catalog_delete_stale_index(struct catalog *cat, uint64_t *ret_deleted);

/* --- packs --- */
/* The newest pack and its committed length; -ENOENT when there is none. */
int catalog_pack_last(struct catalog *cat, int64_t *ret_id, uint64_t *ret_length);
/* A new, empty pack row; its id in *ret_id. */
int catalog_pack_new(struct catalog *cat, int64_t *ret_id);
int catalog_pack_set_length(struct catalog *cat, int64_t id, uint64_t length);
int catalog_pack_delete(struct catalog *cat, int64_t id);
/* Every pack, in id order; caller frees *ret_ids and *ret_lengths. */
int catalog_pack_list(struct catalog *cat, int64_t **ret_ids, uint64_t **ret_lengths,
		      size_t *ret_count);
/* Blobs whose pack_id names no packs row. */
int catalog_blobs_without_pack(struct catalog *cat, uint64_t *ret_count);
/* Where the last blob (by offset) of pack id ends; 0 when it has none. */
int catalog_pack_blob_end(struct catalog *cat, int64_t id, uint64_t *ret_end);
/* Call fn(ctx, offset, length) for every blob of pack id, by offset. */
int catalog_pack_extents(struct catalog *cat, int64_t id,
			 int (*fn)(void *ctx, uint64_t offset, uint64_t length), void *ctx);

/* --- dictionaries --- */
struct dict_row {
	int64_t id;
	int codec;
	int64_t checksum;
	const void *data;      /* owned by SQLite, valid only inside the callback */
	size_t len;
};
int catalog_dict_insert(struct catalog *cat, int codec, int64_t checksum,
			const void *data, size_t len, int64_t *ret_id);
/* Call fn for each dictionary with an id above after_id, in id order, or
 * (newest_only) for the newest one only. */
int catalog_dict_each(struct catalog *cat, int64_t after_id, bool newest_only,
		      int (*fn)(void *ctx, const struct dict_row *row), void *ctx);

/* --- verify --- */
/* Call fn for every blob of the store, in pack order. */
int catalog_for_each_blob(struct catalog *cat,
			  int (*fn)(void *ctx, const struct blob_loc *loc), void *ctx);
/* The figures snapshot_summary recomputes for one snapshot. */
int catalog_snapshot_recount(struct catalog *cat, int64_t snapshot_id,
			     struct snapfs_snapshot *ret_figures);
/* PRAGMA integrity_check: 0 and "ok", or the first problem in buf. */
int catalog_integrity_check(struct catalog *cat, char *buf, size_t cap, bool *ret_ok);

/* --- store-wide --- */
int catalog_store_summary(struct catalog *cat, struct snapfs_store_summary *ret);

/* --- working sets --- */
/* Inside a write transaction: replace the working set of a snapshot with
 * runs (seq 0..count-1; count 0 only deletes). Creates the table in a
 * version-1 store made before it existed. */
int catalog_working_set_replace(struct catalog *cat, int64_t snapshot_id,
				const struct snapfs_page_run *runs, size_t count);
/* The runs of a snapshot ordered by seq; caller frees *ret_runs. A store
 * without the table has none. */
int catalog_working_set_load(struct catalog *cat, int64_t snapshot_id,
			     struct snapfs_page_run **ret_runs, size_t *ret_count);

/* --- claims: snapshots removed while a reader holds them --- */
/* Inside a write transaction: hide snapshot id (named name) from every
 * lookup, listing and public view, its rows kept: a row in removed, its
 * name changed to '.removed-<id>', its children's parent_id NULL. */
int catalog_snapshot_hide(struct catalog *cat, int64_t id, const char *name,
			  const char *removed_at);
/* Delete one snapshot by id, hidden or not (segments, page map, working
 * set and removed row go with it); -ENOENT if there is none. */
int catalog_snapshot_delete_id(struct catalog *cat, int64_t id);
/* The ids of the hidden snapshots, ascending; caller frees *ret_ids. */
int catalog_removed_list(struct catalog *cat, int64_t **ret_ids, size_t *ret_count);
/* Blobs (and their stored bytes) that only hidden snapshots use. */
int catalog_removed_kept(struct catalog *cat, uint64_t *ret_blobs, uint64_t *ret_bytes);

/* --- process notes (schema version 4) ------------------------------------ */

struct core_note_list;
/* Insert a snapshot's notes as rows seq 0, 1, ... of core_notes (inside
 * the caller's write transaction). */
int catalog_core_notes_insert(struct catalog *cat, int64_t snapshot_id,
			      const struct core_note_list *notes);
/* A snapshot's notes in seq order, appended to *list (left as it was on
 * failure but for notes already appended, which the caller releases).
 * Rows whose owner or descr is not what the table promises are
 * -SNAPFS_ECORRUPT. */
int catalog_core_notes_load(struct catalog *cat, int64_t snapshot_id,
			    struct core_note_list *list);

/* --- Remote stores (schema v5) --- */
/* The store's remote row: url (malloc'ed; NULL pointers skip a field),
 * generation and dirty; -ENOENT for a local store. */
int catalog_remote_get(struct catalog *cat, char **ret_url, int64_t *ret_generation,
		       bool *ret_dirty);
/* Make the store remote, or set its row. */
int catalog_remote_set(struct catalog *cat, const char *url, int64_t generation, bool dirty);
/* This copy now holds changes not published (inside the save's transaction). */
int catalog_remote_mark_dirty(struct catalog *cat);
/* The object of pack pack_id (malloc'ed) and the pack's length; -ENOENT if none. */
int catalog_remote_pack_get(struct catalog *cat, int64_t pack_id, char **ret_object,
			    uint64_t *ret_length);
int catalog_remote_pack_put(struct catalog *cat, int64_t pack_id, const char *object);
/* Whether object is the object of one of the index's packs: 1, 0, or -errno. */
int catalog_remote_object_named(struct catalog *cat, const char *object);
/* Write a compact copy of the database to path (VACUUM INTO). */
int catalog_vacuum_into(struct catalog *cat, const char *path);
/* Replace dest's database by the one at src_path, in one write transaction
 * (the SQLite backup API: the file stays the same file). */
int catalog_copy_from(struct catalog *dest, const char *src_path);
