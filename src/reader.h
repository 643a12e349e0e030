/* SPDX-License-Identifier: MIT */
/*
 * Internal side of the read path (the public side is snapfs_image_* in
 * snapfs.h): decoding one blob through a given connection, for the writer's
 * dedup check and for verify.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct catalog;
struct map_run;
struct snapfs_image;

/* Most pages a blob may hold; a row claiming more is damage. */
#define BLOB_PAGES_MAX 256

/* Read blob id through cat, check its checksum, and decode it into a
 * malloc'ed buffer of page_count pages (*ret_data, *ret_size). A missing,
 * malformed or damaged blob is -SNAPFS_ECORRUPT. */
int blob_decode(struct catalog *cat, int64_t id, unsigned char **ret_data,
		size_t *ret_size);

/* blob_load_fn for the store's blob cache (ctx: the struct snapfs_store):
 * decode blob id through a borrowed read connection. */
int reader_load_blob(void *ctx, int64_t id, unsigned char **ret_data,
		     size_t *ret_size);

/* Free the calling thread's decoding state now (other threads' goes when
 * they end; the main thread's would otherwise outlive the store). */
void reader_thread_release(void);

/* The page map of an open image, sorted by first_page. */
size_t image_run_count(const struct snapfs_image *img);
const struct map_run *image_run(const struct snapfs_image *img, size_t i);
/* true if the image's page map failed its digest (every read is -EIO). */
bool image_damaged(const struct snapfs_image *img);
