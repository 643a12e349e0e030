// SPDX-License-Identifier: MIT
/*
 * Remote stores (remote.h has the bucket's layout): the pack backend that
 * reads through a local cache and ranged GETs, pulling the newest index,
 * and publishing a save (lock, pack, index, HEAD).
 *
 * The cache (one per host, shared by every process that opens the store:
 * mount, restore, uffd) keeps, per pack object, a sparse file of the bytes
 * fetched (NAME.data) and a bitmap of its 4 KiB blocks present (NAME.map).
 * Fetches are rounded out to whole 4 KiB blocks. It never answers for
 * itself: every blob is checked against its checksum after the read, and
 * one that fails is fetched again from the bucket (blob_store.c). It is
 * bounded in bytes: past the bound, the packs filled longest ago give
 * their blocks back (holes punched, bitmap cleared) until it is under 90 %
 * of it.
 */
#include "remote.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "errors.h"
#include "s3.h"
#include "snapfs.h"

#define CACHE_BLOCK 4096u
/* Reads of a pack that follow the one before (a sequential reader, the
 * decode-ahead workers' spans) fetch ahead: a window that starts at
 * RA_MIN and doubles up to RA_MAX, kept in memory (and in the cache). */
#define RA_MIN ((uint64_t)512 << 10)
#define RA_MAX ((uint64_t)8 << 20)
#define RA_GAP ((uint64_t)256 << 10)   /* bytes a "following" read may skip */
#define CACHE_DEFAULT_BYTES ((uint64_t)1 << 30)
#define LOCK_LEASE_S 600
#define LOCK_WAIT_S 600
#define LOCAL_LOCK_FILE "remote.lock"

struct rpack {
	int64_t id;
	char *object;
	uint64_t length;
	int data_fd, map_fd;         /* cache files; -1: none */
	uint64_t next_off;           /* where the last read ended */
	uint64_t ra_window;          /* 0: not sequential */
	unsigned char *ra_buf;       /* the last window fetched ahead */
	uint64_t ra_off, ra_len;
};

struct remote {
	char *dir;
	char *url;
	struct s3 *s3;
	remote_pack_lookup_fn lookup;
	void *lookup_ctx;
	pthread_mutex_t lock;        /* guards packs[], bitmaps, eviction */
	struct rpack *packs;
	size_t pack_count, pack_cap;
	char *cache_dir;             /* NULL: no cache */
	uint64_t cache_limit;
	_Atomic uint64_t cache_bytes;
	int local_fd;                /* the host-local lock, while held */
	bool bucket_locked;
	char lock_body[160];
	_Atomic uint64_t bytes_put;
};

static int parse_size(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;
	const char *units = "kmgt", *u;
	unsigned shift;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	u = *end ? strchr(units, *end | 0x20) : NULL;
	shift = u ? 10 * (unsigned)(u - units + 1) : 0;
	if (u)
		end++;
	if (*end || v > (UINT64_MAX >> shift))
		return -EINVAL;
	*ret = v << shift;
	return 0;
}

/* Bytes the cache's data files take on disk. */
static uint64_t cache_scan(const char *cache_dir)
{
	uint64_t total = 0;
	struct dirent *e;
	struct stat st;
	DIR *d = opendir(cache_dir);

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);

		if (n > 5 && strcmp(e->d_name + n - 5, ".data") == 0 &&
		    fstatat(dirfd(d), e->d_name, &st, 0) == 0)
			total += (uint64_t)st.st_blocks * 512;
	}
	closedir(d);
	return total;
}

