// SPDX-License-Identifier: MIT
/*
 * Working sets in the mount (see workset.h): the recorders that note each
 * page's first read, the worker that saves their records and runs the
 * prefetches, and the prefetch itself, which reads a recorded working set
 * through the core's checked read path (snapfs_image_prefetch_slices) and
 * hands the bytes to the kernel with fuse_lowlevel_notify_store(). Every
 * byte pushed is what a read of that page would have returned: a read
 * that fails, or comes back short, stops the prefetch before anything of
 * it is pushed.
 */
#include "workset.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fslog.h"
#include "inode.h"

/* Pages read (and pushed) at once by a prefetch: 1 MiB, the largest read
 * the core serves from its inline arrays and the most a FUSE read asks. */
#define PREFETCH_CHUNK_PAGES (SNAPFS_READ_SLICES_BYTES / SNAPFS_PAGE_SIZE)
/* Runs closer than this are read as one: a gap of a few pages costs less
 * to read (and to push: the bytes are right) than a request of its own. */
#define PREFETCH_GAP_PAGES 8
/* Threads that read one prefetch at once: a few disk reads in flight. */
#define PREFETCH_THREADS 4
/* How long workset_stop() waits for the worker. */
#define STOP_TIMEOUT_SEC 20

struct workset_recorder {
	struct workset_recorder *next;     /* in ws->recorders */
	int64_t snapshot_id;
	char name[SNAPFS_NAME_MAX + 1];
	struct timespec deadline;          /* CLOCK_MONOTONIC: end of the window */
	pthread_mutex_t lock;              /* guards what follows */
	unsigned handles;                  /* open memory files recording */
	bool closing;                      /* last handle gone: save now */
	bool done;                         /* taken by the worker: no more pages */
	bool failed;                       /* out of memory: not saved */
	uint64_t pages;                    /* pages of the memory file */
	uint8_t *seen;                     /* one bit a page: touched */
	struct snapfs_page_run *runs;      /* first-touch order */
	size_t run_count, run_cap;
	uint64_t page_total;               /* pages in runs */
};

struct workset_job {
	struct workset_job *next;
	struct node *node;                 /* a reference */
	struct snapfs_image *image;        /* the node's, held with node_image_get */
};

void workset_init(struct workset *ws, struct snapfs_store *store,
		  const char *store_path, struct fuse_session *se, bool record,
		  unsigned record_seconds, bool prefetch, unsigned wait_ms)
{
	pthread_condattr_t attr;

	memset(ws, 0, sizeof(*ws));
	ws->store = store;
	ws->store_path = store_path;
	ws->se = se;
	ws->record = record;
	ws->record_seconds = record_seconds;
	/* A recording mount must see every read: nothing is prefetched. */
	ws->prefetch = prefetch && !record;
	ws->wait_ms = wait_ms;
	atomic_init(&ws->stopping, false);
	pthread_mutex_init(&ws->lock, NULL);
	/* Deadlines are on the monotonic clock: so are the waits for them. */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&ws->wake, &attr);
	pthread_cond_init(&ws->finished, &attr);
	pthread_condattr_destroy(&attr);
}

static struct timespec now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts;
}

static bool ts_before(struct timespec a, struct timespec b)
{
	return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec);
}

static double ms_since(struct timespec t0)
{
	struct timespec t = now_mono();

	return (double)(t.tv_sec - t0.tv_sec) * 1e3 +
	       (double)(t.tv_nsec - t0.tv_nsec) / 1e6;
}

/* --- recording ------------------------------------------------------------ */

static void recorder_free(struct workset_recorder *rec)
{
	if (!rec)
		return;
	free(rec->seen);
	free(rec->runs);
	pthread_mutex_destroy(&rec->lock);
	free(rec);
}

static int recorder_new(const struct node *node, unsigned seconds,
			struct workset_recorder **ret_rec)
{
	struct workset_recorder *rec;
	uint64_t pages = (node->snap.file_size + SNAPFS_PAGE_SIZE - 1) /
			 SNAPFS_PAGE_SIZE;

	rec = calloc(1, sizeof(*rec));
	if (!rec)
		return -ENOMEM;
	pthread_mutex_init(&rec->lock, NULL);
	rec->snapshot_id = node->snap.id;
	memcpy(rec->name, node->snap.name, sizeof(rec->name));
	rec->pages = pages;
	rec->seen = calloc(pages / 8 + 1, 1);
	if (!rec->seen) {
		recorder_free(rec);
		return -ENOMEM;
	}
	rec->deadline = now_mono();
	rec->deadline.tv_sec += seconds;
	*ret_rec = rec;
	return 0;
}

