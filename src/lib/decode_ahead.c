// SPDX-License-Identifier: MIT
/*
 * The decode-ahead workers: a bounded ring of blob places under one mutex,
 * and threads that take them a batch at a time and load each batch in
 * spans through the blob cache (one pread(2) for neighbours; the cache
 * decodes a blob once however many threads want it, so a reader that
 * arrives while a worker decodes its blob waits for that decode instead
 * of starting another).
 */
#include "decode_ahead.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "blob_span.h"
#include "blob_store.h"

/* Requests waiting: a sequential reader asks for a few MiB ahead. */
#define QUEUE_SIZE 512
/* Blobs a worker takes at once: a span of 128-256 KiB of decoded data,
 * few enough that the other workers get their share. */
#define BATCH 16

struct decode_ahead {
	struct blob_cache *cache;
	struct blob_store *bs;
	pthread_mutex_t lock;
	pthread_cond_t work;
	struct blob_loc queue[QUEUE_SIZE];
	unsigned head, count;        /* ring: next to take, ids waiting */
	bool stopping;
	unsigned thread_count;
	pthread_t threads[];
};

static void *worker(void *arg)
{
	struct decode_ahead *da = arg;

	pthread_mutex_lock(&da->lock);
	for (;;) {
		struct blob_loc batch[BATCH];
		size_t n = 0;

		while (!da->stopping && da->count == 0)
			pthread_cond_wait(&da->work, &da->lock);
		if (da->stopping)
			break;
		while (n < BATCH && da->count > 0) {
			batch[n++] = da->queue[da->head];
			da->head = (da->head + 1) % QUEUE_SIZE;
			da->count--;
		}
		pthread_mutex_unlock(&da->lock);
		blob_span_load(da->cache, da->bs, batch, n);
		pthread_mutex_lock(&da->lock);
	}
	pthread_mutex_unlock(&da->lock);
	blob_store_thread_release();
	return NULL;
}

int decode_ahead_new(struct blob_cache *cache, struct blob_store *bs,
		     unsigned threads, struct decode_ahead **ret_da)
{
	struct decode_ahead *da;
	int rc;

	if (threads < 1)
		threads = 1;
	da = calloc(1, sizeof(*da) + threads * sizeof(da->threads[0]));
	if (!da)
		return -ENOMEM;
	da->cache = cache;
	da->bs = bs;
	pthread_mutex_init(&da->lock, NULL);
	pthread_cond_init(&da->work, NULL);
	for (; da->thread_count < threads; da->thread_count++) {
		rc = pthread_create(&da->threads[da->thread_count], NULL, worker, da);
		if (rc != 0)
			break;
	}
	if (da->thread_count == 0) {
		decode_ahead_free(da);
		return -rc;
	}
	*ret_da = da;
	return 0;
}

void decode_ahead_free(struct decode_ahead *da)
{
	if (!da)
		return;
	pthread_mutex_lock(&da->lock);
	da->stopping = true;
	pthread_cond_broadcast(&da->work);
	pthread_mutex_unlock(&da->lock);
	for (unsigned i = 0; i < da->thread_count; i++)
		pthread_join(da->threads[i], NULL);
	pthread_cond_destroy(&da->work);
	pthread_mutex_destroy(&da->lock);
	free(da);
}

void decode_ahead_want(struct decode_ahead *da, const struct blob_loc *locs, size_t count)
{
	size_t n = 0;

	pthread_mutex_lock(&da->lock);
	for (; n < count && da->count < QUEUE_SIZE && !da->stopping; n++) {
		da->queue[(da->head + da->count) % QUEUE_SIZE] = locs[n];
		da->count++;
	}
	/* One wake-up per batch a worker takes, not one per blob. */
	if (n > BATCH)
		pthread_cond_broadcast(&da->work);
	else if (n)
		pthread_cond_signal(&da->work);
	pthread_mutex_unlock(&da->lock);
}
