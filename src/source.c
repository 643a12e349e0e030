// SPDX-License-Identifier: MIT
/*
 * Opening a source: choosing the format (given or detected) and the parts
 * every source shares (segment lists, the scan buffer, closing).
 */
#include "source.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "scanner.h"

static const struct format {
	const char *name;
	int (*open)(const char *path, struct source *src);
} formats[] = {
	{ "raw", source_open_raw },
};

int segment_list_push(struct segment_list *list, const struct snapfs_segment *seg)
{
	if (list->count == list->cap) {
		size_t cap = list->cap ? list->cap * 2 : 16;
		struct snapfs_segment *bigger = realloc(list->segs, cap * sizeof(*bigger));

		if (!bigger)
			return -ENOMEM;
		list->segs = bigger;
		list->cap = cap;
	}
	list->segs[list->count++] = *seg;
	return 0;
}

void segment_list_release(struct segment_list *list)
{
	snapfs_segments_free(list->segs, list->count);
	*list = (struct segment_list){ 0 };
}

bool source_format_known(const char *name)
{
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (strcmp(name, formats[i].name) == 0)
			return true;
	return false;
}

/* The format of path when none was given: raw for now; ELF cores, CRIU and
 * gVisor directories and pid:N are recognised here as they arrive. */
static const struct format *detect(const char *path)
{
	(void)path;
	return &formats[0];
}

int source_open(const char *path, const char *format, struct source *ret_src)
{
	const struct format *f = NULL;
	struct source src = { 0 };
	int rc;

	if (format) {
		for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
			if (strcmp(format, formats[i].name) == 0)
				f = &formats[i];
		if (!f)
			return error_set(-EINVAL, "format '%s': not supported", format);
	} else {
		f = detect(path);
	}
	src.path = path;
	src.buf = aligned_alloc(SNAPFS_PAGE_SIZE, SCAN_CHUNK);
	if (!src.buf)
		return -ENOMEM;
	rc = f->open(path, &src);
	if (rc < 0) {
		source_close(&src);
		return rc;
	}
	if (!src.description)
		src.description = realpath(path, NULL);
	if (!src.description)
		src.description = strdup(path);
	if (!src.description) {
		source_close(&src);
		return -ENOMEM;
	}
	*ret_src = src;
	return 0;
}

void source_close(struct source *src)
{
	if (!src)
		return;
	if (src->ops && src->ops->close)
		src->ops->close(src);
	segment_list_release(&src->segments);
	free(src->description);
	free(src->notes);
	free(src->buf);
	*src = (struct source){ 0 };
}
