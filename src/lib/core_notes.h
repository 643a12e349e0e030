/* SPDX-License-Identifier: MIT */
/*
 * The ELF notes of a process snapshot (table core_notes): what a capture
 * knows beyond the memory (each thread's registers, the auxiliary vector,
 * the process's facts, the file mappings), kept in the order they go into
 * the PT_NOTE segment of the core file the mount synthesizes (core_file.c).
 * Private to the core.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* One note. Owned by its list. */
struct core_note {
	char *owner;            /* the note's name: "CORE", "LINUX", "snapfs" */
	uint32_t type;          /* n_type */
	unsigned char *descr;   /* len bytes; NULL when len is 0 */
	size_t len;
};

/* A growable array of notes, in order. */
struct core_note_list {
	struct core_note *notes;
	size_t count, cap;
};

/* Owner of snapfs's own rows, which are facts and not notes of the core. */
#define CORE_NOTE_OWNER_SNAPFS "snapfs"
/* snapfs row type 1: descr is the ELF e_machine (2 bytes, little-endian). */
#define CORE_NOTE_MACHINE 1u
/* Longest note descriptor kept or served (a thread's registers are a few
 * KiB; an NT_FILE note of a large process some hundred KiB). */
#define CORE_NOTE_DESCR_MAX ((size_t)16 << 20)
/* Longest owner name. */
#define CORE_NOTE_OWNER_MAX 255

/* Append a copy of a note (owner and descr copied). -EINVAL if owner is
 * empty or too long or len is over CORE_NOTE_DESCR_MAX. */
int core_note_list_add(struct core_note_list *list, const char *owner, uint32_t type,
		       const void *descr, size_t len);
/* Append the snapfs row that records e_machine. */
int core_note_list_add_machine(struct core_note_list *list, uint16_t machine);
void core_note_list_release(struct core_note_list *list);
