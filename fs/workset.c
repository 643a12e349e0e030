// SPDX-License-Identifier: MIT
/*
 * Working sets in the mount (see workset.h): the recorders that note each
 * page's first read, the worker that saves their records and runs the
 * prefetches, and the prefetch itself, which reads a recorded working set
 * through the core's checked read path (snapfs_image_read_slices) and
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
		  unsigned record_seconds, bool prefetch)
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
	atomic_init(&ws->stopping, false);
	pthread_mutex_init(&ws->lock, NULL);
	/* Deadlines are on the monotonic clock: so are the waits for them. */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&ws->wake, &attr);
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

static int run_cmp(const void *a, const void *b)
{
	const struct snapfs_page_run *x = a, *y = b;

	return x->first_page < y->first_page ? -1 : x->first_page > y->first_page;
}

/* Sort runs by offset and merge those that overlap or lie within
 * PREFETCH_GAP_PAGES of each other; the new count in place. */
static size_t runs_merge(struct snapfs_page_run *runs, size_t count)
{
	size_t out = 0;

	if (count == 0)
		return 0;
	qsort(runs, count, sizeof(*runs), run_cmp);
	for (size_t i = 1; i < count; i++) {
		struct snapfs_page_run *cur = &runs[out];
		uint64_t end = cur->first_page + cur->page_count;

		if (runs[i].first_page <= end + PREFETCH_GAP_PAGES) {
			uint64_t e = runs[i].first_page + runs[i].page_count;

			if (e > end)
				cur->page_count = e - cur->first_page;
		} else {
			runs[++out] = runs[i];
		}
	}
	return out + 1;
}

/* Read len bytes at off and push them into the kernel's cache of the
 * memory file ino. */
static int push_chunk(struct workset *ws, struct snapfs_image *image,
		      fuse_ino_t ino, uint64_t off, size_t len)
{
	struct snapfs_read_slices slices;
	struct fuse_bufvec *bufv;
	int rc;

	rc = snapfs_image_read_slices(image, off, len, &slices);
	if (rc == 0 && slices.len != len)
		rc = -EIO;              /* never push a short read */
	if (rc < 0)
		goto out_release;
	bufv = calloc(1, sizeof(*bufv) + slices.count * sizeof(bufv->buf[0]));
	if (!bufv) {
		rc = -ENOMEM;
		goto out_release;
	}
	bufv->count = slices.count;
	for (size_t i = 0; i < slices.count; i++) {
		bufv->buf[i].size = slices.iov[i].iov_len;
		bufv->buf[i].mem = slices.iov[i].iov_base;
		bufv->buf[i].fd = -1;
	}
	rc = fuse_lowlevel_notify_store(ws->se, ino, (off_t)off, bufv, 0);
	free(bufv);
out_release:
	snapfs_read_slices_release(&slices);
	return rc;
}

/* The order of the reads: by offset, merged, not first-touch. Measured on
 * the benchmark's core image (tests/bench, working set replay): offset
 * order makes the fewest and most sequential disk reads, and the replay
 * that races the prefetch was no slower than with first-touch order
 * (BENCHMARKS.md). */
static void job_run(struct workset *ws, struct workset_job *job)
{
	const struct snapfs_snapshot *snap = &job->node->snap;
	fuse_ino_t ino = inode_make(snap->id, INODE_KIND_MEMORY);
	struct snapfs_page_run *runs = NULL;
	struct timespec t0 = now_mono();
	uint64_t pushed = 0, reads = 0;
	size_t count = 0;
	int rc;

	rc = snapfs_working_set_get(ws->store, snap->id, &runs, &count);
	if (rc < 0) {
		fslog_error("snapshot '%s': working set not read: %s", snap->name,
			    snapfs_errmsg()[0] ? snapfs_errmsg() : snapfs_strerror(rc));
		return;
	}
	if (count == 0)
		return;
	count = runs_merge(runs, count);
	for (size_t i = 0; i < count && rc == 0; i++) {
		uint64_t page = runs[i].first_page;
		uint64_t end = page + runs[i].page_count;

		while (page < end && rc == 0) {
			uint64_t n = end - page, off = page * SNAPFS_PAGE_SIZE;
			size_t len;

			if (atomic_load(&ws->stopping)) {
				rc = -ECANCELED;
				break;
			}
			if (n > PREFETCH_CHUNK_PAGES)
				n = PREFETCH_CHUNK_PAGES;
			if (off >= snap->file_size)
				break;
			len = (size_t)(n * SNAPFS_PAGE_SIZE);
			if (len > snap->file_size - off)
				len = (size_t)(snap->file_size - off);
			rc = push_chunk(ws, job->image, ino, off, len);
			reads++;
			if (rc == 0)
				pushed += n;
			page += n;
		}
	}
	free(runs);
	if (rc < 0 && rc != -ECANCELED)
		fslog_error("snapshot '%s': prefetch stopped at %" PRIu64 " pages: %s",
			    snap->name, pushed, snapfs_errmsg()[0] ? snapfs_errmsg() :
			    snapfs_strerror(rc));
	else
		fslog_info("snapshot '%s': prefetched %" PRIu64 " pages in %" PRIu64
			   " reads, %.1f ms%s", snap->name, pushed, reads,
			   ms_since(t0), rc == -ECANCELED ? " (stopped)" : "");
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

static bool id_in(const int64_t *ids, size_t count, int64_t id)
{
	for (size_t i = 0; i < count; i++)
		if (ids[i] == id)
			return true;
	return false;
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
	int64_t *bigger;
	int rc;

	if (id_in(ws->prefetched, ws->prefetched_count, node->snap.id))
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
	ws->prefetched[ws->prefetched_count++] = node->snap.id;
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
	if (!ws->record && !ws->prefetch)
		return;
	pthread_mutex_lock(&ws->lock);
	if (!atomic_load(&ws->stopping)) {
		if (ws->record)
			rc = recorder_get_locked(ws, node, ret_rec);
		else
			rc = prefetch_queue_locked(ws, node);
	}
	pthread_mutex_unlock(&ws->lock);
	if (rc < 0)
		fslog_error("snapshot '%s': working set %s: %s", node->snap.name,
			    ws->record ? "not recorded" : "not prefetched",
			    snapfs_strerror(rc));
}

bool workset_stop(struct workset *ws)
{
	struct workset_recorder *rec;
	struct timespec until;
	bool started;

	pthread_mutex_lock(&ws->lock);
	atomic_store(&ws->stopping, true);
	pthread_cond_signal(&ws->wake);
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
	pthread_cond_destroy(&ws->wake);
	pthread_mutex_destroy(&ws->lock);
	return true;
}
