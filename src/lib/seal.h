/* SPDX-License-Identifier: MIT */
/*
 * Seals of snapshots (snapshots.meta_digest): made when snapfs writes a
 * snapshot's row, checked whenever one is opened.
 */
#pragma once

#include <stdint.h>

#include "snapfs.h"

struct catalog;

/* Set snap->meta_digest from snap and its segments as cat reads them. */
int snapshot_seal(struct catalog *cat, struct snapfs_snapshot *snap);
/* Seal snapshot id again from its row as it is now, and record it. */
int snapshot_reseal(struct catalog *cat, int64_t id);
/* 0 if snap (a row read through cat) matches its meta_digest, else
 * -SNAPFS_ECORRUPT with the detail in snapfs_errmsg(). */
int snapshot_check(struct catalog *cat, const struct snapfs_snapshot *snap);
