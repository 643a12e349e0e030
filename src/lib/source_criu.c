// SPDX-License-Identifier: MIT
/*
 * The criu source: a process's memory from a CRIU image directory. The
 * memory file is the address space: pagemap-N.img lists the dumped page
 * ranges, pages-ID.img holds their bytes in that order, mm-N.img gives
 * the VMAs (the usage set, its kinds and labels). Incremental dumps mark
 * ranges as being in the parent dump (the `parent` symlink): those are
 * found there, following the chain as far as it goes.
 *
 * The image format, from CRIU's source (github.com/checkpoint-restore/criu,
 * checked at commit 2cf8f13ca1f11a0491977e438b262e646137256c):
 *  - criu/include/magic.h, criu/image.c img_check_magic(): every image but
 *    the inventory starts with IMG_COMMON_MAGIC (0x54564319) and then its
 *    own magic (PAGEMAP_MAGIC 0x56084025, MM_MAGIC 0x57492820,
 *    PSTREE_MAGIC 0x50273030); images of CRIU 1.0 have only their own.
 *    PAGES_MAGIC is RAW_IMAGE_MAGIC: pages-*.img is bare page data.
 *  - criu/protobuf.c do_pb_read_one(): then entries, each a u32 length
 *    (host order: little-endian here) and that many bytes of protobuf.
 *  - criu/image.c open_pages_image_at(): a pagemap image opens with a
 *    pagemap_head whose pages_id names pages-<pages_id>.img.
 *  - criu/pagemap.c: entries come in ascending address order
 *    (seek_pagemap()); init_compat_pagemap_entry(): in_parent means
 *    PE_PARENT, no flags at all means PE_PRESENT, nr_pages defaults to
 *    compat_nr_pages; skip_pagemap_pages(): only PE_PRESENT entries take
 *    room in the pages image; try_open_parent(): the parent dump is the
 *    directory the `parent` entry leads to, with the same image ids;
 *    read_parent_page(): a range the parent lacks is an error.
 *  - criu/include/pagemap.h: PE_PARENT 1, PE_LAZY 2, PE_PRESENT 4.
 *  - criu/include/image.h: VMA status bits (VMA_AREA_HEAP, _STACK, _VDSO,
 *    _VVAR, _VSYSCALL, VMA_FILE_PRIVATE, _SHARED, VMA_ANON_SHARED, ...).
 *  - images/pagemap.proto, mm.proto, vma.proto, pstree.proto (copied to
 *    proto/); core.proto and core-x86.proto (cut down to proto/core.proto:
 *    the machine, an x86-64 thread's registers, the task's name), read
 *    from core-<tid>.img for the core file's notes (core_notes).
 *  - LZ4-compressed pages (criu-dev, pull requests #2895 and #3115, 2026;
 *    see proto/pagemap.proto for where the schema was read): a present
 *    entry with `blocks` has its pages cut into blocks of pages_per_block
 *    pages (the last one shorter), each stored as block_sizes[i] bytes
 *    back to back in pages-*.img: 0 for a block of zeros (nothing
 *    stored), its pages' size for a raw block, else one LZ4 block (block
 *    format); CRIU caps a block at 4 MiB. PE_PAYLOAD_ALIGNED (8): the
 *    entry's payload starts at the next page boundary of pages-*.img. A
 *    dump with compressed or aligned entries is decompressed once, when it
 *    is opened, into an unnamed sparse file in $TMPDIR (default
 *    /var/tmp), its pages in the order of the plain layout; every block
 *    must give exactly its pages' bytes. Plain and compressed dumps mix
 *    freely in a chain.
 *  - A pagemap from a newer CRIU: its head and entries decide where every
 *    byte is, so a field this reader does not know there, or a flag other
 *    than PE_PARENT / PE_LAZY / PE_PRESENT, is refused with a message
 *    that names it; unknown fields elsewhere (mm, vma, pstree, core) are
 *    ignored, as protobuf does.
 *
 * Decisions: with several processes in the dump (several pagemap-N.img),
 * the root task named by the first pstree.img entry is saved. Shared
 * memory (VMA_ANON_SHARED, SysV IPC, memfd VMAs) is read from
 * pagemap-shmem-<shmid>.img and its parents, whose addresses are offsets
 * in the object (criu/shmem.c: xfer.offset is the object's mapping, and
 * restore maps the object at the VMA's pgoff); where that image is
 * missing the notes say so. Lazy pages (kept by a page server) are not in
 * the dump: noted, no segment. Labels are [heap], [stack], [vdso]; file
 * paths would need files.img and are not given. [vvar] and [vsyscall]
 * are left out, as for live processes.
 */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/procfs.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lz4.h>

#include "errors.h"
#include "mm.pb-c.h"
#include "pagemap.pb-c.h"
#include "pstree.pb-c.h"
#include "core.pb-c.h"
#include "core_notes.h"
#include "source.h"
#include "source_pb.h"
#include "source_util.h"

#define CRIU_IMG_COMMON_MAGIC 0x54564319u
#define CRIU_IMG_SERVICE_MAGIC 0x55105940u
#define CRIU_PAGEMAP_MAGIC 0x56084025u
#define CRIU_MM_MAGIC 0x57492820u
#define CRIU_PSTREE_MAGIC 0x50273030u
#define CRIU_CORE_MAGIC 0x55053847u
/* core_entry.mtype of x86-64 (images/core.proto, enum march). */
#define CRIU_MARCH_X86_64 1u

#define CRIU_PE_PARENT (1u << 0)
#define CRIU_PE_LAZY (1u << 1)
#define CRIU_PE_PRESENT (1u << 2)
#define CRIU_PE_PAYLOAD_ALIGNED (1u << 3)

#define CRIU_VMA_AREA_STACK (1u << 1)
#define CRIU_VMA_AREA_VSYSCALL (1u << 2)
#define CRIU_VMA_AREA_VDSO (1u << 3)
#define CRIU_VMA_AREA_HEAP (1u << 5)
#define CRIU_VMA_FILE_PRIVATE (1u << 6)
#define CRIU_VMA_FILE_SHARED (1u << 7)
#define CRIU_VMA_ANON_SHARED (1u << 8)
#define CRIU_VMA_AREA_SYSVIPC (1u << 10)
#define CRIU_VMA_AREA_VVAR (1u << 12)
#define CRIU_VMA_AREA_MEMFD (1u << 14)

/* Pages in one compressed block, at most (CRIU: 4 MiB regions). */
#define CRIU_MAX_BLOCK_PAGES 1024u
/* Bytes decompressed per pass over a plain entry while spooling. */
#define CRIU_SPOOL_CHUNK ((size_t)1 << 20)

/* Dumps in one incremental chain, at most. */
#define CRIU_MAX_LEVELS 64
/* Largest pagemap, mm or pstree image read (they are read whole). */
#define CRIU_MAX_IMAGE ((size_t)1 << 30)

/* One pagemap entry, checked: pages [start, end) and where they are. */
struct pm_entry {
	uint64_t start, end;
	unsigned flags;            /* CRIU_PE_PRESENT, CRIU_PE_PARENT or neither (lazy) */
	uint32_t block_pages;      /* 0: plain; else pages per LZ4 block */
	bool aligned;              /* PE_PAYLOAD_ALIGNED: at a page boundary */
	size_t sizes_at;           /* its blocks' sizes: level's block_sizes[sizes_at..] */
};

