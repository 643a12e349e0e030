// SPDX-License-Identifier: MIT
/*
 * Fuzz target for the gVisor checkpoint parser (source_gvisor.c): the
 * input is laid out as pages_meta.img and pages.img of a checkpoint
 * directory (see fuzz_source.h for the record format). It is refused with
 * -SNAPFS_ECORRUPT or -EINVAL and a message, or read to the end with
 * every invariant of a source kept. Never a crash.
 */
#include "fuzz_source.h"

static const char *const names[] = { "g/pages_meta.img", "g/pages.img" };

static const char *const targets[] = { "." };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[96];

	snprintf(path, sizeof(path), "%s/g", fuzz_scratch());
	fuzz_reset("g");
	fuzz_lay_out(data, size, names, sizeof(names) / sizeof(names[0]),
		     targets, sizeof(targets) / sizeof(targets[0]));
	fuzz_source(path, "gvisor");
	return 0;
}
