// SPDX-License-Identifier: MIT
/*
 * Pack files: append-only files of compressed blobs in STORE/packs/, named
 * after their id in the packs table (never after anything else the
 * database says). Readers keep three descriptors per pack: one opened
 * O_DIRECT, so that a cold random blob costs exactly one disk request for
 * the sectors that hold it and nothing in the page cache (the blob cache
 * above keeps the decoded bytes); one with the kernel's readahead off,
 * for file systems without direct I/O and for spans; and one left to
 * readahead for readers that go on in order.
 */
#include "blob_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "digest.h"
#include "errors.h"

#define PACK_DIR "packs"

struct pack_fds {
	int64_t id;
	int random_fd;               /* POSIX_FADV_RANDOM: no readahead */
	int seq_fd;                  /* default readahead */
	int direct_fd;               /* O_DIRECT, or -1 where the file system has none */
	unsigned direct_align;       /* its offsets and lengths in multiples of this */
};

/* Direct reads go through a buffer aligned to this; a file system that
 * asks more of memory is read through the page cache. */
#define DIRECT_MEM_ALIGN 4096u

struct known_dict {
	int64_t id;
	struct codec_ddict *ddict;
};

struct blob_store {
	char *dir;                   /* STORE/packs */
	bool writable;
	pthread_rwlock_t lock;       /* guards packs[] and dicts[] */
	struct pack_fds *packs;
	size_t pack_count, pack_cap;
	struct known_dict *dicts;
	size_t dict_count;
	/* The writer's pack. */
	int append_fd;
	int64_t append_id;
	uint64_t append_committed;   /* length when appending began */
	uint64_t append_length;      /* length so far */
	bool append_created;         /* the file was made by this writer */
	bool has_backend;            /* packs are read through backend */
	struct pack_backend backend;
};

static int pack_path(const struct blob_store *bs, int64_t id, char *buf, size_t cap)
{
	if (id <= 0)
		return error_set(-SNAPFS_ECORRUPT, "pack %" PRId64 ": invalid id", id);
	snprintf(buf, cap, "%s/%08" PRId64 ".pack", bs->dir, id);
	return 0;
}

int blob_store_open(const char *dir, bool writable, struct blob_store **ret_bs)
{
	struct blob_store *bs = calloc(1, sizeof(*bs));

	if (!bs)
		return -ENOMEM;
	if (asprintf(&bs->dir, "%s/" PACK_DIR, dir) < 0) {
		free(bs);
		return -ENOMEM;
	}
	pthread_rwlock_init(&bs->lock, NULL);
	bs->writable = writable;
	bs->append_fd = -1;
	*ret_bs = bs;
	return 0;
}

void blob_store_set_backend(struct blob_store *bs, const struct pack_backend *be)
{
	bs->backend = *be;
	bs->has_backend = true;
}

static void pack_fds_close(const struct pack_fds *fds)
{
	close(fds->random_fd);
	close(fds->seq_fd);
	if (fds->direct_fd >= 0)
		close(fds->direct_fd);
}

void blob_store_close(struct blob_store *bs)
{
	if (!bs)
		return;
	blob_store_append_end(bs, true);
	for (size_t i = 0; i < bs->pack_count; i++)
		pack_fds_close(&bs->packs[i]);
	free(bs->packs);
	for (size_t i = 0; i < bs->dict_count; i++)
		codec_ddict_free(bs->dicts[i].ddict);
	free(bs->dicts);
	pthread_rwlock_destroy(&bs->lock);
	free(bs->dir);
	free(bs);
}

static const struct pack_fds *find_pack(const struct blob_store *bs, int64_t id)
{
	for (size_t i = 0; i < bs->pack_count; i++)
		if (bs->packs[i].id == id)
			return &bs->packs[i];
	return NULL;
}

/* Open path O_DIRECT into fds, if its file system reads that way with
 * alignments this file can meet (statx STATX_DIOALIGN); else -1. */