/* One dump of the chain: level 0 is the directory named, 1 its parent... */
struct criu_level {
	char *shown;               /* the directory as messages name it */
	int dirfd;
	int pages_fd;              /* pages-<pages_id>.img, -1 if not needed */
	uint32_t pages_id;
	struct pm_entry *ents;
	size_t count;
	bool wants_parent;         /* some entry is PE_PARENT */
	struct stat st;            /* the directory, for loop detection */
	uint32_t *block_sizes;     /* compressed entries' block sizes, in order */
	size_t block_count, block_cap;
	bool has_aligned;          /* some entry is PE_PAYLOAD_ALIGNED */
};

/* The pages of one pagemap id down its chain of dumps: the process's
 * (pagemap-N.img) or a shared memory object's (pagemap-shmem-ID.img). */
struct criu_chain {
	struct criu_level levels[CRIU_MAX_LEVELS];
	size_t level_count;
	unsigned long id;
	bool shmem;
	struct extent_list pieces; /* resolved: file = level, or -1 for lazy pages */
};

struct criu_source {
	struct criu_chain **chains; /* [0]: the process; then shared memory */
	size_t chain_count;
	struct extent_list data;    /* file: chain * CRIU_MAX_LEVELS + level */
	uint64_t *auxv;             /* mm_saved_auxv, for NT_AUXV; NULL if none */
	size_t auxv_count;
};

/* A CRIU image read whole, walked entry by entry. */
struct criu_image {
	unsigned char *buf;
	size_t len, off;
	char name[64];             /* "pagemap-1.img" */
	const char *dir;           /* the directory as messages name it */
};

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static int image_corrupt(const struct criu_image *img, const char *what)
{
	return error_set(-SNAPFS_ECORRUPT, "source '%s': %s: %s", img->dir, img->name, what);
}

/* Read dirfd/name whole and check its magic. -ENOENT if it is missing. */
static int image_open(int dirfd, const char *dir, const char *name, uint32_t magic,
		      struct criu_image *img)
{
	char shown[4200];
	uint32_t first;
	int rc;

	*img = (struct criu_image){ .dir = dir };
	snprintf(img->name, sizeof(img->name), "%s", name);
	snprintf(shown, sizeof(shown), "%s/%s", dir, name);
	if (faccessat(dirfd, name, F_OK, 0) < 0 && errno == ENOENT)
		return -ENOENT;
	rc = read_whole_file(dirfd, name, shown, CRIU_MAX_IMAGE, &img->buf, &img->len);
	if (rc < 0)
		return error_prefix(rc, "source '%s'", dir);
	if (img->len < 4)
		return image_corrupt(img, "too short for a CRIU image");
	first = le32(img->buf);
	if (first == magic) {
		img->off = 4;  /* CRIU 1.0: no common magic */
		return 0;
	}
	if ((first != CRIU_IMG_COMMON_MAGIC && first != CRIU_IMG_SERVICE_MAGIC) ||
	    img->len < 8 || le32(img->buf + 4) != magic)
		return image_corrupt(img, "not the CRIU image it should be (wrong magic)");
	img->off = 8;
	return 0;
}

static void image_close(struct criu_image *img)
{
	free(img->buf);
	img->buf = NULL;
}

/* The next entry: 1 and its bytes, 0 at the end, or an error. */
static int image_next(struct criu_image *img, const uint8_t **ret_data, size_t *ret_len)
{
	uint32_t size;

	if (img->off == img->len)
		return 0;
	if (img->len - img->off < 4)
		return image_corrupt(img, "an entry's length is cut short");
	size = le32(img->buf + img->off);
	if (size > img->len - img->off - 4)
		return image_corrupt(img, "an entry runs past the end of the file");
	*ret_data = img->buf + img->off + 4;
	*ret_len = size;
	img->off += 4 + (size_t)size;
	return 1;
}

static int push_entry(struct criu_level *lv, size_t *cap, const struct pm_entry *e)
{
	if (lv->count == *cap) {
		size_t n = *cap ? *cap * 2 : 64;
		struct pm_entry *bigger = realloc(lv->ents, n * sizeof(*bigger));

		if (!bigger)
			return -ENOMEM;
		lv->ents = bigger;
		*cap = n;
	}
	lv->ents[lv->count++] = *e;
	return 0;
}

/* Refuse a pagemap message with fields this reader does not know: they
 * could change where the pages are. */
static int check_known(struct criu_image *img, const ProtobufCMessage *m, const char *what,
		       uint64_t at)
{
	char why[200];

	if (m->n_unknown_fields == 0)
		return 0;
	snprintf(why, sizeof(why), "%s at 0x%llx has field %u, which this snapfs does not "
		 "know (a newer CRIU wrote it?): it may change where the pages are, so the "
		 "dump is not read", what, (unsigned long long)at, m->unknown_fields[0].tag);
	return error_set(-EINVAL, "source '%s': %s: %s", img->dir, img->name, why);
}

static int push_sizes(struct criu_level *lv, const uint32_t *sizes, size_t n)
{
	if (n > lv->block_cap - lv->block_count) {
		size_t cap = lv->block_cap ? lv->block_cap : 64;
		uint32_t *bigger;

		while (cap - lv->block_count < n)
			cap *= 2;
		bigger = realloc(lv->block_sizes, cap * sizeof(*bigger));
		if (!bigger)
			return -ENOMEM;
		lv->block_sizes = bigger;
		lv->block_cap = cap;
	}
	memcpy(lv->block_sizes + lv->block_count, sizes, n * sizeof(*sizes));
	lv->block_count += n;
	return 0;
}

/* The blocks of a compressed entry e of nr pages: checked, their sizes
 * kept; *ret_payload is their bytes in the pages image. */
static int add_blocks(struct criu_image *img, struct criu_level *lv, struct pm_entry *e,
		      uint64_t nr, const PagemapBlocks *b, uint64_t *ret_payload)
{
	uint32_t per = b->pages_per_block;
	uint64_t sum = 0, blocks;
	char what[200];
	int rc;

	rc = check_known(img, &b->base, "the blocks of the entry", e->start);
	if (rc < 0)
		return rc;
	if (!(e->flags & CRIU_PE_PRESENT)) {
		snprintf(what, sizeof(what), "entry at 0x%llx has compressed blocks but no pages "
			 "in this dump", (unsigned long long)e->start);
		return image_corrupt(img, what);
	}
	if (per == 0 || per > CRIU_MAX_BLOCK_PAGES) {
		snprintf(what, sizeof(what), "entry at 0x%llx: %u pages per block (1 to %u "
			 "allowed)", (unsigned long long)e->start, per, CRIU_MAX_BLOCK_PAGES);
		return image_corrupt(img, what);
	}
	blocks = (nr + per - 1) / per;
	if (b->n_block_sizes != blocks) {
		snprintf(what, sizeof(what), "entry at 0x%llx of %llu pages in blocks of %u: "
			 "%zu block sizes, wanted %llu", (unsigned long long)e->start,
			 (unsigned long long)nr, per, b->n_block_sizes, (unsigned long long)blocks);
		return image_corrupt(img, what);
	}
	for (size_t i = 0; i < b->n_block_sizes; i++) {
		uint64_t pages = nr - i * per < per ? nr - i * per : per;

		/* 0: zeros; the pages' size: raw; less: LZ4 (criu/compression.c). */
		if (b->block_sizes[i] > pages * SNAPFS_PAGE_SIZE) {
			snprintf(what, sizeof(what), "entry at 0x%llx: block %zu of %u bytes is "
				 "larger than its %llu pages", (unsigned long long)e->start, i,
				 b->block_sizes[i], (unsigned long long)pages);
			return image_corrupt(img, what);
		}
		sum += b->block_sizes[i];
	}
	if (b->total_payload_size != sum) {
		snprintf(what, sizeof(what), "entry at 0x%llx: total_payload_size %llu, but its "
			 "blocks add up to %llu", (unsigned long long)e->start,
			 (unsigned long long)b->total_payload_size, (unsigned long long)sum);
		return image_corrupt(img, what);
	}
	e->block_pages = per;
	e->sizes_at = lv->block_count;
	*ret_payload = sum;
	return push_sizes(lv, b->block_sizes, b->n_block_sizes);
}

