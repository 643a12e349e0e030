// SPDX-License-Identifier: MIT
/*
 * The FUSE low-level operations: each turns one kernel request into calls
 * on the listing cache, the nodes and the core's read path, and the result
 * into a reply. No SQL and no codecs here. The tree is
 *
 *   /                 one directory per snapshot, sorted by name
 *   /NAME/memory      the memory file (sparse, read on demand)
 *   /NAME/regions/    one file per segment, START-END-LABEL (regions.h),
 *                     showing just that range of the memory file
 *   /NAME/segments    the usage set as text
 *   /NAME/info        the metadata as text
 *   /NAME/core        a process snapshot as an ELF core file (core_file.c
 *                     in the core builds it; its PT_LOADs read the image)
 *   /NAME/map.svg     the picture of the address space (snapfs_map_svg)
 *
 * Everything is read-only; every request that would change something gets
 * EROFS. Under -o private_rw a memory file also opens O_RDWR, for a VMM
 * that maps it MAP_PRIVATE (op_open says how writes still fail). Errors from storage reach the kernel as EIO, never as short reads
 * or wrong bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fs.h"
#include "fslog.h"
#include "inode.h"
#include "listing.h"
#include "node.h"
#include "regions.h"

#define UNUSED __attribute__((unused))

/* The root's entries and attributes are trusted this long (seconds), so
 * that saved and removed snapshots show within about a second. */
#define ROOT_TIMEOUT 0.5
/* `info` changes when the snapshot's parent is removed. */
#define INFO_TIMEOUT 1.0
/* memory, segments and regions/ never change. */
#define DATA_TIMEOUT 86400.0

/* What an open file handle (fuse_file_info.fh) points at. */
struct open_file {
	struct node *node;               /* a reference */
	struct snapfs_image *image;      /* memory, region: the node's shared image */
	uint64_t base;                   /* memory, region: where the file starts
					    in the image */
	uint64_t size;                   /* memory, region: the file's size */
	struct snapfs_core *core;        /* core: the node's core file (holds an
					    image user of the node) */
	const char *text;                /* segments, info, map.svg: owned by
					    node */
	size_t text_len;
	struct workset_recorder *rec;    /* memory: records its reads, or NULL */
	atomic_bool prefetch_on_read;    /* memory: prefetch at the first read */
};

/* The entries of a snapshot directory, sorted by name. */
static const struct {
	const char *name;
	enum inode_kind kind;
} dir_files[] = {
	{ "core", INODE_KIND_CORE },
	{ "info", INODE_KIND_INFO },
	{ "map.svg", INODE_KIND_MAP_SVG },
	{ "memory", INODE_KIND_MEMORY },
	{ "regions", INODE_KIND_REGIONS },
	{ "segments", INODE_KIND_SEGMENTS },
};
#define DIR_FILE_COUNT (sizeof(dir_files) / sizeof(dir_files[0]))

static struct fs *req_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* The errno to send for a failure: snapfs's own codes (and anything that
 * is not a plain errno) are EIO. */
static int reply_errno(int64_t rc)
{
	if (rc >= 0 || -rc >= SNAPFS_ENOTSTORE)
		return EIO;
	return (int)-rc;
}

static double timeout_of(unsigned kind)
{
	switch (kind) {
	case INODE_KIND_MEMORY:
	case INODE_KIND_SEGMENTS:
	case INODE_KIND_REGIONS:
	case INODE_KIND_REGION:
	case INODE_KIND_CORE:
		return DATA_TIMEOUT;
	case INODE_KIND_INFO:
	case INODE_KIND_MAP_SVG:
		return INFO_TIMEOUT;
	default:
		return ROOT_TIMEOUT;
	}
}

static bool is_file_kind(unsigned kind)
{
	return kind == INODE_KIND_MEMORY || kind == INODE_KIND_SEGMENTS ||
	       kind == INODE_KIND_INFO || kind == INODE_KIND_REGION ||
	       kind == INODE_KIND_CORE || kind == INODE_KIND_MAP_SVG;
}