static void direct_open(const char *path, struct pack_fds *fds)
{
	struct statx stx;

	fds->direct_fd = open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);
	if (fds->direct_fd < 0)
		return;
	if (statx(fds->direct_fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) < 0 ||
	    !(stx.stx_mask & STATX_DIOALIGN) || stx.stx_dio_offset_align == 0 ||
	    stx.stx_dio_offset_align > DIRECT_MEM_ALIGN ||
	    stx.stx_dio_mem_align > DIRECT_MEM_ALIGN) {
		close(fds->direct_fd);
		fds->direct_fd = -1;
		return;
	}
	fds->direct_align = stx.stx_dio_offset_align;
}

/* The descriptors of pack id (a copy), opening the pack on first use. */
static int pack_fds_get(struct blob_store *bs, int64_t id, struct pack_fds *ret_fds)
{
	const struct pack_fds *p;
	struct pack_fds fds;
	char path[4096];
	int rc;

	pthread_rwlock_rdlock(&bs->lock);
	p = find_pack(bs, id);
	if (p)
		*ret_fds = *p;
	pthread_rwlock_unlock(&bs->lock);
	if (p)
		return 0;

	rc = pack_path(bs, id, path, sizeof(path));
	if (rc < 0)
		return rc;
	fds.id = id;
	fds.random_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fds.random_fd < 0)
		return error_set(errno == ENOENT ? -SNAPFS_ECORRUPT : -errno,
				 "pack '%s': %s", path, errno_text(errno));
	fds.seq_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fds.seq_fd < 0) {
		rc = error_set(-errno, "pack '%s': %s", path, errno_text(errno));
		close(fds.random_fd);
		return rc;
	}
	posix_fadvise(fds.random_fd, 0, 0, POSIX_FADV_RANDOM);
	direct_open(path, &fds);

	pthread_rwlock_wrlock(&bs->lock);
	p = find_pack(bs, id);           /* another thread may have won */
	if (!p && bs->pack_count == bs->pack_cap) {
		size_t cap = bs->pack_cap ? bs->pack_cap * 2 : 16;
		struct pack_fds *bigger = realloc(bs->packs, cap * sizeof(*bigger));

		if (!bigger) {
			pthread_rwlock_unlock(&bs->lock);
			pack_fds_close(&fds);
			return -ENOMEM;
		}
		bs->packs = bigger;
		bs->pack_cap = cap;
	}
	if (!p) {
		bs->packs[bs->pack_count++] = fds;
		*ret_fds = fds;
	} else {
		*ret_fds = *p;
		pack_fds_close(&fds);
	}
	pthread_rwlock_unlock(&bs->lock);
	return 0;
}

static const struct codec_ddict *find_dict(const struct blob_store *bs, int64_t id)
{
	for (size_t i = 0; i < bs->dict_count; i++)
		if (bs->dicts[i].id == id)
			return bs->dicts[i].ddict;
	return NULL;
}

int blob_store_add_dict(struct blob_store *bs, int64_t id, const void *data, size_t len)
{
	struct codec_ddict *dd;
	struct known_dict *more;
	int rc = 0;

	pthread_rwlock_wrlock(&bs->lock);
	if (find_dict(bs, id))
		goto out_unlock;
	dd = codec_ddict_new(data, len);
	more = dd ? realloc(bs->dicts, (bs->dict_count + 1) * sizeof(*more)) : NULL;
	if (!more) {
		codec_ddict_free(dd);
		rc = -ENOMEM;
		goto out_unlock;
	}
	bs->dicts = more;
	bs->dicts[bs->dict_count++] = (struct known_dict){ .id = id, .ddict = dd };
out_unlock:
	pthread_rwlock_unlock(&bs->lock);
	return rc;
}

