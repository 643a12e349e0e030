/* SPDX-License-Identifier: MIT */
/*
 * The progress bar long commands draw on standard error: only when it is a
 * terminal and --quiet was not given, never for an empty job. It ends in
 * the same one-line summary for every command.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct progress_bar;

/* A bar labelled label counting bytes (unit NULL) or things of unit
 * ("blobs"); an inactive one when quiet or standard error is not a
 * terminal. NULL only when out of memory (every call takes NULL). */
struct progress_bar *progress_bar_new(const char *label, const char *unit, bool quiet);
/* The snapfs_progress_fn callback: data is the bar. */
void progress_bar_update(void *data, uint64_t done, uint64_t total);
/* Replace the bar by "WHAT: done, X in T s (RATE)" when the job succeeded
 * (ok) and had work to do, else clear it; free the bar. */
void progress_bar_end(struct progress_bar *bar, const char *what, bool ok);