static bool is_dir_kind(unsigned kind)
{
	return kind == INODE_KIND_DIR || kind == INODE_KIND_REGIONS;
}

/* The segment of region file ino, from node's usage set. */
static int region_of(struct fs *fs, struct node *node, fuse_ino_t ino,
		     const struct snapfs_segment **ret_seg)
{
	const struct snapfs_segment *segs;
	size_t count, i = inode_region_index(ino);
	int rc;

	rc = node_segments_array(node, fs->store, &segs, &count);
	if (rc < 0)
		return rc;
	if (i >= count)
		return -ENOENT;
	*ret_seg = &segs[i];
	return 0;
}

static struct open_file *file_of(const struct fuse_file_info *fi)
{
	return (struct open_file *)(uintptr_t)fi->fh;
}

static void open_file_free(struct fs *fs, struct open_file *of)
{
	if (!of)
		return;
	workset_release(&fs->workset, of->rec);
	if (of->image || of->core)
		node_image_put(of->node);
	node_unref(of->node);
	free(of);
}

/* The node of a snapshot inode in the current listing (a reference). */
static int node_of(struct fs *fs, fuse_ino_t ino, struct node **ret_node)
{
	struct listing *listing;
	struct node *node;
	int rc;

	rc = listing_cache_get(&fs->listings, false, &listing);
	if (rc < 0)
		return rc;
	node = listing_find_id(listing, inode_snapshot(ino));
	if (node)
		node_ref(node);
	listing_unref(listing);
	if (!node)
		return -ENOENT;
	*ret_node = node;
	return 0;
}

static void stat_common(const struct fs *fs, fuse_ino_t ino,
			struct timespec when, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_blksize = SNAPFS_PAGE_SIZE;
	st->st_atim = when;
	st->st_mtim = when;
	st->st_ctim = when;
}

static void stat_root(const struct fs *fs, const struct listing *listing,
		      struct stat *st)
{
	stat_common(fs, FUSE_ROOT_ID, listing->built, st);
	st->st_mode = S_IFDIR | 0555;
	st->st_nlink = 2 + listing->count;
}

/* The attributes of ino, a file of node's snapshot. */
static int stat_node(struct fs *fs, struct node *node, fuse_ino_t ino,
		     struct stat *st)
{
	const struct snapfs_segment *seg;
	const char *text;
	uint64_t data, size;
	size_t len;
	int rc;

	stat_common(fs, ino, node->created, st);
	switch (inode_kind(ino)) {
	case INODE_KIND_DIR:
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 3;       /* ., its entry in /, regions/.. */
		return 0;
	case INODE_KIND_REGIONS:
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		return 0;
	case INODE_KIND_REGION:
		rc = region_of(fs, node, ino, &seg);
		if (rc < 0)
			return rc;
		rc = node_region_data(node, fs->store, inode_region_index(ino),
				      &data);
		if (rc < 0)
			return rc;
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)region_size(seg, node->snap.file_size);
		st->st_blocks = (blkcnt_t)((data + 511) / 512);
		return 0;
	case INODE_KIND_MEMORY:
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)node->snap.file_size;
		/* Stored pages only, so that sparse-aware tools see holes. */
		st->st_blocks = (blkcnt_t)((node->snap.data_bytes + 511) / 512);
		return 0;
	case INODE_KIND_CORE:
		if (!node_has_core(node))
			return -ENOENT;
		rc = node_core_facts(node, fs->store, &size, &data);
		if (rc < 0)
			return rc;
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)size;
		st->st_blocks = (blkcnt_t)((data + 511) / 512);
		return 0;
	case INODE_KIND_MAP_SVG:
		rc = node_map_svg(node, fs->store, &text, &len);
		if (rc < 0)
			return rc;
		break;
	case INODE_KIND_SEGMENTS:
		rc = node_segments(node, fs->store, &text, &len);
		if (rc < 0)
			return rc;
		break;
	case INODE_KIND_INFO:
		len = node->info_len;
		break;
	default:
		return -ENOENT;
	}
	st->st_mode = S_IFREG | 0444;
	st->st_nlink = 1;
	st->st_size = (off_t)len;
	st->st_blocks = (blkcnt_t)((len + 511) / 512);
	return 0;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	const struct fs *fs = userdata;

	/* The data never changes: no reason to drop cached pages when
	 * attributes are refreshed. */
	conn->want &= ~(unsigned)FUSE_CAP_AUTO_INVAL_DATA;
	/* conn->max_readahead holds the kernel's offer, its readahead window
	 * when it sent INIT; it keeps the smaller of the window now and the
	 * answer. With -o read_ahead_kb the window has been set already
	 * (mount_main.c): answer with it, so it stays. Requests of up to
	 * max_write (1 MiB in libfuse 3.14, max_pages 256) follow from it. */
	if (fs->read_ahead_set)
		conn->max_readahead = fs->read_ahead_kb * 1024;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	/* -o private_rw refuses MAP_SHARED of O_RDWR files through direct
	 * I/O (op_open): neither a writeback cache, which would take writes
	 * and fail them later, nor shared mmap of direct-I/O files. */
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
#ifdef FUSE_CAP_DIRECT_IO_ALLOW_MMAP
	if (fs->private_rw)
		conn->want &= ~(unsigned)FUSE_CAP_DIRECT_IO_ALLOW_MMAP;
