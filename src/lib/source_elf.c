// SPDX-License-Identifier: MIT
/*
 * The elf source: an ELF64 core file (gdb's gcore, the kernel's core
 * dumps, QEMU's dump-guest-memory), read with libelf. Every PT_LOAD
 * segment puts its bytes at its address in the memory file; bytes past
 * p_filesz read as zeros and cost nothing. NT_FILE notes say which ranges
 * a file backs: those segments are kind `mapped`, labelled with the path;
 * the rest are `anonymous`.
 *
 * Addresses: process cores use p_vaddr. Machine dumps use p_paddr (the
 * guest-physical address), recognised by a "QEMU" or "VMCOREINFO" note or
 * by every PT_LOAD having p_vaddr 0 (QEMU without paging). QEMU dumps made
 * with paging (-p) may map one physical page at several virtual addresses;
 * their PT_LOADs then overlap and are refused: dump without -p.
 */
#include <byteswap.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "source.h"
#include "source_util.h"

/* A PT_LOAD segment, with the address chosen (p_vaddr or p_paddr). */
struct elf_load {
	uint64_t addr;
	uint64_t memsz;
	uint64_t filesz;
	uint64_t offset;
	size_t index;       /* its number among the program headers */
};

/* A range an NT_FILE note says is backed by a file. */
struct elf_file_map {
	uint64_t start, end;
	char *path;
};

struct elf_source {
	int fd;
	uint64_t core_size;        /* bytes in the core file */
	struct extent_list data;   /* file 0: the core */
};

/* What the notes said, while opening. */
struct elf_notes {
	struct elf_file_map *maps;
	size_t map_count;
	bool have_nt_file;
	bool machine;              /* a QEMU or VMCOREINFO note */
	struct core_note_list *keep; /* every note, kept for the snapshot's
				      * core file (NULL: a byte order not
				      * this host's, not kept) */
};

static void elf_notes_release(struct elf_notes *notes)
{
	for (size_t i = 0; i < notes->map_count; i++)
		free(notes->maps[i].path);
	free(notes->maps);
	*notes = (struct elf_notes){ 0 };
}

static int elf_corrupt(const char *path, const char *what)
{
	return error_set(-SNAPFS_ECORRUPT, "source '%s': %s", path, what);
}

static int libelf_error(const char *path, const char *what)
{
	return error_set(-SNAPFS_ECORRUPT, "source '%s': %s: %s", path, what,
			 elf_errmsg(-1));
}