/* Check one decoded pagemap entry and add it to lv; *present_bytes grows
 * by the bytes its pages take in the pages image. */
static int add_pagemap_entry(struct criu_image *img, struct criu_level *lv, size_t *cap,
			     const PagemapEntry *pe, uint64_t *present_bytes)
{
	uint64_t nr = pe->has_nr_pages ? pe->nr_pages : pe->compat_nr_pages, payload = 0;
	struct pm_entry e = { .start = pe->vaddr };
	char what[200];
	int rc;

	rc = check_known(img, &pe->base, "entry", pe->vaddr);
	if (rc < 0)
		return rc;
	e.flags = pe->has_flags ? pe->flags : 0;
	if (e.flags & ~(CRIU_PE_PARENT | CRIU_PE_LAZY | CRIU_PE_PRESENT | CRIU_PE_PAYLOAD_ALIGNED))
		return error_set(-EINVAL, "source '%s': %s: entry at 0x%llx has flags 0x%x, "
				 "which this snapfs does not know (it knows PE_PARENT 1, PE_LAZY "
				 "2, PE_PRESENT 4, PE_PAYLOAD_ALIGNED 8; a newer CRIU wrote it?): "
				 "the dump is not read", img->dir, img->name,
				 (unsigned long long)pe->vaddr, e.flags);
	if ((e.flags & CRIU_PE_PAYLOAD_ALIGNED) && !(e.flags & CRIU_PE_PRESENT)) {
		snprintf(what, sizeof(what), "entry at 0x%llx is PE_PAYLOAD_ALIGNED but has no "
			 "pages in this dump", (unsigned long long)pe->vaddr);
		return image_corrupt(img, what);
	}
	e.aligned = (e.flags & CRIU_PE_PAYLOAD_ALIGNED) != 0;
	if (pe->has_in_parent && pe->in_parent)
		e.flags |= CRIU_PE_PARENT;
	else if (!pe->has_flags)
		e.flags = CRIU_PE_PRESENT;
	e.flags &= CRIU_PE_PARENT | CRIU_PE_PRESENT;
	if (nr == 0)
		return 0;
	if (e.start % SNAPFS_PAGE_SIZE || e.start > SOURCE_MAX_OFFSET ||
	    nr > (SOURCE_MAX_OFFSET - e.start) / SNAPFS_PAGE_SIZE) {
		snprintf(what, sizeof(what), "entry at 0x%llx of %llu pages: not a page-aligned "
			 "range of the address space", (unsigned long long)e.start,
			 (unsigned long long)nr);
		return image_corrupt(img, what);
	}
	e.end = e.start + nr * SNAPFS_PAGE_SIZE;
	if (e.flags == (CRIU_PE_PARENT | CRIU_PE_PRESENT)) {
		snprintf(what, sizeof(what), "entry at 0x%llx is both in the parent and present",
			 (unsigned long long)e.start);
		return image_corrupt(img, what);
	}
	if (lv->count && e.start < lv->ents[lv->count - 1].end) {
		snprintf(what, sizeof(what), "entry at 0x%llx is out of order or overlaps the "
			 "one before", (unsigned long long)e.start);
		return image_corrupt(img, what);
	}
	if (pe->blocks) {
		rc = add_blocks(img, lv, &e, nr, pe->blocks, &payload);
		if (rc < 0)
			return rc;
	} else if (e.flags & CRIU_PE_PRESENT) {
		payload = nr * SNAPFS_PAGE_SIZE;
	}
	if (e.aligned) {
		*present_bytes = (*present_bytes + SNAPFS_PAGE_SIZE - 1) / SNAPFS_PAGE_SIZE *
				 SNAPFS_PAGE_SIZE;
		lv->has_aligned = true;
	}
	*present_bytes += payload;
	if (e.flags & CRIU_PE_PARENT)
		lv->wants_parent = true;
	return push_entry(lv, cap, &e);
}

/* Read the chain's pagemap image in a level: its head and checked
 * entries. */
static int read_pagemap(const struct criu_chain *ch, struct criu_level *lv,
			uint64_t *ret_present)
{
	struct criu_image img;
	struct pb_budget budget;
	const uint8_t *data;
	char name[64];
	size_t len, cap = 0;
	uint64_t present = 0;
	int rc;

	snprintf(name, sizeof(name), ch->shmem ? "pagemap-shmem-%lu.img" : "pagemap-%lu.img",
		 ch->id);
	rc = image_open(lv->dirfd, lv->shown, name, CRIU_PAGEMAP_MAGIC, &img);
	if (rc == -ENOENT)
		rc = error_set(-SNAPFS_ECORRUPT, "source '%s': %s: missing", lv->shown, name);
	if (rc < 0)
		goto out_close;
	pb_budget_init(&budget, pb_budget_for(img.len));
	rc = image_next(&img, &data, &len);
	if (rc == 0)
		rc = image_corrupt(&img, "no pagemap head");
	if (rc < 0)
		goto out_close;
	{
		PagemapHead *head = pagemap_head__unpack(&budget.alloc, len, data);

		if (!head) {
			rc = image_corrupt(&img, "the pagemap head does not decode");
			goto out_close;
		}
		lv->pages_id = head->pages_id;
		rc = check_known(&img, &head->base, "the pagemap head", 0);
		pagemap_head__free_unpacked(head, &budget.alloc);
		if (rc < 0)
			goto out_close;
	}
	while ((rc = image_next(&img, &data, &len)) > 0) {
		PagemapEntry *pe = pagemap_entry__unpack(&budget.alloc, len, data);

		if (!pe) {
			rc = image_corrupt(&img, "an entry does not decode");
			goto out_close;
		}
		rc = add_pagemap_entry(&img, lv, &cap, pe, &present);
		pagemap_entry__free_unpacked(pe, &budget.alloc);
		if (rc < 0)
			goto out_close;
	}
	*ret_present = present;
out_close:
	image_close(&img);
	return rc;
}

/* Open pages-<pages_id>.img of a level when it has present pages, and
 * check that it holds them all (present_bytes: what they take there). */
