/* SPDX-License-Identifier: MIT */
/*
 * Claims: how a reader keeps a snapshot's pages while it has the snapshot
 * open, and how rm and gc see that it does. A store holds one empty file,
 * STORE/claims; byte <snapshot id> of it is the snapshot's claim. Readers
 * hold a shared open-file-description lock (fcntl F_OFD_SETLK) on that
 * byte from before they read the page map until they close the image;
 * rm and gc take it exclusively, without waiting, before they delete the
 * snapshot's rows, and hold it until their transaction is over. The kernel
 * drops the locks of a process that dies, whatever the cause, so a claim
 * lasts no longer than its reader. Nothing here speaks SQL.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* The claims file inside a store directory. */
#define CLAIMS_FILE "claims"

/* Make dir's claims file if it is missing (a read-write open and init do:
 * readers then find it). */
int claims_create(const char *dir);

/* Open dir's claims file for claims of one kind, O_CLOEXEC: shared
 * (readers: read-only is enough, made if missing and possible) or
 * exclusive (rm, gc: read-write, made if missing). *ret_fd is -1, with
 * 0 returned, when a reader's store is on a read-only file system
 * without the file: nothing can remove a snapshot there. Close with
 * claims_close(), which lets go of every claim taken through the fd. */
int claims_open(const char *dir, bool exclusive, int *ret_fd);
void claims_close(int fd);

/* Claim snapshot id through fd, without waiting: 0, or -EAGAIN when a
 * claim of the other kind (a reader, or a remover) holds it. */
int claim_try(int fd, int64_t id, bool exclusive);

/* A reader's claim: shared, waiting a few seconds at most for a remover
 * to finish its transaction (then -EBUSY). */
int claim_shared_wait(int fd, int64_t id);