int remote_open(const char *dir, const char *url, remote_pack_lookup_fn lookup,
		void *lookup_ctx, struct remote **ret)
{
	const char *cdir = getenv("SNAPFS_CACHE_DIR"), *csize = getenv("SNAPFS_CACHE_SIZE");
	struct remote *r = calloc(1, sizeof(*r));
	int rc;

	if (!r)
		return -ENOMEM;
	pthread_mutex_init(&r->lock, NULL);
	r->local_fd = -1;
	r->lookup = lookup;
	r->lookup_ctx = lookup_ctx;
	r->dir = strdup(dir);
	r->url = strdup(url);
	if (!r->dir || !r->url) {
		rc = -ENOMEM;
		goto out_close;
	}
	rc = s3_open(url, &r->s3);
	if (rc < 0)
		goto out_close;
	r->cache_limit = CACHE_DEFAULT_BYTES;
	if (csize && *csize && parse_size(csize, &r->cache_limit) < 0) {
		rc = error_set(-EINVAL, "SNAPFS_CACHE_SIZE '%s': not a size (BYTES, or with "
			       "K, M, G, T)", csize);
		goto out_close;
	}
	if (r->cache_limit > 0) {
		if (cdir && *cdir)
			r->cache_dir = strdup(cdir);
		else if (asprintf(&r->cache_dir, "%s/cache", dir) < 0)
			r->cache_dir = NULL;
		if (!r->cache_dir) {
			rc = -ENOMEM;
			goto out_close;
		}
		/* A cache that cannot be made is no cache (a read-only store). */
		if (mkdir(r->cache_dir, 0700) < 0 && errno != EEXIST) {
			free(r->cache_dir);
			r->cache_dir = NULL;
		}
		if (r->cache_dir)
			atomic_store(&r->cache_bytes, cache_scan(r->cache_dir));
	}
	*ret = r;
	return 0;

out_close:
	remote_close(r);
	return rc;
}

void remote_close(struct remote *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->pack_count; i++) {
		free(r->packs[i].object);
		free(r->packs[i].ra_buf);
		if (r->packs[i].data_fd >= 0)
			close(r->packs[i].data_fd);
		if (r->packs[i].map_fd >= 0)
			close(r->packs[i].map_fd);
	}
	free(r->packs);
	if (r->local_fd >= 0)
		close(r->local_fd);
	s3_close(r->s3);
	pthread_mutex_destroy(&r->lock);
	free(r->cache_dir);
	free(r->dir);
	free(r->url);
	free(r);
}

uint64_t remote_bytes_put(const struct remote *r)
{
	return atomic_load(&r->bytes_put);
}

/* ---- the pack backend ---- */

/* The cache file of object with suffix ("data", "map"). */
static void cache_path(const struct remote *r, const char *object, const char *suffix,
		       char *buf, size_t cap)
{
	size_t n = (size_t)snprintf(buf, cap, "%s/", r->cache_dir);

	for (const char *c = object; *c && n + 1 < cap; c++)
		buf[n++] = *c == '/' ? '_' : *c;
	buf[n < cap ? n : cap - 1] = '\0';
	snprintf(buf + strlen(buf), cap - strlen(buf), ".%s", suffix);
}

/* Pack id's entry (r->lock held), looked up on first use: its index in
 * r->packs in *ret_i, a copy of it in *ret. */
static int pack_find(struct remote *r, int64_t id, size_t *ret_i, struct rpack *ret)
{
	struct rpack p = { .id = id, .data_fd = -1, .map_fd = -1 };
	int rc;

	for (size_t i = 0; i < r->pack_count; i++) {
		if (r->packs[i].id == id) {
			*ret = r->packs[i];
			*ret_i = i;
			return 0;
		}
	}
	rc = r->lookup(r->lookup_ctx, id, &p.object, &p.length);
	if (rc < 0)
		return rc;
	if (r->cache_dir) {
		char path[4096];

		cache_path(r, p.object, "data", path, sizeof(path));
		p.data_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		cache_path(r, p.object, "map", path, sizeof(path));
		p.map_fd = p.data_fd >= 0 ? open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;
		if (p.map_fd < 0 && p.data_fd >= 0) {
			close(p.data_fd);
			p.data_fd = -1;
		}
	}
	if (r->pack_count == r->pack_cap) {
		size_t cap = r->pack_cap ? r->pack_cap * 2 : 16;
		struct rpack *bigger = realloc(r->packs, cap * sizeof(*bigger));

		if (!bigger) {
			free(p.object);
			if (p.data_fd >= 0)
				close(p.data_fd);
			if (p.map_fd >= 0)
				close(p.map_fd);
			return -ENOMEM;
		}
		r->packs = bigger;
		r->pack_cap = cap;
	}
	*ret_i = r->pack_count;
	r->packs[r->pack_count++] = p;
	*ret = p;
	return 0;
}

static int pack_get(struct remote *r, int64_t id, struct rpack *ret)
{
	size_t unused;

	return pack_find(r, id, &unused, ret);
}

static int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

static int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

/* Are blocks first..last all in the cache (map_fd's bits)? */
static bool blocks_present(int map_fd, uint64_t first, uint64_t last)
{
	unsigned char bits[512];
	uint64_t b0 = first / 8, n = last / 8 - b0 + 1;

	if (n > sizeof(bits) || pread_full(map_fd, bits, (size_t)n, b0) < 0)
		return false;
	for (uint64_t blk = first; blk <= last; blk++)
		if (!(bits[blk / 8 - b0] & (1u << (blk % 8))))
			return false;
	return true;
}