int64_t blob_store_dict_max(struct blob_store *bs)
{
	int64_t max = 0;

	pthread_rwlock_rdlock(&bs->lock);
	for (size_t i = 0; i < bs->dict_count; i++)
		if (bs->dicts[i].id > max)
			max = bs->dicts[i].id;
	pthread_rwlock_unlock(&bs->lock);
	return max;
}

/* Each thread decodes with a codec context of its own and reads spans
 * into a buffer of its own, both freed when the thread ends (FUSE worker
 * threads come and go). The buffer is kept between spans: a fresh one
 * each time would cost a page fault per page read. */
struct thread_state {
	struct codec_ctx *codec;
	unsigned char *span;
	size_t span_cap;
	unsigned char *direct;       /* DIRECT_MEM_ALIGN-aligned */
	size_t direct_cap;
};

static pthread_key_t state_key;
static pthread_once_t state_key_once = PTHREAD_ONCE_INIT;

static void thread_state_free(void *arg)
{
	struct thread_state *ts = arg;

	if (!ts)
		return;
	codec_ctx_free(ts->codec);
	free(ts->span);
	free(ts->direct);
	free(ts);
}

static void state_key_create(void)
{
	pthread_key_create(&state_key, thread_state_free);
}

static struct thread_state *thread_state(void)
{
	struct thread_state *ts;

	pthread_once(&state_key_once, state_key_create);
	ts = pthread_getspecific(state_key);
	if (!ts) {
		ts = calloc(1, sizeof(*ts));
		if (ts && !(ts->codec = codec_ctx_new())) {
			free(ts);
			ts = NULL;
		}
		if (ts && pthread_setspecific(state_key, ts) != 0) {
			thread_state_free(ts);
			ts = NULL;
		}
	}
	return ts;
}

static struct codec_ctx *thread_codec(void)
{
	struct thread_state *ts = thread_state();

	return ts ? ts->codec : NULL;
}

void blob_store_thread_release(void)
{
	pthread_once(&state_key_once, state_key_create);
	thread_state_free(pthread_getspecific(state_key));
	pthread_setspecific(state_key, NULL);
}

static int damaged(const struct blob_loc *loc, const char *why)
{
	return error_set(-SNAPFS_ECORRUPT, "blob %" PRId64 " (pack %" PRId64 " offset %" PRIu64
			 "): %s", loc->id, loc->pack_id, loc->offset, why);
}

/* Read at least need bytes at off, up to want, into buf; a file that
 * ends first is damage (a cut pack). */
