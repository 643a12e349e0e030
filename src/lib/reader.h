/* SPDX-License-Identifier: MIT */
/*
 * Internal side of the read path (the public side is snapfs_image_* in
 * snapfs.h): the page map of an open image, for diff and verify.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct map_run;
struct snapfs_image;

/* The page map of an open image, sorted by first_page. */
size_t image_run_count(const struct snapfs_image *img);
const struct map_run *image_run(const struct snapfs_image *img, size_t i);
/* true if the image's page map failed its digest (every read is -EIO). */
bool image_damaged(const struct snapfs_image *img);