static int open_pages(struct criu_level *lv, uint64_t present_bytes)
{
	char name[64], shown[4300];
	struct stat st;
	int rc;

	if (present_bytes == 0)
		return 0;
	snprintf(name, sizeof(name), "pages-%u.img", lv->pages_id);
	snprintf(shown, sizeof(shown), "source '%s': %s", lv->shown, name);
	rc = source_file_open(lv->dirfd, name, shown, false, &lv->pages_fd, &st);
	if (rc < 0)
		return rc == -ENOENT || rc == -ENODEV ? -SNAPFS_ECORRUPT : rc;
	if ((uint64_t)st.st_size < present_bytes)
		return error_set(-SNAPFS_ECORRUPT, "source '%s': %s: holds %llu bytes, but "
				 "the pagemap's pages take %llu there: truncated?", lv->shown,
				 name, (unsigned long long)st.st_size,
				 (unsigned long long)present_bytes);
	posix_fadvise(lv->pages_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	return 0;
}

/* Write the non-zero pages of buf (len bytes, whole pages) to fd at off. */
static int spool_write(const struct criu_level *lv, int fd, const unsigned char *buf,
		       size_t len, uint64_t off)
{
	static const unsigned char zero[SNAPFS_PAGE_SIZE];

	for (size_t at = 0; at < len; at += SNAPFS_PAGE_SIZE) {
		if (memcmp(buf + at, zero, SNAPFS_PAGE_SIZE) == 0)
			continue;
		errno = 0;
		if (pwrite(fd, buf + at, SNAPFS_PAGE_SIZE, (off_t)(off + at)) != SNAPFS_PAGE_SIZE)
			return error_set(errno ? -errno : -EIO, "source '%s': decompressing: "
					 "temporary file in '%s': %s", lv->shown,
					 source_spool_dir(), errno_text(errno ? errno : EIO));
	}
	return 0;
}

static int spool_read(const struct criu_level *lv, unsigned char *buf, size_t len,
		      uint64_t off)
{
	ssize_t n = pread_full(lv->pages_fd, buf, len, off);

	if (n < 0)
		return error_set((int)n, "source '%s': pages-%u.img: read at offset 0x%llx: %s",
				 lv->shown, lv->pages_id, (unsigned long long)off,
				 errno_text((int)-n));
	if ((size_t)n < len)
		return error_set(-SNAPFS_ECORRUPT, "source '%s': pages-%u.img: ends inside a "
				 "block (offset 0x%llx)", lv->shown, lv->pages_id,
				 (unsigned long long)off);
	return 0;
}

/* The pages of entry e (compressed) from *in_off of the pages image to
 * out_off of fd, block by block. */
static int spool_blocks(const struct criu_level *lv, const struct pm_entry *e, int fd,
			unsigned char *in, unsigned char *out, uint64_t *in_off, uint64_t out_off)
{
	uint64_t nr = (e->end - e->start) / SNAPFS_PAGE_SIZE;

	for (uint64_t b = 0, page = 0; page < nr; b++, page += e->block_pages) {
		uint32_t size = lv->block_sizes[e->sizes_at + b];
		uint64_t pages = nr - page < e->block_pages ? nr - page : e->block_pages;
		int want = (int)(pages * SNAPFS_PAGE_SIZE), got, rc;

		if (size == 0)   /* zeros: the spool file is sparse */
			continue;
		rc = spool_read(lv, in, size, *in_off);
		if (rc < 0)
			return rc;
		*in_off += size;
		if (size == (uint32_t)want) {   /* stored raw */
			rc = spool_write(lv, fd, in, (size_t)want, out_off + page * SNAPFS_PAGE_SIZE);
			if (rc < 0)
				return rc;
			continue;
		}
		got = LZ4_decompress_safe((const char *)in, (char *)out, (int)size, want);
		if (got != want)
			return error_set(-SNAPFS_ECORRUPT, "source '%s': pages-%u.img: block %llu "
					 "of the entry at 0x%llx (%u bytes at offset 0x%llx) %s",
					 lv->shown, lv->pages_id, (unsigned long long)b,
					 (unsigned long long)e->start, size,
					 (unsigned long long)(*in_off - size), got < 0 ?
					 "is not valid LZ4 data of its pages' size" :
					 "decompresses to fewer bytes than its pages");
		rc = spool_write(lv, fd, out, (size_t)want, out_off + page * SNAPFS_PAGE_SIZE);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* The pages of a plain entry e from *in_off to out_off of fd. */
static int spool_plain(const struct criu_level *lv, const struct pm_entry *e, int fd,
		       unsigned char *buf, uint64_t *in_off, uint64_t out_off)
{
	for (uint64_t at = 0, len = e->end - e->start; at < len;) {
		size_t n = len - at < CRIU_SPOOL_CHUNK ? (size_t)(len - at) : CRIU_SPOOL_CHUNK;
		int rc = spool_read(lv, buf, n, *in_off);

		if (rc == 0)
			rc = spool_write(lv, fd, buf, n, out_off + at);
		if (rc < 0)
			return rc;
		*in_off += n;
		at += n;
	}
	return 0;
}

/* A level with compressed entries: its pages decompressed into an unnamed
 * sparse file laid out as a plain pages image, which then stands in for
 * pages-<id>.img. */
static int decompress_level(struct criu_level *lv)
{
	size_t out_len = CRIU_MAX_BLOCK_PAGES * SNAPFS_PAGE_SIZE;
	unsigned char *in, *out;
	uint64_t in_off = 0, out_off = 0;
	int fd, rc = 0;

	if (out_len < CRIU_SPOOL_CHUNK)
		out_len = CRIU_SPOOL_CHUNK;
	rc = source_spool_file(&fd);
	if (rc < 0)
		return error_prefix(rc, "source '%s': decompressing", lv->shown);
	in = malloc((size_t)LZ4_compressBound((int)(CRIU_MAX_BLOCK_PAGES * SNAPFS_PAGE_SIZE)));
	out = malloc(out_len);
	if (!in || !out) {
		rc = -ENOMEM;
		goto out_free;
	}
	for (size_t i = 0; i < lv->count && rc == 0; i++) {
		const struct pm_entry *e = &lv->ents[i];

		if (!(e->flags & CRIU_PE_PRESENT))
			continue;
		if (e->aligned)
			in_off = (in_off + SNAPFS_PAGE_SIZE - 1) / SNAPFS_PAGE_SIZE * SNAPFS_PAGE_SIZE;
		if (e->block_pages)
			rc = spool_blocks(lv, e, fd, in, out, &in_off, out_off);
		else
			rc = spool_plain(lv, e, fd, out, &in_off, out_off);
		out_off += e->end - e->start;
	}
	if (rc == 0 && ftruncate(fd, (off_t)out_off) < 0)
		rc = error_set(-errno, "source '%s': decompressing: temporary file in '%s': %s",
			       lv->shown, source_spool_dir(), errno_text(errno));
	if (rc == 0) {
		close(lv->pages_fd);
		lv->pages_fd = fd;
		fd = -1;
	}
out_free:
	if (fd >= 0)
		close(fd);
	free(in);
	free(out);
	return rc;
}

/* Open the level after level k (its parent dump), refusing loops. */
static int open_parent(struct criu_chain *ch, size_t k)
{
	struct criu_level *lv = &ch->levels[k], *up;

	if (k + 1 >= CRIU_MAX_LEVELS)
		return error_set(-SNAPFS_ECORRUPT, "source '%s': the chain of parent dumps is "
				 "longer than %d", ch->levels[0].shown, CRIU_MAX_LEVELS);
	up = &ch->levels[k + 1];
	*up = (struct criu_level){ .dirfd = -1, .pages_fd = -1 };
	ch->level_count = k + 2;
	if (asprintf(&up->shown, "%s/parent", lv->shown) < 0) {
		up->shown = NULL;
		return -ENOMEM;
	}
	up->dirfd = openat(lv->dirfd, "parent", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (up->dirfd < 0)
		return error_set(errno == ENOENT ? -SNAPFS_ECORRUPT : -errno,
				 "source '%s': pages are in the parent dump, but '%s': %s",
				 ch->levels[0].shown, up->shown, errno_text(errno));
	if (fstat(up->dirfd, &up->st) < 0)
		return error_set(-errno, "source '%s': %s", up->shown, errno_text(errno));
	for (size_t i = 0; i <= k; i++)
		if (ch->levels[i].st.st_dev == up->st.st_dev &&
		    ch->levels[i].st.st_ino == up->st.st_ino)
			return error_set(-SNAPFS_ECORRUPT, "source '%s': the chain of parent "
					 "dumps loops: '%s' is '%s'", ch->levels[0].shown,
					 up->shown, ch->levels[i].shown);
	return 0;
}

/*
 * The pieces of level k given its parent's resolved pieces `below`:
 * present entries are level k's own pages, lazy ones have no data (file
 * -1), and PE_PARENT ones are cut out of `below`, which must cover them.
 */
static int resolve_level(const struct criu_chain *ch, size_t k,
			 const struct extent_list *below, struct extent_list *out)
{
	const struct criu_level *lv = &ch->levels[k];
	uint64_t pages_off = 0;
	int rc;

	for (size_t i = 0; i < lv->count; i++) {
		const struct pm_entry *e = &lv->ents[i];
		uint64_t at = e->start;

		if (e->flags & CRIU_PE_PRESENT) {
			rc = extent_list_push(out, e->start, e->end, (int)k, pages_off);
			pages_off += e->end - e->start;
			if (rc < 0)
				return rc;
			continue;
		}
		if (!(e->flags & CRIU_PE_PARENT)) {
			rc = extent_list_push(out, e->start, e->end, -1, 0);
			if (rc < 0)
				return rc;
			continue;
		}
		for (size_t j = below ? extent_list_find(below, at) : 0;
		     below && j < below->count && below->ext[j].start < e->end && at < e->end; j++) {
			const struct extent *p = &below->ext[j];
			uint64_t end = p->end < e->end ? p->end : e->end;

			if (p->start > at)
				break;
			rc = extent_list_push(out, at, end, p->file,
					      p->file < 0 ? 0 : p->file_off + (at - p->start));
			if (rc < 0)
				return rc;
			at = end;
		}
		if (at < e->end)
			return error_set(-SNAPFS_ECORRUPT, "source '%s': pagemap of '%s' has "
					 "pages 0x%llx-0x%llx in the parent dump, which lacks them",
					 ch->levels[0].shown, lv->shown, (unsigned long long)at,
					 (unsigned long long)e->end);
	}
	return 0;
}

/* Load a chain from its level 0 (already open) down as far as PE_PARENT
 * entries lead, then resolve it bottom-up into ch->pieces. */
static int load_chain(struct criu_chain *ch)
{
	struct extent_list below = { 0 }, here = { 0 };
	size_t k = 0;
	int rc;

	for (;;) {
		struct criu_level *lv = &ch->levels[k];
		uint64_t present = 0;

		rc = read_pagemap(ch, lv, &present);
		if (rc < 0)
			return rc;
		rc = open_pages(lv, present);
		if (rc == 0 && (lv->block_count || lv->has_aligned))
			rc = decompress_level(lv);
		if (rc < 0)
			return rc;
		if (!lv->wants_parent)
			break;
		rc = open_parent(ch, k);
		if (rc < 0)
			return rc;
		k++;
	}
	for (size_t level = ch->level_count; level-- > 0;) {
		rc = resolve_level(ch, level, level + 1 < ch->level_count ? &below : NULL, &here);
		extent_list_release(&below);
		below = here;
		here = (struct extent_list){ 0 };
		if (rc < 0)
			goto out_release;
	}
	ch->pieces = below;
	below = (struct extent_list){ 0 };
out_release:
	extent_list_release(&below);
	return rc;
}

static void chain_free(struct criu_chain *ch)
{
	if (!ch)
		return;
	for (size_t i = 0; i < ch->level_count; i++) {
		struct criu_level *lv = &ch->levels[i];

		if (lv->dirfd >= 0)
			close(lv->dirfd);
		if (lv->pages_fd >= 0)
			close(lv->pages_fd);
		free(lv->ents);
		free(lv->block_sizes);
		free(lv->shown);
	}
	extent_list_release(&ch->pieces);
	free(ch);
}

/* A new chain for pagemap id in directory dir, appended to cs->chains
 * (which then owns it), its level 0 open but nothing read. */
static int chain_new(struct criu_source *cs, int dirfd, const char *dir, unsigned long id,
		     bool shmem, struct criu_chain **ret_chain)
{
	struct criu_chain **bigger, *ch;

	if (cs->chain_count >= INT_MAX / CRIU_MAX_LEVELS - 1)
		return error_set(-SNAPFS_ECORRUPT, "source '%s': too many shared memory objects",
				 dir);
	bigger = realloc(cs->chains, (cs->chain_count + 1) * sizeof(*bigger));
	if (!bigger)
		return -ENOMEM;
	cs->chains = bigger;
	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	cs->chains[cs->chain_count++] = ch;
	ch->id = id;
	ch->shmem = shmem;
	ch->level_count = 1;
	ch->levels[0] = (struct criu_level){ .dirfd = -1, .pages_fd = -1 };
	ch->levels[0].shown = strdup(dir);
	if (!ch->levels[0].shown)
		return -ENOMEM;
	ch->levels[0].dirfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	if (ch->levels[0].dirfd < 0 || fstat(ch->levels[0].dirfd, &ch->levels[0].st) < 0)
		return error_set(-errno, "source '%s': %s", dir, errno_text(errno));
	*ret_chain = ch;
	return 0;
}

/* The process's pages: chain 0's pieces into cs->data, lazy ones noted. */
static int take_process_pages(struct criu_source *cs, struct note_list *notes)
{
	const struct extent_list *pieces = &cs->chains[0]->pieces;
	int rc;

	for (size_t i = 0; i < pieces->count; i++) {
		const struct extent *p = &pieces->ext[i];

		if (p->file < 0)
			rc = note_add(notes, "skipped: lazy pages 0x%llx-0x%llx (not in the dump)",
				      (unsigned long long)p->start, (unsigned long long)p->end);
		else
			rc = extent_list_push(&cs->data, p->start, p->end, p->file, p->file_off);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* The root task's id from pstree.img (its first entry). */
static int root_pid(int dirfd, const char *dir, unsigned long *ret_id)
{
	struct criu_image img;
	struct pb_budget budget;
	const uint8_t *data;
	PstreeEntry *pe;
	size_t len;
	int rc;

	rc = image_open(dirfd, dir, "pstree.img", CRIU_PSTREE_MAGIC, &img);
	if (rc == -ENOENT)
		return error_set(-SNAPFS_ECORRUPT, "source '%s': several processes (pagemap-*.img) and "
				 "no pstree.img to tell the root one", dir);
	if (rc < 0)
		goto out_close;
	rc = image_next(&img, &data, &len);
	if (rc == 0)
		rc = image_corrupt(&img, "no process in it");
	if (rc < 0)
		goto out_close;
	pb_budget_init(&budget, pb_budget_for(len));
	pe = pstree_entry__unpack(&budget.alloc, len, data);
	if (!pe) {
		rc = image_corrupt(&img, "the first entry does not decode");
		goto out_close;
	}
	*ret_id = pe->pid;
	pstree_entry__free_unpacked(pe, &budget.alloc);
	rc = 0;
out_close:
	image_close(&img);
	return rc;
}

/* Which process to save: the only pagemap-N.img, or the root task's. */
static int choose_process(int dirfd, const char *dir, unsigned long *ret_id)
{
	unsigned long id = 0, n;
	size_t count = 0;
	struct dirent *e;
	char name[64];
	DIR *d;
	int fd;

	fd = dup(dirfd);
	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return error_set(-errno, "source '%s': %s", dir, errno_text(errno));
	}
	while ((e = readdir(d))) {
		char *end;

		if (strncmp(e->d_name, "pagemap-", 8) != 0 || e->d_name[8] < '0' ||
		    e->d_name[8] > '9')
			continue;
		errno = 0;
		n = strtoul(e->d_name + 8, &end, 10);
		if (errno || strcmp(end, ".img") != 0 || n > UINT32_MAX)
			continue;
		id = n;
		count++;
	}
	closedir(d);
	if (count == 0)
		return error_set(-SNAPFS_ECORRUPT, "source '%s': no pagemap-N.img of a process", dir);
	if (count > 1) {
		int rc = root_pid(dirfd, dir, &id);

		if (rc < 0)
			return rc;
		snprintf(name, sizeof(name), "pagemap-%lu.img", id);
		if (faccessat(dirfd, name, F_OK, 0) < 0)
			return error_set(-SNAPFS_ECORRUPT, "source '%s': the root process %lu "
					 "(pstree.img) has no %s", dir, id, name);
	}
	*ret_id = id;
	return 0;
}

static int vma_cmp(const void *a, const void *b)
{
	const VmaEntry *x = *(VmaEntry *const *)a, *y = *(VmaEntry *const *)b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Name and kind of a VMA; false if it is left out (and why in *ret_why). */
static bool vma_kept(const VmaEntry *v, const char **ret_kind, const char **ret_label,
		     const char **ret_why)
{
	*ret_kind = "anonymous";
	*ret_label = NULL;
	if (v->status & CRIU_VMA_AREA_VVAR) {
		*ret_why = "[vvar] (not in the dump)";
		return false;
	}
	if (v->status & CRIU_VMA_AREA_VSYSCALL) {
		*ret_why = "[vsyscall] (not in the dump)";
		return false;
	}
	if (v->end > SOURCE_MAX_OFFSET) {
		*ret_why = "(address too high to keep)";
		return false;
	}
	if (v->status & (CRIU_VMA_FILE_PRIVATE | CRIU_VMA_FILE_SHARED | CRIU_VMA_AREA_MEMFD))
		*ret_kind = "mapped";
	if (v->status & CRIU_VMA_AREA_HEAP)
		*ret_label = "[heap]";
	else if (v->status & CRIU_VMA_AREA_STACK)
		*ret_label = "[stack]";
	else if (v->status & CRIU_VMA_AREA_VDSO)
		*ret_label = "[vdso]";
	return true;
}

/* The pages of the shared memory object behind VMA v (pagemap-shmem-ID.img
 * and its parents), at their addresses in v, appended to *shared. */
static int shared_pages(struct criu_source *cs, const VmaEntry *v, struct extent_list *shared,
			struct note_list *notes)
{
	const struct criu_level *top = &cs->chains[0]->levels[0];
	struct criu_chain *ch = NULL;
	uint64_t lo = v->pgoff, len = v->end - v->start;
	size_t c;
	char name[64];
	int rc;

	for (c = 1; c < cs->chain_count; c++)
		if (cs->chains[c]->id == v->shmid) {
			ch = cs->chains[c];
			break;
		}
	if (!ch) {
		snprintf(name, sizeof(name), "pagemap-shmem-%llu.img", (unsigned long long)v->shmid);
		if (faccessat(top->dirfd, name, F_OK, 0) < 0)
			return note_add(notes, "not saved: shared memory 0x%llx-0x%llx (no %s)",
					(unsigned long long)v->start, (unsigned long long)v->end,
					name);
		rc = chain_new(cs, top->dirfd, top->shown, (unsigned long)v->shmid, true, &ch);
		if (rc < 0)
			return rc;
		c = cs->chain_count - 1;
		rc = load_chain(ch);
		if (rc < 0)
			return rc;
	}
	if (lo > UINT64_MAX - len || lo % SNAPFS_PAGE_SIZE)
		return error_set(-SNAPFS_ECORRUPT, "source '%s': VMA 0x%llx-0x%llx: shared memory "
				 "offset 0x%llx is not a page-aligned offset", top->shown,
				 (unsigned long long)v->start, (unsigned long long)v->end,
				 (unsigned long long)lo);
	for (size_t i = extent_list_find(&ch->pieces, lo);
	     i < ch->pieces.count && ch->pieces.ext[i].start < lo + len; i++) {
		const struct extent *p = &ch->pieces.ext[i];
		uint64_t s = p->start > lo ? p->start : lo;
		uint64_t e = p->end < lo + len ? p->end : lo + len;

		if (p->file < 0)
			continue;
		rc = extent_list_push(shared, v->start + (s - lo), v->start + (e - lo),
				      (int)c * CRIU_MAX_LEVELS + p->file,
				      p->file_off + (s - p->start));
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Every dumped page must lie in a VMA (vmas sorted, data sorted). */
static int check_inside_vmas(const struct criu_source *cs, const MmEntry *mm,
			     const char *mm_name)
{
	size_t k = 0;

	for (size_t i = 0; i < cs->data.count; i++) {
		const struct extent *p = &cs->data.ext[i];

		for (uint64_t at = p->start; at < p->end;) {
			while (k < mm->n_vmas && mm->vmas[k]->end <= at)
				k++;
			if (k == mm->n_vmas || mm->vmas[k]->start > at)
				return error_set(-SNAPFS_ECORRUPT, "source '%s': pages at 0x%llx "
						 "lie outside every VMA of %s",
						 cs->chains[0]->levels[0].shown, (unsigned long long)at,
						 mm_name);
			at = mm->vmas[k]->end;
		}
	}
	return 0;
}

/*
 * The usage set from mm-<id>.img: one segment per VMA kept. Every dumped
 * page must lie in some VMA; pages in VMAs left out are dropped.
 */
static int segments_from_mm(struct source *src, struct criu_source *cs, MmEntry *mm,
			    const char *mm_name, struct note_list *notes)
{
	struct extent_list kept = { 0 }, shared = { 0 };
	uint64_t prev_end = 0, at;
	bool file_backed = false;
	int rc = 0;

	/* qsort() wants a real array even for zero entries (a message
	 * with no VMAs has none: the fuzzer found it). */
	if (mm->n_vmas > 1)
		qsort(mm->vmas, mm->n_vmas, sizeof(*mm->vmas), vma_cmp);
	rc = check_inside_vmas(cs, mm, mm_name);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const VmaEntry *v = mm->vmas[i];
		const char *kind, *label, *why = NULL;

		if (v->start >= v->end || v->start % SNAPFS_PAGE_SIZE || v->end % SNAPFS_PAGE_SIZE ||
		    v->start < prev_end) {
			rc = error_set(-SNAPFS_ECORRUPT, "source '%s': %s: VMA 0x%llx-0x%llx "
				       "is not a page-aligned range apart from the others",
				       cs->chains[0]->levels[0].shown, mm_name,
				       (unsigned long long)v->start, (unsigned long long)v->end);
			goto out_release;
		}
		prev_end = v->end;
		if (!vma_kept(v, &kind, &label, &why)) {
			rc = note_add(notes, "skipped: 0x%llx-0x%llx %s", (unsigned long long)v->start,
				      (unsigned long long)v->end, why);
			if (rc < 0)
				goto out_release;
			continue;
		}
		if (v->status & (CRIU_VMA_ANON_SHARED | CRIU_VMA_AREA_SYSVIPC | CRIU_VMA_AREA_MEMFD)) {
			rc = shared_pages(cs, v, &shared, notes);
			if (rc < 0)
				goto out_release;
		} else if (v->status & (CRIU_VMA_FILE_PRIVATE | CRIU_VMA_FILE_SHARED)) {
			file_backed = true;
		}
		rc = source_add_segment(src, v->start, v->end, kind, 0, true, label);
		if (rc == 0)
			rc = extent_list_push(&kept, v->start, v->end, 0, 0);
		if (rc < 0)
			goto out_release;
	}
	/* Shared memory pages join the process's own; none may be both. */
	for (size_t i = 0; i < shared.count; i++) {
		const struct extent *p = &shared.ext[i];

		rc = extent_list_push(&cs->data, p->start, p->end, p->file, p->file_off);
		if (rc < 0)
			goto out_release;
	}
	if (!extent_list_sort(&cs->data, &at)) {
		rc = error_set(-SNAPFS_ECORRUPT, "source '%s': pages at 0x%llx are both in the "
			       "process's pagemap and in shared memory",
			       cs->chains[0]->levels[0].shown, (unsigned long long)at);
		goto out_release;
	}
	if (file_backed) {
		rc = note_add(notes, "pages of mapped files that CRIU did not dump (unchanged "
			      "from the file) read as zeros");
		if (rc < 0)
			goto out_release;
	}
	/* Keep only the dumped bytes inside kept VMAs. */
	{
		struct extent_list clipped = { 0 };

		for (size_t i = 0; i < cs->data.count; i++) {
			const struct extent *p = &cs->data.ext[i];

			for (size_t k = extent_list_find(&kept, p->start);
			     k < kept.count && kept.ext[k].start < p->end; k++) {
				uint64_t s = kept.ext[k].start > p->start ? kept.ext[k].start : p->start;
				uint64_t e = kept.ext[k].end < p->end ? kept.ext[k].end : p->end;

				rc = extent_list_push(&clipped, s, e, p->file,
						      p->file_off + (s - p->start));
				if (rc < 0) {
					extent_list_release(&clipped);
					goto out_release;
				}
			}
		}
		extent_list_release(&cs->data);
		cs->data = clipped;
	}
out_release:
	extent_list_release(&kept);
	extent_list_release(&shared);
	return rc;
}

/* The usage set without mm-<id>.img: the dumped ranges themselves. */
static int segments_from_data(struct source *src, struct criu_source *cs)
{
	uint64_t start = 0, end = 0;
	int rc;

	for (size_t i = 0; i < cs->data.count; i++) {
		const struct extent *p = &cs->data.ext[i];

		if (end && p->start <= end) {
			end = p->end > end ? p->end : end;
			continue;
		}
		if (end) {
			rc = source_add_segment(src, start, end, "anonymous", 0, true, NULL);
			if (rc < 0)
				return rc;
		}
		start = p->start;
		end = p->end;
	}
	if (end)
		return source_add_segment(src, start, end, "anonymous", 0, true, NULL);
	return 0;
}

static int read_segments(struct source *src, struct criu_source *cs, unsigned long id,
			 struct note_list *notes)
{
	struct criu_level *top = &cs->chains[0]->levels[0];
	struct criu_image img;
	struct pb_budget budget;
	const uint8_t *data;
	char name[64];
	MmEntry *mm;
	size_t len;
	int rc;

	snprintf(name, sizeof(name), "mm-%lu.img", id);
	rc = image_open(top->dirfd, top->shown, name, CRIU_MM_MAGIC, &img);
	if (rc == -ENOENT) {
		rc = note_add(notes, "no %s: the segments are the dumped page ranges", name);
		return rc < 0 ? rc : segments_from_data(src, cs);
	}
	if (rc < 0)
		goto out_close;
	rc = image_next(&img, &data, &len);
	if (rc == 0)
		rc = image_corrupt(&img, "no mm entry");
	if (rc < 0)
		goto out_close;
	pb_budget_init(&budget, pb_budget_for(len));
	mm = mm_entry__unpack(&budget.alloc, len, data);
	if (!mm) {
		rc = image_corrupt(&img, "the mm entry does not decode");
		goto out_close;
	}
	rc = segments_from_mm(src, cs, mm, name, notes);
	if (rc == 0 && mm->n_mm_saved_auxv) {
		cs->auxv = malloc(mm->n_mm_saved_auxv * sizeof(*cs->auxv));
		if (!cs->auxv)
			rc = -ENOMEM;
		else
			memcpy(cs->auxv, mm->mm_saved_auxv, mm->n_mm_saved_auxv * sizeof(*cs->auxv));
		cs->auxv_count = cs->auxv ? mm->n_mm_saved_auxv : 0;
	}
	mm_entry__free_unpacked(mm, &budget.alloc);
out_close:
	image_close(&img);
	return rc;
}

static int criu_read_piece(void *ctx, const struct extent *ext, unsigned char *buf,
			   size_t len, uint64_t file_off)
{
	struct source *src = ctx;
	struct criu_source *cs = src->impl;
	const struct criu_level *lv =
		&cs->chains[ext->file / CRIU_MAX_LEVELS]->levels[ext->file % CRIU_MAX_LEVELS];
	ssize_t n = pread_full(lv->pages_fd, buf, len, file_off);

	if (n < 0)
		return error_set((int)n, "source '%s': pages-%u.img: read at offset 0x%llx: %s",
				 lv->shown, lv->pages_id, (unsigned long long)file_off,
				 errno_text((int)-n));
	if ((size_t)n < len)
		return error_set(-EIO, "source '%s': pages-%u.img: shrank while being read",
				 lv->shown, lv->pages_id);
	return 0;
}

static int criu_next_data(struct source *src, uint64_t off, uint64_t *ret_start,
			  uint64_t *ret_end)
{
	struct criu_source *cs = src->impl;

	return extent_list_next_data(&cs->data, off, ret_start, ret_end);
}

static int criu_read(struct source *src, unsigned char *buf, size_t len, uint64_t off)
{
	struct criu_source *cs = src->impl;

	return extent_list_read(&cs->data, buf, len, off, criu_read_piece, src);
}

static void criu_close(struct source *src)
{
	struct criu_source *cs = src->impl;

	if (!cs)
		return;
	for (size_t i = 0; i < cs->chain_count; i++)
		chain_free(cs->chains[i]);
	free(cs->chains);
	extent_list_release(&cs->data);
	free(cs->auxv);
	free(cs);
	src->impl = NULL;
}

static const struct source_ops criu_ops = {
	.format = "criu",
	.next_data = criu_next_data,
	.read = criu_read,
	.close = criu_close,
};

/* --- registers: core-<tid>.img (issue 17) ---------------------------------
 * Each thread's core image gives its registers (x86-64 only: snapfs builds
 * NT_PRSTATUS in this host's layout), the first one the task's name; the
 * threads are pstree.img's entry of the process (the process alone when
 * there is none), the main thread first. A thread without a core image, or
 * of another machine, is named in the notes and left without registers. */

/* The process's pstree entry: its threads and ids (*ret_entry NULL when
 * pstree.img is missing or does not name it). */
static int criu_pstree_entry(int dirfd, const char *dir, unsigned long id,
			     struct pb_budget *budget, struct criu_image *img,
			     PstreeEntry **ret_entry)
{
	const uint8_t *data;
	size_t len;
	int rc;

	*ret_entry = NULL;
	rc = image_open(dirfd, dir, "pstree.img", CRIU_PSTREE_MAGIC, img);
	if (rc == -ENOENT)
		return 0;
	while (rc >= 0 && (rc = image_next(img, &data, &len)) == 1) {
		PstreeEntry *pe;

		pb_budget_init(budget, pb_budget_for(len));
		pe = pstree_entry__unpack(&budget->alloc, len, data);
		if (!pe)
			return image_corrupt(img, "an entry does not decode");
		if (pe->pid == id) {
			*ret_entry = pe;
			return 0;
		}
		pstree_entry__free_unpacked(pe, &budget->alloc);
	}
	return rc;
}

#if defined(__x86_64__)

static void criu_gpregs(const UserX86RegsEntry *r, struct user_regs_struct *u)
{
	*u = (struct user_regs_struct){
		.r15 = r->r15, .r14 = r->r14, .r13 = r->r13, .r12 = r->r12, .rbp = r->bp,
		.rbx = r->bx, .r11 = r->r11, .r10 = r->r10, .r9 = r->r9, .r8 = r->r8,
		.rax = r->ax, .rcx = r->cx, .rdx = r->dx, .rsi = r->si, .rdi = r->di,
		.orig_rax = r->orig_ax, .rip = r->ip, .cs = r->cs, .eflags = r->flags,
		.rsp = r->sp, .ss = r->ss, .fs_base = r->fs_base, .gs_base = r->gs_base,
		.ds = r->ds, .es = r->es, .fs = r->fs, .gs = r->gs,
	};
}

static int criu_fpregs(const UserX86FpregsEntry *f, struct core_note_list *out)
{
	struct user_fpregs_struct u = {
		.cwd = (unsigned short)f->cwd, .swd = (unsigned short)f->swd,
		.ftw = (unsigned short)f->twd, .fop = (unsigned short)f->fop, .rip = f->rip,
		.rdp = f->rdp, .mxcsr = f->mxcsr, .mxcr_mask = f->mxcsr_mask,
	};

	if (f->n_st_space > 32 || f->n_xmm_space > 64)
		return 0;  /* not the x86-64 layout: no floating point */
	memcpy(u.st_space, f->st_space, f->n_st_space * sizeof(uint32_t));
	memcpy(u.xmm_space, f->xmm_space, f->n_xmm_space * sizeof(uint32_t));
	return core_note_list_add(out, "CORE", NT_PRFPREG, &u, sizeof(u));
}

/* The notes of thread tid from core-<tid>.img; for the first thread also
 * NT_PRPSINFO (the task's name and ids) and NT_AUXV (mm_saved_auxv). */
static int criu_thread_notes(struct source *src, int dirfd, const char *dir, uint32_t tid,
			     const PstreeEntry *pe, bool first, struct note_list *skipped)
{
	struct criu_source *cs = src->impl;
	struct core_note_list *out = &src->core_notes;
	struct elf_prstatus pr;
	struct criu_image img;
	struct pb_budget budget;
	const uint8_t *data;
	CoreEntry *ce = NULL;
	char name[64];
	size_t len;
	int rc;

	snprintf(name, sizeof(name), "core-%u.img", tid);
	rc = image_open(dirfd, dir, name, CRIU_CORE_MAGIC, &img);
	if (rc == -ENOENT)
		return note_add(skipped, "no %s: thread %u has no registers", name, tid);
	if (rc >= 0)
		rc = image_next(&img, &data, &len);
	if (rc == 0)
		rc = image_corrupt(&img, "no core entry");
	if (rc < 0)
		goto out_close;
	pb_budget_init(&budget, pb_budget_for(len));
	ce = core_entry__unpack(&budget.alloc, len, data);
	if (!ce) {
		rc = image_corrupt(&img, "the core entry does not decode");
		goto out_close;
	}
	if (!ce->has_mtype || ce->mtype != CRIU_MARCH_X86_64 || !ce->thread_info ||
	    !ce->thread_info->gpregs) {
		rc = note_add(skipped, "%s: not x86-64 registers, left out", name);
		goto out_free;
	}
	memset(&pr, 0, sizeof(pr));
	criu_gpregs(ce->thread_info->gpregs, (struct user_regs_struct *)&pr.pr_reg);
	pr.pr_pid = (pid_t)tid;
	if (pe) {
		pr.pr_ppid = (pid_t)pe->ppid;
		pr.pr_pgrp = (pid_t)pe->pgid;
		pr.pr_sid = (pid_t)pe->sid;
	}
	rc = core_note_list_add(out, "CORE", NT_PRSTATUS, &pr, sizeof(pr));
	if (rc == 0 && first) {
		struct elf_prpsinfo ps;

		memset(&ps, 0, sizeof(ps));
		ps.pr_pid = (pid_t)tid;
		if (pe) {
			ps.pr_ppid = (pid_t)pe->ppid;
			ps.pr_pgrp = (pid_t)pe->pgid;
			ps.pr_sid = (pid_t)pe->sid;
		}
		if (ce->tc && ce->tc->comm)
			snprintf(ps.pr_fname, sizeof(ps.pr_fname), "%s", ce->tc->comm);
		memcpy(ps.pr_psargs, ps.pr_fname, sizeof(ps.pr_fname));
		rc = core_note_list_add(out, "CORE", NT_PRPSINFO, &ps, sizeof(ps));
		if (rc == 0 && cs->auxv_count)
			rc = core_note_list_add(out, "CORE", NT_AUXV, cs->auxv,
						cs->auxv_count * sizeof(*cs->auxv));
	}
	if (rc == 0 && ce->thread_info->fpregs)
		rc = criu_fpregs(ce->thread_info->fpregs, out);
out_free:
	core_entry__free_unpacked(ce, &budget.alloc);
out_close:
	image_close(&img);
	return rc;
}

static int criu_notes(struct source *src, int dirfd, const char *dir, unsigned long id,
		      struct note_list *skipped)
{
	struct criu_image img = { 0 };
	struct pb_budget budget;
	PstreeEntry *pe = NULL;
	int rc;

	rc = criu_pstree_entry(dirfd, dir, id, &budget, &img, &pe);
	if (rc < 0)
		goto out_close;
	rc = core_note_list_add_machine(&src->core_notes, EM_X86_64);
	if (rc == 0)
		rc = criu_thread_notes(src, dirfd, dir, (uint32_t)id, pe, true, skipped);
	for (size_t i = 0; rc == 0 && pe && i < pe->n_threads; i++)
		if (pe->threads[i] != id)
			rc = criu_thread_notes(src, dirfd, dir, pe->threads[i], pe, false,
					       skipped);
	if (pe)
		pstree_entry__free_unpacked(pe, &budget.alloc);
out_close:
	image_close(&img);
	return rc;
}
#else
static int criu_notes(struct source *src, int dirfd, const char *dir, unsigned long id,
		      struct note_list *skipped)
{
	(void)src, (void)dirfd, (void)dir, (void)id;
	return note_add(skipped, "registers left out (read on x86-64 only)");
}
#endif

int source_open_criu(const char *path, struct source *src)
{
	struct note_list notes = { 0 };
	struct criu_source *cs;
	struct criu_chain *ch;
	unsigned long id = 0;
	int dirfd, rc;

	cs = calloc(1, sizeof(*cs));
	if (!cs)
		return -ENOMEM;
	src->ops = &criu_ops;
	src->impl = cs;
	dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return error_set(-errno, "source '%s': %s", path,
				 errno == ENOTDIR ? "not a directory (a CRIU dump is one)"
						  : errno_text(errno));
	rc = choose_process(dirfd, path, &id);
	if (rc == 0)
		rc = chain_new(cs, dirfd, path, id, false, &ch);
	if (rc < 0) {
		close(dirfd);
		return rc;
	}
	rc = load_chain(ch);
	if (rc < 0)
		goto out_release;
	rc = take_process_pages(cs, &notes);
	if (rc < 0)
		goto out_release;
	rc = read_segments(src, cs, id, &notes);
	if (rc < 0)
		goto out_release;
	rc = criu_notes(src, dirfd, path, id, &notes);
	if (rc < 0)
		goto out_release;
	src->has_segments = true;
	src->size = src->segments.count ? src->segments.segs[src->segments.count - 1].end : 0;
	rc = note_list_finish(&notes, src);
out_release:
	close(dirfd);
	note_list_release(&notes);
	return rc;
}