static int read_at_least(int fd, void *buf, size_t need, size_t want, uint64_t off,
			 const struct blob_loc *loc)
{
	size_t done = 0;

	while (done < need) {
		ssize_t n = pread(fd, (char *)buf + done, want - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EIO ? damaged(loc, "read error")
					    : error_set(-errno, "blob %" PRId64 ": %s", loc->id,
							errno_text(errno));
		if (n == 0)
			return damaged(loc, "pack file too short");
		done += (size_t)n;
	}
	return 0;
}

static int read_exact(int fd, void *buf, size_t len, uint64_t off, const struct blob_loc *loc)
{
	return read_at_least(fd, buf, len, len, off, loc);
}

/* Read len bytes of loc's pack at off: from the pack file, or through the
 * store's backend (fresh: not from its cache). The one place a pack read
 * chooses where it goes. */
static int pack_read(struct blob_store *bs, const struct blob_loc *loc, bool sequential,
		     void *buf, size_t len, uint64_t off, bool fresh)
{
	struct pack_fds fds;
	int rc;

	if (bs->has_backend) {
		rc = bs->backend.read(bs->backend.ctx, loc->pack_id, off, len, buf, fresh);
		return rc == -ENOENT ? damaged(loc, "its pack is not in the bucket") : rc;
	}
	rc = pack_fds_get(bs, loc->pack_id, &fds);
	if (rc < 0)
		return rc;
	return read_exact(sequential ? fds.seq_fd : fds.random_fd, buf, len, off, loc);
}

/* Read loc's stored bytes O_DIRECT: the sectors that hold them, into the
 * thread's aligned buffer (*ret_bytes, valid until the thread's next
 * call). *ret_bytes is NULL when the pack cannot be read that way: read
 * it through the page cache instead. */
static int direct_read(struct blob_store *bs, const struct blob_loc *loc,
		       const unsigned char **ret_bytes)
{
	struct thread_state *ts = thread_state();
	struct pack_fds fds;
	uint64_t start, need, want;
	int rc;

	*ret_bytes = NULL;
	if (!ts)
		return -ENOMEM;
	rc = pack_fds_get(bs, loc->pack_id, &fds);
	if (rc < 0 || fds.direct_fd < 0)
		return rc;
	start = loc->offset / fds.direct_align * fds.direct_align;
	need = loc->offset + loc->length - start;
	want = (need + fds.direct_align - 1) / fds.direct_align * fds.direct_align;
	if (ts->direct_cap < want) {
		size_t cap = (size_t)(want + DIRECT_MEM_ALIGN - 1) / DIRECT_MEM_ALIGN * DIRECT_MEM_ALIGN;
		unsigned char *bigger = aligned_alloc(DIRECT_MEM_ALIGN, cap);

		if (!bigger)
			return -ENOMEM;
		free(ts->direct);
		ts->direct = bigger;
		ts->direct_cap = cap;
	}
	rc = read_at_least(fds.direct_fd, ts->direct, (size_t)need, (size_t)want, start, loc);
	if (rc == -EINVAL)
		return 0;               /* not after all: through the page cache */
	if (rc < 0)
		return rc;
	*ret_bytes = ts->direct + (loc->offset - start);
	return 0;
}

/* The dictionary loc needs (NULL for none) in *ret_dict, after checking
 * the row's shape. */
static int loc_check(struct blob_store *bs, const struct blob_loc *loc,
		     const struct codec_ddict **ret_dict)
{
	const struct codec_ddict *dict = NULL;

	if (loc->page_count == 0 || loc->page_count > BLOB_PAGES_MAX || loc->length == 0 ||
	    loc->length > (size_t)BLOB_PAGES_MAX * SNAPFS_PAGE_SIZE + 65536 ||
	    loc->offset > (uint64_t)INT64_MAX - loc->length)
		return damaged(loc, "malformed row (page count, length or offset)");
	if (loc->dict_id != 0) {
		/* Dictionaries are never freed before the store is closed. */
		pthread_rwlock_rdlock(&bs->lock);
		dict = find_dict(bs, loc->dict_id);
		pthread_rwlock_unlock(&bs->lock);
		if (!dict)
			return damaged(loc, "its dictionary is missing or damaged");
	}
	*ret_dict = dict;
	return 0;
}

/* Check stored (loc->length bytes) and decode it with dict into dst. */
static int decode(const struct blob_loc *loc, const struct codec_ddict *dict,
		  const unsigned char *stored, unsigned char *dst)
{
	struct codec_ctx *codec = thread_codec();

	if (!codec)
		return -ENOMEM;
	if (blob_checksum(stored, loc->length) != loc->checksum)
		return damaged(loc, "checksum mismatch");
	if (codec_decompress(codec, loc->codec, dict, stored, loc->length, dst,
			     (size_t)loc->page_count * SNAPFS_PAGE_SIZE) < 0)
		return damaged(loc, "does not decode");
	return 0;
}

/* Read blob loc from its pack (fresh: not from a backend's cache) and
 * decode it into dst. A blob stored as it is is read straight into dst. */
static int load(struct blob_store *bs, const struct blob_loc *loc, bool sequential,
		const struct codec_ddict *dict, unsigned char *dst, bool fresh)
{
	const unsigned char *direct;
	unsigned char *stored;
	int rc;

	/* A random reader's blob: straight from the disk. Not for a writer,
	 * whose packs may have dirty pages a direct read would first flush
	 * (a save's dedup check reads what it just wrote). */
	if (!sequential && !bs->has_backend && !bs->writable) {
		rc = direct_read(bs, loc, &direct);
		if (rc < 0 || direct)
			return rc < 0 ? rc : decode(loc, dict, direct, dst);
	}
	if (loc->codec == SNAPFS_CODEC_NONE &&
	    loc->length == (size_t)loc->page_count * SNAPFS_PAGE_SIZE) {
		rc = pack_read(bs, loc, sequential, dst, loc->length, loc->offset, fresh);
		if (rc == 0 && blob_checksum(dst, loc->length) != loc->checksum)
			rc = damaged(loc, "checksum mismatch");
		return rc;
	}
	stored = malloc(loc->length);
	if (!stored)
		return -ENOMEM;
	rc = pack_read(bs, loc, sequential, stored, loc->length, loc->offset, fresh);
	if (rc == 0)
		rc = decode(loc, dict, stored, dst);
	free(stored);
	return rc;
}

int blob_store_load(struct blob_store *bs, const struct blob_loc *loc,
		    bool sequential, unsigned char *dst)
{
	const struct codec_ddict *dict;
	int rc;

	rc = loc_check(bs, loc, &dict);
	if (rc < 0)
		return rc;
	rc = load(bs, loc, sequential, dict, dst, false);
	/* A cached copy is never trusted blindly: one that fails is fetched
	 * again from where the pack lives. */
	if (rc == -SNAPFS_ECORRUPT && bs->has_backend)
		rc = load(bs, loc, sequential, dict, dst, true);
	return rc;
}

int blob_store_read_span(struct blob_store *bs, const struct blob_loc *first,
			 uint64_t len, const unsigned char **ret_bytes)
{
	struct thread_state *ts = thread_state();
	int rc;

	if (!ts)
		return -ENOMEM;
	if (len == 0 || len > BLOB_STORE_SPAN_MAX || first->offset > (uint64_t)INT64_MAX - len)
		return damaged(first, "malformed span of blobs");
	if (ts->span_cap < len) {
		unsigned char *bigger = realloc(ts->span, (size_t)len);

		if (!bigger)
			return -ENOMEM;
		ts->span = bigger;
		ts->span_cap = (size_t)len;
	}
	/* Remote: one ranged GET (or the cache) for the whole span. */
	rc = pack_read(bs, first, false, ts->span, (size_t)len, first->offset, false);
	if (rc < 0)
		return rc;
	*ret_bytes = ts->span;
	return 0;
}

int blob_store_decode(struct blob_store *bs, const struct blob_loc *loc,
		      const unsigned char *stored, unsigned char *dst)
{
	const struct codec_ddict *dict;
	int rc;

	rc = loc_check(bs, loc, &dict);
	if (rc < 0)
		return rc;
	return decode(loc, dict, stored, dst);
}

/* fsync the packs folder, so that a new pack's name is durable. */
static int sync_dir(const struct blob_store *bs)
{
	int fd = open(bs->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return error_set(-errno, "packs '%s': %s", bs->dir, errno_text(errno));
	if (fsync(fd) < 0)
		rc = error_set(-errno, "packs '%s': sync: %s", bs->dir, errno_text(errno));
	close(fd);
	return rc;
}

int blob_store_append_begin(struct blob_store *bs, int64_t pack_id, uint64_t committed)
{
	char path[4096];
	struct stat st;
	int fd, rc;

	if (!bs->writable)
		return error_set(-EROFS, "packs '%s': opened read-only", bs->dir);
	blob_store_append_end(bs, true);
	rc = pack_path(bs, pack_id, path, sizeof(path));
	if (rc < 0)
		return rc;
	if (mkdir(bs->dir, 0755) < 0 && errno != EEXIST)
		return error_set(-errno, "packs '%s': %s", bs->dir, errno_text(errno));
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && committed == 0) {
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		bs->append_created = fd >= 0;
	}
	if (fd < 0)
		return error_set(errno == ENOENT ? -SNAPFS_ECORRUPT : -errno,
				 "pack '%s': %s", path, errno_text(errno));
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size < committed) {
		rc = fstat(fd, &st) < 0 ? -errno : -SNAPFS_ECORRUPT;
		close(fd);
		return error_set(rc, "pack '%s': shorter than its recorded length %" PRIu64,
				 path, committed);
	}
	/* A tail past the committed length was never named by a row. */
	if ((uint64_t)st.st_size > committed && ftruncate(fd, (off_t)committed) < 0) {
		rc = error_set(-errno, "pack '%s': %s", path, errno_text(errno));
		close(fd);
		return rc;
	}
	bs->append_fd = fd;
	bs->append_id = pack_id;
	bs->append_committed = bs->append_length = committed;
	return 0;
}