/* Mark blocks first..last present (r->lock held). */
static void blocks_mark(int map_fd, uint64_t first, uint64_t last)
{
	unsigned char bits[1024];
	uint64_t b0 = first / 8, n = last / 8 - b0 + 1;
	ssize_t got;

	if (n > sizeof(bits))
		return;
	memset(bits, 0, (size_t)n);
	got = pread(map_fd, bits, (size_t)n, (off_t)b0);
	(void)got;
	for (uint64_t blk = first; blk <= last; blk++)
		bits[blk / 8 - b0] |= (unsigned char)(1u << (blk % 8));
	(void)pwrite_full(map_fd, bits, (size_t)n, b0);
}

struct cache_file {
	char name[256];
	time_t mtime;
	uint64_t bytes;              /* on disk */
};

static int by_mtime(const void *a, const void *b)
{
	const struct cache_file *x = a, *y = b;

	return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

/* Over the bound: the packs filled longest ago give their bytes back until
 * the cache is under 90 % of it (r->lock held). Their files stay (other
 * readers have them open): the bitmap is cleared first, then the data's
 * blocks are punched; a reader between the two reads zeros, fails the
 * checksum and fetches again. */
static void cache_evict(struct remote *r)
{
	struct cache_file *files = NULL, *more;
	uint64_t total = 0;
	size_t count = 0;
	struct dirent *e;
	struct stat st;
	DIR *d = opendir(r->cache_dir);

	if (!d)
		return;
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);

		if (n < 6 || n >= sizeof(files->name) || strcmp(e->d_name + n - 5, ".data") != 0 ||
		    fstatat(dirfd(d), e->d_name, &st, 0) < 0 || st.st_blocks == 0)
			continue;
		more = realloc(files, (count + 1) * sizeof(*files));
		if (!more)
			break;
		files = more;
		snprintf(files[count].name, sizeof(files[count].name), "%s", e->d_name);
		files[count].mtime = st.st_mtime;
		files[count++].bytes = (uint64_t)st.st_blocks * 512;
		total += (uint64_t)st.st_blocks * 512;
	}
	if (!files) {                    /* nothing cached (or no memory) */
		closedir(d);
		return;
	}
	qsort(files, count, sizeof(*files), by_mtime);
	/* Each pack emptied takes its bytes off the count; the directory is
	 * counted again once, at the end (other processes share it). */
	for (size_t i = 0; i < count && total > r->cache_limit / 10 * 9; i++) {
		char map[sizeof(files->name)];
		size_t stem = strlen(files[i].name) - strlen(".data");
		int fd;

		/* NAME.data -> NAME.map (shorter: it fits). */
		memcpy(map, files[i].name, stem);
		strcpy(map + stem, ".map");
		fd = openat(dirfd(d), map, O_RDWR | O_CLOEXEC);
		if (fd >= 0) {
			(void)!ftruncate(fd, 0);
			close(fd);
		}
		fd = openat(dirfd(d), files[i].name, O_RDWR | O_CLOEXEC);
		if (fd >= 0) {
			if (fstat(fd, &st) == 0 &&
			    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
				      st.st_size) == 0)
				total -= files[i].bytes;
			close(fd);
		}
	}
	closedir(d);
	free(files);
	atomic_store(&r->cache_bytes, cache_scan(r->cache_dir));
}

/* Whether a read at off continues the pack's last reads: within RA_GAP
 * of where they ended (before or after), or inside the last window. */
static bool follows(const struct rpack *q, uint64_t off)
{
	if (off >= q->next_off)
		return off - q->next_off <= RA_GAP;
	if (q->next_off - off <= RA_GAP)
		return true;
	return q->ra_buf && off >= q->ra_off && off <= q->ra_off + q->ra_len + RA_GAP;
}

