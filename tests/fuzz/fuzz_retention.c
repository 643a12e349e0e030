// SPDX-License-Identifier: MIT
/*
 * Fuzz target for the retention parsers: --keep-within durations
 * (snapfs_duration_parse), created_at times as prune reads them, and
 * --comment texts (snapfs_comment_valid). Any input is either accepted
 * within the documented bounds or refused. Never a crash.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prune.h"
#include "snapfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snapfs_prune_rules rules = { .keep_last = 1, .keep_daily = 3, .keep_weekly = 2,
					    .keep_within = 86400, .now = 1800000000 };
	struct snapfs_snapshot snaps[2] = { { .id = 1 }, { .id = 2 } };
	struct snapfs_prune_item *items = NULL;
	char *text = malloc(size + 1);
	size_t count = 0;
	int64_t seconds = -1;
	int rc;

	assert(text);
	memcpy(text, data, size);
	text[size] = '\0';
	rc = snapfs_duration_parse(text, &seconds);
	assert(rc == 0 || rc == -EINVAL);
	if (rc == 0)
		assert(seconds >= 3600 && seconds <= (int64_t)SNAPFS_DURATION_MAX * 365 * 86400);
	(void)snapfs_comment_valid(text);
	/* The text as one snapshot's created_at, beside a sound one. */
	snprintf(snaps[0].created_at, sizeof(snaps[0].created_at), "%s", text);
	snprintf(snaps[1].created_at, sizeof(snaps[1].created_at), "2026-11-30T08:00:00Z");
	snprintf(snaps[0].name, sizeof(snaps[0].name), "a");
	snprintf(snaps[1].name, sizeof(snaps[1].name), "b");
	rc = prune_plan(snaps, 2, &rules, &items, &count);
	assert(rc == 0 && count == 2);
	/* The newest readable one is always kept; an unreadable one too. */
	for (size_t i = 0; i < count; i++)
		assert(items[i].keep || items[i].readable);
	assert(items[0].keep);
	free(items);
	free(text);
	return 0;
}
