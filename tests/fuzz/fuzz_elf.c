// SPDX-License-Identifier: MIT
/*
 * Fuzz target for the ELF core parser (source_elf.c, libelf underneath):
 * the input is a core file. It is either refused with -SNAPFS_ECORRUPT or
 * -EINVAL and a message, or opened as a sorted, page-aligned usage set
 * whose data can be walked and read to the end. Never a crash.
 */
#include <sys/mman.h>

#include "fuzz_source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];

	if (fd < 0) {
		fd = memfd_create("core", 0);
		assert(fd >= 0);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	assert(ftruncate(fd, 0) == 0);
	assert(pwrite(fd, data, size, 0) == (ssize_t)size);
	fuzz_source(path, "elf");
	return 0;
}
