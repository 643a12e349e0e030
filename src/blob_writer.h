/* SPDX-License-Identifier: MIT */
/*
 * The blob writer: takes a snapshot's non-zero pages in file order, reuses
 * any page already stored in the store (found by digest, confirmed byte by
 * byte), packs new pages into blobs, compresses and checksums them, and
 * writes blobs, content-index rows and page-map runs through the writer
 * connection, inside the caller's transaction.
 */
#pragma once

#include <stdint.h>

#include "snapfs.h"

struct catalog;
struct blob_writer;

/* Pages packed into one blob (128 KiB): see BENCHMARKS.md. Against 16
 * pages, 2-3 % smaller stores and 17 % less decoding time per byte read in
 * order, for ~25 us more per cold random 4 KiB read. A build may override
 * it (-DBLOB_PAGES=N, N <= BLOB_PAGES_MAX) to measure others; readers take
 * each blob's page count from its row. */
#ifndef BLOB_PAGES
#define BLOB_PAGES 32
#endif

struct blob_writer_stats {
	uint64_t data_pages;      /* pages added */
	uint64_t new_pages;       /* stored in new blobs */
	uint64_t dedup_pages;     /* reused a stored page */
	uint64_t new_blob_bytes;  /* compressed bytes of new blobs */
};

int blob_writer_new(struct catalog *cat, int64_t snapshot_id,
		    enum snapfs_codec codec, int level,
		    struct blob_writer **ret_writer);
void blob_writer_free(struct blob_writer *writer);

/* Add page page_no (SNAPFS_PAGE_SIZE non-zero bytes). Pages must come in
 * increasing page_no order. */
int blob_writer_add(struct blob_writer *writer, uint64_t page_no,
		    const unsigned char *page);
/* Write what is still pending. Call once, after the last page. */
int blob_writer_finish(struct blob_writer *writer);
/* snapshots.map_digest of the runs written, for a file of file_size. */
int64_t blob_writer_map_digest(const struct blob_writer *writer, uint64_t file_size);
void blob_writer_stats(const struct blob_writer *writer,
		       struct blob_writer_stats *ret_stats);