/* Under rec->lock: page is touched for the first time. */
static int recorder_append(struct workset_recorder *rec, uint64_t page)
{
	struct snapfs_page_run *last, *bigger;

	last = rec->run_count ? &rec->runs[rec->run_count - 1] : NULL;
	if (last && last->first_page + last->page_count == page) {
		last->page_count++;
		rec->page_total++;
		return 0;
	}
	if (rec->run_count == rec->run_cap) {
		size_t cap = rec->run_cap ? rec->run_cap * 2 : 256;

		bigger = realloc(rec->runs, cap * sizeof(*bigger));
		if (!bigger)
			return -ENOMEM;
		rec->runs = bigger;
		rec->run_cap = cap;
	}
	rec->runs[rec->run_count].first_page = page;
	rec->runs[rec->run_count].page_count = 1;
	rec->run_count++;
	rec->page_total++;
	return 0;
}

void workset_record(struct workset_recorder *rec, uint64_t off, size_t len)
{
	uint64_t first, last;

	if (!rec || len == 0)
		return;
	first = off / SNAPFS_PAGE_SIZE;
	last = (off + len - 1) / SNAPFS_PAGE_SIZE;
	pthread_mutex_lock(&rec->lock);
	/* Reads after the window are not part of the working set. */
	if (rec->done || rec->failed || !ts_before(now_mono(), rec->deadline))
		goto out_unlock;
	if (last >= rec->pages)
		last = rec->pages - 1;
	for (uint64_t p = first; p <= last && p < rec->pages; p++) {
		if (rec->seen[p / 8] & (1u << (p % 8)))
			continue;
		rec->seen[p / 8] |= (uint8_t)(1u << (p % 8));
		if (recorder_append(rec, p) < 0) {
			rec->failed = true;
			break;
		}
	}
out_unlock:
	pthread_mutex_unlock(&rec->lock);
}

void workset_release(struct workset *ws, struct workset_recorder *rec)
{
	bool last;

	if (!rec)
		return;
	pthread_mutex_lock(&rec->lock);
	last = --rec->handles == 0;
	if (last)
		rec->closing = true;
	pthread_mutex_unlock(&rec->lock);
	if (last) {
		pthread_mutex_lock(&ws->lock);
		pthread_cond_signal(&ws->wake);
		pthread_mutex_unlock(&ws->lock);
	}
}

/* In the worker, without ws->lock: write rec's record to the store. */
static void recorder_save(struct workset *ws, struct workset_recorder *rec)
{
	struct snapfs_page_run *runs;
	size_t count;
	uint64_t pages;
	bool failed;
	int rc;

	pthread_mutex_lock(&rec->lock);
	rec->done = true;
	runs = rec->runs;
	count = rec->run_count;
	pages = rec->page_total;
	failed = rec->failed;
	rec->runs = NULL;
	rec->run_count = rec->run_cap = 0;
	free(rec->seen);
	rec->seen = NULL;
	pthread_mutex_unlock(&rec->lock);
	if (failed) {
		fslog_error("snapshot '%s': working set not recorded: out of memory",
			    rec->name);
		goto out_free;
	}
	if (count == 0) {
		/* Nothing read: an earlier record stays. */
		fslog_info("snapshot '%s': no pages read, working set not recorded",
			   rec->name);
		goto out_free;
	}
	if (!ws->writer) {
		rc = snapfs_store_open(ws->store_path, 0, &ws->writer);
		if (rc < 0) {
			fslog_error("snapshot '%s': working set not recorded: %s",
				    rec->name, snapfs_errmsg()[0] ? snapfs_errmsg() :
				    snapfs_strerror(rc));
			goto out_free;
		}
	}
	rc = snapfs_working_set_save(ws->writer, rec->snapshot_id, runs, count);
	if (rc < 0)
		fslog_error("snapshot '%s': working set not recorded: %s",
			    rec->name, snapfs_errmsg()[0] ? snapfs_errmsg() :
			    snapfs_strerror(rc));
	else
		fslog_info("snapshot '%s': working set recorded: %" PRIu64
			   " pages in %zu runs", rec->name, pages, count);
out_free:
	free(runs);
}

/* --- prefetching ------------------------------------------------------------ */