int blob_store_append(struct blob_store *bs, const void *data, size_t len,
		      uint64_t *ret_offset)
{
	size_t done = 0;

	if (bs->append_fd < 0)
		return -EINVAL;
	while (done < len) {
		ssize_t n = pwrite(bs->append_fd, (const char *)data + done, len - done,
				   (off_t)(bs->append_length + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return error_set(-errno, "pack %" PRId64 ": write: %s", bs->append_id,
					 errno_text(errno));
		done += (size_t)n;
	}
	*ret_offset = bs->append_length;
	bs->append_length += len;
	return 0;
}

int blob_store_append_sync(struct blob_store *bs, uint64_t *ret_length)
{
	int rc;

	if (bs->append_fd < 0)
		return -EINVAL;
	if (fdatasync(bs->append_fd) < 0)
		return error_set(-errno, "pack %" PRId64 ": sync: %s", bs->append_id,
				 errno_text(errno));
	if (bs->append_created) {
		rc = sync_dir(bs);
		if (rc < 0)
			return rc;
	}
	*ret_length = bs->append_length;
	return 0;
}

void blob_store_append_state(const struct blob_store *bs, int64_t *ret_pack_id,
			     uint64_t *ret_length)
{
	*ret_pack_id = bs->append_fd >= 0 ? bs->append_id : 0;
	*ret_length = bs->append_fd >= 0 ? bs->append_length : 0;
}

void blob_store_append_end(struct blob_store *bs, bool committed)
{
	if (bs->append_fd < 0)
		return;
	/* Best effort: should the cut fail, the next writer cuts the tail
	 * (no row names it either way). */
	if (!committed && bs->append_length > bs->append_committed) {
		int unused = ftruncate(bs->append_fd, (off_t)bs->append_committed);

		(void)unused;
	}
	close(bs->append_fd);
	bs->append_fd = -1;
	bs->append_created = false;
}

static int open_rw(struct blob_store *bs, int64_t pack_id, int *ret_fd)
{
	char path[4096];
	int rc = pack_path(bs, pack_id, path, sizeof(path));

	if (bs->has_backend)
		return error_set(-ENOTSUP, "pack %" PRId64 ": the store's packs are remote "
				 "objects, never changed", pack_id);
	if (rc < 0)
		return rc;
	*ret_fd = open(path, O_RDWR | O_CLOEXEC);
	if (*ret_fd < 0)
		return error_set(-errno, "pack '%s': %s", path, errno_text(errno));
	return 0;
}

int blob_store_punch(struct blob_store *bs, int64_t pack_id, uint64_t off, uint64_t len)
{
	uint64_t start = (off + 4095) / 4096 * 4096, end = (off + len) / 4096 * 4096;
	int fd, rc;

	if (end <= start)
		return 0;
	rc = open_rw(bs, pack_id, &fd);
	if (rc < 0)
		return rc;
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)start,
		      (off_t)(end - start)) < 0 && errno != EOPNOTSUPP)
		rc = error_set(-errno, "pack %" PRId64 ": punch hole: %s", pack_id,
			       errno_text(errno));
	close(fd);
	return rc;
}

