// SPDX-License-Identifier: MIT
/*
 * Unit tests of the codecs and hashes: round trips for every codec and
 * level, damaged input rejected, names and levels parsed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "digest.h"
#include "expect.h"

#define LEN (16 * 4096)

static void fill(unsigned char *buf, size_t len, unsigned seed, bool compressible)
{
	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = compressible ? (unsigned char)("snapfs memory "[i % 14] + (i / 4096))
				      : (unsigned char)(seed >> 16);
	}
}

static void round_trip(struct codec_ctx *ctx, enum snapfs_codec codec, int level,
		       bool compressible)
{
	static unsigned char src[LEN], out[LEN];
	size_t cap = codec_bound(codec, LEN), len = 0;
	unsigned char *packed = malloc(cap);

	fill(src, LEN, (unsigned)level + 7, compressible);
	EXPECT_OK(codec_compress(ctx, codec, level, NULL, src, LEN, packed, cap, &len));
	EXPECT(len <= cap);
	if (compressible && codec != SNAPFS_CODEC_NONE)
		EXPECT(len < LEN / 4);
	memset(out, 0xAA, LEN);
	EXPECT_OK(codec_decompress(ctx, codec, NULL, packed, len, out, LEN));
	EXPECT(memcmp(src, out, LEN) == 0);
	/* The wrong length, a truncated stream and an unknown codec id are
	 * all damage. */
	EXPECT(codec_decompress(ctx, codec, NULL, packed, len, out, LEN - 4096) == -SNAPFS_ECORRUPT);
	if (len > 8)
		EXPECT(codec_decompress(ctx, codec, NULL, packed, len / 2, out, LEN) == -SNAPFS_ECORRUPT);
	EXPECT(codec_decompress(ctx, 77, NULL, packed, len, out, LEN) == -SNAPFS_ECORRUPT);
	free(packed);
}

/* A dictionary trained on similar blocks shrinks them, round-trips with
 * itself, and a stream made with it does not decode without it. */
static void dictionary(struct codec_ctx *ctx)
{
	enum { SAMPLES = 256, SAMPLE = 8192, SHORT = 1024 };
	static unsigned char samples[SAMPLES * SAMPLE], dict[16384], block[SAMPLE], out[SAMPLE];
	static unsigned char plain[SAMPLE + 1024], packed[SAMPLE + 1024];
	static size_t sizes[SAMPLES];
	size_t dict_len = 0, plain_len = 0, packed_len = 0;
	struct codec_cdict *cd;
	struct codec_ddict *dd;

	for (int i = 0; i < SAMPLES; i++) {
		/* Records that share most of their text: what a dictionary is for. */
		for (int k = 0; k < SAMPLE; k += 64)
			snprintf((char *)samples + i * SAMPLE + k, 64,
				 "{\"pid\":%d,\"state\":\"running\",\"rss\":%d,\"x\":%d}",
				 (i * 31 + k) % 977, (k * 7 + i) % 4099, i ^ k);
		sizes[i] = SAMPLE;
	}
	EXPECT_OK(codec_dict_train(samples, sizes, SAMPLES, dict, sizeof(dict), &dict_len, NULL));
	EXPECT(dict_len > 0 && dict_len <= sizeof(dict));
	for (int k = 0; k < SAMPLE; k += 64)
		snprintf((char *)block + k, 64, "{\"pid\":%d,\"state\":\"running\",\"rss\":%d,\"x\":%d}",
			 (k * 13) % 991, (k * 3) % 4001, k);
	cd = codec_cdict_new(dict, dict_len, 9);
	dd = codec_ddict_new(dict, dict_len);
	EXPECT(cd && dd);
	/* A short block: where a dictionary pays most. */
	EXPECT_OK(codec_compress(ctx, SNAPFS_CODEC_ZSTD, 9, NULL, block, SHORT, plain,
				 sizeof(plain), &plain_len));
	EXPECT_OK(codec_compress(ctx, SNAPFS_CODEC_ZSTD, 9, cd, block, SHORT, packed,
				 sizeof(packed), &packed_len));
	EXPECT(packed_len < plain_len);
	EXPECT_OK(codec_decompress(ctx, SNAPFS_CODEC_ZSTD, dd, packed, packed_len, out, SHORT));
	EXPECT(memcmp(out, block, SHORT) == 0);
	EXPECT(codec_decompress(ctx, SNAPFS_CODEC_ZSTD, NULL, packed, packed_len, out, SHORT) ==
	       -SNAPFS_ECORRUPT);
	/* Too few samples make no dictionary. */
	EXPECT(codec_dict_train(samples, sizes, 2, dict, sizeof(dict), &dict_len, NULL) == -EINVAL);
	/* A raised cancel flag stops the wait at once; the abandoned
	 * training frees its own copies (ASan's leak check sees it). */
	{
		volatile sig_atomic_t stop = 1;

		dict_len = 0;
		EXPECT(codec_dict_train(samples, sizes, SAMPLES, dict, sizeof(dict), &dict_len,
					&stop) == -SNAPFS_ECANCELED);
		EXPECT(dict_len == 0);
	}
	codec_cdict_free(cd);
	codec_ddict_free(dd);
}