/* An extent of the working set to read: pages sorted and merged, with
 * the place of its first-touched page in the record. */
struct extent {
	uint64_t first_page;
	uint64_t page_count;
	size_t first_seq;
};

static int extent_by_page(const void *a, const void *b)
{
	const struct extent *x = a, *y = b;

	return x->first_page < y->first_page ? -1 : x->first_page > y->first_page;
}

static int extent_by_seq(const void *a, const void *b)
{
	const struct extent *x = a, *y = b;

	return x->first_seq < y->first_seq ? -1 : x->first_seq > y->first_seq;
}

/* The chunks to read for runs: sorted by offset, merged where they overlap
 * or lie within PREFETCH_GAP_PAGES of each other, cut at
 * PREFETCH_CHUNK_PAGES, then put back in the order of their first touch.
 * Returns the count; *ret_ext is malloc'ed. */
static int extents_make(const struct snapfs_page_run *runs, size_t count,
			struct extent **ret_ext, size_t *ret_count)
{
	struct extent *ext, *out;
	size_t n = 0, total = 0;

	ext = malloc((count ? count : 1) * sizeof(*ext));
	if (!ext)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++)
		ext[i] = (struct extent){ runs[i].first_page, runs[i].page_count, i };
	qsort(ext, count, sizeof(*ext), extent_by_page);
	for (size_t i = 0; i < count; i++) {
		struct extent *cur = n ? &ext[n - 1] : NULL;
		uint64_t end = cur ? cur->first_page + cur->page_count : 0;

		if (cur && ext[i].first_page <= end + PREFETCH_GAP_PAGES) {
			uint64_t e = ext[i].first_page + ext[i].page_count;

			if (e > end)
				cur->page_count = e - cur->first_page;
			if (ext[i].first_seq < cur->first_seq)
				cur->first_seq = ext[i].first_seq;
		} else {
			ext[n++] = ext[i];
		}
	}
	for (size_t i = 0; i < n; i++)
		total += (size_t)((ext[i].page_count + PREFETCH_CHUNK_PAGES - 1) /
				  PREFETCH_CHUNK_PAGES);
	out = malloc((total ? total : 1) * sizeof(*out));
	if (!out) {
		free(ext);
		return -ENOMEM;
	}
	total = 0;
	for (size_t i = 0; i < n; i++) {
		for (uint64_t p = 0; p < ext[i].page_count; p += PREFETCH_CHUNK_PAGES) {
			uint64_t left = ext[i].page_count - p;

			out[total++] = (struct extent){
				ext[i].first_page + p,
				left < PREFETCH_CHUNK_PAGES ? left : PREFETCH_CHUNK_PAGES,
				ext[i].first_seq,
			};
		}
	}
	free(ext);
	/* Pieces of one extent tie on first_seq and may swap (qsort is not
	 * stable): harmless, the threads take them at about the same time. */
	qsort(out, total, sizeof(*out), extent_by_seq);
	*ret_ext = out;
	*ret_count = total;
	return 0;
}

/* Read len bytes at off and push them into the kernel's cache of the
 * memory file ino, a slice at a time: libfuse sends a one-buffer store
 * as it is, but copies a store of several buffers into a fresh buffer
 * first (all of a 1 MiB chunk: 256 page faults and a copy, per chunk). */
static int push_chunk(struct workset *ws, struct snapfs_image *image,
		      fuse_ino_t ino, uint64_t off, size_t len)
{
	struct snapfs_read_slices slices;
	struct fuse_bufvec bufv = FUSE_BUFVEC_INIT(0);
	int rc;

	rc = snapfs_image_prefetch_slices(image, off, len, &slices);
	if (rc == 0 && slices.len != len)
		rc = -EIO;              /* never push a short read */
	for (size_t i = 0; rc == 0 && i < slices.count; i++) {
		bufv.buf[0].size = slices.iov[i].iov_len;
		bufv.buf[0].mem = slices.iov[i].iov_base;
		bufv.off = 0;
		rc = fuse_lowlevel_notify_store(ws->se, ino, (off_t)off, &bufv, 0);
		off += slices.iov[i].iov_len;
	}
	snapfs_read_slices_release(&slices);
	return rc;
}

/* One prefetch, shared by its PREFETCH_THREADS readers. */
struct prefetch {
	struct workset *ws;
	struct workset_job *job;
	const struct extent *ext;
	size_t count;
	atomic_size_t next;                /* the next extent to take */
	atomic_uint_fast64_t pushed;       /* pages pushed */
	atomic_int error;                  /* the first failure, or 0 */
};

