// SPDX-License-Identifier: MIT
/*
 * The memory source: regions of the calling process's memory (a VMM's
 * guest RAM, a sandbox's memory file mapped in), each placed at an offset
 * of the memory file, for snapfs_save_memory(). The bytes are read where
 * they are, during the save: no temporary file. Each region is a segment
 * of its own (kind, memory cgroup, label); between regions are holes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "source.h"

struct mem_source {
	struct snapfs_mem_region *regions;   /* sorted by offset; labels borrowed */
	size_t count;
};

static uint64_t page_up(uint64_t x)
{
	return (x + SNAPFS_PAGE_SIZE - 1) / SNAPFS_PAGE_SIZE * SNAPFS_PAGE_SIZE;
}

static int mem_next_data(struct source *src, uint64_t off, uint64_t *ret_start,
			 uint64_t *ret_end)
{
	const struct mem_source *m = src->impl;

	for (size_t i = 0; i < m->count; i++) {
		const struct snapfs_mem_region *r = &m->regions[i];
		uint64_t end = page_up(r->offset + r->len);

		if (end <= off || r->len == 0)
			continue;
		*ret_start = (off > r->offset ? off : r->offset) / SNAPFS_PAGE_SIZE *
			     SNAPFS_PAGE_SIZE;
		*ret_end = end;
		return 0;
	}
	return -ENXIO;
}

static int mem_read(struct source *src, unsigned char *buf, size_t len, uint64_t off)
{
	const struct mem_source *m = src->impl;

	memset(buf, 0, len);
	for (size_t i = 0; i < m->count; i++) {
		const struct snapfs_mem_region *r = &m->regions[i];
		uint64_t lo = off > r->offset ? off : r->offset;
		uint64_t hi = off + len < r->offset + r->len ? off + len : r->offset + r->len;

		if (lo < hi)
			memcpy(buf + (lo - off), (const unsigned char *)r->addr + (lo - r->offset),
			       (size_t)(hi - lo));
	}
	return 0;
}

static void mem_close(struct source *src)
{
	struct mem_source *m = src->impl;

	if (m)
		free(m->regions);
	free(m);
	src->impl = NULL;
}

static const struct source_ops mem_ops = {
	.format = "memory",
	.next_data = mem_next_data,
	.read = mem_read,
	.close = mem_close,
};

static int region_by_offset(const void *a, const void *b)
{
	const struct snapfs_mem_region *x = a, *y = b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Regions sorted: page-aligned offsets, whole pages but for one that ends
 * the memory file, no overlap, nothing past file_size, known kinds. */
static int regions_check(const struct snapfs_mem_region *r, size_t count, uint64_t size)
{
	for (size_t i = 0; i < count; i++) {
		uint64_t end = r[i].offset + r[i].len;

		if (r[i].len == 0 || !r[i].addr)
			return error_set(-EINVAL, "memory region %zu: empty", i);
		if (r[i].offset % SNAPFS_PAGE_SIZE || end < r[i].offset)
			return error_set(-EINVAL, "memory region at offset 0x%llx: not page-aligned",
					 (unsigned long long)r[i].offset);
		if (end > size)
			return error_set(-EINVAL, "memory region at offset 0x%llx: ends past the "
					 "memory file's size %llu", (unsigned long long)r[i].offset,
					 (unsigned long long)size);
		if (end % SNAPFS_PAGE_SIZE && end != size)
			return error_set(-EINVAL, "memory region at offset 0x%llx: not whole pages "
					 "(only the one that ends the memory file may end inside a "
					 "page)", (unsigned long long)r[i].offset);
		if (i > 0 && r[i - 1].offset + r[i - 1].len > r[i].offset)
			return error_set(-EINVAL, "memory regions at offsets 0x%llx and 0x%llx "
					 "overlap", (unsigned long long)r[i - 1].offset,
					 (unsigned long long)r[i].offset);
		if (r[i].kind && !snapfs_kind_valid(r[i].kind))
			return error_set(-EINVAL, "memory region at offset 0x%llx: kind '%s': must "
					 "be one of system anonymous pagecache tmpfs ramdiskfs "
					 "mapped", (unsigned long long)r[i].offset, r[i].kind);
	}
	return 0;
}

static int add_segments(struct source *src, const struct snapfs_mem_region *r, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		struct snapfs_segment seg = {
			.start = r[i].offset,
			.end = page_up(r[i].offset + r[i].len),
			.memcg_id = r[i].memcg_id,
			.committed = true,
		};
		int rc;

		snprintf(seg.kind, sizeof(seg.kind), "%s", r[i].kind ? r[i].kind : "anonymous");
		if (r[i].label && r[i].label[0] && !(seg.label = strdup(r[i].label)))
			return -ENOMEM;
		rc = segment_list_push(&src->segments, &seg);
		if (rc < 0) {
			free(seg.label);
			return rc;
		}
	}
	src->has_segments = true;
	return 0;
}

int source_open_memory(const struct snapfs_mem_region *regions, size_t count,
		       uint64_t file_size, struct source *ret_src)
{
	struct source src = { .ops = &mem_ops, .path = "memory" };
	struct mem_source *m;
	char text[64];
	int rc;

	if (count == 0 && file_size == 0)
		return error_set(-EINVAL, "memory: no regions and no size");
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	src.impl = m;
	m->regions = malloc((count ? count : 1) * sizeof(*m->regions));
	if (!m->regions) {
		rc = -ENOMEM;
		goto out_close;
	}
	memcpy(m->regions, regions, count * sizeof(*regions));
	m->count = count;
	qsort(m->regions, count, sizeof(*regions), region_by_offset);
	if (file_size == 0)
		file_size = m->regions[count - 1].offset + m->regions[count - 1].len;
	rc = regions_check(m->regions, count, file_size);
	if (rc < 0)
		goto out_close;
	src.size = file_size;
	rc = add_segments(&src, m->regions, count);
	if (rc < 0)
		goto out_close;
	snprintf(text, sizeof(text), "memory: %zu region%s", count, count == 1 ? "" : "s");
	src.description = strdup(text);
	src.buf = aligned_alloc(SNAPFS_PAGE_SIZE, SOURCE_BUF_BYTES);
	if (!src.description || !src.buf) {
		rc = -ENOMEM;
		goto out_close;
	}
	*ret_src = src;
	return 0;

out_close:
	source_close(&src);
	return rc;
}
