/* SPDX-License-Identifier: MIT */
/*
 * The blob writer: takes a snapshot's non-zero pages in file order, reuses
 * any page already stored in the store (found by digest, confirmed byte by
 * byte), packs new pages into blobs, compresses and checksums them,
 * appends them to a pack file and writes blob, content-index and page-map
 * rows through the writer connection, inside the caller's transaction.
 */
#pragma once

#include <stdint.h>

#include "blob_store.h"
#include "snapfs.h"

struct catalog;
struct blob_store;
struct blob_writer;

/* A pack grows to about this size; then saves start a new one. */
#define PACK_MAX_BYTES ((uint64_t)1 << 30)

struct blob_writer_stats {
	uint64_t data_pages;      /* pages added */
	uint64_t new_pages;       /* stored in new blobs */
	uint64_t dedup_pages;     /* reused a stored page */
	uint64_t new_blob_bytes;  /* compressed bytes of new blobs */
};

/* Start appending to the newest pack of bs, or to a new one when it is
 * full, cutting off any tail no row names (inside the caller's write
 * transaction of cat); its id in *ret_pack_id. */
int blob_writer_pack_begin(struct catalog *cat, struct blob_store *bs, int64_t *ret_pack_id);
/* Make what was appended durable and record the pack's new length, before
 * the commit of the rows that name the new bytes. */
int blob_writer_pack_end(struct catalog *cat, struct blob_store *bs);

/* The zstd dictionary new blobs are compressed with (id 0: none). */
struct blob_writer_dict {
	int64_t id;
	const void *data;             /* copied by blob_writer_new() */
	size_t len;
};

/* Appends new blobs to bs's newest pack (the caller holds the write
 * transaction of cat). dict may be NULL. */
int blob_writer_new(struct catalog *cat, struct blob_store *bs, int64_t snapshot_id,
		    enum snapfs_codec codec, int level, const struct blob_writer_dict *dict,
		    struct blob_writer **ret_writer);
void blob_writer_free(struct blob_writer *writer);

/* Add page page_no (SNAPFS_PAGE_SIZE non-zero bytes). Pages must come in
 * increasing page_no order. */
int blob_writer_add(struct blob_writer *writer, uint64_t page_no,
		    const unsigned char *page);
/* Write what is still pending, make the pack durable and record its
 * length. Call once, after the last page, before the commit. */
int blob_writer_finish(struct blob_writer *writer);
/* The transaction was rolled back: cut the pack back to where it was. */
void blob_writer_abort(struct blob_writer *writer);
/* snapshots.map_digest of the runs written, for a file of file_size. */
int64_t blob_writer_map_digest(const struct blob_writer *writer, uint64_t file_size);
void blob_writer_stats(const struct blob_writer *writer,
		       struct blob_writer_stats *ret_stats);
