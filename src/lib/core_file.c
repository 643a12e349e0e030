// SPDX-License-Identifier: MIT
/*
 * The core file of a process snapshot, synthesized on the fly: an ELF64
 * ET_CORE whose headers and notes are built from the metadata (segments,
 * the stored notes of table core_notes) and whose PT_LOAD bytes are the
 * memory file's, read through the snapshot's image. The layout:
 *
 *   ELF header | program headers: PT_NOTE, one PT_LOAD per segment |
 *   [one section header when there are too many program headers] | notes |
 *   zeros to a page | the segments' bytes, one after the other
 *
 * The notes are the stored ones in order (each thread's NT_PRSTATUS and
 * what follows it, NT_PRPSINFO, NT_AUXV...) with NT_FILE made anew from
 * the segments whose label is a path; a stored NT_FILE only gives the file
 * offsets. Stored notes are untrusted: sizes are checked before anything
 * is copied.
 */
#include "core_file.h"

#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "core_notes.h"
#include "errors.h"
#include "store.h"

#ifndef NT_FILE
#define NT_FILE 0x46494c45
#endif

#if defined(__x86_64__)
#define CORE_HOST_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define CORE_HOST_MACHINE EM_AARCH64
#else
#define CORE_HOST_MACHINE EM_NONE
#endif

struct snapfs_core {
	struct core_layout layout;
	struct snapfs_image *image;    /* borrowed */
	uint64_t data_bytes;
};

/* A range of a stored NT_FILE note: [start, end) maps byte offset off of
 * file name (NUL-terminated inside the note). */
struct file_range {
	uint64_t start, end, off;
	const char *name;
};

bool snapfs_format_has_core(const char *format)
{
	return format && (!strcmp(format, "elf") || !strcmp(format, "criu") ||
			  !strcmp(format, "pid"));
}