#endif
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = req_fs(req);
	const struct snapfs_segment *segs;
	struct fuse_entry_param e;
	struct listing *listing;
	struct node *node = NULL;
	fuse_ino_t ino = 0;
	size_t count, index;
	int rc;

	if (parent == FUSE_ROOT_ID) {
		rc = listing_cache_get(&fs->listings, true, &listing);
		if (rc < 0)
			goto out_reply_err;
		node = listing_find_name(listing, name);
		if (node)
			node_ref(node);
		listing_unref(listing);
		if (!node) {
			rc = -ENOENT;
			goto out_reply_err;
		}
		ino = inode_make(node->snap.id, INODE_KIND_DIR);
	} else {
		if (!is_dir_kind(inode_kind(parent))) {
			rc = -ENOTDIR;
			goto out_reply_err;
		}
		rc = node_of(fs, parent, &node);
		if (rc < 0)
			goto out_reply_err;
		if (inode_kind(parent) == INODE_KIND_REGIONS) {
			rc = node_segments_array(node, fs->store, &segs, &count);
			if (rc < 0)
				goto out_unref_node;
			rc = region_find(segs, count, name, &index);
			if (rc < 0)
				goto out_unref_node;
			if (index >= INODE_REGION_MAX) {
				rc = -ENOENT;
				goto out_unref_node;
			}
			ino = inode_make_region(node->snap.id, index);
		}
		for (size_t i = 0; !ino && i < DIR_FILE_COUNT; i++)
			if (strcmp(name, dir_files[i].name) == 0 &&
			    inode_kind(parent) == INODE_KIND_DIR &&
			    (dir_files[i].kind != INODE_KIND_CORE || node_has_core(node)))
				ino = inode_make(node->snap.id, dir_files[i].kind);
		if (!ino) {
			rc = -ENOENT;
			goto out_unref_node;
		}
	}
	memset(&e, 0, sizeof(e));
	rc = stat_node(fs, node, ino, &e.attr);
	if (rc < 0)
		goto out_unref_node;
	e.ino = ino;
	e.attr_timeout = timeout_of(inode_kind(ino));
	e.entry_timeout = timeout_of(inode_kind(ino));
	fuse_reply_entry(req, &e);
	node_unref(node);
	return;

out_unref_node:
	node_unref(node);
out_reply_err:
	fuse_reply_err(req, reply_errno(rc));
}

