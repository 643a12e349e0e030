/* SPDX-License-Identifier: MIT */
/*
 * Block codecs for page blobs: none, zstd and lz4 behind one interface.
 * A codec_ctx holds the reusable (de)compression state of one thread.
 */
#pragma once

#include <stddef.h>

#include "snapfs.h"

struct codec_ctx;

/* Allocate a context; NULL when out of memory. */
struct codec_ctx *codec_ctx_new(void);
void codec_ctx_free(struct codec_ctx *ctx);

/* Worst-case compressed size of len bytes. */
size_t codec_bound(enum snapfs_codec codec, size_t len);

/* Compress src into dst (capacity codec_bound()). Returns 0 and the stored
 * length in *ret_len, or -errno. */
int codec_compress(struct codec_ctx *ctx, enum snapfs_codec codec, int level,
		   const void *src, size_t len, void *dst, size_t cap,
		   size_t *ret_len);

/* Decompress exactly raw_len bytes into dst. Any other outcome (unknown
 * codec id, malformed input, wrong length) is -SNAPFS_ECORRUPT. */
int codec_decompress(struct codec_ctx *ctx, int codec_id, const void *src,
		     size_t len, void *dst, size_t raw_len);
