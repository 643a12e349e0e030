/* SPDX-License-Identifier: MIT */
/*
 * Readable output: sizes in binary units, tables with a header and aligned
 * columns (list), and aligned "key: value" lines (info).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* bytes as "512 B", "1.5 KiB", "256.0 MiB", ... (like ls -h, in 1024s). */
void human_size(char *buf, size_t cap, double bytes);

struct table;

/* A table of columns named by header (one string each, kept by
 * reference); right[i] aligns column i to the right (numbers). NULL when
 * out of memory. */
struct table *table_new(size_t columns, const char *const *header, const bool *right);
/* Add a row of columns strings (copied). 0 or -ENOMEM. */
int table_add(struct table *t, const char *const *cells);
/* Print the header and the rows, two spaces between columns, the last
 * column unpadded; nothing at all for a table without rows. */
void table_print(const struct table *t, FILE *out);
void table_free(struct table *t);

/* Print text ("key: value" lines) with the values aligned; with exact
 * false, the values of the keys in sizes (NULL-terminated) in human
 * units. Lines without ": " go out as they are. */
void print_key_values(FILE *out, const char *text, const char *const *sizes, bool exact);