static int backend_read(void *ctx, int64_t pack_id, uint64_t off, size_t len, void *buf,
			bool fresh)
{
	struct remote *r = ctx;
	unsigned char *got;
	struct rpack p, *q;
	uint64_t a, b, window = 0;
	size_t i;
	int rc;

	pthread_mutex_lock(&r->lock);
	rc = pack_find(r, pack_id, &i, &p);
	if (rc < 0) {
		pthread_mutex_unlock(&r->lock);
		return rc;
	}
	if (off > p.length || len > p.length - off || len == 0) {
		pthread_mutex_unlock(&r->lock);
		return error_set(-SNAPFS_ECORRUPT, "pack %" PRId64 ": bytes %" PRIu64 "+%zu are "
				 "past its end (%" PRIu64 ")", pack_id, off, len, p.length);
	}
	q = &r->packs[i];
	/* Fetched ahead already? */
	if (!fresh && q->ra_buf && off >= q->ra_off && off + len <= q->ra_off + q->ra_len) {
		memcpy(buf, q->ra_buf + (off - q->ra_off), len);
		q->next_off = off + len;
		pthread_mutex_unlock(&r->lock);
		return 0;
	}
	/* A read that follows the last one grows the window; any other
	 * read ends it. Sequential readers come in several threads (the
	 * decode-ahead workers take their spans in turn), so a read a little
	 * behind the last one, or inside the window fetched last, still
	 * follows: only a jump elsewhere ends the window. */
	if (!fresh && q->next_off && follows(q, off))
		q->ra_window = q->ra_window ? (q->ra_window * 2 < RA_MAX ? q->ra_window * 2 : RA_MAX)
					    : RA_MIN;
	else
		q->ra_window = 0;
	if (off + len > q->next_off || !q->ra_window)
		q->next_off = off + len;
	window = q->ra_window;
	pthread_mutex_unlock(&r->lock);

	a = off / CACHE_BLOCK * CACHE_BLOCK;
	b = (off + len + CACHE_BLOCK - 1) / CACHE_BLOCK * CACHE_BLOCK;
	if (window && b < a + window)
		b = a + window;
	if (b > p.length)
		b = p.length;
	if (!fresh && !window && p.data_fd >= 0 &&
	    blocks_present(p.map_fd, a / CACHE_BLOCK, (b - 1) / CACHE_BLOCK) &&
	    pread_full(p.data_fd, buf, len, off) == 0)
		return 0;
	if (!fresh && window && p.data_fd >= 0 &&
	    blocks_present(p.map_fd, off / CACHE_BLOCK, (off + len - 1) / CACHE_BLOCK) &&
	    pread_full(p.data_fd, buf, len, off) == 0)
		return 0;
	got = malloc((size_t)(b - a));
	if (!got)
		return -ENOMEM;
	rc = s3_get_range(r->s3, p.object, a, (size_t)(b - a), got);
	if (rc < 0) {
		free(got);
		return error_prefix(rc, "pack %" PRId64, pack_id);
	}
	memcpy(buf, got + (off - a), len);
	if (p.data_fd >= 0 && pwrite_full(p.data_fd, got, (size_t)(b - a), a) == 0) {
		pthread_mutex_lock(&r->lock);
		blocks_mark(p.map_fd, a / CACHE_BLOCK, (b - 1) / CACHE_BLOCK);
		if (atomic_fetch_add(&r->cache_bytes, b - a) + (b - a) > r->cache_limit)
			cache_evict(r);
		pthread_mutex_unlock(&r->lock);
	}
	if (window) {
		pthread_mutex_lock(&r->lock);
		q = &r->packs[i];
		free(q->ra_buf);
		q->ra_buf = got;
		q->ra_off = a;
		q->ra_len = b - a;
		pthread_mutex_unlock(&r->lock);
		return 0;
	}
	free(got);
	return 0;
}

static int backend_size(void *ctx, int64_t pack_id, uint64_t *ret_length)
{
	struct remote *r = ctx;
	struct rpack p;
	int rc;

	pthread_mutex_lock(&r->lock);
	rc = pack_get(r, pack_id, &p);
	pthread_mutex_unlock(&r->lock);
	if (rc < 0)
		return rc;
	/* What the bucket has, not what the index says. */
	return s3_head(r->s3, p.object, ret_length);
}

void remote_backend(struct remote *r, struct pack_backend *ret_be)
{
	*ret_be = (struct pack_backend){ .read = backend_read, .size = backend_size, .ctx = r };
}

/* ---- objects: whole reads and writes, the newest generation ---- */

static int get_whole(struct remote *r, const char *key, unsigned char **ret, size_t *ret_len)
{
	uint64_t size = 0;
	unsigned char *buf;
	int rc;

	rc = s3_head(r->s3, key, &size);
	if (rc < 0)
		return rc;
	if (size > ((uint64_t)1 << 36))
		return error_set(-EFBIG, "%s: %" PRIu64 " bytes: too large", key, size);
	buf = malloc(size ? (size_t)size : 1);
	if (!buf)
		return -ENOMEM;
	rc = size ? s3_get_range(r->s3, key, 0, (size_t)size, buf) : 0;
	if (rc < 0) {
		free(buf);
		return rc;
	}
	*ret = buf;
	*ret_len = (size_t)size;
	return 0;
}

