/* SPDX-License-Identifier: MIT */
/*
 * Sources: where a snapshot's memory comes from. Every format (raw memory
 * files and block devices, ELF cores, CRIU images, live processes, gVisor
 * checkpoints) presents the same thing: a memory file of `size`
 * bytes whose offsets are the format's addresses, its data ranges, a read
 * function, and, where the format knows it, the usage set with labels.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core_notes.h"
#include "snapfs.h"

/* A growable array of segments, sorted and non-overlapping once built. */
struct segment_list {
	struct snapfs_segment *segs;
	size_t count, cap;
};
int segment_list_push(struct segment_list *list, const struct snapfs_segment *seg);
void segment_list_release(struct segment_list *list);

struct source;

/* Bytes a source reads at once (its scan buffer): large enough for
 * streaming, small enough for the CPU's cache. */
#define SOURCE_BUF_BYTES ((size_t)1 << 20)

struct source_ops {
	const char *format;       /* as recorded in snapshots.format */
	/* The next data range at or after off, page-aligned, its end at most
	 * the size rounded up to a page; -ENXIO when no data follows. */
	int (*next_data)(struct source *src, uint64_t off, uint64_t *ret_start,
			 uint64_t *ret_end);
	/* Read len bytes of the memory file at off; bytes the source holds no
	 * data for read as zeros. */
	int (*read)(struct source *src, unsigned char *buf, size_t len, uint64_t off);
	/* Free impl (and let a frozen process go). */
	void (*close)(struct source *src);
};

struct source {
	const struct source_ops *ops;
	const char *path;             /* as the user named it (borrowed) */
	char *description;            /* recorded as snapshots.source */
	uint64_t size;                /* memory file size in bytes */
	bool has_segments;            /* the format gave the usage set */
	struct segment_list segments; /* when has_segments */
	char *notes;                  /* what the capture skipped, or NULL */
	struct core_note_list core_notes; /* ELF notes of a process (registers,
					   * auxv...), saved in core_notes */
	void *impl;                   /* the format's own state */
	const char *key_file;         /* gvisor: the HMAC key's file, or NULL
	                               * (borrowed, set before the opener runs) */
	unsigned char *buf;           /* scan buffer (SOURCE_BUF_BYTES bytes) */
};

/* Open path as format ("raw", or NULL to detect). Errors name the source. */
int source_open(const char *path, const char *format, struct source *ret_src);
/* source_open() with a key file for formats that sign their data (gVisor's
 * checkpoint.img); key_file NULL is source_open(). */
int source_open_keyed(const char *path, const char *format, const char *key_file,
		      struct source *ret_src);
/* Close a source; accepts a zeroed or half-opened one. */
void source_close(struct source *src);

static inline int source_next_data(struct source *src, uint64_t off,
				   uint64_t *ret_start, uint64_t *ret_end)
{
	return src->ops->next_data(src, off, ret_start, ret_end);
}

/* The format openers, for source_open(). */
int source_open_raw(const char *path, struct source *src);
int source_open_elf(const char *path, struct source *src);     /* ELF64 core */
int source_open_criu(const char *path, struct source *src);    /* CRIU image dir */
int source_open_gvisor(const char *path, struct source *src);  /* runsc checkpoint dir */
int source_open_pid(const char *path, struct source *src);     /* live process "pid:N" */
/* Open path, a sparse diff file (a Firecracker diff snapshot's memory
 * file), laid over snapshot parent_id of store the way Firecracker's
 * rebase-snap lays it over the base file: the diff's data where it has
 * data, the parent's bytes in its holes (source_overlay.c). The source
 * holds the parent open until it is closed. */
int source_open_overlay(const char *path, struct snapfs_store *store, int64_t parent_id,
			struct source *ret_src);

/* A source over regions of this process's memory (snapfs_save_memory):
 * the regions are copied (their bytes and labels are not: they must stay
 * valid until the source is closed); file_size 0: the end of the last. */
int source_open_memory(const struct snapfs_mem_region *regions, size_t count,
		       uint64_t file_size, struct source *ret_src);
/* true if name is a format this build can read. */
bool source_format_known(const char *name);
