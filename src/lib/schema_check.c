// SPDX-License-Identifier: MIT
/*
 * Schema checks: comparing the rows of a store's sqlite_schema with the
 * rows snapfs expects, so that a store handed over by someone else cannot
 * bring triggers, views or changed tables of its own. SQL texts are
 * compared after normalization (comments and spacing do not count).
 */
#include "schema_check.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_or_null(const char *s, bool *ret_failed)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*ret_failed = true;
	return d;
}

int schema_add(struct schema *s, const char *type, const char *name,
	       const char *tbl_name, const char *sql)
{
	struct schema_row row;
	bool failed = false;

	if (s->count == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct schema_row *bigger = realloc(s->rows, cap * sizeof(*bigger));

		if (!bigger)
			return -ENOMEM;
		s->rows = bigger;
		s->cap = cap;
	}
	row = (struct schema_row){
		.type = dup_or_null(type ? type : "", &failed),
		.name = dup_or_null(name ? name : "", &failed),
		.tbl_name = dup_or_null(tbl_name ? tbl_name : "", &failed),
		.sql = dup_or_null(sql, &failed),
	};
	if (failed) {
		free(row.type);
		free(row.name);
		free(row.tbl_name);
		free(row.sql);
		return -ENOMEM;
	}
	if (row.sql)
		schema_sql_normalize(row.sql);
	s->rows[s->count++] = row;
	return 0;
}

/* Tables first, then views, indexes, triggers: the first difference
 * reported is the most telling one (a table replaced by a view is "table
 * missing", not "its index missing"). */
static int type_rank(const char *type)
{
	static const char *const order[] = { "table", "view", "index", "trigger" };

	for (int i = 0; i < 4; i++)
		if (strcmp(type, order[i]) == 0)
			return i;
	return 4;
}

static int row_cmp(const void *a, const void *b)
{
	const struct schema_row *x = a, *y = b;
	int rx = type_rank(x->type), ry = type_rank(y->type);
	int c = rx != ry ? (rx < ry ? -1 : 1) : strcmp(x->type, y->type);

	return c ? c : strcmp(x->name, y->name);
}

void schema_sort(struct schema *s)
{
	if (s->count > 1)
		qsort(s->rows, s->count, sizeof(*s->rows), row_cmp);
}

void schema_release(struct schema *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->count; i++) {
		free(s->rows[i].type);
		free(s->rows[i].name);
		free(s->rows[i].tbl_name);
		free(s->rows[i].sql);
	}
	free(s->rows);
	*s = (struct schema){ 0 };
}

static bool tight(char c)
{
	return c == '(' || c == ')' || c == ',' || c == ';';
}

void schema_sql_normalize(char *sql)
{
	char *out = sql, quote = 0;
	bool space = false;

	for (const char *p = sql; *p; p++) {
		if (quote) {
			*out++ = *p;
			if (*p == quote)
				quote = 0;
			continue;
		}
		if (p[0] == '-' && p[1] == '-') {
			while (p[1] && p[1] != '\n')
				p++;
			space = true;
			continue;
		}
		if (p[0] == '/' && p[1] == '*') {
			p += 2;
			while (*p && !(p[0] == '*' && p[1] == '/'))
				p++;
			if (!*p)
				break;
			p++;
			space = true;
			continue;
		}
		if (isspace((unsigned char)*p)) {
			space = true;
			continue;
		}
		if (space && out > sql && !tight(out[-1]) && !tight(*p))
			*out++ = ' ';
		space = false;
		if (*p == '\'' || *p == '"' || *p == '`' || *p == '[')
			quote = *p == '[' ? ']' : *p;
		*out++ = *p;
	}
	*out = '\0';
}

/* Describe how got differs from want, two rows of the same type and name:
 * the text around the first character where their SQL differs. */
static void describe_change(const struct schema_row *w, const struct schema_row *g,
			    char *buf, size_t cap)
{
	const char *ws = w->sql ? w->sql : "", *gs = g->sql ? g->sql : "";
	size_t at = 0, from;

	if (strcmp(w->tbl_name, g->tbl_name) != 0) {
		snprintf(buf, cap, "%s '%s' belongs to '%s' instead of '%s'", g->type,
			 g->name, g->tbl_name, w->tbl_name);
		return;
	}
	while (ws[at] && ws[at] == gs[at])
		at++;
	from = at > 24 ? at - 24 : 0;
	snprintf(buf, cap, "%s '%s' is not defined as expected: \"%s%.60s\" where "
		 "snapfs has \"%s%.60s\"", g->type, g->name, from ? "..." : "", gs + from,
		 from ? "..." : "", ws + from);
}

static bool sql_equal(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

int schema_compare(const struct schema *want, const struct schema *got,
		   char *buf, size_t cap)
{
	size_t i = 0, j = 0;

	while (i < want->count || j < got->count) {
		const struct schema_row *w = i < want->count ? &want->rows[i] : NULL;
		const struct schema_row *g = j < got->count ? &got->rows[j] : NULL;
		int c = !w ? 1 : !g ? -1 : row_cmp(w, g);

		if (c > 0) {
			if (strcmp(g->type, "table") == 0 || strcmp(g->type, "view") == 0)
				snprintf(buf, cap, "%s '%s' is not part of it", g->type, g->name);
			else
				snprintf(buf, cap, "%s '%s' on '%s' is not part of it",
					 g->type, g->name, g->tbl_name);
			return 1;
		}
		if (c < 0) {
			snprintf(buf, cap, "%s '%s' is missing", w->type, w->name);
			return 1;
		}
		if (strcmp(w->tbl_name, g->tbl_name) != 0 || !sql_equal(w->sql, g->sql)) {
			describe_change(w, g, buf, cap);
			return 1;
		}
		i++;
		j++;
	}
	return 0;
}