static int put(struct remote *r, const char *key, const void *data, size_t len, bool if_absent)
{
	int rc = s3_put(r->s3, key, data, len, if_absent);

	if (rc == 0)
		atomic_fetch_add(&r->bytes_put, len);
	return rc;
}

static void index_key(int64_t generation, char *buf, size_t cap)
{
	snprintf(buf, cap, "index/%016" PRId64 ".db", generation);
}

/* The bucket's newest generation (0: no index yet): HEAD's hint, then
 * the generations past it that exist (a writer may have stopped between
 * its index and HEAD). */
static int newest_generation(struct remote *r, int64_t *ret)
{
	unsigned char *head = NULL;
	size_t len = 0;
	int64_t g = 0;
	char key[64], text[32];
	uint64_t unused;
	int rc;

	rc = get_whole(r, "HEAD", &head, &len);
	if (rc == 0) {
		snprintf(text, sizeof(text), "%.*s", (int)(len < 31 ? len : 31), head);
		g = strtoll(text, NULL, 10);
		free(head);
		if (g < 0)
			g = 0;
	} else if (rc != -ENOENT) {
		return error_prefix(rc, "%s: HEAD", r->url);
	}
	for (;;) {
		index_key(g + 1, key, sizeof(key));
		rc = s3_head(r->s3, key, &unused);
		if (rc == -ENOENT)
			break;
		if (rc < 0)
			return error_prefix(rc, "%s", r->url);
		g++;
	}
	*ret = g;
	return 0;
}

static void unlink_db(const char *path)
{
	char *p;

	unlink(path);
	if (asprintf(&p, "%s-wal", path) >= 0) {
		unlink(p);
		free(p);
	}
	if (asprintf(&p, "%s-shm", path) >= 0) {
		unlink(p);
		free(p);
	}
}

/* ---- locks: host-local (flock) and the bucket's ---- */

static int local_lock(struct remote *r)
{
	char path[4200];
	int fd;

	if (r->local_fd >= 0)
		return 0;
	snprintf(path, sizeof(path), "%s/" LOCAL_LOCK_FILE, r->dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return error_set(-errno, "store '%s': %s: %s", r->dir, LOCAL_LOCK_FILE,
				 errno_text(errno));
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int rc = error_set(-errno, "store '%s': lock: %s", r->dir, errno_text(errno));

			close(fd);
			return rc;
		}
	}
	r->local_fd = fd;
	return 0;
}

static void local_unlock(struct remote *r)
{
	if (r->local_fd >= 0)
		close(r->local_fd);
	r->local_fd = -1;
}

static long env_seconds(const char *name, long dflt)
{
	const char *s = getenv(name);
	char *end;
	long v;

	if (!s || !*s)
		return dflt;
	v = strtol(s, &end, 10);
	return *end || v < 0 ? dflt : v;
}

/* The bucket's lock: PREFIX/lock, created only if absent; its body says
 * who holds it and until when (the lease, SNAPFS_S3_LOCK_LEASE seconds).
 * A lock past its lease is deleted and taken. */
static int bucket_lock(struct remote *r)
{
	long lease = env_seconds("SNAPFS_S3_LOCK_LEASE", LOCK_LEASE_S);
	long wait = env_seconds("SNAPFS_S3_LOCK_WAIT", LOCK_WAIT_S);
	time_t start = time(NULL);
	char host[64] = "?", held[160] = "";
	unsigned sleep_ms = 20;

	gethostname(host, sizeof(host) - 1);
	for (;;) {
		unsigned char *body = NULL;
		size_t len = 0;
		long long expires;
		const char *e;
		int rc;

		snprintf(r->lock_body, sizeof(r->lock_body), "host=%s pid=%ld expires=%lld\n",
			 host, (long)getpid(), (long long)time(NULL) + lease);
		rc = put(r, "lock", r->lock_body, strlen(r->lock_body), true);
		if (rc == 0) {
			r->bucket_locked = true;
			return 0;
		}
		if (rc != -EEXIST)
			return error_prefix(rc, "%s: take the lock", r->url);
		rc = get_whole(r, "lock", &body, &len);
		if (rc == -ENOENT)
			continue;                /* let go of meanwhile */
		if (rc < 0)
			return error_prefix(rc, "%s: read the lock", r->url);
		snprintf(held, sizeof(held), "%.*s", (int)(len < sizeof(held) - 1 ? len : sizeof(held) - 1),
			 body);
		free(body);
		held[strcspn(held, "\n")] = '\0';
		e = strstr(held, "expires=");
		expires = e ? strtoll(e + 8, NULL, 10) : 0;
		if (expires < (long long)time(NULL)) {
			s3_delete(r->s3, "lock");
			continue;
		}
		if (time(NULL) - start >= wait)
			return error_set(-EBUSY, "%s: the bucket's lock is held (%s); gave up after "
					 "%ld s (SNAPFS_S3_LOCK_WAIT)", r->url, held, wait);
		usleep(sleep_ms * 1000);
		if (sleep_ms < 500)
			sleep_ms *= 2;
	}
}

