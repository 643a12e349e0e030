/* SPDX-License-Identifier: MIT */
/*
 * STORE/lock-holder: who holds the store's write lock. The writer that
 * takes the lock (BEGIN IMMEDIATE) writes "PID DOING\n" into it and
 * empties it before it lets go, so a writer that finds the store busy can
 * say whom it waits for. Advisory only: the lock is SQLite's; a holder that
 * is not snapfs (the sqlite3 shell) or that died leaves nothing usable,
 * and the reader then knows no holder.
 */
#pragma once

#include <stdbool.h>

#include "snapfs.h"

/* The file beside db_path ("STORE/lock-holder"), malloc'ed; NULL: ENOMEM. */
char *lock_holder_path(const char *db_path);
/* Record this process (getpid()) and doing as the holder; best effort,
 * true if written. */
bool lock_holder_write(const char *path, const char *doing);
/* Empty the file (the holder lets go); best effort. */
void lock_holder_clear(const char *path);
/* The holder recorded in path if it names a live process, else pid 0. */
void lock_holder_read(const char *path, struct snapfs_lock_holder *ret);
