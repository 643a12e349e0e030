// SPDX-License-Identifier: MIT
/*
 * A userfaultfd page server speaking Firecracker's handler protocol: a
 * VMM maps its guest memory anonymous, registers it with a userfaultfd and
 * hands that over a Unix socket with the regions as JSON (uffd_json.c);
 * this file answers the faults with pages read through the image's
 * checked read path, copies a working set in ahead of them from a thread
 * of its own, follows a balloon's REMOVE events and poisons damaged pages
 * so that their readers get SIGBUS, never wrong bytes.
 *
 * Locking: the main thread reads the userfaultfd and serves faults; the
 * prefetch thread only copies. srv->lock orders the removed ranges
 * against the prefetch's copies: events are read and REMOVE recorded
 * under it, and the prefetch checks and copies under it, so that a page
 * the balloon took back is never filled with the snapshot's bytes again.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "snapfs.h"

/* Older kernel headers lack UFFDIO_POISON (Linux 6.6). */
#ifndef UFFDIO_POISON
#define _UFFDIO_POISON 0x08
struct uffdio_poison {
	struct uffdio_range range;
	__u64 mode;
	__s64 updated;
};
#define UFFDIO_POISON _IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)
#endif

/* Largest handshake message taken. */
#define HANDSHAKE_MAX (256u << 10)
#define HANDSHAKE_TIMEOUT_MS 10000
/* Bytes the prefetch reads and copies at once. */
#define PREFETCH_CHUNK ((uint64_t)SNAPFS_READ_SLICES_BYTES)
/* Threads that read a prefetch at once, and the gap between two pieces of
 * a working set that one read spans (pages), as the mount's prefetch. */
#define PREFETCH_THREADS 4
#define PREFETCH_GAP 8
/* Events read from the userfaultfd at once. */
#define EVENTS_MAX 64

struct range {
	uint64_t start, end;           /* host addresses, half-open */
};

struct server {
	struct snapfs_image *image;
	uint64_t file_size;
	int uffd;
	pid_t peer;                    /* the client (SO_PEERCRED), 0: unknown */
	struct snapfs_uffd_region *regions;   /* sorted by base */
	size_t region_count;
	struct snapfs_uffd_stats *st;
	pthread_mutex_t lock;          /* removed[], against the prefetch's copies */
	struct range *removed;         /* sorted, disjoint */
	size_t removed_count, removed_cap;
	atomic_bool stop;              /* the prefetch must stop */
	atomic_bool gone;              /* the client's memory is gone */
	unsigned char *bounce;         /* one page of the largest page size */
	uint64_t *deferred;            /* faults to answer again (EAGAIN) */
	size_t deferred_count, deferred_cap;
	const struct snapfs_page_run *prefetch;
	size_t prefetch_count;
	uint64_t around;               /* bytes a 4 KiB fault brings in, aligned */
};