static void op_forget(fuse_req_t req, fuse_ino_t ino UNUSED,
		      uint64_t nlookup UNUSED)
{
	/* Inode numbers are computed, not allocated: nothing to free. */
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count UNUSED,
			    struct fuse_forget_data *forgets UNUSED)
{
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	unsigned kind = inode_kind(ino);
	struct listing *listing;
	struct node *node;
	struct stat st;
	int rc;

	if (ino == FUSE_ROOT_ID) {
		rc = listing_cache_get(&fs->listings, true, &listing);
		if (rc < 0)
			goto out_reply_err;
		stat_root(fs, listing, &st);
		listing_unref(listing);
		fuse_reply_attr(req, &st, ROOT_TIMEOUT);
		return;
	}
	if (fi && fi->fh && is_file_kind(kind)) {
		/* fstat(): the open file's node, even if since removed. */
		node = node_ref(file_of(fi)->node);
	} else {
		rc = node_of(fs, ino, &node);
		if (rc < 0)
			goto out_reply_err;
	}
	rc = stat_node(fs, node, ino, &st);
	node_unref(node);
	if (rc < 0)
		goto out_reply_err;
	fuse_reply_attr(req, &st, timeout_of(kind));
	return;

out_reply_err:
	fuse_reply_err(req, reply_errno(rc));
}

static void op_access(fuse_req_t req, fuse_ino_t ino UNUSED, int mask)
{
	fuse_reply_err(req, (mask & W_OK) ? EROFS : 0);
}

/* -o private_rw lets a memory file open O_RDWR (not O_WRONLY): a VMM that
 * maps guest RAM MAP_PRIVATE from it opens it so (QEMU 7.2's
 * memory-backend-file with share=off). */
