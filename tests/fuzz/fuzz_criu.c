// SPDX-License-Identifier: MIT
/*
 * Fuzz target for the CRIU image parser (source_criu.c): the input is laid
 * out as a dump directory d/ with up to two parent dumps p/ and q/
 * (pagemap, pages, mm and pstree images, a shared memory object's pagemap
 * and pages, the threads' core images (registers), `parent` symlinks that may form loops; see fuzz_source.h for the record format). The dump is refused
 * with -SNAPFS_ECORRUPT or -EINVAL and a message, or read to the end with
 * every invariant of a source kept. Never a crash.
 */
#include "fuzz_source.h"

static const char *const names[] = {
	"d/pagemap-1.img", "d/pages-1.img", "d/mm-1.img", "d/pstree.img",
	"d/pagemap-2.img", "d/pages-2.img", "d/mm-2.img", "d/parent",
	"p/pagemap-1.img", "p/pages-1.img", "p/parent",
	"q/pagemap-1.img", "q/pages-1.img", "q/parent",
	"d/pagemap-shmem-7.img", "d/pages-7.img", "p/pagemap-shmem-7.img", "p/pages-7.img",
	"d/core-1.img", "d/core-2.img",
};

static const char *const targets[] = { "../p", "../q", "../d", ".", "missing" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[96];

	snprintf(path, sizeof(path), "%s/d", fuzz_scratch());
	fuzz_reset("d");
	fuzz_lay_out(data, size, names, sizeof(names) / sizeof(names[0]),
		     targets, sizeof(targets) / sizeof(targets[0]));
	fuzz_source(path, "criu");
	return 0;
}
