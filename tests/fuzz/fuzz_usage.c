// SPDX-License-Identifier: MIT
/*
 * Fuzz target for the usage-file parser: any input is either accepted as a
 * sorted, page-aligned, non-overlapping usage set inside the file, or
 * refused with -SNAPFS_EUSAGE and a message. Never a crash.
 */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "snapfs.h"
#include "usage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	const uint64_t file_size = (1ull << 32) + 123;
	struct segment_list list = { 0 };
	int rc;

	if (fd < 0) {
		fd = memfd_create("usage", 0);
		assert(fd >= 0);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	assert(ftruncate(fd, 0) == 0);
	assert(pwrite(fd, data, size, 0) == (ssize_t)size);
	rc = usage_parse_file(path, file_size, &list);
	if (rc == 0) {
		for (size_t i = 0; i < list.count; i++) {
			const struct snapfs_segment *g = &list.segs[i];

			assert(g->start % SNAPFS_PAGE_SIZE == 0);
			assert(g->end % SNAPFS_PAGE_SIZE == 0);
			assert(g->start < g->end);
			assert(g->end <= (file_size + SNAPFS_PAGE_SIZE - 1) / SNAPFS_PAGE_SIZE * SNAPFS_PAGE_SIZE);
			assert(i == 0 || list.segs[i - 1].end <= g->start);
			assert(snapfs_kind_valid(g->kind));
		}
		segment_list_release(&list);
	} else {
		assert(rc == -SNAPFS_EUSAGE);
		assert(snapfs_errmsg()[0] != '\0');
	}
	return 0;
}