static bool private_rw_open(const struct fs *fs, unsigned kind, int flags)
{
	return fs->private_rw && kind == INODE_KIND_MEMORY &&
	       (flags & O_ACCMODE) == O_RDWR;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	unsigned kind = inode_kind(ino);
	const struct snapfs_segment *seg;
	struct open_file *of;
	int rc;

	if (ino == FUSE_ROOT_ID || is_dir_kind(kind)) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (((fi->flags & O_ACCMODE) != O_RDONLY &&
	     !private_rw_open(fs, kind, fi->flags)) || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (!is_file_kind(kind)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	of = calloc(1, sizeof(*of));
	if (!of) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rc = node_of(fs, ino, &of->node);
	if (rc < 0)
		goto out_free;
	switch (kind) {
	case INODE_KIND_MEMORY:
		rc = node_image_get(of->node, fs->store, &of->image);
		if (rc < 0)
			break;
		of->size = snapfs_image_size(of->image);
		/* Kept: pages a prefetch pushed stay for the faults. */
		fi->keep_cache = 1;
		/* O_RDWR (-o private_rw): direct I/O, so that the kernel
		 * refuses every MAP_SHARED mapping of this open file with
		 * ENODEV at mmap time (fuse_file_mmap) and sends each write(2)
		 * here, to fail with EROFS. MAP_PRIVATE maps through the page
		 * cache as before; the kernel drops the file's unmapped cached
		 * pages when it is mapped. */
		if ((fi->flags & O_ACCMODE) == O_RDWR)
			fi->direct_io = 1;
		workset_open_memory(&fs->workset, of->node, &of->rec);
		/* The working set goes into the page cache before the open
		 * returns (for a bounded time), so that the faults after it
		 * find it there and do not race the prefetch for the disk
		 * and the cores. Under direct I/O the kernel drops the
		 * file's cached pages when it is mapped: pushed now, they
		 * would be lost at the mmap that follows, so the prefetch
		 * waits for the first read (the first fault). */
		if (fi->direct_io)
			atomic_store(&of->prefetch_on_read, true);
		else
			workset_prefetch(&fs->workset, of->node, true);
		break;
	case INODE_KIND_REGION:
		rc = region_of(fs, of->node, ino, &seg);
		if (rc < 0)
			break;
		rc = node_image_get(of->node, fs->store, &of->image);
		if (rc < 0)
			break;
		of->base = seg->start;
		of->size = region_size(seg, snapfs_image_size(of->image));
		fi->keep_cache = 1;
		break;
	case INODE_KIND_CORE:
		if (!node_has_core(of->node)) {
			rc = -ENOENT;
			break;
		}
		rc = node_core_get(of->node, fs->store, &of->core);
		if (rc < 0)
			break;
		of->size = snapfs_core_size(of->core);
		fi->keep_cache = 1;
		break;
	case INODE_KIND_MAP_SVG:
		rc = snapfs_snapshot_check(fs->store, &of->node->snap);
		if (rc == 0)
			rc = node_map_svg(of->node, fs->store, &of->text, &of->text_len);
		fi->keep_cache = 0;
		break;
	case INODE_KIND_SEGMENTS:
		/* Never metadata that fails the snapshot's seal. */
		rc = snapfs_snapshot_check(fs->store, &of->node->snap);
		if (rc == 0)
			rc = node_segments(of->node, fs->store, &of->text,
					   &of->text_len);
		fi->keep_cache = 1;
		break;
	default:
		rc = snapfs_snapshot_check(fs->store, &of->node->snap);
		of->text = of->node->info;
		of->text_len = of->node->info_len;
		/* info may change (its parent removed): no stale pages. */
		fi->keep_cache = 0;
		break;
	}
	if (rc < 0)
		goto out_free;
	fi->noflush = 1;
	fi->fh = (uint64_t)(uintptr_t)of;
	if (fuse_reply_open(req, fi) != 0)
		open_file_free(fs, of);     /* interrupted: no release will come */
	return;

out_free:
	open_file_free(fs, of);
	fuse_reply_err(req, reply_errno(rc));
}

/* Log the first failed read of a snapshot; later ones would only repeat. */
static void report_read_error(struct snapfs_store *store, struct node *node,
			      size_t size, off_t off, ssize_t rc)
{
	const char *why = snapfs_errmsg();

	if (fslog_store_replaced(store) || !node_first_damage(node))
		return;
	fslog_error("snapshot '%s': read of %zu bytes at 0x%" PRIx64 ": %s "
		    "(further errors on this snapshot are not logged)",
		    node->snap.name, size, (uint64_t)off,
		    why[0] ? why : snapfs_strerror((int)rc));
}

/* A memory or region file: size bytes of the image from base, written to
 * the kernel straight from the cache of decoded blobs. */
static void read_image(fuse_req_t req, struct open_file *of, size_t size,
		       off_t off)
{
	struct snapfs_read_slices slices;
	int rc;

	if (off < 0 || (uint64_t)off >= of->size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > of->size - (uint64_t)off)
		size = (size_t)(of->size - (uint64_t)off);
	workset_record(of->rec, of->base + (uint64_t)off, size);
	if (atomic_load(&of->prefetch_on_read) &&
	    atomic_exchange(&of->prefetch_on_read, false))
		workset_prefetch(&req_fs(req)->workset, of->node, false);
	/* Never bytes of a database that replaced the one mounted. */
	if (snapfs_store_replaced(req_fs(req)->store)) {
		slices = (struct snapfs_read_slices){ 0 };
		rc = -EIO;
	} else {
		rc = snapfs_image_read_slices(of->image, of->base + (uint64_t)off, size,
					      &slices);
	}
	/* A short read would be taken for the end of the file. */
	if (rc == 0 && slices.len != size)
		rc = -EIO;
	if (rc < 0) {
		report_read_error(req_fs(req)->store, of->node, size,
				  (off_t)(of->base + (uint64_t)off), rc);
		fuse_reply_err(req, rc == -ENOMEM ? ENOMEM : EIO);
	} else {
		fuse_reply_iov(req, slices.iov, (int)slices.count);
	}
	/* Once replied to, the file may be closed and its image gone: the
	 * slices hold on to the store only. */
	snapfs_read_slices_release(&slices);
}

/* The core file: its headers from memory, its PT_LOADs through the
 * image (snapfs_core_read() copies them into one buffer). */
static void read_core(fuse_req_t req, struct open_file *of, size_t size, off_t off)
{
	ssize_t n;
	char *buf;

	if (off < 0 || (uint64_t)off >= of->size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > of->size - (uint64_t)off)
		size = (size_t)(of->size - (uint64_t)off);
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = snapfs_store_replaced(req_fs(req)->store) ? -EIO
						       : snapfs_core_read(of->core, buf, size,
									  (uint64_t)off);
	if (n >= 0 && (size_t)n != size)
		n = -EIO;
	if (n < 0) {
		report_read_error(req_fs(req)->store, of->node, size, off, n);
		fuse_reply_err(req, n == -ENOMEM ? ENOMEM : EIO);
	} else {
		fuse_reply_buf(req, buf, size);
	}
	free(buf);
}

static void read_text(fuse_req_t req, const struct open_file *of,
		      size_t size, off_t off)
{
	if (off < 0 || (uint64_t)off >= of->text_len) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > of->text_len - (size_t)off)
		size = of->text_len - (size_t)off;
	fuse_reply_buf(req, of->text + off, size);
}

static void op_read(fuse_req_t req, fuse_ino_t ino UNUSED, size_t size,
		    off_t off, struct fuse_file_info *fi)
{
	struct open_file *of = file_of(fi);

	if (of->image)
		read_image(req, of, size, off);
	else if (of->core)
		read_core(req, of, size, off);
	else
		read_text(req, of, size, off);
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino UNUSED, off_t off,
		     int whence, struct fuse_file_info *fi)
{
	struct open_file *of = file_of(fi);
	int64_t pos;

	if ((whence != SEEK_DATA && whence != SEEK_HOLE) || off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (of->image) {
		/* The image's answer, moved to the file and clamped to it. */
		if ((uint64_t)off >= of->size) {
			fuse_reply_err(req, ENXIO);
			return;
		}
		pos = snapfs_image_seek(of->image, of->base + (uint64_t)off,
					whence);
		if (pos < 0) {
			fuse_reply_err(req, reply_errno(pos));
			return;
		}
		pos -= (int64_t)of->base;
		if ((uint64_t)pos >= of->size) {
			if (whence == SEEK_DATA) {
				fuse_reply_err(req, ENXIO);
				return;
			}
			pos = (int64_t)of->size;
		}
		fuse_reply_lseek(req, (off_t)pos);
		return;
	}
	if (of->core) {
		pos = snapfs_core_seek(of->core, (uint64_t)off, whence);
		if (pos < 0)
			fuse_reply_err(req, reply_errno(pos));
		else
			fuse_reply_lseek(req, (off_t)pos);
		return;
	}
	/* The text files are all data. */
	if ((uint64_t)off >= of->text_len) {
		fuse_reply_err(req, ENXIO);
		return;
	}
	fuse_reply_lseek(req, whence == SEEK_DATA ? off : (off_t)of->text_len);
}

static void op_release(fuse_req_t req, fuse_ino_t ino UNUSED,
		       struct fuse_file_info *fi)
{
	open_file_free(req_fs(req), file_of(fi));
	fuse_reply_err(req, 0);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	const struct snapfs_segment *segs;
	struct listing *listing;
	struct node *node;
	size_t count;
	int rc;

	if (ino == FUSE_ROOT_ID) {
		/* One listing for the whole walk, so that offsets stay
		 * meaningful while snapshots come and go. */
		rc = listing_cache_get(&fs->listings, true, &listing);
		if (rc < 0)
			goto out_reply_err;
		fi->fh = (uint64_t)(uintptr_t)listing;
		if (fuse_reply_open(req, fi) != 0)
			listing_unref(listing);
		return;
	}
	if (!is_dir_kind(inode_kind(ino))) {
		rc = -ENOTDIR;
		goto out_reply_err;
	}
	rc = node_of(fs, ino, &node);
	if (rc < 0)
		goto out_reply_err;
	if (inode_kind(ino) == INODE_KIND_DIR) {
		/* The walk only needs to know whether there is a core. */
		fi->fh = node_has_core(node) ? 1 : 0;
		node_unref(node);
		fuse_reply_open(req, fi);
		return;
	}
	/* regions/: the walk keeps the node, its segments read now. */
	rc = node_segments_array(node, fs->store, &segs, &count);
	if (rc < 0) {
		node_unref(node);
		goto out_reply_err;
	}
	fi->fh = (uint64_t)(uintptr_t)node;
	fi->cache_readdir = 1;
	if (fuse_reply_open(req, fi) != 0)
		node_unref(node);
	return;

out_reply_err:
	fuse_reply_err(req, reply_errno(rc));
}

/* What one readdir walk lists. */
struct dir_walk {
	fuse_ino_t ino;
	const struct listing *listing;           /* the root */
	const struct snapfs_segment *segs;       /* regions/ */
	size_t seg_count;
	bool has_core;                           /* NAME/: lists core */
	char name[REGION_NAME_MAX + 1];          /* a region's name */
};

/* Entry number i of the walk's directory (0 ".", 1 "..", then the
 * contents): false past the end. */
static bool dir_entry(struct dir_walk *w, size_t i, const char **ret_name,
		      struct stat *st)
{
	int64_t id = inode_snapshot(w->ino);

	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFDIR;
	if (i == 0) {
		*ret_name = ".";
		st->st_ino = w->ino;
		return true;
	}
	if (i == 1) {
		*ret_name = "..";
		st->st_ino = inode_kind(w->ino) == INODE_KIND_REGIONS ?
			     inode_make(id, INODE_KIND_DIR) : FUSE_ROOT_ID;
		return true;
	}
	i -= 2;
	if (w->ino == FUSE_ROOT_ID) {
		if (i >= w->listing->count)
			return false;
		*ret_name = w->listing->by_name[i]->snap.name;
		st->st_ino = inode_make(w->listing->by_name[i]->snap.id,
					INODE_KIND_DIR);
		return true;
	}
	if (inode_kind(w->ino) == INODE_KIND_REGIONS) {
		if (i >= w->seg_count || i >= INODE_REGION_MAX)
			return false;
		region_name(&w->segs[i], w->name);
		*ret_name = w->name;
		st->st_ino = inode_make_region(id, i);
		st->st_mode = S_IFREG;
		return true;
	}
	/* NAME/: the fixed entries, core only for a process snapshot (it is
	 * first: dir_files is sorted). */
	if (!w->has_core)
		i++;
	if (i >= DIR_FILE_COUNT)
		return false;
	*ret_name = dir_files[i].name;
	st->st_ino = inode_make(id, dir_files[i].kind);
	if (dir_files[i].kind != INODE_KIND_REGIONS)
		st->st_mode = S_IFREG;
	return true;
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct dir_walk w = { .ino = ino };
	const char *name;
	struct stat st;
	size_t used = 0;
	char *buf;
	int rc;

	if (ino == FUSE_ROOT_ID) {
		w.listing = (const struct listing *)(uintptr_t)fi->fh;
	} else if (inode_kind(ino) == INODE_KIND_DIR) {
		w.has_core = fi->fh == 1;
	} else if (inode_kind(ino) == INODE_KIND_REGIONS) {
		/* Read at opendir: this only takes the node's lock. */
		rc = node_segments_array((struct node *)(uintptr_t)fi->fh,
					 fs->store, &w.segs, &w.seg_count);
		if (rc < 0) {
			fuse_reply_err(req, reply_errno(rc));
			return;
		}
	}
	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (size_t i = off > 0 ? (size_t)off : 0;
	     dir_entry(&w, i, &name, &st); i++) {
		size_t need = fuse_add_direntry(req, buf + used, size - used,
						name, &st, (off_t)(i + 1));

		if (need > size - used)
			break;
		used += need;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	if (ino == FUSE_ROOT_ID)
		listing_unref((struct listing *)(uintptr_t)fi->fh);
	else if (inode_kind(ino) == INODE_KIND_REGIONS)
		node_unref((struct node *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino UNUSED)
{
	struct fs *fs = req_fs(req);
	struct listing *listing;
	struct statvfs sv;
	int rc;

	rc = listing_cache_get(&fs->listings, false, &listing);
	if (rc < 0) {
		fuse_reply_err(req, reply_errno(rc));
		return;
	}
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = SNAPFS_PAGE_SIZE;
	sv.f_frsize = SNAPFS_PAGE_SIZE;
	sv.f_blocks = (listing->data_bytes + SNAPFS_PAGE_SIZE - 1) /
		      SNAPFS_PAGE_SIZE;
	/* Each snapshot: its directory, its entries, a region per segment. */
	sv.f_files = 1 + listing->count * (1 + DIR_FILE_COUNT);
	for (size_t i = 0; i < listing->count; i++)
		sv.f_files += listing->by_name[i]->snap.segment_count;
	sv.f_namemax = REGION_NAME_MAX;
	sv.f_flag = ST_RDONLY;
	listing_unref(listing);
	fuse_reply_statfs(req, &sv);
}

/* --- everything that would change the tree: EROFS ----------------------- */

static void op_setattr(fuse_req_t req, fuse_ino_t ino UNUSED,
		       struct stat *attr UNUSED, int to_set UNUSED,
		       struct fuse_file_info *fi UNUSED)
{
	fuse_reply_err(req, EROFS);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent UNUSED,
		     const char *name UNUSED, mode_t mode UNUSED,
		     dev_t rdev UNUSED)
{
	fuse_reply_err(req, EROFS);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent UNUSED,
		     const char *name UNUSED, mode_t mode UNUSED)
{
	fuse_reply_err(req, EROFS);
}

static void op_remove(fuse_req_t req, fuse_ino_t parent UNUSED,
		      const char *name UNUSED)
{
	fuse_reply_err(req, EROFS);
}

static void op_symlink(fuse_req_t req, const char *link UNUSED,
		       fuse_ino_t parent UNUSED, const char *name UNUSED)
{
	fuse_reply_err(req, EROFS);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent UNUSED,
		      const char *name UNUSED, fuse_ino_t newparent UNUSED,
		      const char *newname UNUSED, unsigned int flags UNUSED)
{
	fuse_reply_err(req, EROFS);
}

static void op_link(fuse_req_t req, fuse_ino_t ino UNUSED,
		    fuse_ino_t newparent UNUSED, const char *newname UNUSED)
{
	fuse_reply_err(req, EROFS);
}

static void op_write(fuse_req_t req, fuse_ino_t ino UNUSED,
		     const char *buf UNUSED, size_t size UNUSED,
		     off_t off UNUSED, struct fuse_file_info *fi UNUSED)
{
	fuse_reply_err(req, EROFS);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino UNUSED,
			const char *name UNUSED, const char *value UNUSED,
			size_t size UNUSED, int flags UNUSED)
{
	fuse_reply_err(req, EROFS);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino UNUSED,
			   const char *name UNUSED)
{
	fuse_reply_err(req, EROFS);
}

static void op_create(fuse_req_t req, fuse_ino_t parent UNUSED,
		      const char *name UNUSED, mode_t mode UNUSED,
		      struct fuse_file_info *fi UNUSED)
{
	fuse_reply_err(req, EROFS);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino UNUSED,
			 int mode UNUSED, off_t offset UNUSED,
			 off_t length UNUSED, struct fuse_file_info *fi UNUSED)
{
	fuse_reply_err(req, EROFS);
}

const struct fuse_lowlevel_ops fs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.access = op_access,
	.open = op_open,
	.read = op_read,
	.lseek = op_lseek,
	.release = op_release,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.statfs = op_statfs,
	.setattr = op_setattr,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_remove,
	.rmdir = op_remove,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.write = op_write,
	.setxattr = op_setxattr,
	.removexattr = op_removexattr,
	.create = op_create,
	.fallocate = op_fallocate,
};
