// SPDX-License-Identifier: MIT
/*
 * The decoded-blob cache, on its own with a loader that makes blobs of
 * 128 KiB: random readers' blobs stay up to the limit; blobs read in order
 * are dropped soon after their reader lets go (a long sequential read does
 * not grow the cache), but not before the next request that may straddle
 * them; decode-ahead's blobs stay until a reader takes them; a random
 * reader's interest keeps a streamed blob; the limit holds for all. And
 * the memory blobs live in (blob_mem.c): slots that never overlap, more
 * of them than the reserve, the last given back reused first.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blob_cache.h"
#include "blob_mem.h"
#include "expect.h"
#include "snapfs.h"

#define BLOB_BYTES ((size_t)128 * 1024)
#define LIMIT ((size_t)128 << 20)

static unsigned loads;

static int load_blob(void *ctx, const struct blob_loc *loc, bool sequential,
		     unsigned char *dst)
{
	(void)ctx;
	(void)sequential;
	memset(dst, (int)(loc->id & 0xff), (size_t)loc->page_count * SNAPFS_PAGE_SIZE);
	loads++;
	return 0;
}

/* A place that names blob id and its size only (load_blob needs nothing
 * more). */
static const struct blob_loc *loc_of(int64_t id)
{
	static __thread struct blob_loc loc;

	loc = (struct blob_loc){ .id = id, .page_count = BLOB_BYTES / SNAPFS_PAGE_SIZE };
	return &loc;
}

/* Take and let go of blobs first .. first + count - 1 as use says. */
static void read_blobs(struct blob_cache *c, int64_t first, unsigned count,
		       enum blob_use use)
{
	for (unsigned i = 0; i < count; i++) {
		const struct cached_blob *b = NULL;
		int64_t id = first + i;

		EXPECT_OK(blob_cache_get(c, loc_of(id), use, load_blob, NULL, &b));
		EXPECT(b && b->id == id && b->size == BLOB_BYTES &&
		       b->data[0] == (unsigned char)(id & 0xff));
		blob_cache_put(c, b);
	}
}

static void test_random_blobs_stay(void)
{
	struct blob_cache *c = blob_cache_new(LIMIT);

	loads = 0;
	read_blobs(c, 1, 400, BLOB_RANDOM);           /* 50 MiB */
	EXPECT(blob_cache_bytes(c) == 400 * BLOB_BYTES);
	read_blobs(c, 1, 400, BLOB_RANDOM);
	EXPECT(loads == 400);
	blob_cache_free(c);
}

static void test_stream_is_bounded(void)
{
	struct blob_cache *c = blob_cache_new(LIMIT);

	loads = 0;
	read_blobs(c, 1, 800, BLOB_STREAM);           /* 100 MiB in order */
	EXPECT(blob_cache_bytes(c) <= BLOB_CACHE_SPENT_KEEP);
	EXPECT(blob_cache_bytes(c) >= BLOB_CACHE_SPENT_KEEP - BLOB_BYTES);
	/* The last ones are still there for a straddling request... */
	read_blobs(c, 800, 1, BLOB_STREAM);
	EXPECT(loads == 800);
	/* ...the first ones are long gone. */
	EXPECT(!blob_cache_contains(c, 1));
	blob_cache_free(c);
}

static void test_ahead_waits_for_its_reader(void)
{
	struct blob_cache *c = blob_cache_new(LIMIT);

	loads = 0;
	for (int64_t id = 1; id <= 300; id++)       /* 37.5 MiB, more than kept spent */
		EXPECT_OK(blob_cache_load_ahead(c, loc_of(id), load_blob, NULL));
	EXPECT(blob_cache_bytes(c) == 300 * BLOB_BYTES);
	EXPECT_OK(blob_cache_load_ahead(c, loc_of(1), load_blob, NULL));
	EXPECT(loads == 300);                       /* there already: not loaded again */
	read_blobs(c, 1, 300, BLOB_STREAM);
	EXPECT(loads == 300);
	EXPECT(blob_cache_bytes(c) <= BLOB_CACHE_SPENT_KEEP);
	blob_cache_free(c);
}

