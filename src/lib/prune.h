/* SPDX-License-Identifier: MIT */
/*
 * Retention rules: the plan of snapfs_prune() (snapfs.h), made from a list
 * of snapshots without touching the store.
 */
#pragma once

#include <stddef.h>

#include "snapfs.h"

/* The period rules, in the order they are applied. */
enum { PRUNE_HOURLY, PRUNE_DAILY, PRUNE_WEEKLY, PRUNE_MONTHLY };

/* The snapshots of snaps that rules select, newest first, each marked keep
 * (with its reasons) or not. *ret_items is malloc'ed; the caller frees it. */
int prune_plan(const struct snapfs_snapshot *snaps, size_t snap_count,
	       const struct snapfs_prune_rules *rules,
	       struct snapfs_prune_item **ret_items, size_t *ret_count);
