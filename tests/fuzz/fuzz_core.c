// SPDX-License-Identifier: MIT
/*
 * Fuzz target for the core-file synthesizer (src/lib/core_file.c): the
 * stored notes of a process snapshot (table core_notes) are untrusted
 * bytes, an NT_FILE among them is parsed, and the segments come from the
 * store too. The input gives both:
 *
 *   u8 segment count (mod 64), then per segment: u32 start page, u16 pages
 *   (0 -> 1), u8 label (0 none, 1 a path, 2 "[heap]", 3 a path that an
 *   NT_FILE names, else none), u8 flags (bit 0: no data);
 *   then notes to the end: u8 owner (0 CORE, 1 LINUX, 2 snapfs, 3 "X"),
 *   u32 type, u16 length, that many bytes (cut short at the end).
 *
 * Whatever they hold, the layout either fails cleanly or is a well-formed
 * ELF64 core: headers and notes inside head_len, notes that walk to the
 * end of PT_NOTE exactly, PT_LOADs packed after the headers in address
 * order, the file size their end. Never a crash.
 */
#include <assert.h>
#include <elf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core_file.h"
#include "core_notes.h"
#include "snapfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
	const uint8_t *p;
	size_t left;
};

static uint64_t take(struct input *in, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++) {
		uint8_t b = in->left ? *in->p : 0;

		if (in->left) {
			in->p++;
			in->left--;
		}
		v |= (uint64_t)b << (8 * i);
	}
	return v;
}

static void check_layout(const struct core_layout *l, const struct snapfs_segment *segs,
			 size_t count)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	size_t phnum;
	uint64_t end;

	assert(l->head_len >= sizeof(eh));
	assert(l->head_size >= l->head_len && l->head_size % SNAPFS_PAGE_SIZE == 0);
	memcpy(&eh, l->head, sizeof(eh));
	assert(memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 && eh.e_type == ET_CORE);
	phnum = eh.e_phnum;
	if (phnum == PN_XNUM) {
		Elf64_Shdr sh;

		assert(eh.e_shoff + sizeof(sh) <= l->head_len);
		memcpy(&sh, l->head + eh.e_shoff, sizeof(sh));
		phnum = sh.sh_info;
	}
	assert(phnum == count + 1);
	assert(eh.e_phoff + phnum * sizeof(ph) <= l->head_len);
	memcpy(&ph, l->head + eh.e_phoff, sizeof(ph));
	assert(ph.p_type == PT_NOTE && ph.p_offset + ph.p_filesz == l->head_len);
	/* The notes walk to the end of the segment exactly. */
	for (uint64_t at = ph.p_offset; at < ph.p_offset + ph.p_filesz;) {
		Elf64_Nhdr nh;

		assert(at + sizeof(nh) <= l->head_len);
		memcpy(&nh, l->head + at, sizeof(nh));
		at += sizeof(nh) + ((nh.n_namesz + 3u) & ~3u) + ((nh.n_descsz + 3ull) & ~3ull);
		assert(at <= ph.p_offset + ph.p_filesz);
		assert(nh.n_namesz > 0 && l->head[at - ((nh.n_descsz + 3ull) & ~3ull) -
						 ((nh.n_namesz + 3u) & ~3u) + nh.n_namesz - 1] == 0);
	}
	end = l->head_size;
	assert(l->load_count == count);
	for (size_t i = 0; i < count; i++) {
		memcpy(&ph, l->head + eh.e_phoff + (i + 1) * sizeof(ph), sizeof(ph));
		assert(ph.p_type == PT_LOAD && ph.p_vaddr == segs[i].start);
		assert(ph.p_memsz == segs[i].end - segs[i].start);
		assert(ph.p_offset == end && l->loads[i].file_off == end);
		assert(ph.p_filesz == l->loads[i].size);
		end += ph.p_filesz;
		if (ph.p_filesz)
			assert(core_layout_find(l, ph.p_offset) == i ||
			       l->loads[core_layout_find(l, ph.p_offset)].size == 0);
	}
	assert(end == l->size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const owners[] = { "CORE", "LINUX", "snapfs", "X" };
	struct input in = { data, size };
	struct snapfs_segment segs[64];
	uint64_t seg_data[64], next_page = 0;
	struct core_note_list notes = { 0 };
	struct core_layout layout;
	size_t count = take(&in, 1) % 64;

	for (size_t i = 0; i < count; i++) {
		uint64_t start = next_page + take(&in, 4);
		uint64_t pages = take(&in, 2);
		unsigned label = (unsigned)take(&in, 1), flags = (unsigned)take(&in, 1);

		pages = pages ? pages : 1;
		segs[i] = (struct snapfs_segment){ .start = start * SNAPFS_PAGE_SIZE,
						   .end = (start + pages) * SNAPFS_PAGE_SIZE,
						   .committed = true };
		strcpy(segs[i].kind, "anonymous");
		segs[i].label = label == 1 ? "/usr/lib/libfuzz.so" : label == 2 ? "[heap]" :
				label == 3 ? "/bin/fuzz" : NULL;
		seg_data[i] = flags & 1 ? 0 : SNAPFS_PAGE_SIZE;
		next_page = start + pages;
	}
	while (in.left) {
		const char *owner = owners[take(&in, 1) % 4];
		uint32_t type = (uint32_t)take(&in, 4);
		size_t len = (size_t)take(&in, 2);

		if (len > in.left)
			len = in.left;
		if (core_note_list_add(&notes, owner, type, in.p, len) < 0)
			break;
		in.p += len;
		in.left -= len;
	}
	if (core_layout_build(segs, count, next_page * SNAPFS_PAGE_SIZE, seg_data, &notes,
			      &layout) == 0) {
		check_layout(&layout, segs, count);
		core_layout_release(&layout);
	}
	core_note_list_release(&notes);
	return 0;
}
