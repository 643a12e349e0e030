// SPDX-License-Identifier: MIT
/*
 * Fuzz target for the userfaultfd handshake parser
 * (snapfs_uffd_parse_regions): any input is either refused with -EPROTO
 * (or -ENOMEM) or gives regions that keep the documented promises:
 * sorted, disjoint, aligned to a power-of-two page size of 4 KiB to 1 GiB,
 * no wrap-around. Never a crash, never a read past the input.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "snapfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snapfs_uffd_region *r = NULL;
	/* An exact copy on the heap: a read past it is caught by ASan. */
	char *text = malloc(size ? size : 1);
	size_t n = 0;
	int rc;

	assert(text);
	memcpy(text, data, size);
	rc = snapfs_uffd_parse_regions(text, size, &r, &n);
	assert(rc == 0 || rc == -EPROTO || rc == -ENOMEM);
	if (rc == 0) {
		assert(n > 0);
		for (size_t i = 0; i < n; i++) {
			uint64_t ps = r[i].page_size;

			assert(ps >= 4096 && ps <= ((uint64_t)1 << 30) && !(ps & (ps - 1)));
			assert(r[i].size > 0 && r[i].size % ps == 0 && r[i].base % ps == 0);
			assert(r[i].offset % 4096 == 0);
			assert(r[i].base + r[i].size > r[i].base);
			assert(r[i].offset + r[i].size > r[i].offset);
			assert(i == 0 || r[i - 1].base + r[i - 1].size <= r[i].base);
		}
		free(r);
	}
	free(text);
	return 0;
}
