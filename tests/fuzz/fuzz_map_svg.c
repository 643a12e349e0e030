// SPDX-License-Identifier: MIT
/*
 * Fuzz target for the SVG of `snapfs map` (src/lib/map_svg.c): segment
 * labels are untrusted text (a process's mapped paths, a checkpoint's
 * names). The input, split at newlines, gives the segments' labels, kinds
 * and sizes; whatever they hold, the SVG must stay well-formed: valid
 * UTF-8 without control characters, every '&' an entity, every '<' a tag
 * of ours. Never a crash.
 */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map_svg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const tags[] = { "?xml", "svg", "rect", "text", "g ", "g>", "title",
				    "path", "/" };

static void check_svg(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		assert(c >= 0x20 || c == '\n');
		assert(c != 0x7f);
		if (c == '&')
			assert(!strncmp(s + i, "&amp;", 5) || !strncmp(s + i, "&lt;", 4) ||
			       !strncmp(s + i, "&gt;", 4) || !strncmp(s + i, "&quot;", 6) ||
			       !strncmp(s + i, "&apos;", 6));
		if (c == '<') {
			bool known = false;

			for (size_t t = 0; t < sizeof(tags) / sizeof(tags[0]); t++)
				known |= !strncmp(s + i + 1, tags[t], strlen(tags[t]));
			assert(known);
		}
		if (c >= 0x80) {
			size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;

			assert(c >= 0xc2 && c <= 0xf4 && i + len <= n);
			for (size_t k = 1; k < len; k++)
				assert(((unsigned char)s[i + k] & 0xc0) == 0x80);
			i += len - 1;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const kinds[] = { "system", "anonymous", "pagecache", "tmpfs",
					     "ramdiskfs", "mapped", "other" };
	struct snapfs_segment segs[64];
	struct map_ranges ranges = { 0 }, changed = { 0 };
	struct snapfs_snapshot snap = { .file_size = 1 };
	char *copy = malloc(size + 1), *line, *save = NULL, *out = NULL;
	uint64_t off = 0;
	size_t n = 0, len = 0;
	FILE *f;

	assert(copy);
	memcpy(copy, data, size);
	copy[size] = '\0';
	snprintf(snap.name, sizeof(snap.name), "fuzz");
	for (line = strtok_r(copy, "\n", &save); line && n < 64; line = strtok_r(NULL, "\n", &save)) {
		unsigned char b = (unsigned char)line[0];
		uint64_t pages = 1 + (b & 0x1f);

		/* Every fourth segment after a gap that folds. */
		off += (b & 0x60) == 0x60 ? (uint64_t)b << 30 : 0;
		segs[n] = (struct snapfs_segment){ .start = off, .end = off + pages * 4096,
						   .committed = b & 0x80, .label = line };
		snprintf(segs[n].kind, sizeof(segs[n].kind), "%s", kinds[b % 7]);
		assert(map_ranges_add(&ranges, off, off + (pages / 2 + 1) * 4096) == 0);
		if (b & 1)
			assert(map_ranges_add(&changed, off, off + 4096) == 0);
		off += pages * 4096;
		n++;
	}
	snap.file_size = off;
	f = open_memstream(&out, &len);
	assert(f);
	assert(map_svg_write(f, &(struct map_model){ .snap = &snap, .segs = segs, .seg_count = n,
						     .data = &ranges, .unshared = &changed,
						     .changed = &changed, .against = "o<&" }) == 0);
	fclose(f);
	check_svg(out, len);
	free(out);
	map_ranges_release(&ranges);
	map_ranges_release(&changed);
	free(copy);
	return 0;
}