int blob_store_truncate(struct blob_store *bs, int64_t pack_id, uint64_t length)
{
	int fd, rc = open_rw(bs, pack_id, &fd);

	if (rc < 0)
		return rc;
	if (ftruncate(fd, (off_t)length) < 0)
		rc = error_set(-errno, "pack %" PRId64 ": truncate: %s", pack_id,
			       errno_text(errno));
	close(fd);
	return rc;
}

int blob_store_remove(struct blob_store *bs, int64_t pack_id)
{
	char path[4096];
	int rc = pack_path(bs, pack_id, path, sizeof(path));

	if (bs->has_backend)
		return error_set(-ENOTSUP, "pack %" PRId64 ": the store's packs are remote "
				 "objects, not removed here", pack_id);
	if (rc < 0)
		return rc;
	if (unlink(path) < 0 && errno != ENOENT)
		return error_set(-errno, "pack '%s': %s", path, errno_text(errno));
	return sync_dir(bs);
}

int blob_store_pack_size(struct blob_store *bs, int64_t pack_id,
			 uint64_t *ret_disk_bytes, uint64_t *ret_length)
{
	char path[4096];
	struct stat st;
	int rc = pack_path(bs, pack_id, path, sizeof(path));

	if (bs->has_backend) {
		rc = bs->backend.size(bs->backend.ctx, pack_id, ret_length);
		if (rc == 0)
			*ret_disk_bytes = *ret_length;
		return rc;
	}
	if (rc < 0)
		return rc;
	if (stat(path, &st) < 0)
		return -errno;
	*ret_disk_bytes = (uint64_t)st.st_blocks * 512;
	*ret_length = (uint64_t)st.st_size;
	return 0;
}

