// SPDX-License-Identifier: MIT
/*
 * Fuzz target for the S3 client's parsers (src/lib/s3.c): the AWS-style
 * INI files (credentials, config) and the XML answers (ListObjectsV2
 * pages, error bodies). Any input is parsed or refused; never a crash,
 * never a value longer than its buffer, keys handed out NUL-terminated.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_key(const char *key, uint64_t size, void *arg)
{
	unsigned *n = arg;

	(void)size;
	assert(strlen(key) < 1100);
	return ++*n > 5000 ? 1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const lookups[][2] = {
		{ "default", "aws_access_key_id" }, { "profile snapfs", "region" },
		{ "profile snapfs", "s3.addressing_style" }, { "x", "endpoint_url" },
	};
	struct s3_list_page pg = { .fn = on_key, .strip = 3 };
	unsigned n = 0;
	char out[64];

	pg.arg = &n;
	for (size_t i = 0; i < sizeof(lookups) / sizeof(lookups[0]); i++) {
		int rc = s3_ini_lookup((const char *)data, size, lookups[i][0], lookups[i][1],
				       out, sizeof(out));

		assert(rc == 0 || rc == -ENOENT || rc == -ENAMETOOLONG);
		if (rc == 0)
			assert(strlen(out) < sizeof(out));
	}
	if (s3_parse_xml((const char *)data, size, &pg) == 0) {
		assert(strlen(pg.code) < sizeof(pg.code));
		assert(strlen(pg.message) < sizeof(pg.message));
	}
	free(pg.next_token);
	return 0;
}
