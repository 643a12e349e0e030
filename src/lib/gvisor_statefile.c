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
 *
 * Later gVisor, read from github.com/google/gvisor (history checked up to
 * commit 3c5eee17dc45, 2026-08-21):
 *  - commit 669726877e61 (2023-07-06, release-20230717 on): the metadata
 *    carries "compression": "flate-best-speed" (the compressio stream
 *    above) or "none" (compressio/nocompressio.go); a file without it is
 *    flate (CompressionLevelFromMetadata(); every writer since adds it).
 *    These two are the only values gVisor has defined (statefile.go
 *    CompressionLevelFromString(), to 3c5eee17dc45); anything else is
 *    refused by name.
 *  - "none", 669726877e61 to 68f0b41bf (2024-08-30): every Write is a
 *    frame: its length (4 bytes big-endian), the bytes, and with a key
 *    HMAC(key, bytes || length).
 *  - "none" since 68f0b41bf: without a key the stream is written as it is,
 *    unframed; with a key framed as above, and since ed5a61a24
 *    (2024-09-17) each frame's HMAC also covers the previous frame's
 *    (zeros before the first): HMAC(key, bytes || length || previous).
 *    Which of the two a keyed file uses is found at its first frame.
 *  - commits 56114d1c6 / c7907727f (2026-03): the metadata's HMAC is
 *    written only with a key. Without a key, snapfs takes the 32 bytes after
 *    the metadata as that HMAC if they are HMAC(empty key) of it, and
 *    else as the stream's first bytes if these look like its start (a
 *    chunk size for flate, a state object header for "none").
 *  - commit 79b7318d6 (2026-04-28) makes "none" the default; with it the
 *    memory is in pages_meta.img and pages.img (commits 5e9207a96,
 *    a3ae7f25a, 2024-04), not in this stream.
 */
#include "gvisor_statefile.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
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
/* The chunk size gVisor writes. */
#define SF_GVISOR_CHUNK ((uint32_t)1 << 20)
/* The longest compression value quoted in a message. */
#define SF_MAX_SHOWN_VALUE 64

enum sf_mode {
	SF_FLATE,          /* compressio: deflated chunks */
	SF_PLAIN,          /* "none", unframed */
	SF_FRAMED,         /* "none", frames (with HMACs when keyed) */
};

/* Which HMAC a keyed "none" file's frames carry. */
enum sf_chain {
	SF_CHAIN_UNKNOWN,  /* not known before the first frame */
	SF_CHAIN_PREV,     /* HMAC(bytes || length || previous), ed5a61a24 on */
	SF_CHAIN_NONE,     /* HMAC(bytes || length), before */
};

struct gvisor_statefile {
	int fd;
	const char *shown;
	uint64_t file_off;            /* next byte of the file */
	unsigned char *key;
	size_t key_len;
	bool keyed;                   /* chunks carry sums */
	enum sf_mode mode;
	bool legacy;                  /* no setting: gVisor before 2023 */
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
	/* SF_FRAMED: the current frame */
	uint32_t frame_len, frame_left;
	bool in_frame;
	enum sf_chain chain;
	EVP_MAC *mac;
	EVP_MAC_CTX *mac_prev, *mac_plain;   /* one per chain kind */
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

/* --- the JSON metadata: a flat object of strings (statefile.go) -------- */

static const char *json_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* A JSON string at p (after its quote is checked): its end in *ret_end;
 * decoded into out (cap bytes, cut short, NUL-ended) when out is set.
 * -EINVAL if it is not a string. \u escapes above 0x7f decode as '?'. */
static int json_string(const char *p, const char **ret_end, char *out, size_t cap)
{
	size_t n = 0;

	if (*p != '"')
		return -EINVAL;
	for (p++; *p != '"'; p++) {
		char c = *p;

		if (*p == 0 || (unsigned char)*p < 0x20)
			return -EINVAL;
		if (*p == '\\') {
			p++;
			switch (*p) {
			case '"': case '\\': case '/': c = *p; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			case 'u': {
				unsigned v = 0;

				for (int i = 1; i <= 4; i++) {
					char h = p[i];

					if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') ||
					      (h >= 'A' && h <= 'F')))
						return -EINVAL;
					v = v << 4 | (unsigned)(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
				}
				p += 4;
				c = v < 0x80 ? (char)v : '?';
				break;
			}
			default:
				return -EINVAL;
			}
		}
		if (out && n + 1 < cap)
			out[n++] = c;
	}
	if (out)
		out[n] = 0;
	*ret_end = p + 1;
	return 0;
}

