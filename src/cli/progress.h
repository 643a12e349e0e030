/* SPDX-License-Identifier: MIT */
/*
 * The progress bar long commands draw on standard error: only when it is a
 * terminal and --quiet was not given.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct progress_bar;

/* A bar labelled label, or an inactive one (NULL is never returned for a
 * valid call; an inactive bar draws nothing). */
struct progress_bar *progress_bar_new(const char *label, bool quiet);
/* The snapfs_progress_fn callback: data is the bar. */
void progress_bar_update(void *data, uint64_t done, uint64_t total);
/* Clear the bar's line and free it. */
void progress_bar_free(struct progress_bar *bar);
