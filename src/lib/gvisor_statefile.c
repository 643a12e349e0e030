// SPDX-License-Identifier: MIT
/*
 * gVisor's state file, read. Written from gVisor release 20221219 (Debian
 * 12's golang-gvisor-gvisor-dev 0.0~20221219.0, the tree of its runsc):
 *  - pkg/state/statefile/statefile.go: magicHeader "gVisorSF"; the
 *    metadata length as 8 bytes big-endian, at most maxMetadataSize
 *    (16 MiB); JSON metadata; then HMAC-SHA256(key, everything so far),
 *    written always (with no key, the key is empty); then the
 *    compressio stream with chunk size 1 MiB, flate.BestSpeed.
 *  - pkg/compressio/compressio.go: the chunk size as 4 bytes big-endian;
 *    with a key, HMAC(key, chunk size) after it; then per chunk its
 *    compressed size (4 bytes big-endian), the raw deflate data (one
 *    flate stream per chunk, ended by fw.Close()) and, with a key,
 *    HMAC(key, data || size || previous sum). A chunk inflates to at most
 *    the chunk size (the writer flushes at it).
 * Later gVisor (2023 on) adds "compression" to the metadata ("none" or
 * "flate-best-speed") and leaves the header HMAC out when there is no key;
 * that layout is refused here by name.
 */
#include "gvisor_statefile.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "errors.h"
#include "snapfs.h"
#include "source_util.h"

#define SF_MAGIC "gVisorSF"
#define SF_MAGIC_LEN 8
#define SF_MAX_METADATA ((uint64_t)16 << 20)
#define SF_SUM_LEN 32
/* The largest chunk size read (gVisor writes 1 MiB). */
#define SF_MAX_CHUNK ((uint32_t)64 << 20)

struct gvisor_statefile {
	int fd;
	const char *shown;
	uint64_t file_off;            /* next byte of the file */
	unsigned char *key;
	size_t key_len;
	bool keyed;                   /* chunks carry sums */
	uint32_t chunk_size;
	unsigned char last_sum[SF_SUM_LEN];
	unsigned char *cbuf;          /* a compressed chunk, then its size and
	                               * the previous sum (for the HMAC) */
	size_t cbuf_cap;
	unsigned char *ubuf;          /* the chunk inflated */
	size_t ulen, upos;
	uint64_t offset;              /* stream bytes handed out */
	uint64_t chunks;
	bool ended;
	z_stream z;
	bool z_ready;
	char *metadata;
};

static int sf_corrupt(struct gvisor_statefile *sf, const char *what)
{
	return error_set(-SNAPFS_ECORRUPT, "%s: %s", sf->shown, what);
}

/* Read exactly len bytes at file_off; 1 if the file ends first (none
 * read), 0 when read, -errno. *ret_got tells how many came. */
static int sf_pread(struct gvisor_statefile *sf, void *buf, size_t len, size_t *ret_got)
{
	ssize_t n = pread_full(sf->fd, buf, len, sf->file_off);

	if (n < 0)
		return error_set((int)n, "%s: read at offset %llu: %s", sf->shown,
				 (unsigned long long)sf->file_off, errno_text((int)-n));
	sf->file_off += (uint64_t)n;
	if (ret_got)
		*ret_got = (size_t)n;
	return (size_t)n < len ? 1 : 0;
}

