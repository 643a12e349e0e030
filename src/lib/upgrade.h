/* SPDX-License-Identifier: MIT */
/*
 * Bringing an older store up to SNAPFS_SCHEMA_VERSION when it is opened
 * for writing (schema/upgrade/ documents each step).
 */
#pragma once

struct catalog;
struct blob_store;

/* Upgrade the store behind cat (the writer connection) and bs from
 * from_version. Each step is atomic: a crash or failure leaves the store
 * at the version it had. */
int upgrade_store(struct catalog *cat, struct blob_store *bs, int from_version);
