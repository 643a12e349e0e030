/* SPDX-License-Identifier: MIT */
/*
 * Memory for decoded blobs, in slots of one size, mapped and faulted in
 * ahead of need. A cold read decodes a blob into memory it has never
 * touched; with malloc that is a heap that grows (mprotect) and a page
 * fault per 4 KiB, on the read's critical path: measured, 16 % of a cold
 * random 4 KiB read's time and most of its p99. Here a thread of the
 * pool's own keeps a reserve of slots populated, and slots given back
 * serve the next blobs warm.
 */
#pragma once

#include <stddef.h>

struct blob_mem;

/* A pool of slot_size-byte slots; nothing is mapped and no thread runs
 * until blob_mem_start() or the first blob_mem_get(). */
struct blob_mem *blob_mem_new(size_t slot_size);
/* Stop the pool's thread and unmap every slot: all of them must have
 * been given back. NULL is fine. */
void blob_mem_free(struct blob_mem *mem);
/* Readers are coming: start the thread that fills the reserve, unless it
 * runs already. */
void blob_mem_start(struct blob_mem *mem);
/* size bytes for a decoded blob, to give back with blob_mem_put() and
 * the same size: a slot when size is the slot size (other sizes are
 * malloc'ed). NULL when out of memory. */
void *blob_mem_get(struct blob_mem *mem, size_t size);
/* Give back p (from blob_mem_get() with size); NULL is fine. */
void blob_mem_put(struct blob_mem *mem, void *p, size_t size);
