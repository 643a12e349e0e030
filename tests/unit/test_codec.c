// SPDX-License-Identifier: MIT
/*
 * Unit tests of the codecs and hashes: round trips for every codec and
 * level, damaged input rejected, names and levels parsed.
 */
#include <errno.h>
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
	EXPECT_OK(codec_compress(ctx, codec, level, src, LEN, packed, cap, &len));
	EXPECT(len <= cap);
	if (compressible && codec != SNAPFS_CODEC_NONE)
		EXPECT(len < LEN / 4);
	memset(out, 0xAA, LEN);
	EXPECT_OK(codec_decompress(ctx, codec, packed, len, out, LEN));
	EXPECT(memcmp(src, out, LEN) == 0);
	/* The wrong length, a truncated stream and an unknown codec id are
	 * all damage. */
	EXPECT(codec_decompress(ctx, codec, packed, len, out, LEN - 4096) == -SNAPFS_ECORRUPT);
	if (len > 8)
		EXPECT(codec_decompress(ctx, codec, packed, len / 2, out, LEN) == -SNAPFS_ECORRUPT);
	EXPECT(codec_decompress(ctx, 77, packed, len, out, LEN) == -SNAPFS_ECORRUPT);
	free(packed);
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