static void *prefetch_reader(void *arg)
{
	struct prefetch *pf = arg;
	const struct snapfs_snapshot *snap = &pf->job->node->snap;
	fuse_ino_t ino = inode_make(snap->id, INODE_KIND_MEMORY);
	size_t i;
	int rc;

	while ((i = atomic_fetch_add(&pf->next, 1)) < pf->count) {
		uint64_t off = pf->ext[i].first_page * SNAPFS_PAGE_SIZE;
		uint64_t len = pf->ext[i].page_count * SNAPFS_PAGE_SIZE;

		if (atomic_load(&pf->ws->stopping) || atomic_load(&pf->error))
			break;
		if (off >= snap->file_size)
			continue;
		if (len > snap->file_size - off)
			len = snap->file_size - off;
		rc = push_chunk(pf->ws, pf->job->image, ino, off, (size_t)len);
		if (rc < 0) {
			int zero = 0;

			atomic_compare_exchange_strong(&pf->error, &zero, rc);
			break;
		}
		atomic_fetch_add(&pf->pushed, pf->ext[i].page_count);
	}
	return NULL;
}

/* The order of the reads: extents in the order of their first touch, read
 * by PREFETCH_THREADS threads at once. The replay races the prefetch, so
 * first-touch order serves its early faults first, and the threads keep
 * several disk reads in flight. Measured with the benchmark's working set
 * replay (tests/bench --quick --only replay, 1588 touches, 2343 pages in
 * 35 reads; medians of 5 cold runs on a shared machine): first-touch order
 * with 4 threads 50 ms (prefetch done in 40 ms), offset order with 4
 * threads 77 ms (101 ms), first-touch with 1 thread 129 ms, offset with 1
 * thread 86 ms; without prefetch 103-114 ms. */
static void job_run(struct workset *ws, struct workset_job *job)
{
	const struct snapfs_snapshot *snap = &job->node->snap;
	struct prefetch pf = { .ws = ws, .job = job };
	pthread_t threads[PREFETCH_THREADS];
	struct snapfs_page_run *runs = NULL;
	struct timespec t0 = now_mono();
	struct extent *ext = NULL;
	size_t count = 0, started = 0;
	int rc;

	rc = snapfs_working_set_get(ws->store, snap->id, &runs, &count);
	if (rc < 0) {
		fslog_error("snapshot '%s': working set not read: %s", snap->name,
			    snapfs_errmsg()[0] ? snapfs_errmsg() : snapfs_strerror(rc));
		return;
	}
	if (count == 0)
		return;
	rc = extents_make(runs, count, &ext, &pf.count);
	free(runs);
	if (rc < 0) {
		fslog_error("snapshot '%s': working set not prefetched: %s",
			    snap->name, snapfs_strerror(rc));
		return;
	}
	pf.ext = ext;
	atomic_init(&pf.next, 0);
	atomic_init(&pf.pushed, 0);
	atomic_init(&pf.error, 0);
	for (size_t i = 1; i < PREFETCH_THREADS; i++) {
		if (pthread_create(&threads[i], NULL, prefetch_reader, &pf) != 0)
			break;
		started = i;
	}
	prefetch_reader(&pf);
	for (size_t i = 1; i <= started; i++)
		pthread_join(threads[i], NULL);
	free(ext);
	rc = atomic_load(&pf.error);
	/* The file system went away under the prefetch (unmounted): the
	 * kernel no longer knows the inode. */
	if (rc == -ENOENT || rc == -ENODEV || rc == -EBADF ||
	    (rc == 0 && atomic_load(&ws->stopping)))
		rc = -ECANCELED;
	if (rc < 0 && rc != -ECANCELED)
		fslog_error("snapshot '%s': prefetch stopped at %" PRIu64 " pages: %s",
			    snap->name, (uint64_t)atomic_load(&pf.pushed),
			    snapfs_errmsg()[0] ? snapfs_errmsg() : snapfs_strerror(rc));
	else
		fslog_info("snapshot '%s': prefetched %" PRIu64 " pages in %zu reads, "
			   "%.1f ms%s", snap->name, (uint64_t)atomic_load(&pf.pushed),
			   pf.count, ms_since(t0), rc == -ECANCELED ? " (stopped)" : "");
}

static void job_free(struct workset_job *job)
{
	if (!job)
		return;
	if (job->image)
		node_image_put(job->node);
	node_unref(job->node);
	free(job);
}

