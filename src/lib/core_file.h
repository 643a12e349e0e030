/* SPDX-License-Identifier: MIT */
/*
 * The layout of a snapshot's core file (the public side is snapfs_core_*
 * in snapfs.h): the header bytes (ELF header, program headers, notes) and
 * where each PT_LOAD's bytes come from in the memory file. Built from the
 * segments and the stored notes, both untrusted: every size is checked.
 * Apart from the read path so that a fuzzer can drive it alone.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "snapfs.h"

struct core_note_list;

/* One PT_LOAD: core-file bytes [file_off, file_off + size) are memory-file
 * bytes [mem_off, mem_off + size); memsz bytes of memory (size is memsz,
 * or 0 for a file mapping left to the file). */
struct core_load {
	uint64_t file_off;
	uint64_t mem_off;
	uint64_t size;
	uint64_t memsz;
};

struct core_layout {
	unsigned char *head;       /* head_len bytes: headers and notes */
	size_t head_len;
	uint64_t head_size;        /* head_len rounded up to a page: the
				    * first PT_LOAD's file offset */
	struct core_load *loads;   /* in file (and address) order */
	size_t load_count;
	uint64_t size;             /* the core file's size */
};

/* Most bytes of notes a core may carry. */
#define CORE_NOTES_MAX ((size_t)64 << 20)

/* The layout for segments segs (sorted, within file_size) and notes (in
 * order). data[i] is the bytes of stored pages in segment i (NULL: all
 * have some): a segment labelled with a path that holds none gets a
 * PT_LOAD of p_filesz 0, as gcore writes read-only file mappings, so that
 * a debugger reads those bytes from the file. -SNAPFS_ECORRUPT names what
 * failed a check (segments out of order, a stored NT_FILE note that does
 * not parse, notes too large). */
int core_layout_build(const struct snapfs_segment *segs, size_t count, uint64_t file_size,
		      const uint64_t *data, const struct core_note_list *notes,
		      struct core_layout *ret_layout);
void core_layout_release(struct core_layout *layout);
/* Index of the PT_LOAD holding core-file offset off (>= head_size and
 * < size). */
size_t core_layout_find(const struct core_layout *layout, uint64_t off);
