// SPDX-License-Identifier: MIT
/*
 * The codecs that compress page blobs (zstd, lz4, none), their names and
 * levels, behind one small interface.
 */
#include "codec.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lz4.h>
#include <lz4hc.h>
#include <zdict.h>
#include <zstd.h>

/* zstd level 9: measured on 128 KiB blobs of the benchmark corpus (see
 * BENCHMARKS.md), 2-3 % smaller than level 3, decodes as fast or faster,
 * and saves still take a fifth of mksquashfs's time; levels 12 and up cost
 * 3-20x the save time for 1-2 % more. lz4 level 1 is
 * LZ4_compress_default, 2..12 are LZ4 HC levels. */
#define ZSTD_DEFAULT_LEVEL 9
#define LZ4_DEFAULT_LEVEL 1

struct codec_ctx {
	ZSTD_CCtx *zc;
	ZSTD_DCtx *zd;
};

struct codec_ctx *codec_ctx_new(void)
{
	return calloc(1, sizeof(struct codec_ctx));
}

void codec_ctx_free(struct codec_ctx *ctx)
{
	if (!ctx)
		return;
	ZSTD_freeCCtx(ctx->zc);
	ZSTD_freeDCtx(ctx->zd);
	free(ctx);
}

const char *snapfs_codec_name(enum snapfs_codec codec)
{
	switch (codec) {
	case SNAPFS_CODEC_NONE:
		return "none";
	case SNAPFS_CODEC_ZSTD:
		return "zstd";
	case SNAPFS_CODEC_LZ4:
		return "lz4";
	}
	return "unknown";
}

int snapfs_codec_parse(const char *name, enum snapfs_codec *ret_codec)
{
	static const enum snapfs_codec all[] = {
		SNAPFS_CODEC_NONE, SNAPFS_CODEC_ZSTD, SNAPFS_CODEC_LZ4,
	};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (strcmp(name, snapfs_codec_name(all[i])) == 0) {
			*ret_codec = all[i];
			return 0;
		}
	}
	return -EINVAL;
}

int snapfs_codec_default_level(enum snapfs_codec codec)
{
	switch (codec) {
	case SNAPFS_CODEC_ZSTD:
		return ZSTD_DEFAULT_LEVEL;
	case SNAPFS_CODEC_LZ4:
		return LZ4_DEFAULT_LEVEL;
	default:
		return 0;
	}
}

bool snapfs_codec_level_valid(enum snapfs_codec codec, int level)
{
	switch (codec) {
	case SNAPFS_CODEC_ZSTD:
		return level >= 1 && level <= ZSTD_maxCLevel();
	case SNAPFS_CODEC_LZ4:
		return level >= 1 && level <= LZ4HC_CLEVEL_MAX;
	case SNAPFS_CODEC_NONE:
		return level == 0;
	}
	return false;
}

void snapfs_codec_level_range(enum snapfs_codec codec, int *ret_min, int *ret_max)
{
	*ret_min = codec == SNAPFS_CODEC_NONE ? 0 : 1;
	*ret_max = codec == SNAPFS_CODEC_ZSTD ? ZSTD_maxCLevel() :
		   codec == SNAPFS_CODEC_LZ4 ? LZ4HC_CLEVEL_MAX : 0;
}

size_t codec_bound(enum snapfs_codec codec, size_t len)
{
	switch (codec) {
	case SNAPFS_CODEC_ZSTD:
		return ZSTD_compressBound(len);
	case SNAPFS_CODEC_LZ4:
		return (size_t)LZ4_compressBound((int)len);
	default:
		return len;
	}
}

int codec_compress(struct codec_ctx *ctx, enum snapfs_codec codec, int level,
		   const struct codec_cdict *dict, const void *src, size_t len,
		   void *dst, size_t cap, size_t *ret_len)
{
	size_t n;
	int k;

	if (level == 0)
		level = snapfs_codec_default_level(codec);
	switch (codec) {
	case SNAPFS_CODEC_NONE:
		if (cap < len)
			return -ENOBUFS;
		memcpy(dst, src, len);
		*ret_len = len;
		return 0;
	case SNAPFS_CODEC_ZSTD:
		if (!ctx->zc && !(ctx->zc = ZSTD_createCCtx()))
			return -ENOMEM;
		if (dict)
			n = ZSTD_compress_usingCDict(ctx->zc, dst, cap, src, len,
						     (const ZSTD_CDict *)dict);
		else
			n = ZSTD_compressCCtx(ctx->zc, dst, cap, src, len, level);
		if (ZSTD_isError(n))
			return -EIO;
		*ret_len = n;
		return 0;
	case SNAPFS_CODEC_LZ4:
		if (level <= LZ4_DEFAULT_LEVEL)
			k = LZ4_compress_default(src, dst, (int)len, (int)cap);
		else
			k = LZ4_compress_HC(src, dst, (int)len, (int)cap, level);
		if (k <= 0)
			return -EIO;
		*ret_len = (size_t)k;
		return 0;
	}
	return -EINVAL;
}