static void bucket_unlock(struct remote *r)
{
	unsigned char *body = NULL;
	size_t len = 0;

	if (!r->bucket_locked)
		return;
	r->bucket_locked = false;
	/* Only our own: a lock taken over after our lease is the taker's. */
	if (get_whole(r, "lock", &body, &len) == 0) {
		if (len == strlen(r->lock_body) && memcmp(body, r->lock_body, len) == 0)
			s3_delete(r->s3, "lock");
		free(body);
	}
}

/* ---- pull ---- */

static int pull_locked(struct remote *r, struct catalog *cat, bool force)
{
	unsigned char *data = NULL;
	struct catalog *tmp = NULL;
	int64_t local = 0, newest = 0;
	bool dirty = false;
	char key[64], path[4200];
	size_t len = 0;
	int fd, rc;

	rc = catalog_remote_get(cat, NULL, &local, &dirty);
	if (rc < 0)
		return rc;
	rc = newest_generation(r, &newest);
	if (rc < 0)
		return rc;
	if (newest == 0 || (!force && !dirty && local == newest))
		return 0;
	index_key(newest, key, sizeof(key));
	rc = get_whole(r, key, &data, &len);
	if (rc < 0)
		return error_prefix(rc, "%s: pull generation %" PRId64, r->url, newest);
	snprintf(path, sizeof(path), "%s/.pull-%ld.db", r->dir, (long)getpid());
	unlink_db(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = error_set(-errno, "'%s': %s", path, errno_text(errno));
		goto out_free;
	}
	rc = pwrite_full(fd, data, len, 0);
	close(fd);
	if (rc < 0) {
		rc = error_set(rc, "'%s': write failed", path);
		goto out_unlink;
	}
	/* The index is read as any store is: schema checked before use. */
	rc = catalog_open(path, false, &tmp);
	if (rc == 0)
		rc = catalog_remote_set(tmp, r->url, newest, false);
	catalog_close(tmp);
	if (rc == 0)
		rc = catalog_copy_from(cat, path);
	if (rc < 0)
		error_prefix(rc, "%s: pull generation %" PRId64, r->url, newest);
out_unlink:
	unlink_db(path);
out_free:
	free(data);
	return rc;
}

int remote_pull(struct remote *r, struct catalog *cat, bool force)
{
	bool held = r->local_fd >= 0;
	int rc = held ? 0 : local_lock(r);

	if (rc < 0)
		return rc;
	rc = pull_locked(r, cat, force);
	if (!held)
		local_unlock(r);
	return rc;
}

/* ---- publish ---- */

static int random_hex(char *buf, size_t cap)
{
	uint64_t v;

	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		return -EIO;
	snprintf(buf, cap, "%016" PRIx64, v);
	return 0;
}