static void count(uint64_t *field, uint64_t n)
{
	__atomic_fetch_add(field, n, __ATOMIC_RELAXED);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The region holding host address addr, or NULL. */
static const struct snapfs_uffd_region *region_of(const struct server *srv, uint64_t addr)
{
	size_t lo = 0, hi = srv->region_count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct snapfs_uffd_region *r = &srv->regions[mid];

		if (addr < r->base)
			hi = mid;
		else if (addr >= r->base + r->size)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

/* --- removed ranges (UFFD_EVENT_REMOVE) ------------------------------------ */

/* Under srv->lock (or in the main thread): true if [start, end) meets a
 * removed range. */
static bool removed_overlaps(const struct server *srv, uint64_t start, uint64_t end)
{
	size_t lo = 0, hi = srv->removed_count;

	/* The first range that ends after start. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (srv->removed[mid].end <= start)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < srv->removed_count && srv->removed[lo].start < end;
}

/* Under srv->lock: add [start, end), merged with the ranges it meets. */
static int removed_add(struct server *srv, uint64_t start, uint64_t end)
{
	size_t i = 0, j;

	while (i < srv->removed_count && srv->removed[i].end < start)
		i++;
	j = i;
	while (j < srv->removed_count && srv->removed[j].start <= end) {
		if (srv->removed[j].start < start)
			start = srv->removed[j].start;
		if (srv->removed[j].end > end)
			end = srv->removed[j].end;
		j++;
	}
	if (i == j) {
		if (srv->removed_count == srv->removed_cap) {
			size_t cap = srv->removed_cap ? srv->removed_cap * 2 : 16;
			struct range *grown = realloc(srv->removed, cap * sizeof(*grown));

			if (!grown)
				return -ENOMEM;
			srv->removed = grown;
			srv->removed_cap = cap;
		}
		memmove(&srv->removed[i + 1], &srv->removed[i],
			(srv->removed_count - i) * sizeof(*srv->removed));
		srv->removed_count++;
	} else if (j > i + 1) {
		memmove(&srv->removed[i + 1], &srv->removed[j],
			(srv->removed_count - j) * sizeof(*srv->removed));
		srv->removed_count -= j - i - 1;
	}
	srv->removed[i] = (struct range){ start, end };
	return 0;
}

/* --- the userfaultfd's ioctls ----------------------------------------------- */

/* errno of an ioctl that says the client's memory is gone. */
static bool client_gone(int err)
{
	return err == ESRCH;
}

/* Fill [dst, dst + len) from src (UFFDIO_COPY) or with zeros (src NULL:
 * UFFDIO_ZEROPAGE), waking the faulters. Pages found present are skipped
 * and counted in *ret_present. Returns 0, -EAGAIN (the client's memory
 * map is changing: a REMOVE event waits to be read; *ret_done says how far
 * it got), -ESRCH (the client is gone) or another -errno. */
static int fill(struct server *srv, uint64_t dst, const void *src, uint64_t len,
		uint64_t page, uint64_t *ret_done, uint64_t *ret_present)
{
	uint64_t done = 0;

	*ret_present = 0;
	while (done < len) {
		int64_t moved;
		int rc, err;

		if (src) {
			struct uffdio_copy c = {
				.dst = dst + done, .src = (uint64_t)(uintptr_t)src + done,
				.len = len - done, .mode = 0,
			};

			rc = ioctl(srv->uffd, UFFDIO_COPY, &c);
			err = errno;
			moved = c.copy;
		} else {
			struct uffdio_zeropage z = {
				.range = { .start = dst + done, .len = len - done }, .mode = 0,
			};

			rc = ioctl(srv->uffd, UFFDIO_ZEROPAGE, &z);
			err = errno;
			moved = z.zeropage;
		}
		if (rc == 0) {
			done = len;
			break;
		}
		if (moved > 0) {
			done += (uint64_t)moved;
			continue;
		}
		if (err == EEXIST) {
			/* That page is there already (a fault or the
			 * prefetch won the race): on to the next. */
			done += page;
			(*ret_present)++;
			continue;
		}
		*ret_done = done;
		return -err;
	}
	*ret_done = done;
	return 0;
}

static void wake(struct server *srv, uint64_t start, uint64_t len)
{
	struct uffdio_range r = { .start = start, .len = len };

	ioctl(srv->uffd, UFFDIO_WAKE, &r);
}

/* Make the page at addr raise SIGBUS for whoever touches it, now and
 * later: UFFDIO_POISON where the kernel has it (6.6 and later); before,
 * the faulting thread (or the client) is sent SIGBUS, which kills it
 * unless it handles the signal (then it faults again, and is sent it
 * again). Never a copy of bytes that failed their checks. */
static void poison(struct server *srv, uint64_t addr, uint64_t page, pid_t thread)
{
	struct uffdio_poison p = { .range = { .start = addr, .len = page }, .mode = 0 };

	count(&srv->st->poisoned_pages, 1);
	if (ioctl(srv->uffd, UFFDIO_POISON, &p) == 0 || errno == EEXIST)
		return;
	if (errno == ESRCH) {
		atomic_store(&srv->gone, true);
		return;
	}
	if (thread > 0 && srv->peer > 0 &&
	    syscall(SYS_tgkill, srv->peer, thread, SIGBUS) == 0)
		return;
	if (srv->peer > 0)
		kill(srv->peer, SIGBUS);
}

/* --- faults ---------------------------------------------------------------- */

/* The bytes of one page of region r at file offset off into bounce,
 * zeros past the end of the file. */
static int read_page(struct server *srv, uint64_t off, uint64_t page)
{
	ssize_t n = snapfs_image_read(srv->image, srv->bounce, (size_t)page, off);

	if (n < 0)
		return (int)n;
	memset(srv->bounce + n, 0, (size_t)(page - (uint64_t)n));
	return 0;
}

/* Fault-around: fill the srv->around bytes (aligned in the memory file)
 * around the fault at start, file offset off, in region r, from one read
 * (the blob decoded for the fault holds its neighbours). Returns 1 if done,
 * 0 to answer the page alone (a removed range nearby, the end of the
 * region or of the file, a read that failed: the page alone finds out),
 * or a negative error from the copy. */
static int serve_around(struct server *srv, const struct snapfs_uffd_region *r,
			uint64_t start, uint64_t off)
{
	struct snapfs_read_slices slices;
	uint64_t woff = off & ~(srv->around - 1), wend = woff + srv->around, dst, present = 0;
	uint64_t pages;
	int rc;

	if (woff < r->offset)
		woff = r->offset;
	if (wend > r->offset + r->size)
		wend = r->offset + r->size;
	if (wend > srv->file_size)
		wend = srv->file_size & ~(uint64_t)(SNAPFS_PAGE_SIZE - 1);
	dst = r->base + (woff - r->offset);
	if (wend <= off || wend - woff <= SNAPFS_PAGE_SIZE ||
	    removed_overlaps(srv, dst, dst + (wend - woff)))
		return 0;
	pages = (wend - woff) / SNAPFS_PAGE_SIZE;
	rc = snapfs_image_read_slices(srv->image, woff, (size_t)(wend - woff), &slices);
	if (rc < 0 || slices.len != wend - woff) {
		snapfs_read_slices_release(&slices);
		return 0;
	}
	for (size_t i = 0; i < slices.count && rc == 0; i++) {
		uint64_t len = slices.iov[i].iov_len, done, p;
		bool zero = snapfs_image_data_bytes(srv->image, woff, woff + len) == 0;

		rc = fill(srv, dst, zero ? NULL : slices.iov[i].iov_base, len, SNAPFS_PAGE_SIZE,
			  &done, &p);
		present += p;
		dst += len;
		woff += len;
	}
	snapfs_read_slices_release(&slices);
	if (rc < 0)
		return rc;
	count(&srv->st->fault_pages, 1);
	count(&srv->st->fault_around_pages, pages - present);
	/* The faulting page may have been among those present. */
	if (present)
		wake(srv, start, SNAPFS_PAGE_SIZE);
	return 1;
}

/* Answer a fault on host address addr. Returns 0, -EAGAIN (answer it
 * again later) or -ESRCH (the client is gone). */
static int serve_fault(struct server *srv, uint64_t addr, pid_t thread)
{
	const struct snapfs_uffd_region *r = region_of(srv, addr);
	struct snapfs_read_slices slices;
	uint64_t page, start, off, done, present;
	const void *src = NULL;
	bool zero;
	int rc;

	if (!r) {
		/* Registered by the client but not in its handshake:
		 * nothing to serve there that would be right. */
		page = SNAPFS_PAGE_SIZE;
		poison(srv, addr & ~(page - 1), page, thread);
		return 0;
	}
	page = r->page_size;
	start = addr & ~(page - 1);
	off = r->offset + (start - r->base);
	zero = removed_overlaps(srv, start, start + page) ||
	       snapfs_image_data_bytes(srv->image, off, off + page) == 0;
	if (!zero && page == SNAPFS_PAGE_SIZE && srv->around > SNAPFS_PAGE_SIZE) {
		rc = serve_around(srv, r, start, off);
		/* Another failure (a window past what the client
		 * registered: -ENOENT) leaves the page alone to answer. */
		if (rc > 0 || rc == -EAGAIN || rc == -ESRCH)
			return rc < 0 ? rc : 0;
	}
	if (zero && page == SNAPFS_PAGE_SIZE) {
		uint64_t len = page, at = start;

		/* A hole: its whole fault-around window, if all of it is one. */
		if (srv->around > page && !removed_overlaps(srv, start, start + page)) {
			uint64_t woff = off & ~(srv->around - 1), wend = woff + srv->around;

			if (woff >= r->offset && wend <= r->offset + r->size &&
			    snapfs_image_data_bytes(srv->image, woff, wend) == 0 &&
			    !removed_overlaps(srv, r->base + (woff - r->offset),
					      r->base + (wend - r->offset))) {
				at = r->base + (woff - r->offset);
				len = srv->around;
			}
		}
		rc = fill(srv, at, NULL, len, page, &done, &present);
		if (rc == 0 && len > page)
			count(&srv->st->fault_around_pages, len / page - present);
		if (rc == 0)
			count(present ? &srv->st->fault_present : &srv->st->fault_zero_pages, 1);
	} else if (zero) {
		/* No UFFDIO_ZEROPAGE for huge pages: copy zeros. */
		memset(srv->bounce, 0, (size_t)page);
		rc = fill(srv, start, srv->bounce, page, page, &done, &present);
		if (rc == 0)
			count(present ? &srv->st->fault_present : &srv->st->fault_zero_pages, 1);
	} else {
		rc = page == SNAPFS_PAGE_SIZE ?
		     snapfs_image_read_slices(srv->image, off, (size_t)page, &slices) :
		     read_page(srv, off, page);
		if (rc == 0 && page == SNAPFS_PAGE_SIZE) {
			if (slices.count == 1 && slices.len == page) {
				src = slices.iov[0].iov_base;
			} else {
				size_t at = 0;

				for (size_t i = 0; i < slices.count; i++) {
					memcpy(srv->bounce + at, slices.iov[i].iov_base,
					       slices.iov[i].iov_len);
					at += slices.iov[i].iov_len;
				}
				memset(srv->bounce + at, 0, (size_t)page - at);
				src = srv->bounce;
			}
		} else if (rc == 0) {
			src = srv->bounce;
		}
		if (rc < 0) {
			/* Damage (or no memory to check it with): the
			 * reader gets SIGBUS, never unchecked bytes. */
			if (page == SNAPFS_PAGE_SIZE)
				snapfs_read_slices_release(&slices);
			poison(srv, start, page, thread);
			return 0;
		}
		rc = fill(srv, start, src, page, page, &done, &present);
		if (page == SNAPFS_PAGE_SIZE)
			snapfs_read_slices_release(&slices);
		if (rc == 0)
			count(present ? &srv->st->fault_present : &srv->st->fault_pages, 1);
	}
	/* Present already: the fault raced a copy that did not wake this
	 * thread (or did, harmlessly twice). */
	if (rc == 0 && present)
		wake(srv, start, page);
	if (rc == -ENOENT)
		return 0;              /* unmapped meanwhile: nobody waits */
	return rc;
}

static int defer(struct server *srv, uint64_t addr)
{
	if (srv->deferred_count == srv->deferred_cap) {
		size_t cap = srv->deferred_cap ? srv->deferred_cap * 2 : 16;
		uint64_t *grown = realloc(srv->deferred, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		srv->deferred = grown;
		srv->deferred_cap = cap;
	}
	srv->deferred[srv->deferred_count++] = addr;
	return 0;
}

/* Answer a fault, or keep it for later if the memory map is changing. */
static int handle_fault(struct server *srv, uint64_t addr, pid_t thread)
{
	int rc;

	count(&srv->st->faults, 1);
	rc = serve_fault(srv, addr, thread);
	if (rc == -EAGAIN)
		return defer(srv, addr);
	if (client_gone(-rc)) {
		atomic_store(&srv->gone, true);
		return 0;
	}
	return rc < 0 ? error_set(rc, "uffd: fault at 0x%llx: %s", (unsigned long long)addr,
				  errno_text(-rc)) : 0;
}

/* Read what events there are and act on them: REMOVE first, under the
 * lock (see the top of the file), then the faults. */
static int read_events(struct server *srv)
{
	struct uffd_msg msgs[EVENTS_MAX];
	ssize_t n;
	size_t count_read;
	int rc = 0;

	pthread_mutex_lock(&srv->lock);
	n = read(srv->uffd, msgs, sizeof(msgs));
	if (n < 0) {
		int err = errno;

		pthread_mutex_unlock(&srv->lock);
		if (err == EAGAIN || err == EINTR)
			return 0;
		return error_set(-err, "uffd: reading the userfaultfd: %s", errno_text(err));
	}
	count_read = (size_t)n / sizeof(msgs[0]);
	for (size_t i = 0; i < count_read && rc == 0; i++) {
		if (msgs[i].event != UFFD_EVENT_REMOVE)
			continue;
		count(&srv->st->removes, 1);
		count(&srv->st->removed_bytes, msgs[i].arg.remove.end - msgs[i].arg.remove.start);
		rc = removed_add(srv, msgs[i].arg.remove.start, msgs[i].arg.remove.end);
	}
	pthread_mutex_unlock(&srv->lock);
	for (size_t i = 0; i < count_read && rc == 0; i++) {
		if (msgs[i].event == UFFD_EVENT_PAGEFAULT)
			rc = handle_fault(srv, msgs[i].arg.pagefault.address,
					  (pid_t)msgs[i].arg.pagefault.feat.ptid);
		/* Other events (fork, remap, unmap) are the client's
		 * choice to ask for; a VMM does not. A fork's event brings
		 * the child's userfaultfd into this process: not served. */
		else if (msgs[i].event == UFFD_EVENT_FORK)
			close((int)msgs[i].arg.fork.ufd);
	}
	return rc;
}

/* Answer again the faults that met a changing memory map. */
static int retry_deferred(struct server *srv)
{
	size_t n = srv->deferred_count;
	int rc = 0;

	srv->deferred_count = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		srv->st->faults--;     /* counted again */
		rc = handle_fault(srv, srv->deferred[i], 0);
	}
	return rc;
}

/* --- prefetch ----------------------------------------------------------- */

/* Copy one slice (file bytes [off, off + len) at host address dst) in,
 * under the lock, unless the balloon took part of it back. */
static void prefetch_slice(struct server *srv, uint64_t dst, const void *src, uint64_t off,
			   uint64_t len)
{
	bool zero = snapfs_image_data_bytes(srv->image, off, off + len) == 0;

	while (!atomic_load(&srv->stop)) {
		uint64_t done = 0, present = 0;
		int rc = 0;
		bool skip;

		pthread_mutex_lock(&srv->lock);
		skip = removed_overlaps(srv, dst, dst + len);
		if (!skip)
			rc = fill(srv, dst, zero ? NULL : src, len, SNAPFS_PAGE_SIZE, &done,
				  &present);
		pthread_mutex_unlock(&srv->lock);
		count(&srv->st->prefetched_pages, (done / SNAPFS_PAGE_SIZE) - present);
		count(&srv->st->prefetch_present, present);
		if (rc == -EAGAIN) {
			struct timespec pause = { 0, 200000 };

			dst += done, off += done, len -= done;
			src = zero ? NULL : (const char *)src + done;
			nanosleep(&pause, NULL);
			continue;
		}
		if (client_gone(-rc)) {
			atomic_store(&srv->gone, true);
			atomic_store(&srv->stop, true);
		}
		return;
	}
}

/* Copy in file bytes [off, off + len) of region r. A read that fails
 * copies nothing: its faults find the damage page by page. */
static void prefetch_piece(struct server *srv, const struct snapfs_uffd_region *r,
			   uint64_t off, uint64_t len)
{
	struct snapfs_read_slices slices;
	uint64_t dst = r->base + (off - r->offset);
	int rc;

	rc = snapfs_image_prefetch_slices(srv->image, off, (size_t)len, &slices);
	if (rc == 0 && slices.len == len) {
		for (size_t i = 0; i < slices.count && !atomic_load(&srv->stop); i++) {
			prefetch_slice(srv, dst, slices.iov[i].iov_base, off,
				       slices.iov[i].iov_len);
			dst += slices.iov[i].iov_len;
			off += slices.iov[i].iov_len;
		}
	}
	snapfs_read_slices_release(&slices);
}

/* A piece of the working set to copy in: file bytes [off, off + len) of
 * one region, with the place of its first-touched page in the record. */
struct piece {
	uint64_t off, len;
	size_t region, seq;
};

static int piece_by_off(const void *a, const void *b)
{
	const struct piece *x = a, *y = b;

	if (x->region != y->region)
		return x->region < y->region ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

static int piece_by_seq(const void *a, const void *b)
{
	const struct piece *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The pieces to copy in for the working set: its runs cut by the regions
 * of 4 KiB pages (huge pages come in by their faults), sorted, merged
 * across gaps of up to PREFETCH_GAP pages (one read serves both sides:
 * the gap's pages are the snapshot's too), cut at PREFETCH_CHUNK, and put
 * back in first-touch order, as the mount's prefetch does. */
static int pieces_make(const struct server *srv, struct piece **ret, size_t *ret_count)
{
	struct piece *p = NULL, *out;
	size_t n = 0, cap = 0, m = 0, total = 0;
	uint64_t limit = srv->file_size & ~(uint64_t)(SNAPFS_PAGE_SIZE - 1);

	for (size_t i = 0; i < srv->prefetch_count; i++) {
		uint64_t start = srv->prefetch[i].first_page * SNAPFS_PAGE_SIZE;
		uint64_t end = start + srv->prefetch[i].page_count * SNAPFS_PAGE_SIZE;

		for (size_t k = 0; k < srv->region_count; k++) {
			const struct snapfs_uffd_region *r = &srv->regions[k];
			uint64_t lo = start > r->offset ? start : r->offset;
			uint64_t hi = end < r->offset + r->size ? end : r->offset + r->size;

			if (hi > limit)
				hi = limit;
			if (r->page_size != SNAPFS_PAGE_SIZE || lo >= hi)
				continue;
			if (n == cap) {
				struct piece *grown;

				cap = cap ? cap * 2 : 64;
				grown = realloc(p, cap * sizeof(*p));
				if (!grown) {
					free(p);
					return -ENOMEM;
				}
				p = grown;
			}
			p[n++] = (struct piece){ lo, hi - lo, k, i };
		}
	}
	qsort(p, n, sizeof(*p), piece_by_off);
	for (size_t i = 0; i < n; i++) {
		struct piece *cur = m ? &p[m - 1] : NULL;

		if (cur && cur->region == p[i].region &&
		    p[i].off <= cur->off + cur->len + PREFETCH_GAP * SNAPFS_PAGE_SIZE) {
			if (p[i].off + p[i].len > cur->off + cur->len)
				cur->len = p[i].off + p[i].len - cur->off;
			if (p[i].seq < cur->seq)
				cur->seq = p[i].seq;
		} else {
			p[m++] = p[i];
		}
	}
	for (size_t i = 0; i < m; i++)
		total += (size_t)((p[i].len + PREFETCH_CHUNK - 1) / PREFETCH_CHUNK);
	out = malloc((total ? total : 1) * sizeof(*out));
	if (!out) {
		free(p);
		return -ENOMEM;
	}
	total = 0;
	for (size_t i = 0; i < m; i++)
		for (uint64_t at = 0; at < p[i].len; at += PREFETCH_CHUNK)
			out[total++] = (struct piece){
				p[i].off + at,
				p[i].len - at < PREFETCH_CHUNK ? p[i].len - at : PREFETCH_CHUNK,
				p[i].region, p[i].seq,
			};
	free(p);
	qsort(out, total, sizeof(*out), piece_by_seq);
	*ret = out;
	*ret_count = total;
	return 0;
}

/* One prefetch, shared by its PREFETCH_THREADS threads. */
struct prefetch {
	struct server *srv;
	const struct piece *pieces;
	size_t count;
	atomic_size_t next;
};

static void *prefetch_thread(void *arg)
{
	struct prefetch *pf = arg;
	size_t i;

	while (!atomic_load(&pf->srv->stop) && (i = atomic_fetch_add(&pf->next, 1)) < pf->count)
		prefetch_piece(pf->srv, &pf->srv->regions[pf->pieces[i].region], pf->pieces[i].off,
			       pf->pieces[i].len);
	return NULL;
}

/* The prefetch: pieces in first-touch order, read (and decoded) by
 * PREFETCH_THREADS threads at once, so that early faults find their pages
 * first and several disk reads are in flight. */
static void *prefetch_main(void *arg)
{
	struct server *srv = arg;
	struct prefetch pf = { .srv = srv };
	pthread_t threads[PREFETCH_THREADS];
	struct piece *pieces = NULL;
	uint64_t t0 = now_ms();
	size_t started = 0;

	if (pieces_make(srv, &pieces, &pf.count) < 0)
		return NULL;           /* no memory: the faults do it all */
	pf.pieces = pieces;
	atomic_init(&pf.next, 0);
	for (size_t i = 1; i < PREFETCH_THREADS; i++) {
		if (pthread_create(&threads[i], NULL, prefetch_thread, &pf) != 0)
			break;
		started = i;
	}
	prefetch_thread(&pf);
	for (size_t i = 1; i <= started; i++)
		pthread_join(threads[i], NULL);
	free(pieces);
	srv->st->prefetch_ms = now_ms() - t0;
	return NULL;
}

/* --- the handshake ------------------------------------------------------ */

/* true once text holds a whole JSON array (or cannot be one). */
static bool message_complete(const char *text, size_t len)
{
	int depth = 0;
	bool in_string = false, started = false;

	for (size_t i = 0; i < len; i++) {
		char c = text[i];

		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
			continue;
		}
		if (!started && (c == ' ' || c == '\n' || c == '\r' || c == '\t'))
			continue;
		if (!started && c != '[')
			return true;
		started = true;
		if (c == '"')
			in_string = true;
		else if (c == '[' || c == '{')
			depth++;
		else if ((c == ']' || c == '}') && --depth == 0)
			return true;
	}
	return false;
}

/* Keep the first descriptor of an SCM_RIGHTS message in *uffd, close
 * the rest. */
static void take_fds(struct msghdr *msg, int *uffd)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		size_t n;
		int fds[16];

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (n > 16)
			n = 16;
		memcpy(fds, CMSG_DATA(c), n * sizeof(int));
		for (size_t i = 0; i < n; i++) {
			if (*uffd < 0)
				*uffd = fds[i];
			else
				close(fds[i]);
		}
	}
}

/* Receive the regions' text and the userfaultfd (one message as
 * Firecracker sends it, though a stream may deliver it in pieces). */
static int receive_handshake(int conn, int timeout_ms, char **ret_text, size_t *ret_len,
			     int *ret_uffd)
{
	union {
		char buf[CMSG_SPACE(16 * sizeof(int))];
		struct cmsghdr align;
	} control;
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	size_t len = 0, cap = 4096;
	char *text = malloc(cap);
	int uffd = -1, rc;

	if (!text)
		return -ENOMEM;
	for (;;) {
		struct iovec iov;
		struct msghdr msg = { 0 };
		struct pollfd pfd = { .fd = conn, .events = POLLIN };
		uint64_t now = now_ms();
		ssize_t n;

		if (len == cap) {
			char *grown;

			if (cap >= HANDSHAKE_MAX) {
				rc = error_set(-EPROTO, "uffd handshake: longer than %u bytes",
					       HANDSHAKE_MAX);
				goto out_free;
			}
			grown = realloc(text, cap * 2);
			if (!grown) {
				rc = -ENOMEM;
				goto out_free;
			}
			text = grown;
			cap *= 2;
		}
		rc = poll(&pfd, 1, now >= deadline ? 0 : (int)(deadline - now));
		if (rc < 0 && errno == EINTR) {
			rc = error_set(-SNAPFS_ECANCELED, "uffd handshake: interrupted");
			goto out_free;
		}
		if (rc == 0) {
			rc = error_set(-ETIMEDOUT, "uffd handshake: nothing came in %d ms",
				       timeout_ms);
			goto out_free;
		}
		iov = (struct iovec){ text + len, cap - len };
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);
		n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
		if (n < 0) {
			rc = error_set(-errno, "uffd handshake: %s", errno_text(errno));
			goto out_free;
		}
		take_fds(&msg, &uffd);
		if (msg.msg_flags & MSG_CTRUNC) {
			rc = error_set(-EPROTO, "uffd handshake: too many file descriptors");
			goto out_free;
		}
		len += (size_t)n;
		if (n == 0 || message_complete(text, len))
			break;
	}
	if (len == 0) {
		rc = error_set(-EPROTO, "uffd handshake: the client closed the connection "
			       "without sending its regions");
		goto out_free;
	}
	if (uffd < 0) {
		rc = error_set(-EPROTO, "uffd handshake: no file descriptor came with the "
			       "regions (SCM_RIGHTS)");
		goto out_free;
	}
	*ret_text = text;
	*ret_len = len;
	*ret_uffd = uffd;
	return 0;

out_free:
	if (uffd >= 0)
		close(uffd);
	free(text);
	return rc;
}

/* true if fd is a userfaultfd. */
static bool is_userfaultfd(int fd)
{
	char path[64], target[128];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	return strstr(target, "userfaultfd") != NULL;
}

/* Receive and check the handshake into srv. */
static int handshake(struct server *srv, int conn, int timeout_ms)
{
	uint64_t largest = SNAPFS_PAGE_SIZE, limit;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	char *text = NULL;
	size_t len = 0;
	int rc;

	if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
		srv->peer = cred.pid;
	rc = receive_handshake(conn, timeout_ms, &text, &len, &srv->uffd);
	if (rc < 0)
		return rc;
	rc = snapfs_uffd_parse_regions(text, len, &srv->regions, &srv->region_count);
	free(text);
	if (rc < 0)
		return rc;
	limit = (srv->file_size + SNAPFS_PAGE_SIZE - 1) & ~(uint64_t)(SNAPFS_PAGE_SIZE - 1);
	for (size_t i = 0; i < srv->region_count; i++) {
		const struct snapfs_uffd_region *r = &srv->regions[i];

		if (r->offset > limit || r->size > limit - r->offset)
			return error_set(-EPROTO, "uffd handshake: region at 0x%llx (%llu bytes "
					 "from offset 0x%llx) reaches past the end of the "
					 "memory file (%llu bytes)", (unsigned long long)r->base,
					 (unsigned long long)r->size,
					 (unsigned long long)r->offset,
					 (unsigned long long)srv->file_size);
		if (r->page_size > largest)
			largest = r->page_size;
	}
	if (!is_userfaultfd(srv->uffd))
		return error_set(-EPROTO, "uffd handshake: the file descriptor sent is not a "
				 "userfaultfd");
	/* Non-blocking reads (the flag is the client's too: Firecracker sets
	 * it itself). */
	if (fcntl(srv->uffd, F_SETFL, fcntl(srv->uffd, F_GETFL) | O_NONBLOCK) < 0)
		return error_set(-errno, "uffd: %s", errno_text(errno));
	srv->st->regions = srv->region_count;
	srv->bounce = aligned_alloc(SNAPFS_PAGE_SIZE, (size_t)largest);
	return srv->bounce ? 0 : -ENOMEM;
}

/* --- serving ---------------------------------------------------------------- */

/* true once the client has gone: its socket closed, or (with a pidfd)
 * its process ended. */
static bool conn_closed(int conn)
{
	char buf[256];
	ssize_t n = recv(conn, buf, sizeof(buf), MSG_DONTWAIT);

	return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
}

static int serve_loop(struct server *srv, int conn, const struct snapfs_uffd_opts *opts)
{
	int pidfd = srv->peer > 0 ? (int)syscall(SYS_pidfd_open, srv->peer, 0) : -1;
	bool socket_open = true;
	int rc = 0;

	while (rc == 0 && !atomic_load(&srv->gone)) {
		struct pollfd pfd[3] = {
			{ .fd = srv->uffd, .events = POLLIN },
			{ .fd = socket_open ? conn : -1, .events = POLLIN | POLLRDHUP },
			{ .fd = pidfd, .events = POLLIN },
		};
		int n;

		if (opts && opts->cancel && *opts->cancel) {
			rc = error_set(-SNAPFS_ECANCELED, "uffd: stopped");
			break;
		}
		n = poll(pfd, 3, srv->deferred_count ? 1 : 200);
		if (n < 0 && errno != EINTR) {
			rc = error_set(-errno, "uffd: poll: %s", errno_text(errno));
			break;
		}
		if (n > 0 && (pfd[0].revents & POLLERR)) {
			rc = error_set(-EPROTO, "uffd: the userfaultfd is not set up (UFFDIO_API)");
			break;
		}
		if (n > 0 && (pfd[0].revents & POLLIN))
			rc = read_events(srv);
		if (rc == 0 && srv->deferred_count)
			rc = retry_deferred(srv);
		if (n > 0 && (pfd[2].revents & POLLIN))
			break;         /* the client's process ended */
		/* The socket's end is the client's (Firecracker keeps it
		 * open while it lives); with a pidfd, the process's end. */
		if (n > 0 && socket_open && pfd[1].revents && conn_closed(conn)) {
			socket_open = false;
			if (pidfd < 0)
				break;
		}
	}
	if (pidfd >= 0)
		close(pidfd);
	return rc;
}

int snapfs_uffd_serve(struct snapfs_image *image, int conn_fd,
		      const struct snapfs_uffd_opts *opts, struct snapfs_uffd_stats *stats)
{
	struct snapfs_uffd_stats local;
	struct server srv = {
		.image = image,
		.file_size = snapfs_image_size(image),
		.uffd = -1,
		.st = stats ? stats : &local,
		.prefetch = opts ? opts->prefetch : NULL,
		.prefetch_count = opts && opts->prefetch ? opts->prefetch_count : 0,
		.around = (uint64_t)(opts && opts->fault_around_pages ? opts->fault_around_pages :
				     SNAPFS_UFFD_FAULT_AROUND) * SNAPFS_PAGE_SIZE,
	};
	int timeout = opts && opts->handshake_timeout_ms > 0 ? opts->handshake_timeout_ms :
		      HANDSHAKE_TIMEOUT_MS;
	pthread_t prefetcher;
	bool prefetching = false;
	int rc;

	error_clear();
	memset(srv.st, 0, sizeof(*srv.st));
	if (srv.around & (srv.around - 1) || srv.around > PREFETCH_CHUNK)
		return error_set(-EINVAL, "uffd: fault-around of %llu pages: not a power of two "
				 "from 1 to 256", (unsigned long long)(srv.around / SNAPFS_PAGE_SIZE));
	pthread_mutex_init(&srv.lock, NULL);
	atomic_init(&srv.stop, false);
	atomic_init(&srv.gone, false);
	rc = handshake(&srv, conn_fd, timeout);
	if (rc < 0)
		goto out_free;
	if (srv.prefetch_count)
		prefetching = pthread_create(&prefetcher, NULL, prefetch_main, &srv) == 0;
	rc = serve_loop(&srv, conn_fd, opts);
	atomic_store(&srv.stop, true);
	if (prefetching)
		pthread_join(prefetcher, NULL);

out_free:
	if (srv.uffd >= 0)
		close(srv.uffd);
	pthread_mutex_destroy(&srv.lock);
	free(srv.deferred);
	free(srv.removed);
	free(srv.bounce);
	free(srv.regions);
	return rc;
}