/* Under ws->lock: the prefetch of snapshot id, or NULL. */
static struct workset_prefetch *prefetch_find_locked(struct workset *ws, int64_t id)
{
	for (size_t i = 0; i < ws->prefetched_count; i++)
		if (ws->prefetched[i].snapshot_id == id)
			return &ws->prefetched[i];
	return NULL;
}

/* In the worker: the prefetch of snapshot id is over; wake its waiters. */
static void prefetch_finish(struct workset *ws, int64_t id)
{
	struct workset_prefetch *pf;

	pthread_mutex_lock(&ws->lock);
	pf = prefetch_find_locked(ws, id);
	if (pf)
		pf->finished = true;
	pthread_cond_broadcast(&ws->finished);
	pthread_mutex_unlock(&ws->lock);
}

/* --- the worker --------------------------------------------------------------- */

/* Under ws->lock: a recorder to save now (window over, last handle gone,
 * or stopping), or NULL; *ret_next is the earliest deadline still open. */
static struct workset_recorder *due_recorder(struct workset *ws, bool stopping,
					     struct timespec *ret_next,
					     bool *ret_has_next)
{
	struct timespec now = now_mono();

	*ret_has_next = false;
	for (struct workset_recorder *rec = ws->recorders; rec; rec = rec->next) {
		bool due;

		pthread_mutex_lock(&rec->lock);
		due = !rec->done && (stopping || rec->closing ||
				     !ts_before(now, rec->deadline));
		if (!rec->done && !due &&
		    (!*ret_has_next || ts_before(rec->deadline, *ret_next))) {
			*ret_next = rec->deadline;
			*ret_has_next = true;
		}
		pthread_mutex_unlock(&rec->lock);
		if (due)
			return rec;
	}
	return NULL;
}

static void *worker_main(void *arg)
{
	struct workset *ws = arg;
	struct workset_recorder *rec;
	struct workset_job *job;
	struct timespec next;
	bool has_next, stopping;

	pthread_mutex_lock(&ws->lock);
	for (;;) {
		stopping = atomic_load(&ws->stopping);
		rec = due_recorder(ws, stopping, &next, &has_next);
		if (rec) {
			pthread_mutex_unlock(&ws->lock);
			recorder_save(ws, rec);
			pthread_mutex_lock(&ws->lock);
			continue;
		}
		job = ws->jobs;
		if (job)
			ws->jobs = job->next;
		if (job) {
			pthread_mutex_unlock(&ws->lock);
			if (!stopping)
				job_run(ws, job);
			prefetch_finish(ws, job->node->snap.id);
			job_free(job);
			pthread_mutex_lock(&ws->lock);
			continue;
		}
		if (stopping)
			break;
		if (has_next) {
			pthread_cond_timedwait(&ws->wake, &ws->lock, &next);
		} else {
			pthread_cond_wait(&ws->wake, &ws->lock);
		}
	}
	pthread_mutex_unlock(&ws->lock);
	return NULL;
}

/* Under ws->lock: start the worker if it does not run yet. */
static int worker_start_locked(struct workset *ws)
{
	int rc;

	if (ws->started)
		return 0;
	rc = pthread_create(&ws->thread, NULL, worker_main, ws);
	if (rc != 0)
		return -rc;
	ws->started = true;
	return 0;
}

/* Under ws->lock: the recorder of node's snapshot, made on its first open;
 * NULL once its window is over. */
static int recorder_get_locked(struct workset *ws, struct node *node,
			       struct workset_recorder **ret_rec)
{
	struct workset_recorder *rec;
	bool open;
	int rc;

	for (rec = ws->recorders; rec; rec = rec->next)
		if (rec->snapshot_id == node->snap.id)
			break;
	if (!rec) {
		rc = recorder_new(node, ws->record_seconds, &rec);
		if (rc < 0)
			return rc;
		rc = worker_start_locked(ws);
		if (rc < 0) {
			recorder_free(rec);
			return rc;
		}
		rec->next = ws->recorders;
		ws->recorders = rec;
	}
	pthread_mutex_lock(&rec->lock);
	open = !rec->done && !rec->closing && ts_before(now_mono(), rec->deadline);
	if (open)
		rec->handles++;
	pthread_mutex_unlock(&rec->lock);
	*ret_rec = open ? rec : NULL;
	return 0;
}

/* Under ws->lock: queue the prefetch of node's snapshot, on its first open
 * in this mount. */