int codec_decompress(struct codec_ctx *ctx, int codec_id, const struct codec_ddict *dict,
		     const void *src, size_t len, void *dst, size_t raw_len)
{
	size_t n;
	int k;

	switch (codec_id) {
	case SNAPFS_CODEC_NONE:
		if (len != raw_len)
			return -SNAPFS_ECORRUPT;
		memcpy(dst, src, len);
		return 0;
	case SNAPFS_CODEC_ZSTD:
		if (!ctx->zd && !(ctx->zd = ZSTD_createDCtx()))
			return -ENOMEM;
		if (dict)
			n = ZSTD_decompress_usingDDict(ctx->zd, dst, raw_len, src, len,
						       (const ZSTD_DDict *)dict);
		else
			n = ZSTD_decompressDCtx(ctx->zd, dst, raw_len, src, len);
		if (ZSTD_isError(n) || n != raw_len)
			return -SNAPFS_ECORRUPT;
		return 0;
	case SNAPFS_CODEC_LZ4:
		if (len > (size_t)LZ4_MAX_INPUT_SIZE || raw_len > (size_t)LZ4_MAX_INPUT_SIZE)
			return -SNAPFS_ECORRUPT;
		k = LZ4_decompress_safe(src, dst, (int)len, (int)raw_len);
		if (k < 0 || (size_t)k != raw_len)
			return -SNAPFS_ECORRUPT;
		return 0;
	default:
		return -SNAPFS_ECORRUPT;
	}
}

/* One training, shared by the caller and its thread; the last of the two
 * to let go frees it. */
struct training {
	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	bool done, abandoned;
	void *samples;
	size_t *sizes;
	unsigned count;
	void *dict;
	size_t cap, len;
	bool ok;
};

static void training_free(struct training *t)
{
	pthread_cond_destroy(&t->done_cond);
	pthread_mutex_destroy(&t->lock);
	free(t->samples);
	free(t->sizes);
	free(t->dict);
	free(t);
}

static void *train(void *arg)
{
	struct training *t = arg;
	size_t n = ZDICT_trainFromBuffer(t->dict, t->cap, t->samples, t->sizes, t->count);
	bool abandoned;

	pthread_mutex_lock(&t->lock);
	t->ok = !ZDICT_isError(n);
	t->len = t->ok ? n : 0;
	t->done = true;
	abandoned = t->abandoned;
	pthread_cond_signal(&t->done_cond);
	pthread_mutex_unlock(&t->lock);
	if (abandoned)
		training_free(t);
	return NULL;
}

static struct training *training_new(const void *samples, const size_t *sizes,
				     unsigned count, size_t cap)
{
	struct training *t = calloc(1, sizeof(*t));
	size_t total = 0;

	if (!t)
		return NULL;
	for (unsigned i = 0; i < count; i++)
		total += sizes[i];
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->done_cond, NULL);
	t->samples = malloc(total ? total : 1);
	t->sizes = malloc(count ? count * sizeof(*sizes) : 1);
	t->dict = malloc(cap);
	t->count = count;
	t->cap = cap;
	if (!t->samples || !t->sizes || !t->dict) {
		training_free(t);
		return NULL;
	}
	memcpy(t->samples, samples, total);
	memcpy(t->sizes, sizes, count * sizeof(*sizes));
	return t;
}

int codec_dict_train(const void *samples, const size_t *sizes, unsigned count,
		     void *dst, size_t cap, size_t *ret_len,
		     volatile sig_atomic_t *cancel)
{
	struct training *t = training_new(samples, sizes, count, cap);
	pthread_t thread;
	int rc;

	if (!t)
		return -ENOMEM;
	if (pthread_create(&thread, NULL, train, t) != 0) {
		training_free(t);
		return -EAGAIN;
	}
	pthread_detach(thread);
	pthread_mutex_lock(&t->lock);
	while (!t->done && !(cancel && *cancel)) {
		struct timespec tick;

		clock_gettime(CLOCK_REALTIME, &tick);
		tick.tv_nsec += 20 * 1000 * 1000;
		if (tick.tv_nsec >= 1000000000L) {
			tick.tv_sec++;
			tick.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&t->done_cond, &t->lock, &tick);
	}
	if (!t->done) {
		t->abandoned = true;         /* the thread frees t */
		pthread_mutex_unlock(&t->lock);
		return -SNAPFS_ECANCELED;
	}
	pthread_mutex_unlock(&t->lock);
	rc = t->ok ? 0 : -EINVAL;
	if (t->ok) {
		memcpy(dst, t->dict, t->len);
		*ret_len = t->len;
	}
	training_free(t);
	return rc;
}

struct codec_cdict *codec_cdict_new(const void *data, size_t len, int level)
{
	if (level == 0)
		level = ZSTD_DEFAULT_LEVEL;
	return (struct codec_cdict *)ZSTD_createCDict(data, len, level);
}

void codec_cdict_free(struct codec_cdict *dict)
{
	ZSTD_freeCDict((ZSTD_CDict *)dict);
}

struct codec_ddict *codec_ddict_new(const void *data, size_t len)
{
	return (struct codec_ddict *)ZSTD_createDDict(data, len);
}

void codec_ddict_free(struct codec_ddict *dict)
{
	ZSTD_freeDDict((ZSTD_DDict *)dict);
}