/* The id of a pack file's name ("00000007.pack"), or 0 if it is not one. */
static int64_t pack_id_of(const char *name)
{
	char *end;
	long long id;

	if (strlen(name) != 13 || strcmp(name + 8, ".pack") != 0)
		return 0;
	id = strtoll(name, &end, 10);
	return end == name + 8 && id > 0 ? id : 0;
}

int blob_store_list_packs(struct blob_store *bs, int64_t **ret_ids, size_t *ret_count)
{
	int64_t *ids = NULL, *more;
	size_t count = 0;
	struct dirent *e;
	DIR *d = opendir(bs->dir);

	*ret_ids = NULL;
	*ret_count = 0;
	if (bs->has_backend) {
		/* packs/ only stages a remote save's pack: none is the store's. */
		if (d)
			closedir(d);
		return 0;
	}
	if (!d)
		return errno == ENOENT ? 0 : error_set(-errno, "packs '%s': %s", bs->dir,
							errno_text(errno));
	while ((e = readdir(d))) {
		int64_t id = pack_id_of(e->d_name);

		if (!id)
			continue;
		more = realloc(ids, (count + 1) * sizeof(*ids));
		if (!more) {
			closedir(d);
			free(ids);
			return -ENOMEM;
		}
		ids = more;
		ids[count++] = id;
	}
	closedir(d);
	*ret_ids = ids;
	*ret_count = count;
	return 0;
}

uint64_t blob_store_disk_bytes(struct blob_store *bs)
{
	uint64_t total = 0;
	struct dirent *e;
	struct stat st;
	DIR *d = opendir(bs->dir);

	if (!d)
		return 0;
	/* Every *.pack file there, whatever the database says. */
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);

		if (n > 5 && strcmp(e->d_name + n - 5, ".pack") == 0 &&
		    fstatat(dirfd(d), e->d_name, &st, 0) == 0)
			total += (uint64_t)st.st_blocks * 512;
	}
	closedir(d);
	return total;
}
