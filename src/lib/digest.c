// SPDX-License-Identifier: MIT
/*
 * Page digests with OpenSSL's SHA-256, checksums and run hashes with
 * xxHash's XXH3, and the zero-page test.
 */
#include "digest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "map_run.h"
#include "snapfs.h"
#include <xxhash.h>

struct page_hasher {
	EVP_MD *md;
	EVP_MD_CTX *ctx;
};

struct page_hasher *page_hasher_new(void)
{
	struct page_hasher *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->md = EVP_MD_fetch(NULL, "SHA256", NULL);
	h->ctx = EVP_MD_CTX_new();
	if (!h->md || !h->ctx) {
		page_hasher_free(h);
		return NULL;
	}
	return h;
}

void page_hasher_free(struct page_hasher *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	EVP_MD_free(h->md);
	free(h);
}

int page_digest64(struct page_hasher *h, const void *page, size_t len,
		  int64_t *ret_digest)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	uint64_t v = 0;

	if (!EVP_DigestInit_ex2(h->ctx, h->md, NULL) ||
	    !EVP_DigestUpdate(h->ctx, page, len) ||
	    !EVP_DigestFinal_ex(h->ctx, md, &mdlen) || mdlen < 8)
		return -EIO;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | md[i];
	*ret_digest = (int64_t)v;
	return 0;
}

int64_t blob_checksum(const void *data, size_t len)
{
	return (int64_t)XXH3_64bits(data, len);
}

static uint64_t run_seed(int64_t snapshot_id, uint64_t first_page)
{
	return ((uint64_t)snapshot_id << 40) ^ first_page;
}

int64_t run_hash(const void *data, size_t len, int64_t snapshot_id,
		 uint64_t first_page)
{
	return (int64_t)XXH3_64bits_withSeed(data, len, run_seed(snapshot_id, first_page));
}

/* A text field with its length first, so that fields cannot run into
 * each other. */
static void update_text(XXH3_state_t *state, const char *text)
{
	uint64_t len = text ? strlen(text) + 1 : 0;

	XXH3_64bits_update(state, &len, sizeof(len));
	if (text)
		XXH3_64bits_update(state, text, len);
}

int64_t snapshot_digest(const struct snapfs_snapshot *snap,
			const struct snapfs_segment *segs, size_t count)
{
	XXH3_state_t *state = XXH3_createState();
	uint64_t head[5] = { (uint64_t)snap->id, (uint64_t)snap->parent_id, snap->file_size,
			     snap->page_size, (uint64_t)snap->map_digest };
	int64_t digest;

	if (!state)
		return 0;
	XXH3_64bits_reset_withSeed(state, 0x736e6170667331ull);   /* "snapfs1" */
	XXH3_64bits_update(state, head, sizeof(head));
	update_text(state, snap->name);
	update_text(state, snap->format);
	for (size_t i = 0; i < count; i++) {
		uint64_t item[4] = { segs[i].start, segs[i].end, (uint64_t)segs[i].memcg_id,
				     segs[i].committed };

		XXH3_64bits_update(state, item, sizeof(item));
		update_text(state, segs[i].kind);
	}
	digest = (int64_t)XXH3_64bits_digest(state);
	XXH3_freeState(state);
	return digest;
}

int64_t map_digest(int64_t snapshot_id, uint64_t file_size,
		   const struct map_run *runs, size_t count)
{
	XXH3_state_t *state = XXH3_createState();
	uint64_t head[2] = { (uint64_t)snapshot_id, file_size };
	int64_t digest;

	if (!state)
		return 0;
	XXH3_64bits_reset(state);
	XXH3_64bits_update(state, head, sizeof(head));
	for (size_t i = 0; i < count; i++) {
		uint64_t item[3] = { runs[i].first_page, runs[i].page_count,
				     (uint64_t)runs[i].hash };

		XXH3_64bits_update(state, item, sizeof(item));
	}
	digest = (int64_t)XXH3_64bits_digest(state);
	XXH3_freeState(state);
	return digest;
}

struct run_hasher {
	XXH3_state_t *state;
};

struct run_hasher *run_hasher_new(void)
{
	struct run_hasher *h = calloc(1, sizeof(*h));

	if (h && !(h->state = XXH3_createState())) {
		free(h);
		return NULL;
	}
	return h;
}

void run_hasher_free(struct run_hasher *h)
{
	if (!h)
		return;
	XXH3_freeState(h->state);
	free(h);
}

void run_hasher_begin(struct run_hasher *h, int64_t snapshot_id, uint64_t first_page)
{
	XXH3_64bits_reset_withSeed(h->state, run_seed(snapshot_id, first_page));
}

void run_hasher_update(struct run_hasher *h, const void *data, size_t len)
{
	XXH3_64bits_update(h->state, data, len);
}

int64_t run_hasher_end(struct run_hasher *h)
{
	return (int64_t)XXH3_64bits_digest(h->state);
}

bool bytes_all_zero(const void *p, size_t len)
{
	const unsigned char *b = p;

	/* Compare the buffer with itself shifted by one byte after checking
	 * the first: memcmp is vectorised, a byte loop is not. */
	if (len == 0)
		return true;
	if (b[0] != 0)
		return false;
	return memcmp(b, b + 1, len - 1) == 0;
}
