// SPDX-License-Identifier: MIT
/*
 * JSON output of the command line.
 */
#include "json.h"

#include <inttypes.h>

void json_string(FILE *out, const char *s)
{
	if (!s) {
		fputs("null", out);
		return;
	}
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", out);
			break;
		case '\\':
			fputs("\\\\", out);
			break;
		case '\n':
			fputs("\\n", out);
			break;
		case '\t':
			fputs("\\t", out);
			break;
		case '\r':
			fputs("\\r", out);
			break;
		default:
			if (*p < 0x20)
				fprintf(out, "\\u%04x", *p);
			else
				fputc(*p, out);
		}
	}
	fputc('"', out);
}

void json_snapshot_fields(FILE *out, const struct snapfs_snapshot *s)
{
	fprintf(out, "\"name\":");
	json_string(out, s->name);
	fprintf(out, ",\"id\":%" PRId64 ",\"created_at\":", s->id);
	json_string(out, s->created_at);
	fprintf(out, ",\"parent\":");
	json_string(out, s->parent[0] ? s->parent : NULL);
	fprintf(out, ",\"file_size\":%" PRIu64 ",\"page_size\":%u,\"format\":",
		s->file_size, s->page_size);
	json_string(out, s->format);
	fprintf(out, ",\"source\":");
	json_string(out, s->source);
	fprintf(out, ",\"notes\":");
	json_string(out, s->notes);
	fprintf(out, ",\"comment\":");
	json_string(out, s->comment);
	fprintf(out,
		",\"segment_count\":%" PRIu64 ",\"committed_bytes\":%" PRIu64
		",\"data_bytes\":%" PRIu64 ",\"stored_bytes\":%" PRIu64,
		s->segment_count, s->committed_bytes, s->data_bytes, s->stored_bytes);
}

void json_snapshot(FILE *out, const struct snapfs_snapshot *s)
{
	fputc('{', out);
	json_snapshot_fields(out, s);
	fputc('}', out);
}
