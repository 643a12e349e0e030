// SPDX-License-Identifier: MIT
/*
 * Fuzz target for gVisor's checkpoint.img (gvisor_statefile.c and the
 * state-encoded MemoryFile in source_gvisor.c), through the gvisor source
 * as a save opens it. The first byte chooses how the rest is used:
 *  - even: the rest is checkpoint.img as it stands (the container: magic,
 *    metadata, HMAC, chunk sizes, deflate data);
 *  - odd: the rest is the state stream; the harness wraps it in a valid
 *    state file, so that the fuzzer reaches the stream's decoding and the
 *    MemoryFile's layout (state-encoded or v1 inline): with bit 1 clear
 *    as gVisor 20221219 writes it (no compression setting, header HMAC
 *    with the empty key, 4 KiB chunks, deflated), with bit 1 set as
 *    gVisor since 2026-03 writes "compression": "none" without a key (no
 *    header HMAC, the stream as it is).
 * libFuzzer builds define FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, and
 * the reader then lets a wrong HMAC pass, as fuzzers cannot forge one.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <zlib.h>

#include "fuzz_source.h"

#define CHUNK 4096

static void put_be(unsigned char *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

/* A state file of the stream in data (see gvisor_statefile.c). */
static unsigned char *wrap(const uint8_t *data, size_t size, size_t *ret_len)
{
	static const char meta[] = "{\"_timestamp\":\"fuzz\"}";
	size_t mlen = sizeof(meta) - 1, cap = 64 + mlen + 32 + 4 + (size / CHUNK + 1) * (CHUNK + 64);
	unsigned char *out = malloc(cap), empty[1] = { 0 };
	unsigned int hlen = 32;
	size_t at = 0;

	assert(out);
	memcpy(out, "gVisorSF", 8);
	put_be(out + 8, mlen, 8);
	memcpy(out + 16, meta, mlen);
	at = 16 + mlen;
	assert(HMAC(EVP_sha256(), empty, 0, out, at, out + at, &hlen));
	at += 32;
	put_be(out + at, CHUNK, 4);
	at += 4;
	for (size_t off = 0; off < size; off += CHUNK) {
		size_t n = size - off < CHUNK ? size - off : CHUNK;
		z_stream z = { 0 };

		assert(deflateInit2(&z, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
		z.next_in = (unsigned char *)data + off;
		z.avail_in = (unsigned int)n;
		z.next_out = out + at + 4;
		z.avail_out = (unsigned int)(cap - at - 4);
		assert(deflate(&z, Z_FINISH) == Z_STREAM_END);
		put_be(out + at, z.total_out, 4);
		at += 4 + z.total_out;
		deflateEnd(&z);
	}
	*ret_len = at;
	return out;
}

/* A "none" state file of the stream in data, no key (statefile.go at
 * gVisor 3c5eee17dc45). */
static unsigned char *wrap_none(const uint8_t *data, size_t size, size_t *ret_len)
{
	static const char meta[] = "{\"compression\":\"none\"}";
	size_t mlen = sizeof(meta) - 1;
	unsigned char *out = malloc(16 + mlen + size + 1);

	assert(out);
	memcpy(out, "gVisorSF", 8);
	put_be(out + 8, mlen, 8);
	memcpy(out + 16, meta, mlen);
	if (size)
		memcpy(out + 16 + mlen, data, size);
	*ret_len = 16 + mlen + size;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[96], file[128];
	unsigned char *img = NULL;
	size_t len;

	if (size < 1)
		return 0;
	snprintf(path, sizeof(path), "%s/g", fuzz_scratch());
	snprintf(file, sizeof(file), "%s/checkpoint.img", path);
	fuzz_reset("g");
	if ((data[0] & 3) == 3) {
		img = wrap_none(data + 1, size - 1, &len);
		fuzz_write(file, img, len);
		free(img);
	} else if (data[0] & 1) {
		img = wrap(data + 1, size - 1, &len);
		fuzz_write(file, img, len);
		free(img);
	} else {
		fuzz_write(file, data + 1, size - 1);
	}
	fuzz_source(path, "gvisor");
	return 0;
}
