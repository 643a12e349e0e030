// SPDX-License-Identifier: MIT
/*
 * Names of the region files: formatting a segment's name, and finding a
 * segment back from a name by its start address (the segments are sorted
 * by start) before comparing the whole name.
 */
#include "regions.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char sanitise(unsigned char c)
{
	return (c == '/' || c == '\\' || c < 0x20 || c == 0x7f) ? '_' : (char)c;
}

size_t region_name(const struct snapfs_segment *seg,
		   char buf[REGION_NAME_MAX + 1])
{
	const char *label = seg->label && seg->label[0] ? seg->label : seg->kind;
	size_t len, avail, cut;
	int n;

	/* At most 16 + 1 + 16 + 1 bytes: the label always has room. */
	n = snprintf(buf, REGION_NAME_MAX + 1, "%llx-%llx-",
		     (unsigned long long)seg->start,
		     (unsigned long long)seg->end);
	len = (size_t)n;
	avail = REGION_NAME_MAX - len;
	cut = strlen(label);
	if (cut > avail) {
		/* label[cut] is the first byte dropped: keep whole characters. */
		cut = avail;
		while (cut > 0 && ((unsigned char)label[cut] & 0xc0) == 0x80)
			cut--;
	}
	for (size_t i = 0; i < cut; i++)
		buf[len++] = sanitise((unsigned char)label[i]);
	buf[len] = '\0';
	return len;
}

int region_find(const struct snapfs_segment *segs, size_t count,
		const char *name, size_t *ret_index)
{
	char buf[REGION_NAME_MAX + 1];
	unsigned long long start;
	size_t lo = 0, hi = count;
	char *end;

	if (!isxdigit((unsigned char)name[0]))
		return -ENOENT;
	errno = 0;
	start = strtoull(name, &end, 16);
	if (errno || *end != '-')
		return -ENOENT;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (segs[mid].start < start)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < count && segs[i].start == start; i++) {
		region_name(&segs[i], buf);
		if (strcmp(buf, name) == 0) {
			*ret_index = i;
			return 0;
		}
	}
	return -ENOENT;
}

uint64_t region_size(const struct snapfs_segment *seg, uint64_t file_size)
{
	uint64_t end = seg->end < file_size ? seg->end : file_size;

	return seg->start < end ? end - seg->start : 0;
}