static int sf_read_exact(struct gvisor_statefile *sf, void *buf, size_t len, const char *what)
{
	size_t got = 0;
	int rc = sf_pread(sf, buf, len, &got);

	if (rc == 1)
		return error_set(-SNAPFS_ECORRUPT, "%s: truncated: the file ends at byte %llu, "
				 "inside %s (%zu of %zu bytes)", sf->shown,
				 (unsigned long long)sf->file_off, what, got, len);
	return rc;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int hmac256(const struct gvisor_statefile *sf, const unsigned char *data, size_t len,
		   unsigned char out[SF_SUM_LEN])
{
	static const unsigned char empty[1];
	unsigned int out_len = SF_SUM_LEN;

	if (!HMAC(EVP_sha256(), sf->key_len ? sf->key : empty, (int)sf->key_len, data, len,
		  out, &out_len) || out_len != SF_SUM_LEN)
		return error_set(-EIO, "%s: HMAC-SHA256 failed", sf->shown);
	return 0;
}

/* true if a stored HMAC differs from the computed one. Fuzzing builds
 * cannot forge HMACs and let them pass, to reach what follows. */
static bool sums_differ(const unsigned char *a, const unsigned char *b)
{
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
	(void)a;
	(void)b;
	return false;
#else
	return CRYPTO_memcmp(a, b, SF_SUM_LEN) != 0;
#endif
}

static int wrong_key(struct gvisor_statefile *sf, const char *where)
{
	if (sf->key)
		return error_set(-EACCES, "%s: the HMAC of %s does not match: the key file "
				 "holds a key other than the one it was written with (or the file "
				 "was changed)", sf->shown, where);
	return error_set(-EACCES, "%s: the HMAC of %s does not match: the checkpoint was "
			 "written with a key; pass it with --key-file (or the file was changed)",
			 sf->shown, where);
}

/* Magic, metadata, its HMAC. */
static int read_header(struct gvisor_statefile *sf)
{
	unsigned char head[SF_MAGIC_LEN + 8], sum[SF_SUM_LEN], want[SF_SUM_LEN];
	unsigned char *all;
	uint64_t len = 0;
	size_t got = 0;
	int rc;

	rc = sf_pread(sf, head, sizeof(head), &got);
	if (rc < 0)
		return rc;
	if (got < SF_MAGIC_LEN || memcmp(head, SF_MAGIC, SF_MAGIC_LEN) != 0)
		return error_set(-EINVAL, "%s: not a gVisor state file (no 'gVisorSF' magic)",
				 sf->shown);
	if (rc == 1)
		return sf_corrupt(sf, "truncated: the file ends inside the metadata length");
	for (int i = 0; i < 8; i++)
		len = len << 8 | head[SF_MAGIC_LEN + i];
	if (len > SF_MAX_METADATA)
		return error_set(-SNAPFS_ECORRUPT, "%s: metadata length %llu is over gVisor's "
				 "limit of 16 MiB", sf->shown, (unsigned long long)len);
	all = malloc(sizeof(head) + (size_t)len + 1);
	if (!all)
		return -ENOMEM;
	memcpy(all, head, sizeof(head));
	rc = sf_read_exact(sf, all + sizeof(head), (size_t)len, "the JSON metadata");
	if (rc < 0)
		goto out_free;
	all[sizeof(head) + len] = 0;
	if (memchr(all + sizeof(head), 0, (size_t)len)) {
		rc = sf_corrupt(sf, "the metadata holds a NUL byte: not JSON");
		goto out_free;
	}
	if (strstr((char *)all + sizeof(head), "\"compression\":")) {
		rc = error_set(-EINVAL, "%s: a state file with a \"compression\" setting in "
			       "its metadata, as gVisor writes since 2023; snapfs reads the "
			       "state files of gVisor release 20221219 (no such setting, flate "
			       "chunks); the memory of newer checkpoints is in pages_meta.img "
			       "and pages.img", sf->shown);
		goto out_free;
	}
	rc = sf_read_exact(sf, sum, sizeof(sum), "the metadata's HMAC");
	if (rc == 0)
		rc = hmac256(sf, all, sizeof(head) + (size_t)len, want);
	if (rc == 0 && sums_differ(sum, want))
		rc = wrong_key(sf, "the header");
	if (rc < 0)
		goto out_free;
	memmove(all, all + sizeof(head), (size_t)len + 1);
	sf->metadata = (char *)all;
	return 0;
out_free:
	free(all);
	return rc;
}

/* The chunk size, and its HMAC with a key. */
static int read_stream_head(struct gvisor_statefile *sf)
{
	unsigned char b[4], sum[SF_SUM_LEN];
	int rc;

	rc = sf_read_exact(sf, b, 4, "the chunk size");
	if (rc < 0)
		return rc;
	sf->chunk_size = be32(b);
	if (sf->chunk_size == 0 || sf->chunk_size > SF_MAX_CHUNK)
		return error_set(-SNAPFS_ECORRUPT, "%s: chunk size %u: snapfs reads chunks of "
				 "1 byte to 64 MiB (gVisor writes 1 MiB)", sf->shown,
				 sf->chunk_size);
	if (sf->keyed) {
		rc = hmac256(sf, b, 4, sf->last_sum);
		if (rc == 0)
			rc = sf_read_exact(sf, sum, SF_SUM_LEN, "the chunk size's HMAC");
		if (rc == 0 && sums_differ(sum, sf->last_sum))
			rc = wrong_key(sf, "the chunk size");
		if (rc < 0)
			return rc;
	}
	sf->ubuf = malloc(sf->chunk_size);
	if (!sf->ubuf)
		return -ENOMEM;
	if (inflateInit2(&sf->z, -15) != Z_OK)
		return error_set(-ENOMEM, "%s: zlib: cannot start inflating", sf->shown);
	sf->z_ready = true;
	return 0;
}

int gvisor_statefile_open(int fd, const char *shown, const unsigned char *key,
			  size_t key_len, struct gvisor_statefile **ret_sf)
{
	struct gvisor_statefile *sf = calloc(1, sizeof(*sf));
	int rc;

	if (!sf)
		return -ENOMEM;
	sf->fd = fd;
	sf->shown = shown;
	if (key) {
		sf->key = malloc(key_len ? key_len : 1);
		if (!sf->key) {
			free(sf);
			return -ENOMEM;
		}
		memcpy(sf->key, key, key_len);
		sf->key_len = key_len;
		sf->keyed = true;
	}
	rc = read_header(sf);
	if (rc == 0)
		rc = read_stream_head(sf);
	if (rc < 0) {
		gvisor_statefile_close(sf);
		return rc;
	}
	*ret_sf = sf;
	return 0;
}

void gvisor_statefile_close(struct gvisor_statefile *sf)
{
	if (!sf)
		return;
	if (sf->z_ready)
		inflateEnd(&sf->z);
	if (sf->key)
		OPENSSL_cleanse(sf->key, sf->key_len);
	free(sf->key);
	free(sf->cbuf);
	free(sf->ubuf);
	free(sf->metadata);
	free(sf);
}

const char *gvisor_statefile_metadata(const struct gvisor_statefile *sf)
{
	return sf->metadata;
}

uint64_t gvisor_statefile_offset(const struct gvisor_statefile *sf)
{
	return sf->offset;
}

/* The next chunk into ubuf; sets ended at a clean end of the file. */
static int next_chunk(struct gvisor_statefile *sf)
{
	unsigned char b[4], sum[SF_SUM_LEN];
	char what[96];
	size_t got = 0, need;
	uint32_t clen;
	int rc;

	rc = sf_pread(sf, b, 4, &got);
	if (rc < 0)
		return rc;
	if (rc == 1) {
		if (got == 0) {
			sf->ended = true;
			return 0;
		}
		return sf_corrupt(sf, "truncated: the file ends inside a chunk's size");
	}
	clen = be32(b);
	/* Deflate grows data by a few bytes per 64 KiB at worst. */
	if (clen > sf->chunk_size + sf->chunk_size / 8 + 1024)
		return error_set(-SNAPFS_ECORRUPT, "%s: chunk %llu: compressed size %u is over "
				 "what a chunk of %u bytes deflates to", sf->shown,
				 (unsigned long long)sf->chunks, clen, sf->chunk_size);
	need = (size_t)clen + 4 + SF_SUM_LEN;
	if (need > sf->cbuf_cap) {
		unsigned char *p = realloc(sf->cbuf, need);

		if (!p)
			return -ENOMEM;
		sf->cbuf = p;
		sf->cbuf_cap = need;
	}
	snprintf(what, sizeof(what), "chunk %llu", (unsigned long long)sf->chunks);
	rc = sf_read_exact(sf, sf->cbuf, clen, what);
	if (rc < 0)
		return rc;
	if (sf->keyed) {
		memcpy(sf->cbuf + clen, b, 4);
		memcpy(sf->cbuf + clen + 4, sf->last_sum, SF_SUM_LEN);
		rc = sf_read_exact(sf, sum, SF_SUM_LEN, "a chunk's HMAC");
		if (rc == 0)
			rc = hmac256(sf, sf->cbuf, clen + 4 + SF_SUM_LEN, sf->last_sum);
		if (rc < 0)
			return rc;
		if (sums_differ(sum, sf->last_sum))
			return wrong_key(sf, what);
	}
	if (inflateReset(&sf->z) != Z_OK)
		return sf_corrupt(sf, "zlib: cannot reset");
	sf->z.next_in = sf->cbuf;
	sf->z.avail_in = clen;
	sf->z.next_out = sf->ubuf;
	sf->z.avail_out = sf->chunk_size;
	rc = inflate(&sf->z, Z_FINISH);
	if (rc != Z_STREAM_END) {
		if (rc == Z_BUF_ERROR && sf->z.avail_out == 0)
			return error_set(-SNAPFS_ECORRUPT, "%s: %s inflates to more than the "
					 "chunk size (%u bytes)", sf->shown, what, sf->chunk_size);
		return error_set(-SNAPFS_ECORRUPT, "%s: %s: not a whole deflate stream (%s)",
				 sf->shown, what, sf->z.msg ? sf->z.msg : "truncated");
	}
	sf->ulen = sf->chunk_size - sf->z.avail_out;
	sf->upos = 0;
	sf->chunks++;
	return 0;
}

ssize_t gvisor_statefile_read(void *ctx, unsigned char *buf, size_t len)
{
	struct gvisor_statefile *sf = ctx;
	size_t done = 0;

	while (done < len) {
		size_t take;

		if (sf->upos == sf->ulen) {
			int rc;

			if (sf->ended)
				break;
			rc = next_chunk(sf);
			if (rc < 0)
				return rc;
			continue;
		}
		take = sf->ulen - sf->upos;
		if (take > len - done)
			take = len - done;
		memcpy(buf + done, sf->ubuf + sf->upos, take);
		sf->upos += take;
		done += take;
	}
	sf->offset += done;
	return (ssize_t)done;
}