/* Upload a whole local file as key. */
static int put_file(struct remote *r, const char *path, const char *key, bool if_absent)
{
	struct stat st;
	void *map;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_set(-errno, "'%s': %s", path, errno_text(errno));
	if (fstat(fd, &st) < 0) {
		rc = error_set(-errno, "'%s': %s", path, errno_text(errno));
		close(fd);
		return rc;
	}
	if (st.st_size == 0) {
		close(fd);
		return put(r, key, "", 0, if_absent);
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return error_set(-errno, "'%s': %s", path, errno_text(errno));
	rc = put(r, key, map, (size_t)st.st_size, if_absent);
	munmap(map, (size_t)st.st_size);
	return rc;
}

/* Make the staged pack at path the cache's copy of object: every block
 * present. Anything that fails leaves no cache file and no staged one. */
static void cache_adopt(struct remote *r, const char *path, const char *object)
{
	char data[4096], map[4096];
	unsigned char *bits;
	struct stat st;
	size_t n;
	int fd;

	if (!r->cache_dir || stat(path, &st) < 0 || (uint64_t)st.st_size > r->cache_limit) {
		unlink(path);
		return;
	}
	cache_path(r, object, "data", data, sizeof(data));
	cache_path(r, object, "map", map, sizeof(map));
	n = ((size_t)st.st_size + CACHE_BLOCK - 1) / CACHE_BLOCK;
	bits = malloc(n / 8 + 1);
	fd = bits ? open(map, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
	if (fd < 0 || rename(path, data) < 0) {
		if (fd >= 0) {
			close(fd);
			unlink(map);
		}
		free(bits);
		unlink(path);
		return;
	}
	memset(bits, 0, n / 8 + 1);
	for (size_t blk = 0; blk < n; blk++)
		bits[blk / 8] |= (unsigned char)(1u << (blk % 8));
	if (pwrite_full(fd, bits, n / 8 + 1, 0) < 0)
		(void)!ftruncate(fd, 0);
	close(fd);
	free(bits);
	pthread_mutex_lock(&r->lock);
	if (atomic_fetch_add(&r->cache_bytes, (uint64_t)st.st_size) + (uint64_t)st.st_size >
	    r->cache_limit)
		cache_evict(r);
	pthread_mutex_unlock(&r->lock);
}

static int publish(struct remote *r, struct catalog *cat, int64_t pack_id)
{
	char pack_path[4200], db_path[4200], key[64], object[96] = "", rnd[20], head[32];
	int64_t generation = 0;
	struct stat st;
	int rc;

	rc = catalog_remote_get(cat, NULL, &generation, NULL);
	if (rc < 0)
		return rc;
	/* 1. the new pack, durable in the bucket before any index names it */
	snprintf(pack_path, sizeof(pack_path), "%s/packs/%08" PRId64 ".pack", r->dir, pack_id);
	if (pack_id > 0 && stat(pack_path, &st) == 0 && st.st_size > 0) {
		rc = random_hex(rnd, sizeof(rnd));
		if (rc < 0)
			return error_set(rc, "random name: %s", errno_text(-rc));
		snprintf(object, sizeof(object), "packs/%08" PRId64 "-%s.pack", pack_id, rnd);
		rc = put_file(r, pack_path, object, true);
		if (rc < 0)
			return error_prefix(rc, "%s: upload pack %" PRId64, r->url, pack_id);
		rc = catalog_remote_pack_put(cat, pack_id, object);
		if (rc < 0)
			return rc;
	}
	/* 2. the index: generation + 1, created only if nobody made it first */
	snprintf(db_path, sizeof(db_path), "%s/.publish-%ld.db", r->dir, (long)getpid());
	unlink_db(db_path);
	rc = catalog_vacuum_into(cat, db_path);
	if (rc == 0) {
		index_key(generation + 1, key, sizeof(key));
		rc = put_file(r, db_path, key, true);
		if (rc == -EEXIST)
			rc = error_set(-EBUSY, "%s: generation %" PRId64 " was published by another "
				       "writer first (the bucket's lock lease ran out?): this save is "
				       "not published; run it again", r->url, generation + 1);
		else if (rc < 0)
			error_prefix(rc, "%s: upload the index", r->url);
	}
	unlink_db(db_path);
	if (rc < 0)
		return rc;
	/* 3. HEAD: a hint, readers probe past it */
	snprintf(head, sizeof(head), "%" PRId64 "\n", generation + 1);
	if (put(r, "HEAD", head, strlen(head), false) < 0)
		error_clear();
	rc = catalog_remote_set(cat, r->url, generation + 1, false);
	/* The pack is in the bucket: the staged copy becomes this host's
	 * cached copy of the object (or goes). */
	if (rc == 0 && pack_id > 0 && object[0])
		cache_adopt(r, pack_path, object);
	else if (rc == 0 && pack_id > 0)
		unlink(pack_path);
	return rc;
}

int remote_save_begin(struct remote *r, struct catalog *cat)
{
	int rc = local_lock(r);

	if (rc < 0)
		return rc;
	rc = bucket_lock(r);
	if (rc == 0)
		rc = pull_locked(r, cat, false);
	if (rc < 0) {
		bucket_unlock(r);
		local_unlock(r);
	}
	return rc;
}

int remote_save_end(struct remote *r, struct catalog *cat, int64_t pack_id, bool ok)
{
	char msg[512];
	int rc = 0;

	if (ok)
		rc = publish(r, cat, pack_id);
	if (!ok || rc < 0) {
		/* This copy must not keep what the bucket does not have. */
		snprintf(msg, sizeof(msg), "%s", snapfs_errmsg());
		if (pull_locked(r, cat, true) < 0)
			catalog_remote_mark_dirty(cat);
		if (pack_id > 0) {
			char path[4200];

			snprintf(path, sizeof(path), "%s/packs/%08" PRId64 ".pack", r->dir, pack_id);
			unlink(path);
		}
		error_set(rc < 0 ? rc : -EIO, "%s", msg);
	}
	bucket_unlock(r);
	local_unlock(r);
	return rc;
}

/* ---- gc: objects no index names ---- */

struct object_list {
	char **keys;
	uint64_t *sizes;
	size_t count, cap;
};

static int object_add(const char *key, uint64_t size, void *arg)
{
	struct object_list *l = arg;

	if (l->count == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		char **keys = realloc(l->keys, cap * sizeof(*keys));
		uint64_t *sizes;

		if (!keys)
			return -ENOMEM;
		l->keys = keys;
		sizes = realloc(l->sizes, cap * sizeof(*sizes));
		if (!sizes)
			return -ENOMEM;
		l->sizes = sizes;
		l->cap = cap;
	}
	l->keys[l->count] = strdup(key);
	if (!l->keys[l->count])
		return -ENOMEM;
	l->sizes[l->count++] = size;
	return 0;
}

int remote_gc(struct remote *r, struct catalog *cat, uint64_t *ret_objects,
	      uint64_t *ret_bytes)
{
	struct object_list l = { 0 };
	uint64_t objects = 0, bytes = 0;
	int rc = remote_save_begin(r, cat);

	if (rc < 0)
		return rc;
	/* Under the lock, every save has published or never will (one whose
	 * lease was taken over fails at its conditional index create): a
	 * pack object the newest index does not name is garbage. */
	rc = s3_list(r->s3, "packs/", object_add, &l);
	for (size_t i = 0; rc == 0 && i < l.count; i++) {
		int named = catalog_remote_object_named(cat, l.keys[i]);

		if (named < 0)
			rc = named;
		else if (!named && (rc = s3_delete(r->s3, l.keys[i])) == 0) {
			objects++;
			bytes += l.sizes[i];
		}
	}
	for (size_t i = 0; i < l.count; i++)
		free(l.keys[i]);
	free(l.keys);
	free(l.sizes);
	bucket_unlock(r);
	local_unlock(r);
	if (rc < 0)
		return error_prefix(rc, "%s: gc", r->url);
	*ret_objects = objects;
	*ret_bytes = bytes;
	return 0;
}

/* ---- init ---- */

int remote_init(const char *dir, const char *url, struct catalog *cat)
{
	struct remote *r = NULL;
	char path[4200], key[64];
	int64_t newest = 0;
	int rc;

	rc = remote_open(dir, url, NULL, NULL, &r);
	if (rc < 0)
		return rc;
	rc = s3_create_bucket(r->s3);
	if (rc == -EEXIST)
		rc = 0;
	if (rc < 0) {
		error_prefix(rc, "%s: create bucket", url);
		goto out_close;
	}
	rc = catalog_remote_set(cat, url, 0, false);
	if (rc == 0)
		rc = newest_generation(r, &newest);
	if (rc < 0)
		goto out_close;
	if (newest == 0) {
		/* An empty bucket: this store's empty index is generation 1
		 * (another host's init may make it first: then that one is). */
		snprintf(path, sizeof(path), "%s/.publish-%ld.db", dir, (long)getpid());
		unlink_db(path);
		rc = catalog_vacuum_into(cat, path);
		index_key(1, key, sizeof(key));
		if (rc == 0)
			rc = put_file(r, path, key, true);
		unlink_db(path);
		if (rc == -EEXIST)
			rc = 0;
		if (rc == 0)
			rc = put(r, "HEAD", "1\n", 2, false);
		if (rc < 0) {
			error_prefix(rc, "%s: publish the first index", url);
			goto out_close;
		}
	}
	rc = remote_pull(r, cat, true);
out_close:
	remote_close(r);
	return rc;
}
