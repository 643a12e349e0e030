/* SPDX-License-Identifier: MIT */
/*
 * The hashes snapfs keeps: page digests (SHA-256, the dedup key), blob
 * checksums and page-map run hashes (XXH3-64, damage detection).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct page_hasher;

/* A reusable SHA-256 context for one thread; NULL when out of memory. */
struct page_hasher *page_hasher_new(void);
void page_hasher_free(struct page_hasher *hasher);

/* The dedup key of a page: the first 8 bytes of SHA-256(page), big-endian,
 * as a signed 64-bit integer. Returns 0 or -errno. */
int page_digest64(struct page_hasher *hasher, const void *page, size_t len,
		  int64_t *ret_digest);

/* XXH3-64 of a blob's stored bytes, as stored in blobs.checksum. */
int64_t blob_checksum(const void *data, size_t len);

/* XXH3-64 of a run's decoded bytes, seeded with its place, as stored in
 * page_map.run_hash. */
int64_t run_hash(const void *data, size_t len, int64_t snapshot_id,
		 uint64_t first_page);

/* The integrity hash of a snapshot's whole page map (snapshots.map_digest):
 * covers snapshot id, file size and each run's place, length and hash. */
struct map_run;
int64_t map_digest(int64_t snapshot_id, uint64_t file_size,
		   const struct map_run *runs, size_t count);

/* The integrity hash of a snapshot's identity and shape
 * (snapshots.meta_digest): id, name, parent_id, file_size, page_size,
 * format, map_digest and every segment (start, end, kind, memcg,
 * committed) in order. Labels are left out: they only name regions/
 * files, never decide bytes, and may be set by hand. */
struct snapfs_snapshot;
struct snapfs_segment;
int64_t snapshot_digest(const struct snapfs_snapshot *snap,
			const struct snapfs_segment *segs, size_t count);

/* The same hash computed a page at a time. */
struct run_hasher;
struct run_hasher *run_hasher_new(void);
void run_hasher_free(struct run_hasher *hasher);
void run_hasher_begin(struct run_hasher *hasher, int64_t snapshot_id,
		      uint64_t first_page);
void run_hasher_update(struct run_hasher *hasher, const void *data, size_t len);
int64_t run_hasher_end(struct run_hasher *hasher);

/* true if len bytes at p are all zero. */
bool bytes_all_zero(const void *p, size_t len);
