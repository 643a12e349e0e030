// SPDX-License-Identifier: MIT
/*
 * Building the usage set of a raw source, from a usage file or from the
 * source's data ranges, with every check a crafted file needs.
 */
#include "usage.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

/* A decimal or 0x-prefixed hexadecimal unsigned 64-bit number, whole. */
static int parse_u64(const char *s, uint64_t *ret)
{
	char *end;
	uint64_t v;

	if (!s || *s == '-' || *s == '+' || *s == '\0')
		return -EINVAL;
	errno = 0;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		v = strtoull(s + 2, &end, 16);
	else
		v = strtoull(s, &end, 10);
	if (errno || *end != '\0' || (s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && s[2] == '\0'))
		return -EINVAL;
	*ret = v;
	return 0;
}

static int parse_line(char *line, uint64_t file_size, uint64_t page_end,
		      struct snapfs_segment *seg,
		      const char **ret_why)
{
	char *field[6], *save = NULL;
	uint64_t memcg, committed;
	int n = 0;

	for (char *t = strtok_r(line, " \t\r\n", &save); t && n < 6;
	     t = strtok_r(NULL, " \t\r\n", &save))
		field[n++] = t;
	if (n != 5) {
		*ret_why = "expected 'start end kind memcg committed'";
		return -SNAPFS_EUSAGE;
	}
	memset(seg, 0, sizeof(*seg));
	if (parse_u64(field[0], &seg->start) < 0 || parse_u64(field[1], &seg->end) < 0) {
		*ret_why = "start and end must be decimal or 0x-hex byte offsets";
		return -SNAPFS_EUSAGE;
	}
	if (seg->start >= seg->end) {
		*ret_why = "start must be below end";
		return -SNAPFS_EUSAGE;
	}
	if (seg->start % SNAPFS_PAGE_SIZE) {
		*ret_why = "start is not page-aligned (4096)";
		return -SNAPFS_EUSAGE;
	}
	if (seg->end > page_end) {
		*ret_why = "range ends past the end of the memory file";
		return -SNAPFS_EUSAGE;
	}
	if (seg->end % SNAPFS_PAGE_SIZE && seg->end != file_size) {
		/* The file size of an unaligned file is a valid end. */
		*ret_why = "end is not page-aligned (4096)";
		return -SNAPFS_EUSAGE;
	}
	if (!snapfs_kind_valid(field[2])) {
		*ret_why = "kind must be one of system anonymous pagecache tmpfs ramdiskfs mapped";
		return -SNAPFS_EUSAGE;
	}
	snprintf(seg->kind, sizeof(seg->kind), "%s", field[2]);
	if (parse_u64(field[3], &memcg) < 0 || memcg > INT64_MAX) {
		*ret_why = "memcg must be a non-negative number";
		return -SNAPFS_EUSAGE;
	}
	seg->memcg_id = (int64_t)memcg;
	if (parse_u64(field[4], &committed) < 0 || committed > 1) {
		*ret_why = "committed must be 0 or 1";
		return -SNAPFS_EUSAGE;
	}
	seg->committed = committed == 1;
	return 0;
}

int usage_parse_file(const char *path, uint64_t file_size,
		     struct segment_list *ret_list)
{
	struct segment_list list = { 0 };
	uint64_t aligned_end = (file_size + SNAPFS_PAGE_SIZE - 1) / SNAPFS_PAGE_SIZE * SNAPFS_PAGE_SIZE;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	unsigned lineno = 0;
	FILE *f;
	int rc = 0;

	f = fopen(path, "re");
	if (!f)
		return error_set(-errno, "usage file '%s': %s", path, errno_text(errno));
	while ((len = getline(&line, &cap, f)) >= 0) {
		struct snapfs_segment seg;
		const char *why = NULL;
		char *p = line;

		lineno++;
		if (strlen(line) != (size_t)len) {
			rc = error_set(-SNAPFS_EUSAGE, "usage file '%s': line %u: contains a NUL byte",
				       path, lineno);
			goto out_free;
		}
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#' || *p == '\n' || *p == '\r' || *p == '\0')
			continue;
		rc = parse_line(p, file_size, aligned_end, &seg, &why);
		if (rc < 0) {
			rc = error_set(rc, "usage file '%s': line %u: %s", path, lineno, why);
			goto out_free;
		}
		if (seg.end % SNAPFS_PAGE_SIZE)
			seg.end = aligned_end;
		if (list.count && seg.start < list.segs[list.count - 1].end) {
			rc = error_set(-SNAPFS_EUSAGE,
				       "usage file '%s': line %u: range 0x%" PRIx64 "-0x%" PRIx64
				       " overlaps or comes before the range above it",
				       path, lineno, seg.start, seg.end);
			goto out_free;
		}
		rc = segment_list_push(&list, &seg);
		if (rc < 0)
			goto out_free;
	}
	if (ferror(f)) {
		rc = error_set(-EIO, "usage file '%s': read error", path);
		goto out_free;
	}
	*ret_list = list;
	list = (struct segment_list){ 0 };
out_free:
	segment_list_release(&list);
	free(line);
	fclose(f);
	return rc;
}

int usage_from_data(struct source *src, const char *kind,
		    struct segment_list *ret_list)
{
	struct segment_list list = { 0 };
	uint64_t off = 0, start, end;
	int rc;

	while ((rc = source_next_data(src, off, &start, &end)) == 0) {
		struct snapfs_segment *last = list.count ? &list.segs[list.count - 1] : NULL;

		if (last && start <= last->end) {
			/* Widening to pages made two ranges touch. */
			if (end > last->end)
				last->end = end;
		} else {
			struct snapfs_segment seg = { .start = start, .end = end,
						      .committed = true };

			snprintf(seg.kind, sizeof(seg.kind), "%s", kind);
			rc = segment_list_push(&list, &seg);
			if (rc < 0)
				goto out_free;
		}
		off = end;
	}
	if (rc != -ENXIO)
		goto out_free;
	*ret_list = list;
	return 0;

out_free:
	segment_list_release(&list);
	return rc;
}
