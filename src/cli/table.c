// SPDX-License-Identifier: MIT
/*
 * Readable output: human sizes, aligned tables and key: value lines.
 */
#include "table.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void human_size(char *buf, size_t cap, double bytes)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	int u = 0;

	while (bytes >= 1024 && u < 5) {
		bytes /= 1024;
		u++;
	}
	snprintf(buf, cap, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
}

struct table {
	size_t columns, rows, cap;
	const char *const *header;
	const bool *right;
	char **cells;          /* rows * columns, row-major */
};

struct table *table_new(size_t columns, const char *const *header, const bool *right)
{
	struct table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->columns = columns;
	t->header = header;
	t->right = right;
	return t;
}

int table_add(struct table *t, const char *const *cells)
{
	if (t->rows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **more = realloc(t->cells, cap * t->columns * sizeof(*more));

		if (!more)
			return -ENOMEM;
		t->cells = more;
		t->cap = cap;
	}
	for (size_t i = 0; i < t->columns; i++) {
		char *c = strdup(cells[i] ? cells[i] : "");

		if (!c) {
			while (i--)
				free(t->cells[t->rows * t->columns + i]);
			return -ENOMEM;
		}
		t->cells[t->rows * t->columns + i] = c;
	}
	t->rows++;
	return 0;
}

static void print_row(const struct table *t, FILE *out, const char *const *cells,
		      const size_t *width)
{
	for (size_t i = 0; i < t->columns; i++) {
		bool last = i + 1 == t->columns;
		int w = (int)width[i];

		if (t->right[i])
			fprintf(out, "%*s", w, cells[i]);
		else if (last)
			fputs(cells[i], out);
		else
			fprintf(out, "%-*s", w, cells[i]);
		fputs(last ? "\n" : "  ", out);
	}
}

void table_print(const struct table *t, FILE *out)
{
	size_t *width;

	if (!t || !t->rows)
		return;
	width = calloc(t->columns, sizeof(*width));
	if (!width)
		return;
	for (size_t i = 0; i < t->columns; i++) {
		width[i] = strlen(t->header[i]);
		for (size_t r = 0; r < t->rows; r++) {
			size_t n = strlen(t->cells[r * t->columns + i]);

			if (n > width[i])
				width[i] = n;
		}
	}
	print_row(t, out, t->header, width);
	for (size_t r = 0; r < t->rows; r++)
		print_row(t, out, (const char *const *)t->cells + r * t->columns, width);
	free(width);
}

void table_free(struct table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->rows * t->columns; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

static bool is_size(const char *key, size_t len, const char *const *sizes)
{
	for (; sizes && *sizes; sizes++)
		if (strlen(*sizes) == len && strncmp(*sizes, key, len) == 0)
			return true;
	return false;
}

void print_key_values(FILE *out, const char *text, const char *const *sizes, bool exact)
{
	size_t width = 0;
	const char *line, *next, *colon;

	for (line = text; *line; line = next) {
		next = strchr(line, '\n');
		next = next ? next + 1 : line + strlen(line);
		colon = strstr(line, ": ");
		if (colon && colon < next && (size_t)(colon - line) > width)
			width = (size_t)(colon - line);
	}
	for (line = text; *line; line = next) {
		size_t klen, vlen;
		char *end;
		char human[32];
		uint64_t n;

		next = strchr(line, '\n');
		next = next ? next + 1 : line + strlen(line);
		colon = strstr(line, ": ");
		if (!colon || colon >= next) {
			fwrite(line, 1, (size_t)(next - line), out);
			continue;
		}
		klen = (size_t)(colon - line);
		vlen = (size_t)(next - colon - 2);
		if (vlen && colon[2 + vlen - 1] == '\n')
			vlen--;
		fprintf(out, "%.*s:%*s", (int)klen, line, (int)(width - klen + 1), "");
		n = strtoull(colon + 2, &end, 10);
		if (!exact && is_size(line, klen, sizes) && end == colon + 2 + vlen && vlen) {
			human_size(human, sizeof(human), (double)n);
			fprintf(out, "%s\n", human);
		} else {
			fprintf(out, "%.*s\n", (int)vlen, colon + 2);
		}
	}
}