static void test_random_interest_keeps_a_streamed_blob(void)
{
	struct blob_cache *c = blob_cache_new(LIMIT);

	loads = 0;
	read_blobs(c, 1, 10, BLOB_STREAM);
	read_blobs(c, 5, 1, BLOB_RANDOM);
	read_blobs(c, 100, 400, BLOB_STREAM);
	EXPECT(blob_cache_contains(c, 5));
	EXPECT(!blob_cache_contains(c, 4));
	blob_cache_free(c);
}

static void test_limit_holds(void)
{
	size_t limit = 8 * BLOB_BYTES;                /* below BLOB_CACHE_SPENT_KEEP */
	struct blob_cache *c = blob_cache_new(limit);
	const struct cached_blob *held = NULL;

	read_blobs(c, 1, 50, BLOB_STREAM);
	EXPECT(blob_cache_bytes(c) <= limit);
	read_blobs(c, 100, 50, BLOB_RANDOM);
	EXPECT(blob_cache_bytes(c) <= limit);
	/* A blob in use is never dropped, whatever the limit. */
	EXPECT_OK(blob_cache_get(c, loc_of(1000), BLOB_STREAM, load_blob, NULL, &held));
	read_blobs(c, 200, 50, BLOB_STREAM);
	EXPECT(held && held->data[0] == (unsigned char)(1000 & 0xff));
	EXPECT(blob_cache_contains(c, 1000));
	blob_cache_put(c, held);
	blob_cache_free(c);
}

#define SLOT ((size_t)BLOB_PAGES * SNAPFS_PAGE_SIZE)
#define SLOTS 1000                            /* 15.6 MiB: several chunks */

static void test_pool_slots(void)
{
	struct blob_mem *m = blob_mem_new(SLOT);
	static unsigned char *slots[SLOTS];
	unsigned char *other;

	EXPECT(m != NULL);
	blob_mem_start(m);
	for (size_t i = 0; i < SLOTS; i++) {
		slots[i] = blob_mem_get(m, SLOT);
		EXPECT(slots[i] != NULL);
		memset(slots[i], (int)(i & 0xff), SLOT);
	}
	/* Every slot kept its own bytes: none overlaps another. */
	for (size_t i = 0; i < SLOTS; i++)
		EXPECT(slots[i][0] == (unsigned char)(i & 0xff) &&
		       slots[i][SLOT - 1] == (unsigned char)(i & 0xff));
	blob_mem_put(m, slots[7], SLOT);
	EXPECT(blob_mem_get(m, SLOT) == slots[7]);
	/* Other sizes come from malloc and go back to it. */
	other = blob_mem_get(m, 3 * SNAPFS_PAGE_SIZE);
	EXPECT(other != NULL);
	memset(other, 1, 3 * SNAPFS_PAGE_SIZE);
	blob_mem_put(m, other, 3 * SNAPFS_PAGE_SIZE);
	for (size_t i = 0; i < SLOTS; i++)
		blob_mem_put(m, slots[i], SLOT);
	blob_mem_free(m);
	blob_mem_free(NULL);
}

/* Blobs of the slot size: the cache's own pool serves them. */
static void test_cache_in_slots(void)
{
	struct blob_cache *c = blob_cache_new(LIMIT);

	blob_cache_prepare(c);
	for (int64_t id = 1; id <= SLOTS; id++) {
		struct blob_loc loc = { .id = id, .page_count = BLOB_PAGES };
		const struct cached_blob *b = NULL;

		EXPECT_OK(blob_cache_get(c, &loc, BLOB_RANDOM, load_blob, NULL, &b));
		EXPECT(b && b->size == SLOT && b->data[SLOT - 1] == (unsigned char)(id & 0xff));
		blob_cache_put(c, b);
	}
	EXPECT(blob_cache_bytes(c) == SLOTS * SLOT);
	blob_cache_set_limit(c, 10 * SLOT);
	EXPECT(blob_cache_bytes(c) <= 10 * SLOT);
	blob_cache_free(c);
}

int main(void)
{
	test_pool_slots();
	test_cache_in_slots();
	test_random_blobs_stay();
	test_stream_is_bounded();
	test_ahead_waits_for_its_reader();
	test_random_interest_keeps_a_streamed_blob();
	test_limit_holds();
	return test_main_result("test_blob_cache");
}