/* The value of key in the metadata object: 1 and value set if present, 0
 * if not, -EINVAL if the metadata is not a JSON object of strings. */
static int json_lookup(const char *json, const char *key, char *value, size_t cap)
{
	char name[32];
	const char *p = json_ws(json);
	int found = 0;

	if (*p++ != '{')
		return -EINVAL;
	p = json_ws(p);
	if (*p == '}')
		return json_ws(p + 1)[0] ? -EINVAL : 0;
	for (;;) {
		bool match;

		if (json_string(p, &p, name, sizeof(name)) < 0)
			return -EINVAL;
		match = strcmp(name, key) == 0;
		p = json_ws(p);
		if (*p++ != ':')
			return -EINVAL;
		p = json_ws(p);
		if (json_string(p, &p, match ? value : NULL, cap) < 0)
			return -EINVAL;
		found |= match;
		p = json_ws(p);
		if (*p == '}')
			break;
		if (*p++ != ',')
			return -EINVAL;
		p = json_ws(p);
	}
	return json_ws(p + 1)[0] ? -EINVAL : found;
}

/* The mode from the "compression" setting. */
static int choose_mode(struct gvisor_statefile *sf)
{
	char value[SF_MAX_SHOWN_VALUE + 1] = "";
	int rc = json_lookup(sf->metadata, "compression", value, sizeof(value));

	if (rc < 0)
		return sf_corrupt(sf, "the metadata is not a JSON object of strings");
	if (rc == 0) {
		sf->mode = SF_FLATE;
		sf->legacy = true;
		return 0;
	}
	if (strcmp(value, "flate-best-speed") == 0) {
		sf->mode = SF_FLATE;
		return 0;
	}
	if (strcmp(value, "none") == 0) {
		sf->mode = SF_FRAMED;  /* or SF_PLAIN: found after the header */
		return 0;
	}
	for (char *c = value; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	return error_set(-EINVAL, "%s: compression \"%s\" in the metadata: snapfs reads "
			 "\"flate-best-speed\" and \"none\" (the values gVisor defines, up to "
			 "commit 3c5eee17dc45) and state files without the setting (flate, "
			 "gVisor before 2023-07)", sf->shown, value);
}

/* true if p (10 bytes) starts a state object header: a 10-byte varint of
 * a length with bit 63 set, as the stream's first state.Save writes. */
static bool looks_like_object_header(const unsigned char *p)
{
	for (int i = 0; i < 9; i++)
		if (p[i] < 0x80)
			return false;
	return p[9] == 0x01;
}

/* After the metadata: its HMAC, always there before gVisor 2026-03 and
 * with a key since; without a key, told apart by its value. */
static int read_header_sum(struct gvisor_statefile *sf, const unsigned char *all, size_t len)
{
	unsigned char sum[SF_SUM_LEN], want[SF_SUM_LEN], next[SF_SUM_LEN + 10];
	size_t got = 0;
	ssize_t n;
	int rc;

	rc = hmac256(sf, all, len, want);
	if (rc < 0)
		return rc;
	if (sf->keyed) {
		rc = sf_read_exact(sf, sum, sizeof(sum), "the metadata's HMAC");
		if (rc == 0 && sums_differ(sum, want))
			rc = wrong_key(sf, "the header");
		return rc;
	}
	n = pread_full(sf->fd, next, sizeof(next), sf->file_off);
	if (n < 0)
		return error_set((int)n, "%s: read at offset %llu: %s", sf->shown,
				 (unsigned long long)sf->file_off, errno_text((int)-n));
	got = (size_t)n;
	if (got >= SF_SUM_LEN && CRYPTO_memcmp(next, want, SF_SUM_LEN) == 0) {
		sf->file_off += SF_SUM_LEN;
		return 0;
	}
	/* Without the setting, gVisor before 2023: the HMAC is always there. */
	if (sf->legacy) {
		rc = sf_read_exact(sf, sum, sizeof(sum), "the metadata's HMAC");
		if (rc == 0 && sums_differ(sum, want))
			rc = wrong_key(sf, "the header");
		return rc;
	}
	/* gVisor's chunk size is 1 MiB (stateFileChunkSize), always. */
	if (sf->mode == SF_FLATE && got >= 4 && be32(next) == SF_GVISOR_CHUNK)
		return 0;
	if (sf->mode != SF_FLATE && (got == 0 || (got >= 10 && looks_like_object_header(next))))
		return 0;
	/* (Frames without a key were written only while the header HMAC
	 * always was: not here.) */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
	sf->file_off += got < SF_SUM_LEN ? got : SF_SUM_LEN;
	return 0;
#else
	return wrong_key(sf, "the header");
#endif
}

/* Magic, metadata, its HMAC. */
static int read_header(struct gvisor_statefile *sf)
{
	unsigned char head[SF_MAGIC_LEN + 8];
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
	sf->metadata = (char *)all + sizeof(head);
	rc = choose_mode(sf);
	if (rc == 0)
		rc = read_header_sum(sf, all, sizeof(head) + (size_t)len);
	sf->metadata = NULL;
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

/* "none": framed or not. Without a key, frames were written until commit
 * 68f0b41bf (2024-08-30), which drops them: a frame starts with a 4-byte
 * length (a first byte below 0x80), the unframed stream with a state
 * object header (0x80 and above). With a key, always frames. */
static int start_plain(struct gvisor_statefile *sf)
{
	unsigned char b[1];
	ssize_t n;

	if (sf->keyed) {
		OSSL_PARAM params[2];

		sf->mode = SF_FRAMED;
		sf->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
		sf->mac_prev = sf->mac ? EVP_MAC_CTX_new(sf->mac) : NULL;
		sf->mac_plain = sf->mac ? EVP_MAC_CTX_new(sf->mac) : NULL;
		if (!sf->mac_prev || !sf->mac_plain)
			return error_set(-ENOMEM, "%s: OpenSSL: no HMAC", sf->shown);
		params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
							     (char *)"SHA256", 0);
		params[1] = OSSL_PARAM_construct_end();
		if (!EVP_MAC_CTX_set_params(sf->mac_prev, params) ||
		    !EVP_MAC_CTX_set_params(sf->mac_plain, params))
			return error_set(-EIO, "%s: OpenSSL: no HMAC-SHA256", sf->shown);
		return 0;
	}
	n = pread_full(sf->fd, b, 1, sf->file_off);
	if (n < 0)
		return error_set((int)n, "%s: read at offset %llu: %s", sf->shown,
				 (unsigned long long)sf->file_off, errno_text((int)-n));
	sf->mode = n == 1 && b[0] < 0x80 ? SF_FRAMED : SF_PLAIN;
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
		rc = sf->mode == SF_FLATE ? read_stream_head(sf) : start_plain(sf);
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
	EVP_MAC_CTX_free(sf->mac_prev);
	EVP_MAC_CTX_free(sf->mac_plain);
	EVP_MAC_free(sf->mac);
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

static ssize_t read_flate(struct gvisor_statefile *sf, unsigned char *buf, size_t len)
{
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
	return (ssize_t)done;
}

static int mac_failed(struct gvisor_statefile *sf)
{
	return error_set(-EIO, "%s: HMAC-SHA256 failed", sf->shown);
}

/* A frame's start: its length; 1 at a clean end of the file. */
static int frame_start(struct gvisor_statefile *sf)
{
	unsigned char b[4];
	size_t got = 0;
	int rc = sf_pread(sf, b, 4, &got);

	if (rc < 0)
		return rc;
	if (rc == 1) {
		if (got == 0)
			return 1;
		return sf_corrupt(sf, "truncated: the file ends inside a frame's length");
	}
	sf->frame_len = sf->frame_left = be32(b);
	sf->in_frame = true;
	if (sf->keyed) {
		if (!EVP_MAC_init(sf->mac_prev, sf->key, sf->key_len, NULL) ||
		    !EVP_MAC_init(sf->mac_plain, sf->key, sf->key_len, NULL))
			return mac_failed(sf);
	}
	return 0;
}

/* A frame's end: its HMAC checked (keyed). The first frame tells which
 * HMAC the file carries. */
static int frame_end(struct gvisor_statefile *sf)
{
	unsigned char b[4], sum[SF_SUM_LEN], prev[SF_SUM_LEN], plain[SF_SUM_LEN];
	size_t out_len;
	char what[64];
	int rc;

	sf->in_frame = false;
	sf->chunks++;
	if (!sf->keyed)
		return 0;
	snprintf(what, sizeof(what), "frame %llu", (unsigned long long)(sf->chunks - 1));
	b[0] = (unsigned char)(sf->frame_len >> 24);
	b[1] = (unsigned char)(sf->frame_len >> 16);
	b[2] = (unsigned char)(sf->frame_len >> 8);
	b[3] = (unsigned char)sf->frame_len;
	if (!EVP_MAC_update(sf->mac_prev, b, 4) ||
	    !EVP_MAC_update(sf->mac_prev, sf->last_sum, SF_SUM_LEN) ||
	    !EVP_MAC_final(sf->mac_prev, prev, &out_len, SF_SUM_LEN) ||
	    !EVP_MAC_update(sf->mac_plain, b, 4) ||
	    !EVP_MAC_final(sf->mac_plain, plain, &out_len, SF_SUM_LEN))
		return mac_failed(sf);
	rc = sf_read_exact(sf, sum, SF_SUM_LEN, "a frame's HMAC");
	if (rc < 0)
		return rc;
	if (sf->chain == SF_CHAIN_UNKNOWN)
		sf->chain = CRYPTO_memcmp(sum, prev, SF_SUM_LEN) == 0 ? SF_CHAIN_PREV
		          : CRYPTO_memcmp(sum, plain, SF_SUM_LEN) == 0 ? SF_CHAIN_NONE
		          : SF_CHAIN_UNKNOWN;
	if (sums_differ(sum, sf->chain == SF_CHAIN_NONE ? plain : prev))
		return wrong_key(sf, what);
	memcpy(sf->last_sum, prev, SF_SUM_LEN);
	return 0;
}

static ssize_t read_framed(struct gvisor_statefile *sf, unsigned char *buf, size_t len)
{
	size_t done = 0;

	while (done < len && !sf->ended) {
		size_t take, got = 0;
		char what[64];
		int rc;

		if (!sf->in_frame) {
			rc = frame_start(sf);
			if (rc < 0)
				return rc;
			if (rc == 1) {
				sf->ended = true;
				break;
			}
		}
		if (sf->frame_left == 0) {
			rc = frame_end(sf);
			if (rc < 0)
				return rc;
			continue;
		}
		take = sf->frame_left < len - done ? sf->frame_left : len - done;
		snprintf(what, sizeof(what), "frame %llu", (unsigned long long)sf->chunks);
		rc = sf_pread(sf, buf + done, take, &got);
		if (rc < 0)
			return rc;
		if (rc == 1)
			return error_set(-SNAPFS_ECORRUPT, "%s: truncated: the file ends at byte "
					 "%llu, inside %s (%u more bytes of it were due)", sf->shown,
					 (unsigned long long)sf->file_off, what,
					 sf->frame_left - (uint32_t)got);
		if (sf->keyed && (!EVP_MAC_update(sf->mac_prev, buf + done, take) ||
				  !EVP_MAC_update(sf->mac_plain, buf + done, take)))
			return mac_failed(sf);
		sf->frame_left -= (uint32_t)take;
		done += take;
		if (sf->frame_left == 0) {
			rc = frame_end(sf);
			if (rc < 0)
				return rc;
		}
	}
	return (ssize_t)done;
}

static ssize_t read_plain(struct gvisor_statefile *sf, unsigned char *buf, size_t len)
{
	size_t got = 0;
	int rc = sf_pread(sf, buf, len, &got);

	return rc < 0 ? rc : (ssize_t)got;
}

ssize_t gvisor_statefile_read(void *ctx, unsigned char *buf, size_t len)
{
	struct gvisor_statefile *sf = ctx;
	ssize_t n;

	switch (sf->mode) {
	case SF_FLATE:
		n = read_flate(sf, buf, len);
		break;
	case SF_FRAMED:
		n = read_framed(sf, buf, len);
		break;
	default:
		n = read_plain(sf, buf, len);
		break;
	}
	if (n > 0)
		sf->offset += (uint64_t)n;
	return n;
}
