// SPDX-License-Identifier: MIT
/*
 * The text forms of a snapshot's metadata: `info` (one "key: value" a
 * line) and `segments` (one segment a line), as the mount serves them and
 * `snapfs info` prints them (format in SPEC.md, "The mount"). One renderer,
 * so the two can never disagree.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "snapfs.h"

/* Write s with control characters and backslashes as \ooo; "-" for NULL or
 * empty. */
static void put_text(FILE *f, const char *s)
{
	if (!s || !*s) {
		fputc('-', f);
		return;
	}
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == '\\')
			fprintf(f, "\\%03o", *p);
		else
			fputc(*p, f);
	}
}

/* Close the stream and hand over its buffer, or free it on failure. */
static int finish(FILE *f, char **buf, size_t *len, char **ret_text,
		  size_t *ret_len)
{
	bool failed = ferror(f);

	if (fclose(f) != 0 || failed) {
		free(*buf);
		return -ENOMEM;
	}
	*ret_text = *buf;
	*ret_len = *len;
	return 0;
}

int snapfs_info_text(const struct snapfs_snapshot *snap, char **ret_text,
		     size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	f = open_memstream(&buf, &len);
	if (!f)
		return -ENOMEM;
	fputs("name: ", f);
	put_text(f, snap->name);
	fprintf(f, "\nid: %" PRId64 "\ncreated_at: ", snap->id);
	put_text(f, snap->created_at);
	fputs("\nparent: ", f);
	put_text(f, snap->parent_id ? snap->parent : NULL);
	fprintf(f, "\nfile_size: %" PRIu64 "\npage_size: %" PRIu32
		"\nformat: ", snap->file_size, snap->page_size);
	put_text(f, snap->format);
	fputs("\nsource: ", f);
	put_text(f, snap->source);
	fprintf(f, "\nsegment_count: %" PRIu64 "\ncommitted_bytes: %" PRIu64
		"\ndata_bytes: %" PRIu64 "\nstored_bytes: %" PRIu64 "\n",
		snap->segment_count, snap->committed_bytes, snap->data_bytes,
		snap->stored_bytes);
	if (snap->notes) {
		fputs("notes: ", f);
		put_text(f, snap->notes);
		fputc('\n', f);
	}
	if (snap->comment) {
		fputs("comment: ", f);
		put_text(f, snap->comment);
		fputc('\n', f);
	}
	return finish(f, &buf, &len, ret_text, ret_len);
}

int snapfs_segments_text(const struct snapfs_segment *segs, size_t count,
			 char **ret_text, size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	f = open_memstream(&buf, &len);
	if (!f)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		const struct snapfs_segment *s = &segs[i];

		fprintf(f, "0x%" PRIx64 " 0x%" PRIx64 " ", s->start, s->end);
		put_text(f, s->kind);
		fprintf(f, " %" PRId64 " %d ", s->memcg_id, s->committed ? 1 : 0);
		put_text(f, s->label);
		fputc('\n', f);
	}
	return finish(f, &buf, &len, ret_text, ret_len);
}
