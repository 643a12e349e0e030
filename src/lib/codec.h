/* SPDX-License-Identifier: MIT */
/*
 * Block codecs for page blobs: none, zstd and lz4 behind one interface.
 * A codec_ctx holds the reusable (de)compression state of one thread.
 */
#pragma once

#include <signal.h>
#include <stddef.h>

#include "snapfs.h"

struct codec_ctx;
/* A zstd dictionary prepared for compressing at one level (cdict) or for
 * decompressing (ddict); read-only once made, shared by threads. */
struct codec_cdict;
struct codec_ddict;

/* Allocate a context; NULL when out of memory. */
struct codec_ctx *codec_ctx_new(void);
void codec_ctx_free(struct codec_ctx *ctx);

/* Worst-case compressed size of len bytes. */
size_t codec_bound(enum snapfs_codec codec, size_t len);

/* Compress src into dst (capacity codec_bound()), with dict when it is
 * not NULL (zstd only). Returns 0 and the stored length in *ret_len, or
 * -errno. */
int codec_compress(struct codec_ctx *ctx, enum snapfs_codec codec, int level,
		   const struct codec_cdict *dict, const void *src, size_t len,
		   void *dst, size_t cap, size_t *ret_len);

/* Decompress exactly raw_len bytes into dst, with dict when it is not
 * NULL. Any other outcome (unknown codec id, malformed input, wrong length)
 * is -SNAPFS_ECORRUPT. */
int codec_decompress(struct codec_ctx *ctx, int codec_id, const struct codec_ddict *dict,
		     const void *src, size_t len, void *dst, size_t raw_len);

/* Train a zstd dictionary of at most cap bytes from count samples laid end
 * to end in samples (sizes[i] bytes each) into dst; its length in
 * *ret_len. -EINVAL when the samples do not make one. Training takes
 * seconds and zstd cannot stop it, so it runs on a thread of its own
 * (working on copies of the samples) while this one watches *cancel
 * (NULL: none): when it is raised, -SNAPFS_ECANCELED at once, and the
 * abandoned thread frees its copies when it ends. */
int codec_dict_train(const void *samples, const size_t *sizes, unsigned count,
		     void *dst, size_t cap, size_t *ret_len,
		     volatile sig_atomic_t *cancel);
/* Prepare dictionary bytes; NULL when out of memory. Free with the
 * matching _free (NULL is fine). */
struct codec_cdict *codec_cdict_new(const void *data, size_t len, int level);
void codec_cdict_free(struct codec_cdict *dict);
struct codec_ddict *codec_ddict_new(const void *data, size_t len);
void codec_ddict_free(struct codec_ddict *dict);