int main(void)
{
	struct codec_ctx *ctx = codec_ctx_new();
	enum snapfs_codec c;
	static unsigned char page[4096];
	int64_t d1, d2;
	struct page_hasher *h = page_hasher_new();

	for (int level = 1; level <= 19; level += 6) {
		round_trip(ctx, SNAPFS_CODEC_ZSTD, level, true);
		round_trip(ctx, SNAPFS_CODEC_ZSTD, level, false);
	}
	round_trip(ctx, SNAPFS_CODEC_LZ4, 1, true);
	round_trip(ctx, SNAPFS_CODEC_LZ4, 9, true);
	round_trip(ctx, SNAPFS_CODEC_LZ4, 1, false);
	round_trip(ctx, SNAPFS_CODEC_NONE, 0, true);
	dictionary(ctx);

	EXPECT(snapfs_codec_parse("zstd", &c) == 0 && c == SNAPFS_CODEC_ZSTD);
	EXPECT(snapfs_codec_parse("lz4", &c) == 0 && c == SNAPFS_CODEC_LZ4);
	EXPECT(snapfs_codec_parse("none", &c) == 0 && c == SNAPFS_CODEC_NONE);
	EXPECT(snapfs_codec_parse("gzip", &c) == -EINVAL);
	EXPECT(snapfs_codec_level_valid(SNAPFS_CODEC_ZSTD, 3));
	EXPECT(!snapfs_codec_level_valid(SNAPFS_CODEC_ZSTD, 0));
	EXPECT(!snapfs_codec_level_valid(SNAPFS_CODEC_ZSTD, 40));
	EXPECT(!snapfs_codec_level_valid(SNAPFS_CODEC_NONE, 3));

	/* Digests: equal pages, equal keys; one bit apart, different keys. */
	fill(page, sizeof(page), 3, false);
	EXPECT_OK(page_digest64(h, page, sizeof(page), &d1));
	EXPECT_OK(page_digest64(h, page, sizeof(page), &d2));
	EXPECT(d1 == d2);
	page[100] ^= 1;
	EXPECT_OK(page_digest64(h, page, sizeof(page), &d2));
	EXPECT(d1 != d2);
	/* Run hashes depend on place as well as content. */
	EXPECT(run_hash(page, sizeof(page), 1, 5) != run_hash(page, sizeof(page), 1, 6));
	EXPECT(run_hash(page, sizeof(page), 1, 5) != run_hash(page, sizeof(page), 2, 5));
	EXPECT(bytes_all_zero((unsigned char[4096]){ 0 }, 4096));
	EXPECT(!bytes_all_zero(page, sizeof(page)));
	page_hasher_free(h);
	codec_ctx_free(ctx);
	return test_main_result("test_codec");
}