static size_t align4(size_t x)
{
	return (x + 3) & ~(size_t)3;
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

static void put64(unsigned char *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static bool is_core_owner(const struct core_note *n)
{
	return strcmp(n->owner, "CORE") == 0;
}

static bool is_snapfs_row(const struct core_note *n)
{
	return strcmp(n->owner, CORE_NOTE_OWNER_SNAPFS) == 0;
}

/* The ranges of a stored NT_FILE note (little-endian, 64-bit): count,
 * page size, count (start, end, page offset), count names. */
static int parse_file_note(const struct core_note *n, struct file_range **ret_ranges,
			   size_t *ret_count)
{
	const unsigned char *d = n->descr;
	uint64_t count, page_size;
	struct file_range *ranges;
	const char *names, *names_end;

	if (n->len < 16)
		return error_set(-SNAPFS_ECORRUPT, "stored NT_FILE note: too short");
	count = get64(d);
	page_size = get64(d + 8);
	if (count > (n->len - 16) / 24)
		return error_set(-SNAPFS_ECORRUPT, "stored NT_FILE note: %llu ranges do not fit "
				 "in %zu bytes", (unsigned long long)count, n->len);
	if (page_size == 0 || page_size > (1u << 30) || (page_size & (page_size - 1)))
		return error_set(-SNAPFS_ECORRUPT, "stored NT_FILE note: page size %llu",
				 (unsigned long long)page_size);
	ranges = calloc(count ? count : 1, sizeof(*ranges));
	if (!ranges)
		return -ENOMEM;
	names = (const char *)d + 16 + count * 24;
	names_end = (const char *)d + n->len;
	for (uint64_t i = 0; i < count; i++) {
		const unsigned char *t = d + 16 + i * 24;
		uint64_t pgoff = get64(t + 16);
		const char *nul = memchr(names, '\0', (size_t)(names_end - names));

		if (!nul) {
			free(ranges);
			return error_set(-SNAPFS_ECORRUPT, "stored NT_FILE note: file names cut "
					 "short");
		}
		ranges[i].name = names;
		names = nul + 1;

		ranges[i].start = get64(t);
		ranges[i].end = get64(t + 8);
		if (ranges[i].start >= ranges[i].end || pgoff > UINT64_MAX / page_size) {
			free(ranges);
			return error_set(-SNAPFS_ECORRUPT, "stored NT_FILE note: range %llu "
					 "is not a range", (unsigned long long)i);
		}
		ranges[i].off = pgoff * page_size;
	}
	*ret_ranges = ranges;
	*ret_count = (size_t)count;
	return 0;
}

/* What goes into NT_FILE: the segments labelled with a path, split where
 * a stored NT_FILE range inside them gives a file offset. */
struct file_entry {
	uint64_t start, end, off;
	const char *name;
};

struct file_entries {
	struct file_entry *e;
	size_t count, cap;
	size_t names_len;          /* bytes of the names, NULs included */
};

static int file_entries_push(struct file_entries *fe, uint64_t start, uint64_t end,
			     uint64_t off, const char *name)
{
	if (fe->count == fe->cap) {
		size_t cap = fe->cap ? fe->cap * 2 : 64;
		struct file_entry *bigger = realloc(fe->e, cap * sizeof(*bigger));

		if (!bigger)
			return -ENOMEM;
		fe->e = bigger;
		fe->cap = cap;
	}
	fe->e[fe->count++] = (struct file_entry){ start, end, off, name };
	fe->names_len += strlen(name) + 1;
	return fe->names_len > CORE_NOTES_MAX ? error_set(-SNAPFS_ECORRUPT,
							  "NT_FILE note: too large") : 0;
}

static bool is_path(const char *label)
{
	return label && label[0] == '/';
}

/* Index of the first segment that ends after off (count if none). */
static size_t segment_after(const struct snapfs_segment *segs, size_t count, uint64_t off)
{
	size_t lo = 0, hi = count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (segs[mid].end <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct file_entry *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* A stored range inside a segment labelled with a path takes the label;
 * one outside every segment (a read-only file mapping a core left to its
 * file) is kept as it was; a segment labelled with a path that no stored
 * range gives offsets for maps its file from offset 0. */
static int file_entries_build(const struct snapfs_segment *segs, size_t count,
			      const struct file_range *ranges, size_t range_count,
			      struct file_entries *fe)
{
	bool *covered = calloc(count ? count : 1, sizeof(*covered));
	int rc = covered ? 0 : -ENOMEM;

	for (size_t k = 0; rc == 0 && k < range_count; k++) {
		const struct file_range *r = &ranges[k];
		size_t i = segment_after(segs, count, r->start);

		if (i == count || segs[i].start >= r->end) {
			rc = file_entries_push(fe, r->start, r->end, r->off, r->name);
		} else if (segs[i].start <= r->start && r->end <= segs[i].end &&
			   is_path(segs[i].label)) {
			rc = file_entries_push(fe, r->start, r->end, r->off, segs[i].label);
			covered[i] = true;
		}
	}
	for (size_t i = 0; rc == 0 && i < count; i++)
		if (is_path(segs[i].label) && !covered[i])
			rc = file_entries_push(fe, segs[i].start, segs[i].end, 0, segs[i].label);
	free(covered);
	if (rc == 0 && fe->count > 1)
		qsort(fe->e, fe->count, sizeof(*fe->e), entry_cmp);
	return rc;
}

static size_t file_note_size(const struct file_entries *fe)
{
	return 16 + fe->count * 24 + fe->names_len;
}

static void file_note_write(const struct file_entries *fe, unsigned char *d)
{
	unsigned char *names = d + 16 + fe->count * 24;

	put64(d, fe->count);
	put64(d + 8, SNAPFS_PAGE_SIZE);
	for (size_t i = 0; i < fe->count; i++) {
		unsigned char *t = d + 16 + i * 24;
		size_t len = strlen(fe->e[i].name) + 1;

		put64(t, fe->e[i].start);
		put64(t + 8, fe->e[i].end);
		put64(t + 16, fe->e[i].off / SNAPFS_PAGE_SIZE);
		memcpy(names, fe->e[i].name, len);
		names += len;
	}
}

static size_t note_size(size_t owner_len, size_t descr_len)
{
	return sizeof(Elf64_Nhdr) + align4(owner_len + 1) + align4(descr_len);
}

/* Write one note at p; returns the bytes written (note_size()). */
static size_t note_write(unsigned char *p, const char *owner, uint32_t type,
			 const unsigned char *descr, size_t len)
{
	Elf64_Nhdr nh = { .n_namesz = (Elf64_Word)(strlen(owner) + 1),
			  .n_descsz = (Elf64_Word)len, .n_type = type };
	size_t at = sizeof(nh);

	memcpy(p, &nh, sizeof(nh));
	memcpy(p + at, owner, nh.n_namesz);
	at += align4(nh.n_namesz);
	if (len)
		memcpy(p + at, descr, len);
	return at + align4(len);
}

/* The machine the notes were made on: snapfs's row, else this host. */
static int notes_machine(const struct core_note_list *notes, uint16_t *ret_machine)
{
	*ret_machine = CORE_HOST_MACHINE;
	for (size_t i = 0; i < notes->count; i++) {
		const struct core_note *n = &notes->notes[i];

		if (!is_snapfs_row(n) || n->type != CORE_NOTE_MACHINE)
			continue;
		if (n->len != 2)
			return error_set(-SNAPFS_ECORRUPT, "stored machine: %zu bytes", n->len);
		*ret_machine = (uint16_t)(n->descr[0] | n->descr[1] << 8);
	}
	return 0;
}

static int check_segments(const struct snapfs_segment *segs, size_t count, uint64_t file_size)
{
	uint64_t prev_end = 0;

	for (size_t i = 0; i < count; i++) {
		if (segs[i].start < prev_end || segs[i].start >= segs[i].end ||
		    segs[i].end > file_size)
			return error_set(-SNAPFS_ECORRUPT, "segment %zu (0x%llx-0x%llx): out of "
					 "order or past the end", i,
					 (unsigned long long)segs[i].start,
					 (unsigned long long)segs[i].end);
		prev_end = segs[i].end;
	}
	return 0;
}

/* The notes' bytes, NT_FILE made from fe where a stored one was, or
 * after the others. */
static int notes_build(const struct core_note_list *notes, const struct file_entries *fe,
		       unsigned char **ret_buf, size_t *ret_len)
{
	size_t total = 0, at = 0, file_len = file_note_size(fe);
	bool file_done = fe->count == 0;
	unsigned char *buf, *file_descr;

	for (size_t i = 0; i < notes->count; i++) {
		const struct core_note *n = &notes->notes[i];

		if (is_snapfs_row(n) || (is_core_owner(n) && n->type == NT_FILE))
			continue;
		if (n->len > CORE_NOTE_DESCR_MAX || strlen(n->owner) > CORE_NOTE_OWNER_MAX)
			return error_set(-SNAPFS_ECORRUPT, "stored note %zu: too large", i);
		total += note_size(strlen(n->owner), n->len);
		if (total > CORE_NOTES_MAX)
			return error_set(-SNAPFS_ECORRUPT, "stored notes: over %zu bytes",
					 CORE_NOTES_MAX);
	}
	if (fe->count)
		total += note_size(4, file_len);
	if (total > CORE_NOTES_MAX || file_len > UINT32_MAX)
		return error_set(-SNAPFS_ECORRUPT, "notes: over %zu bytes", CORE_NOTES_MAX);
	buf = calloc(1, total ? total : 1);
	file_descr = malloc(file_len);
	if (!buf || !file_descr) {
		free(buf);
		free(file_descr);
		return -ENOMEM;
	}
	file_note_write(fe, file_descr);
	for (size_t i = 0; i < notes->count; i++) {
		const struct core_note *n = &notes->notes[i];

		if (is_snapfs_row(n))
			continue;
		if (is_core_owner(n) && n->type == NT_FILE) {
			if (!file_done)
				at += note_write(buf + at, "CORE", NT_FILE, file_descr, file_len);
			file_done = true;
			continue;
		}
		at += note_write(buf + at, n->owner, n->type, n->descr, n->len);
	}
	if (!file_done)
		at += note_write(buf + at, "CORE", NT_FILE, file_descr, file_len);
	free(file_descr);
	*ret_buf = buf;
	*ret_len = at;
	return 0;
}

static void write_headers(struct core_layout *l, uint16_t machine, size_t phnum,
			  bool xnum, uint64_t notes_off, size_t notes_len)
{
	Elf64_Ehdr eh = { 0 };
	Elf64_Phdr ph = { 0 };
	unsigned char *p = l->head;

	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_ident[EI_OSABI] = ELFOSABI_NONE;
	eh.e_type = ET_CORE;
	eh.e_machine = machine;
	eh.e_version = EV_CURRENT;
	eh.e_phoff = sizeof(Elf64_Ehdr);
	eh.e_ehsize = sizeof(Elf64_Ehdr);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = xnum ? PN_XNUM : (Elf64_Half)phnum;
	if (xnum) {
		Elf64_Shdr sh = { .sh_info = (Elf64_Word)phnum };

		eh.e_shoff = sizeof(Elf64_Ehdr) + phnum * sizeof(Elf64_Phdr);
		eh.e_shentsize = sizeof(Elf64_Shdr);
		eh.e_shnum = 1;
		memcpy(p + eh.e_shoff, &sh, sizeof(sh));
	}
	memcpy(p, &eh, sizeof(eh));
	p += sizeof(eh);
	ph.p_type = PT_NOTE;
	ph.p_offset = notes_off;
	ph.p_filesz = notes_len;
	ph.p_align = 4;
	memcpy(p, &ph, sizeof(ph));
	p += sizeof(ph);
	for (size_t i = 0; i < l->load_count; i++) {
		ph = (Elf64_Phdr){ .p_type = PT_LOAD, .p_flags = PF_R | PF_W,
				   .p_offset = l->loads[i].file_off,
				   .p_vaddr = l->loads[i].mem_off,
				   .p_filesz = l->loads[i].size, .p_memsz = l->loads[i].memsz,
				   .p_align = SNAPFS_PAGE_SIZE };
		memcpy(p, &ph, sizeof(ph));
		p += sizeof(ph);
	}
}

int core_layout_build(const struct snapfs_segment *segs, size_t count, uint64_t file_size,
		      const uint64_t *data, const struct core_note_list *notes,
		      struct core_layout *ret_layout)
{
	struct core_layout l = { 0 };
	struct file_entries fe = { 0 };
	struct file_range *ranges = NULL;
	size_t range_count = 0, notes_len = 0, fixed, phnum;
	unsigned char *note_bytes = NULL;
	uint16_t machine = 0;
	bool xnum;
	int rc;

	rc = check_segments(segs, count, file_size);
	if (rc == 0)
		rc = notes_machine(notes, &machine);
	for (size_t i = 0; rc == 0 && i < notes->count; i++)
		if (is_core_owner(&notes->notes[i]) && notes->notes[i].type == NT_FILE &&
		    !ranges)
			rc = parse_file_note(&notes->notes[i], &ranges, &range_count);
	if (rc == 0)
		rc = file_entries_build(segs, count, ranges, range_count, &fe);
	if (rc == 0)
		rc = notes_build(notes, &fe, &note_bytes, &notes_len);
	if (rc < 0)
		goto out_free;
	phnum = 1 + count;
	if (phnum > UINT32_MAX) {
		rc = error_set(-SNAPFS_ECORRUPT, "%zu segments: too many for a core", count);
		goto out_free;
	}
	xnum = phnum >= PN_XNUM;
	fixed = sizeof(Elf64_Ehdr) + phnum * sizeof(Elf64_Phdr) + (xnum ? sizeof(Elf64_Shdr) : 0);
	l.head_len = fixed + notes_len;
	l.head_size = (l.head_len + SNAPFS_PAGE_SIZE - 1) / SNAPFS_PAGE_SIZE * SNAPFS_PAGE_SIZE;
	l.head = calloc(1, l.head_len);
	l.loads = calloc(count ? count : 1, sizeof(*l.loads));
	if (!l.head || !l.loads) {
		rc = -ENOMEM;
		goto out_free;
	}
	l.size = l.head_size;
	for (size_t i = 0; i < count; i++) {
		uint64_t memsz = segs[i].end - segs[i].start;
		bool to_file = data && data[i] == 0 && segs[i].label && segs[i].label[0] == '/';

		l.loads[i] = (struct core_load){ .file_off = l.size, .mem_off = segs[i].start,
						 .size = to_file ? 0 : memsz, .memsz = memsz };
		if (l.loads[i].size > (uint64_t)INT64_MAX - l.size) {
			rc = error_set(-SNAPFS_ECORRUPT, "segments: too large for a core");
			goto out_free;
		}
		l.size += l.loads[i].size;
	}
	l.load_count = count;
	write_headers(&l, machine, phnum, xnum, fixed, notes_len);
	memcpy(l.head + fixed, note_bytes, notes_len);
	*ret_layout = l;
	l = (struct core_layout){ 0 };
out_free:
	core_layout_release(&l);
	free(note_bytes);
	free(fe.e);
	free(ranges);
	return rc;
}

void core_layout_release(struct core_layout *layout)
{
	free(layout->head);
	free(layout->loads);
	*layout = (struct core_layout){ 0 };
}

size_t core_layout_find(const struct core_layout *l, uint64_t off)
{
	size_t lo = 0, hi = l->load_count;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (l->loads[mid].file_off <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* --- the public side ----------------------------------------------------- */

static int load_notes(struct snapfs_store *store, int64_t id, struct snapfs_segment **ret_segs,
		      size_t *ret_count, struct core_note_list *notes)
{
	struct catalog *cat;
	int rc = store_reader_get(store, &cat);

	if (rc < 0)
		return rc;
	rc = catalog_begin_read(cat);
	if (rc == 0) {
		rc = catalog_segments_get(cat, id, ret_segs, ret_count);
		if (rc == 0)
			rc = catalog_core_notes_load(cat, id, notes);
		catalog_commit(cat);
	}
	store_reader_put(store, cat);
	return rc;
}

int snapfs_core_open(struct snapfs_store *store, const struct snapfs_snapshot *snap,
		     struct snapfs_image *image, struct snapfs_core **ret_core)
{
	struct core_note_list notes = { 0 };
	struct snapfs_segment *segs = NULL;
	struct snapfs_core *core;
	uint64_t *data = NULL;
	size_t count = 0;
	int rc;

	error_clear();
	if (!snapfs_format_has_core(snap->format))
		return error_set(-EOPNOTSUPP, "snapshot '%s': format %s holds no process, so "
				 "it has no core", snap->name, snap->format);
	core = calloc(1, sizeof(*core));
	if (!core)
		return -ENOMEM;
	core->image = image;
	rc = load_notes(store, snap->id, &segs, &count, &notes);
	if (rc == 0) {
		data = calloc(count ? count : 1, sizeof(*data));
		if (!data)
			rc = -ENOMEM;
	}
	for (size_t i = 0; rc == 0 && i < count; i++)
		data[i] = snapfs_image_data_bytes(image, segs[i].start, segs[i].end);
	if (rc == 0)
		rc = core_layout_build(segs, count, snapfs_image_size(image), data, &notes,
				       &core->layout);
	if (rc < 0) {
		error_prefix(rc, "snapshot '%s': core", snap->name);
		goto out_free;
	}
	core->data_bytes = core->layout.head_size;
	for (size_t i = 0; i < core->layout.load_count; i++) {
		const struct core_load *ld = &core->layout.loads[i];

		core->data_bytes += snapfs_image_data_bytes(image, ld->mem_off,
							    ld->mem_off + ld->size);
	}
	*ret_core = core;
	core = NULL;
out_free:
	snapfs_core_close(core);
	snapfs_segments_free(segs, count);
	core_note_list_release(&notes);
	free(data);
	return rc;
}

void snapfs_core_close(struct snapfs_core *core)
{
	if (!core)
		return;
	core_layout_release(&core->layout);
	free(core);
}

uint64_t snapfs_core_size(const struct snapfs_core *core)
{
	return core->layout.size;
}

uint64_t snapfs_core_data_bytes(const struct snapfs_core *core)
{
	return core->data_bytes;
}

ssize_t snapfs_core_read(struct snapfs_core *core, void *buf, size_t len, uint64_t off)
{
	const struct core_layout *l = &core->layout;
	unsigned char *out = buf;
	size_t done = 0;

	if (off >= l->size)
		return 0;
	if (len > l->size - off)
		len = (size_t)(l->size - off);
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	while (done < len) {
		uint64_t pos = off + done;
		size_t n;

		if (pos < l->head_size) {
			n = (size_t)(l->head_size - pos) < len - done ?
			    (size_t)(l->head_size - pos) : len - done;
			for (size_t k = 0; k < n; k++)
				out[done + k] = pos + k < l->head_len ? l->head[pos + k] : 0;
		} else {
			const struct core_load *ld = &l->loads[core_layout_find(l, pos)];
			uint64_t left = ld->file_off + ld->size - pos;
			ssize_t r;

			n = left < len - done ? (size_t)left : len - done;
			r = snapfs_image_read(core->image, out + done, n,
					      ld->mem_off + (pos - ld->file_off));
			if (r < 0)
				return r;
			if ((size_t)r != n)
				return error_set(-EIO, "core: short read at 0x%llx",
						 (unsigned long long)pos);
		}
		done += n;
	}
	return (ssize_t)done;
}

int64_t snapfs_core_seek(struct snapfs_core *core, uint64_t off, int whence)
{
	const struct core_layout *l = &core->layout;
	uint64_t pos = off;

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	if (off >= l->size)
		return -ENXIO;
	if (pos < l->head_size) {
		if (whence == SEEK_DATA)
			return (int64_t)pos;
		pos = l->head_size;
	}
	while (pos < l->size) {
		const struct core_load *ld = &l->loads[core_layout_find(l, pos)];
		uint64_t mem = ld->mem_off + (pos - ld->file_off), mem_end = ld->mem_off + ld->size;
		int64_t r = snapfs_image_seek(core->image, mem, whence);

		if (r == -ENXIO)
			r = (int64_t)snapfs_image_size(core->image);
		if (r < 0)
			return r;
		if ((uint64_t)r < mem_end)
			return (int64_t)(ld->file_off + ((uint64_t)r - ld->mem_off));
		pos = ld->file_off + ld->size;
	}
	return whence == SEEK_DATA ? -ENXIO : (int64_t)l->size;
}
