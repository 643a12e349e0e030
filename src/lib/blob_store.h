/* SPDX-License-Identifier: MIT */
/*
 * The blob layer: where the bytes of a blob live and how they come back.
 * Blobs are appended to pack files in STORE/packs/ (the database indexes
 * them: blobs.pack_id, blobs.pack_offset, blobs.stored_size); a cold blob
 * is one pread(2) of its stored bytes, checked against its checksum, then
 * decoded. Writers append, make the pack durable, and only then commit the
 * rows that name the new bytes, so a crash leaves at most a tail no row
 * names (cut off by the next writer). This module knows nothing of SQL,
 * the cache or the reader: the layers above hand it a struct blob_loc.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Most pages a blob may hold; a row claiming more is damage. */
#define BLOB_PAGES_MAX 256

/* Pages packed into one new blob (16 KiB): a cold random 4 KiB read
 * decodes at most this much after one read of ~4-8 KiB from a pack. 4
 * pages, not 8: the random read is what a resuming VM waits on (p50 0.72x
 * of 8-page blobs' in BENCHMARKS.md), at +1.6 % of store size; sequential
 * readers get their blobs in spans (blob_span.c). A build may override
 * it (-DBLOB_PAGES=N, N <= BLOB_PAGES_MAX) to measure others; readers take
 * each blob's page count from its row. */
#ifndef BLOB_PAGES
#define BLOB_PAGES 4
#endif

/* Where a blob is and what it must be (a blobs row). All of it comes from
 * the database, so all of it is checked before use. */
struct blob_loc {
	int64_t id;
	int64_t pack_id;
	uint64_t offset;             /* of the stored bytes in the pack file */
	uint32_t length;             /* stored (compressed) bytes */
	uint32_t page_count;         /* decoded size: page_count pages */
	int codec;                   /* enum snapfs_codec as stored */
	int64_t dict_id;             /* the zstd dictionary it needs; 0: none */
	int64_t checksum;            /* XXH3-64 of the stored bytes */
};

struct blob_store;

/* Where pack bytes come from when they are not in STORE/packs/ (a remote
 * store: a local cache, then ranged GETs from a bucket). Chosen once, when
 * the store is opened; every read of the layers above goes through it. */
struct pack_backend {
	/* Read exactly len bytes of pack pack_id from off into buf; fresh:
	 * not from a cache (a cached copy failed its checksum). */
	int (*read)(void *ctx, int64_t pack_id, uint64_t off, size_t len, void *buf,
		    bool fresh);
	/* The length of pack pack_id where it lives; -ENOENT if it is not there. */
	int (*size)(void *ctx, int64_t pack_id, uint64_t *ret_length);
	void *ctx;
};

/* Blob files of the store in dir (packs/ is made on first append when
 * writable). */
int blob_store_open(const char *dir, bool writable, struct blob_store **ret_bs);
/* Close every pack; NULL is fine. */
void blob_store_close(struct blob_store *bs);
/* Read packs through be (copied) instead of the files in packs/, before
 * any read. Appending still goes to packs/ (a remote save uploads the pack
 * afterwards); punching, truncating and removing packs are refused. */
void blob_store_set_backend(struct blob_store *bs, const struct pack_backend *be);

/* Read blob loc, check it and decode it into dst (the caller's, room for
 * loc->page_count pages; left undefined on failure). sequential: the
 * reader goes on with the blobs after this one (the kernel may read
 * ahead); otherwise exactly the blob's bytes are read. A missing pack,
 * short read, bad checksum or failed decode is -SNAPFS_ECORRUPT with the
 * detail in snapfs_errmsg(). */
int blob_store_load(struct blob_store *bs, const struct blob_loc *loc,
		    bool sequential, unsigned char *dst);

/* Most bytes blob_store_read_span() reads at once. */
#define BLOB_STORE_SPAN_MAX ((uint64_t)4 << 20)
/* Several blobs in one read (a prefetch): len bytes of first's pack from
 * first->offset, into a buffer of the calling thread's (*ret_bytes, valid
 * until the thread's next call or blob_store_thread_release()). Nothing
 * is checked but that the bytes are there; each blob in them is then
 * checked and decoded with blob_store_decode(). */
int blob_store_read_span(struct blob_store *bs, const struct blob_loc *first,
			 uint64_t len, const unsigned char **ret_bytes);
/* Check and decode blob loc from its stored bytes (loc->length of them at
 * stored, read by the caller) into dst, as blob_store_load() does after
 * its read. */
int blob_store_decode(struct blob_store *bs, const struct blob_loc *loc,
		      const unsigned char *stored, unsigned char *dst);
/* Make dictionary id (its bytes) known for decoding; a dictionary already
 * known is kept as it is. */
int blob_store_add_dict(struct blob_store *bs, int64_t id, const void *data, size_t len);
/* The highest dictionary id known, 0 if none. */
int64_t blob_store_dict_max(struct blob_store *bs);

/* Free the calling thread's decoding state now (other threads' goes when
 * they end). */
void blob_store_thread_release(void);

/* --- appending (one writer at a time: the caller holds the store's write
 * lock) --- */

/* Append to pack pack_id, whose committed length is committed: cut off any
 * tail past it (left by a crashed or failed writer) and create the file if
 * it is missing. */
int blob_store_append_begin(struct blob_store *bs, int64_t pack_id, uint64_t committed);
/* Append len bytes; their offset in *ret_offset. */
int blob_store_append(struct blob_store *bs, const void *data, size_t len,
		      uint64_t *ret_offset);
/* Make what was appended durable (file and directory); the pack's new
 * length in *ret_length, to be committed with the rows that name it. */
int blob_store_append_sync(struct blob_store *bs, uint64_t *ret_length);
/* The pack being appended to and its length so far (0, 0 when none). */
void blob_store_append_state(const struct blob_store *bs, int64_t *ret_pack_id,
			     uint64_t *ret_length);
/* Stop appending. Unless committed, cut the pack back to where it was. */
void blob_store_append_end(struct blob_store *bs, bool committed);

/* --- giving space back (gc, under the write lock) --- */

/* Give the whole file-system blocks of [off, off + len) of a pack back
 * (the bytes then read as zeros). */
int blob_store_punch(struct blob_store *bs, int64_t pack_id, uint64_t off, uint64_t len);
/* Cut a pack to length bytes. */
int blob_store_truncate(struct blob_store *bs, int64_t pack_id, uint64_t length);
/* Delete a pack file (readers that have it open keep reading it). */
int blob_store_remove(struct blob_store *bs, int64_t pack_id);

/* Bytes a pack file takes on disk (allocated blocks) and its length;
 * -ENOENT when it is missing. */
int blob_store_pack_size(struct blob_store *bs, int64_t pack_id,
			 uint64_t *ret_disk_bytes, uint64_t *ret_length);
/* The ids of the pack files in packs/ (files named as packs are, whatever
 * the database says); caller frees *ret_ids. */
int blob_store_list_packs(struct blob_store *bs, int64_t **ret_ids, size_t *ret_count);
/* Bytes all pack files take on disk. */
uint64_t blob_store_disk_bytes(struct blob_store *bs);
