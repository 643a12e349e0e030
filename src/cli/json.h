/* SPDX-License-Identifier: MIT */
/*
 * Writing JSON: strings escaped per RFC 8259, snapshots as objects.
 */
#pragma once

#include <stdio.h>

#include "snapfs.h"

/* s as a JSON string literal; NULL as null. */
void json_string(FILE *out, const char *s);
/* One snapshot as a JSON object (the fields of `snapfs info --json`). */
void json_snapshot(FILE *out, const struct snapfs_snapshot *snap);
/* The same fields without the braces, for an object with more. */
void json_snapshot_fields(FILE *out, const struct snapfs_snapshot *snap);