static int prefetch_queue_locked(struct workset *ws, struct node *node)
{
	struct workset_job *job, **tail;
	struct snapfs_image *held;
	struct workset_prefetch *bigger;
	int rc;

	if (prefetch_find_locked(ws, node->snap.id))
		return 0;
	if (ws->prefetched_count == ws->prefetched_cap) {
		size_t cap = ws->prefetched_cap ? ws->prefetched_cap * 2 : 16;

		bigger = realloc(ws->prefetched, cap * sizeof(*bigger));
		if (!bigger)
			return -ENOMEM;
		ws->prefetched = bigger;
		ws->prefetched_cap = cap;
	}
	job = calloc(1, sizeof(*job));
	if (!job)
		return -ENOMEM;
	job->node = node_ref(node);
	/* The job's own hold on the image, so that it outlives the file. */
	rc = node_image_get(node, ws->store, &held);
	if (rc < 0)
		goto out_free;
	job->image = held;
	rc = worker_start_locked(ws);
	if (rc < 0)
		goto out_free;
	for (tail = &ws->jobs; *tail; tail = &(*tail)->next)
		;
	*tail = job;
	ws->prefetched[ws->prefetched_count++] =
		(struct workset_prefetch){ .snapshot_id = node->snap.id };
	pthread_cond_signal(&ws->wake);
	return 0;

out_free:
	job_free(job);
	return rc;
}

void workset_open_memory(struct workset *ws, struct node *node,
			 struct workset_recorder **ret_rec)
{
	int rc = 0;

	*ret_rec = NULL;
	if (!ws->record)
		return;
	pthread_mutex_lock(&ws->lock);
	if (!atomic_load(&ws->stopping))
		rc = recorder_get_locked(ws, node, ret_rec);
	pthread_mutex_unlock(&ws->lock);
	if (rc < 0)
		fslog_error("snapshot '%s': working set not recorded: %s",
			    node->snap.name, snapfs_strerror(rc));
}

/* Under ws->lock: wait until the prefetch of snapshot id is over, or
 * until. */
static void prefetch_wait_locked(struct workset *ws, int64_t id, struct timespec until)
{
	struct workset_prefetch *pf;

	while ((pf = prefetch_find_locked(ws, id)) && !pf->finished &&
	       !atomic_load(&ws->stopping)) {
		if (pthread_cond_timedwait(&ws->finished, &ws->lock, &until) == ETIMEDOUT)
			break;
	}
}

void workset_prefetch(struct workset *ws, struct node *node, bool wait)
{
	struct timespec until = now_mono();
	int rc = 0;

	if (!ws->prefetch)
		return;
	until.tv_sec += ws->wait_ms / 1000;
	until.tv_nsec += (long)(ws->wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&ws->lock);
	if (!atomic_load(&ws->stopping))
		rc = prefetch_queue_locked(ws, node);
	if (rc == 0 && wait && ws->wait_ms)
		prefetch_wait_locked(ws, node->snap.id, until);
	pthread_mutex_unlock(&ws->lock);
	if (rc < 0)
		fslog_error("snapshot '%s': working set not prefetched: %s",
			    node->snap.name, snapfs_strerror(rc));
}

bool workset_stop(struct workset *ws)
{
	struct workset_recorder *rec;
	struct timespec until;
	bool started;

	pthread_mutex_lock(&ws->lock);
	atomic_store(&ws->stopping, true);
	pthread_cond_signal(&ws->wake);
	pthread_cond_broadcast(&ws->finished);
	started = ws->started;
	pthread_mutex_unlock(&ws->lock);
	if (started) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += STOP_TIMEOUT_SEC;
		if (pthread_timedjoin_np(ws->thread, NULL, &until) != 0) {
			fslog_error("working sets: the worker did not stop within "
				    "%d seconds; left to the process exit",
				    STOP_TIMEOUT_SEC);
			return false;
		}
	}
	/* Without a worker, a recording that never started has nothing. */
	while ((rec = ws->recorders)) {
		ws->recorders = rec->next;
		recorder_free(rec);
	}
	while (ws->jobs) {
		struct workset_job *job = ws->jobs;

		ws->jobs = job->next;
		job_free(job);
	}
	free(ws->prefetched);
	snapfs_store_close(ws->writer);
	pthread_cond_destroy(&ws->finished);
	pthread_cond_destroy(&ws->wake);
	pthread_mutex_destroy(&ws->lock);
	return true;
}
