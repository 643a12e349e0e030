/* SPDX-License-Identifier: MIT */
/*
 * Working sets in the mount: with -o record, which pages of each
 * snapshot's memory file are read, in first-touch order, during the first
 * seconds after the mount first opens it, saved to the store; otherwise,
 * when a memory file whose snapshot has a record is first opened, those
 * pages read and pushed into the kernel's page cache
 * (fuse_lowlevel_notify_store) ahead of the faults, the open waiting a
 * bounded time for them. One worker thread per
 * mount does the saving and the prefetching; it starts with the first open
 * (after the daemon has detached) and stops with workset_stop().
 */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <fuse_lowlevel.h>

#include "node.h"
#include "snapfs.h"

/* -o record without a number of seconds. */
#define WORKSET_DEFAULT_SECONDS 10
/* The longest window -o record=SECONDS takes: one day. */
#define WORKSET_MAX_SECONDS 86400

/* -o prefetch_wait without a number, and the longest it takes (ms). */
#define WORKSET_DEFAULT_WAIT_MS 1000
#define WORKSET_MAX_WAIT_MS 60000

struct workset_recorder;
struct workset_job;

struct workset_prefetch {
	int64_t snapshot_id;
	bool finished;                     /* done, failed or dropped */
};

struct workset {
	struct snapfs_store *store;        /* the mount's, read-only; not owned */
	const char *store_path;            /* opened read-write for saves */
	struct fuse_session *se;           /* where prefetched pages go */
	bool record;                       /* -o record */
	unsigned record_seconds;           /* its window */
	bool prefetch;                     /* on unless -o noprefetch or record */
	atomic_bool stopping;              /* workset_stop() was called */
	pthread_mutex_t lock;              /* guards what follows */
	pthread_cond_t wake;               /* the worker's: work, release, stop */
	bool started;                      /* the worker runs */
	pthread_t thread;
	struct workset_recorder *recorders; /* every snapshot this mount records */
	struct workset_job *jobs;          /* prefetches to do, oldest first */
	unsigned wait_ms;                  /* -o prefetch_wait */
	pthread_cond_t finished;           /* a prefetch is over */
	struct workset_prefetch *prefetched; /* every snapshot queued */
	size_t prefetched_count, prefetched_cap;
	struct snapfs_store *writer;       /* read-write, opened by the first
					      save; owned */
};

/* Set up ws (nothing runs yet). store, store_path and se are borrowed and
 * must outlive workset_stop(). */
void workset_init(struct workset *ws, struct snapfs_store *store,
		  const char *store_path, struct fuse_session *se, bool record,
		  unsigned record_seconds, bool prefetch, unsigned wait_ms);

/* A memory file of node's snapshot was opened. Recording: *ret_rec is
 * the snapshot's recorder while its window is open (pass it to
 * workset_record() and workset_release()), else NULL. Never fails:
 * trouble is logged, the open goes on. */
void workset_open_memory(struct workset *ws, struct node *node,
			 struct workset_recorder **ret_rec);
/* Prefetch node's working set, if it has one, unless this mount did
 * already (or is recording, or -o noprefetch). wait: return when the
 * prefetch is over or after ws->wait_ms, whichever comes first. Never
 * wait in a read of the memory file: the kernel holds the pages of a read
 * locked, and a prefetch that pushes one of them waits for the read.
 * Never fails: trouble is logged. */
void workset_prefetch(struct workset *ws, struct node *node, bool wait);
/* A read of len bytes at off of the memory file went to the image. */
void workset_record(struct workset_recorder *rec, uint64_t off, size_t len);

/* A memory file opened with rec was released: the last one ends the
 * recording, which is then saved. Accepts NULL. */
void workset_release(struct workset *ws, struct workset_recorder *rec);

/* At unmount, after the session loop: stop prefetching, save the records
 * still open, stop the worker and free everything. false if the worker did
 * not stop within a bound (it is then left to the process exit, and ws,
 * the store and the session must not be freed). */
bool workset_stop(struct workset *ws);
