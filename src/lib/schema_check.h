/* SPDX-License-Identifier: MIT */
/*
 * Schema checks: a store's schema (the rows of sqlite_schema) compared with
 * the schema snapfs expects for its version, before any other statement
 * runs on it. This module only compares; catalog.c reads the rows (the SQL
 * stays there) and builds the expected ones from the embedded schema texts.
 */
#pragma once

#include <stddef.h>

/* One row of sqlite_schema. */
struct schema_row {
	char *type;         /* table, index, view, trigger */
	char *name;
	char *tbl_name;
	char *sql;          /* normalized (schema_sql_normalize), or NULL */
};

/* A whole schema, rows sorted by type (tables, views, indexes, triggers)
 * and name. Owns its strings. */
struct schema {
	struct schema_row *rows;
	size_t count, cap;
};

/* Add a row (copies the strings, normalizes sql). 0 or -ENOMEM. */
int schema_add(struct schema *s, const char *type, const char *name,
	       const char *tbl_name, const char *sql);
/* Sort the rows; call once all are added. */
void schema_sort(struct schema *s);
void schema_release(struct schema *s);

/* Rewrite an SQL text in place so that comments and spacing do not count:
 * comments dropped, runs of white space made one space, no space next to
 * ( ) , ; and none at the ends. Quoted text is left as it is. */
void schema_sql_normalize(char *sql);

/* Compare the schema found in a store with the expected one. 0 if they are
 * the same; otherwise 1, with the first difference (in (type, name) order)
 * described in buf ("trigger 'x' on table 'snapshots' is not part of it"). */
int schema_compare(const struct schema *want, const struct schema *got,
		   char *buf, size_t cap);