static int file_map_cmp(const void *a, const void *b)
{
	const struct elf_file_map *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/*
 * NT_FILE (fs/binfmt_elf.c, fill_files_note): count, page size, count
 * triples (start, end, file offset in pages), then count NUL-terminated
 * paths, all longs in the core's byte order.
 */
static int parse_nt_file(const char *path, const unsigned char *desc, size_t len,
			 bool swap, struct elf_notes *notes)
{
	const char *names, *names_end;
	uint64_t count, v[3];
	int rc;

	if (len < 16)
		return elf_corrupt(path, "NT_FILE note: too short");
	memcpy(&count, desc, 8);
	if (swap)
		count = bswap_64(count);
	if (count > (len - 16) / 24)
		return elf_corrupt(path, "NT_FILE note: more files than the note can hold");
	notes->maps = calloc(count ? count : 1, sizeof(*notes->maps));
	if (!notes->maps)
		return -ENOMEM;
	names = (const char *)desc + 16 + count * 24;
	names_end = (const char *)desc + len;
	for (uint64_t i = 0; i < count; i++) {
		struct elf_file_map *m = &notes->maps[i];
		const char *nul = memchr(names, '\0', (size_t)(names_end - names));

		memcpy(v, desc + 16 + i * 24, sizeof(v));
		if (swap)
			for (int k = 0; k < 3; k++)
				v[k] = bswap_64(v[k]);
		if (!nul)
			return elf_corrupt(path, "NT_FILE note: file names cut short");
		if (v[0] >= v[1] || v[0] % SNAPFS_PAGE_SIZE || v[1] % SNAPFS_PAGE_SIZE)
			return error_set(-SNAPFS_ECORRUPT,
					 "source '%s': NT_FILE note: range 0x%llx-0x%llx is not "
					 "a page-aligned range", path, (unsigned long long)v[0],
					 (unsigned long long)v[1]);
		m->start = v[0];
		m->end = v[1];
		m->path = strdup(names);
		if (!m->path)
			return -ENOMEM;
		notes->map_count++;
		names = nul + 1;
	}
	qsort(notes->maps, notes->map_count, sizeof(*notes->maps), file_map_cmp);
	for (size_t i = 1; i < notes->map_count; i++)
		if (notes->maps[i].start < notes->maps[i - 1].end) {
			rc = error_set(-SNAPFS_ECORRUPT,
				       "source '%s': NT_FILE note: ranges overlap at 0x%llx",
				       path, (unsigned long long)notes->maps[i].start);
			return rc;
		}
	notes->have_nt_file = true;
	return 0;
}

static bool note_named(const Elf_Data *data, const GElf_Nhdr *nh, size_t name_off,
		       const char *name)
{
	size_t len = strlen(name) + 1;

	return nh->n_namesz == len && name_off + len <= data->d_size &&
	       memcmp((const char *)data->d_buf + name_off, name, len) == 0;
}

/* Keep a copy of one note for the snapshot's core file (core_notes). */
static int keep_note(const char *path, const Elf_Data *data, const GElf_Nhdr *nh,
		     size_t name_off, size_t desc_off, struct core_note_list *keep)
{
	const char *name = (const char *)data->d_buf + name_off;
	char owner[CORE_NOTE_OWNER_MAX + 1];
	int rc;

	if (nh->n_namesz == 0 || nh->n_namesz > CORE_NOTE_OWNER_MAX ||
	    name_off > data->d_size || nh->n_namesz > data->d_size - name_off ||
	    desc_off > data->d_size || nh->n_descsz > data->d_size - desc_off)
		return elf_corrupt(path, "note cut short");
	memcpy(owner, name, nh->n_namesz);
	owner[nh->n_namesz] = '\0';
	if (!owner[0] || !strcmp(owner, CORE_NOTE_OWNER_SNAPFS))
		return 0;  /* a nameless note, or one that would pass for ours */
	rc = core_note_list_add(keep, owner, nh->n_type,
				(const unsigned char *)data->d_buf + desc_off, nh->n_descsz);
	if (rc == -EINVAL)
		return elf_corrupt(path, "note too large to keep");
	return rc;
}

static int read_notes(const char *path, Elf *elf, uint64_t core_size, const GElf_Phdr *ph,
		      bool swap, struct elf_notes *notes)
{
	Elf_Data *data;
	GElf_Nhdr nh;
	size_t off = 0, name_off, desc_off, next;

	if (ph->p_filesz == 0)
		return 0;
	if (ph->p_offset > core_size || ph->p_filesz > core_size - ph->p_offset)
		return error_set(-SNAPFS_ECORRUPT, "source '%s': PT_NOTE segment at file offset "
				 "0x%llx+0x%llx lies past the end of the file (%llu bytes): "
				 "truncated core?", path, (unsigned long long)ph->p_offset,
				 (unsigned long long)ph->p_filesz, (unsigned long long)core_size);
	data = elf_getdata_rawchunk(elf, (int64_t)ph->p_offset, ph->p_filesz,
				    ph->p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR);
	if (!data)
		return libelf_error(path, "PT_NOTE segment");
	while (off < data->d_size &&
	       (next = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
		if (note_named(data, &nh, name_off, "QEMU") ||
		    note_named(data, &nh, name_off, "VMCOREINFO"))
			notes->machine = true;
		if (notes->keep) {
			int rc = keep_note(path, data, &nh, name_off, desc_off, notes->keep);

			if (rc < 0)
				return rc;
		}
		if (note_named(data, &nh, name_off, "CORE") && nh.n_type == NT_FILE &&
		    !notes->have_nt_file) {
			int rc;

			if (desc_off > data->d_size || nh.n_descsz > data->d_size - desc_off)
				return elf_corrupt(path, "NT_FILE note: cut short");
			rc = parse_nt_file(path, (const unsigned char *)data->d_buf + desc_off,
					   nh.n_descsz, swap, notes);
			if (rc < 0)
				return rc;
		}
		off = next;
	}
	return 0;
}

static int load_cmp(const void *a, const void *b)
{
	const struct elf_load *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* Segments for one PT_LOAD's pages [start, end): split where NT_FILE
 * ranges begin and end; *j is the first file range that may still
 * matter (both lists are sorted). */
static int add_load_segments(struct source *src, const struct elf_notes *notes,
			     uint64_t start, uint64_t end, size_t *j)
{
	uint64_t at = start;
	int rc;

	while (*j < notes->map_count && notes->maps[*j].end <= start)
		(*j)++;
	for (size_t k = *j; k < notes->map_count && notes->maps[k].start < end; k++) {
		const struct elf_file_map *m = &notes->maps[k];
		uint64_t s = m->start > at ? m->start : at;
		uint64_t e = m->end < end ? m->end : end;

		if (s > at) {
			rc = source_add_segment(src, at, s, "anonymous", 0, true, NULL);
			if (rc < 0)
				return rc;
		}
		if (e > s) {
			rc = source_add_segment(src, s, e, "mapped", 0, true, m->path);
			if (rc < 0)
				return rc;
			at = e;
		}
	}
	if (at < end)
		return source_add_segment(src, at, end, "anonymous", 0, true, NULL);
	return 0;
}

static int elf_read_piece(void *ctx, const struct extent *ext, unsigned char *buf,
			  size_t len, uint64_t file_off)
{
	struct source *src = ctx;
	struct elf_source *es = src->impl;
	ssize_t n = pread_full(es->fd, buf, len, file_off);

	(void)ext;
	if (n < 0)
		return error_set((int)n, "source '%s': read at file offset 0x%llx: %s",
				 src->path, (unsigned long long)file_off, errno_text((int)-n));
	if ((size_t)n < len)
		return error_set(-EIO, "source '%s': shrank while being read (file offset 0x%llx)",
				 src->path, (unsigned long long)(file_off + (uint64_t)n));
	return 0;
}

static int elf_next_data(struct source *src, uint64_t off, uint64_t *ret_start,
			 uint64_t *ret_end)
{
	struct elf_source *es = src->impl;

	return extent_list_next_data(&es->data, off, ret_start, ret_end);
}

static int elf_read(struct source *src, unsigned char *buf, size_t len, uint64_t off)
{
	struct elf_source *es = src->impl;

	return extent_list_read(&es->data, buf, len, off, elf_read_piece, src);
}

static void elf_close(struct source *src)
{
	struct elf_source *es = src->impl;

	if (!es)
		return;
	if (es->fd >= 0)
		close(es->fd);
	extent_list_release(&es->data);
	free(es);
	src->impl = NULL;
}

static const struct source_ops elf_ops = {
	.format = "elf",
	.next_data = elf_next_data,
	.read = elf_read,
	.close = elf_close,
};

/* The PT_LOADs of the core, their addresses chosen; notes read. */
static int read_headers(struct source *src, Elf *elf, struct elf_load **ret_loads,
			size_t *ret_count, struct elf_notes *notes)
{
	struct elf_source *es = src->impl;
	const char *path = src->path;
	struct elf_load *loads;
	size_t phnum, count = 0;
	bool swap, all_vaddr_zero = true;
	GElf_Ehdr eh;
	GElf_Phdr ph;
	int rc;

	if (elf_kind(elf) != ELF_K_ELF)
		return elf_corrupt(path, "not an ELF file");
	if (gelf_getclass(elf) != ELFCLASS64)
		return error_set(-EINVAL, "source '%s': a 32-bit ELF file: only ELF64 cores "
				 "are supported", path);
	if (!gelf_getehdr(elf, &eh))
		return libelf_error(path, "ELF header");
	if (eh.e_type != ET_CORE)
		return error_set(-EINVAL, "source '%s': ELF type %u, not a core file "
				 "(use --format raw to save its bytes)", path, eh.e_type);
	swap = (eh.e_ident[EI_DATA] == ELFDATA2MSB) != (__BYTE_ORDER == __BIG_ENDIAN);
	if (!swap && eh.e_ident[EI_DATA] == ELFDATA2LSB) {
		rc = core_note_list_add_machine(&src->core_notes, eh.e_machine);
		if (rc < 0)
			return rc;
		notes->keep = &src->core_notes;
	}
	if (elf_getphdrnum(elf, &phnum) < 0)
		return libelf_error(path, "program headers");
	if (phnum > es->core_size / sizeof(Elf64_Phdr))
		return elf_corrupt(path, "more program headers than the file can hold");
	loads = calloc(phnum ? phnum : 1, sizeof(*loads));
	if (!loads)
		return -ENOMEM;
	for (size_t i = 0; i < phnum; i++) {
		if (!gelf_getphdr(elf, (int)i, &ph)) {
			rc = libelf_error(path, "program header");
			goto out_free;
		}
		if (ph.p_type == PT_NOTE) {
			rc = read_notes(path, elf, es->core_size, &ph, swap, notes);
			if (rc < 0)
				goto out_free;
		}
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		if (ph.p_vaddr)
			all_vaddr_zero = false;
		loads[count++] = (struct elf_load){
			.addr = ph.p_vaddr, .memsz = ph.p_memsz, .filesz = ph.p_filesz,
			.offset = ph.p_offset, .index = i,
		};
	}
	if (notes->machine || (count && all_vaddr_zero)) {
		for (size_t i = 0; i < count; i++) {
			if (!gelf_getphdr(elf, (int)loads[i].index, &ph)) {
				rc = libelf_error(path, "program header");
				goto out_free;
			}
			loads[i].addr = ph.p_paddr;
		}
		notes->machine = true;
	}
	*ret_loads = loads;
	*ret_count = count;
	return 0;
out_free:
	free(loads);
	return rc;
}

/* Check the loads against the core and each other, make the extents and
 * the segments. */
static int lay_out(struct source *src, struct elf_load *loads, size_t count,
		   const struct elf_notes *notes, struct note_list *skipped)
{
	struct elf_source *es = src->impl;
	const char *path = src->path;
	uint64_t prev_end = 0, top = 0;
	size_t kept = 0, j = 0;
	int rc;

	for (size_t i = 0; i < count; i++) {
		struct elf_load *l = &loads[i];

		if (l->filesz > l->memsz)
			return error_set(-SNAPFS_ECORRUPT, "source '%s': PT_LOAD %zu: file size "
					 "0x%llx larger than memory size 0x%llx", path, l->index,
					 (unsigned long long)l->filesz,
					 (unsigned long long)l->memsz);
		if (l->offset > es->core_size || l->filesz > es->core_size - l->offset)
			return error_set(-SNAPFS_ECORRUPT, "source '%s': PT_LOAD %zu: data at "
					 "file offset 0x%llx+0x%llx lies past the end of the "
					 "file (%llu bytes): truncated core?", path, l->index,
					 (unsigned long long)l->offset,
					 (unsigned long long)l->filesz,
					 (unsigned long long)es->core_size);
		if (l->addr % SNAPFS_PAGE_SIZE)
			return error_set(-SNAPFS_ECORRUPT, "source '%s': PT_LOAD %zu: address "
					 "0x%llx is not page-aligned", path, l->index,
					 (unsigned long long)l->addr);
		if (l->addr > SOURCE_MAX_OFFSET || l->memsz > SOURCE_MAX_OFFSET - l->addr) {
			rc = l->memsz <= UINT64_MAX - l->addr
				     ? note_add(skipped, "skipped: 0x%llx-0x%llx (address too high to keep)",
						(unsigned long long)l->addr,
						(unsigned long long)(l->addr + l->memsz))
				     : note_add(skipped, "skipped: 0x%llx+0x%llx (address too high to keep)",
						(unsigned long long)l->addr,
						(unsigned long long)l->memsz);
			if (rc < 0)
				return rc;
			continue;
		}
		loads[kept++] = *l;
	}
	qsort(loads, kept, sizeof(*loads), load_cmp);
	for (size_t i = 0; i < kept; i++) {
		const struct elf_load *l = &loads[i];
		uint64_t end = page_round_up(l->addr + l->memsz);

		if (l->addr < prev_end)
			return error_set(-SNAPFS_ECORRUPT, "source '%s': PT_LOAD %zu at 0x%llx "
					 "overlaps the one before", path, l->index,
					 (unsigned long long)l->addr);
		rc = extent_list_push(&es->data, l->addr, l->addr + l->filesz, 0, l->offset);
		if (rc < 0)
			return rc;
		rc = add_load_segments(src, notes, l->addr, end, &j);
		if (rc < 0)
			return rc;
		prev_end = end;
		top = end;
	}
	src->size = top;
	src->has_segments = true;
	return 0;
}

int source_open_elf(const char *path, struct source *src)
{
	struct elf_notes notes = { 0 };
	struct note_list skipped = { 0 };
	struct elf_load *loads = NULL;
	struct elf_source *es;
	char shown[4200];
	size_t count = 0;
	struct stat st;
	Elf *elf;
	int rc;

	es = calloc(1, sizeof(*es));
	if (!es)
		return -ENOMEM;
	src->ops = &elf_ops;
	src->impl = es;
	es->fd = -1;
	snprintf(shown, sizeof(shown), "source '%s'", path);
	rc = source_file_open(AT_FDCWD, path, shown, false, &es->fd, &st);
	if (rc < 0)
		return rc == -ENODEV ? -EINVAL : rc;  /* an ELF core is a regular file */
	es->core_size = (uint64_t)st.st_size;
	if (elf_version(EV_CURRENT) == EV_NONE)
		return error_set(-EINVAL, "libelf: %s", elf_errmsg(-1));
	elf = elf_begin(es->fd, ELF_C_READ, NULL);
	if (!elf)
		return libelf_error(path, "not a readable ELF file");
	rc = read_headers(src, elf, &loads, &count, &notes);
	if (rc < 0)
		goto out_end;
	if (notes.machine) {
		rc = note_add(&skipped, "memory-file offsets are physical addresses (p_paddr)");
		if (rc < 0)
			goto out_free;
	}
	rc = lay_out(src, loads, count, &notes, &skipped);
	if (rc < 0)
		goto out_free;
	rc = note_list_finish(&skipped, src);
	if (rc == 0)
		posix_fadvise(es->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
out_free:
	free(loads);
out_end:
	elf_end(elf);
	elf_notes_release(&notes);
	note_list_release(&skipped);
	return rc;
}
