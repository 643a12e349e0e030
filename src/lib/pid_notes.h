/* SPDX-License-Identifier: MIT */
/*
 * The ELF notes of a live process whose threads the caller holds stopped
 * under ptrace (source_pid.c): registers, process facts, auxv, file
 * mappings. Private to the core.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct core_note_list;

/* A stopped thread: its id and the signal it stopped for (0: none). */
struct pid_thread_regs {
	pid_t tid;
	int sig;
};

/* A file-backed mapping, for NT_FILE. path is borrowed. */
struct pid_file_map {
	uint64_t start, end, offset;
	const char *path;
};

/* Append the notes of process pid to notes: threads[0] first (the one a
 * debugger shows first; the caller puts the main thread there). A thread
 * whose registers cannot be read (it exited) gets no notes. Returns 0 or
 * -errno (out of memory: the registers of a live process are all or
 * nothing only in that sense). */
int pid_notes_collect(pid_t pid, const struct pid_thread_regs *threads, size_t count,
		      const struct pid_file_map *maps, size_t map_count,
		      struct core_note_list *notes);
