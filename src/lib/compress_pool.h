/* SPDX-License-Identifier: MIT */
/*
 * A pool of threads that compress blobs, so that a save uses every core:
 * the saving thread reads, scans and looks up pages while the pool packs
 * blobs. Jobs finish in any order; the caller waits for each in turn.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snapfs.h"

struct compress_pool;
struct codec_cdict;

/* One blob to pack. The caller owns the job and its buffers and must not
 * touch them between compress_pool_submit() and compress_pool_wait(). */
struct compress_job {
	const unsigned char *raw;    /* in: page_count pages */
	size_t raw_len;
	unsigned char *out;          /* in: codec_bound(codec, raw_len) bytes */
	size_t out_cap;
	enum snapfs_codec codec;     /* in */
	int level;                   /* in */
	const struct codec_cdict *dict; /* in: NULL, or the store's dictionary */
	/* out, valid after compress_pool_wait(): */
	int rc;                      /* 0 or -errno */
	int stored_codec;            /* codec, or none when packing did not pay */
	const unsigned char *stored; /* out or raw */
	size_t stored_len;
	int64_t checksum;            /* blob_checksum(stored) */
	/* private to the pool: */
	bool done;
	struct compress_job *next;
};

/* A pool of workers threads (0: one per online CPU, at most 8). */
int compress_pool_new(unsigned workers, struct compress_pool **ret_pool);
/* Stop the workers; jobs still queued are finished first. */
void compress_pool_free(struct compress_pool *pool);

void compress_pool_submit(struct compress_pool *pool, struct compress_job *job);
/* Block until job is done; its results are then in the job. */
void compress_pool_wait(struct compress_pool *pool, struct compress_job *job);
