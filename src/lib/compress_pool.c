// SPDX-License-Identifier: MIT
/*
 * The compression pool: worker threads with a codec context each, a FIFO
 * of submitted jobs, one mutex and two condition variables (work queued,
 * work done).
 */
#include "compress_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "codec.h"
#include "digest.h"

#define POOL_MAX_WORKERS 8

struct compress_pool {
	pthread_mutex_t lock;
	pthread_cond_t queued, finished;
	struct compress_job *head, *tail;  /* waiting for a worker */
	bool stopping;
	unsigned worker_count;
	pthread_t workers[POOL_MAX_WORKERS];
};

static void run_job(struct codec_ctx *ctx, struct compress_job *job)
{
	size_t len = 0;

	job->rc = codec_compress(ctx, job->codec, job->level, job->dict, job->raw,
				 job->raw_len, job->out, job->out_cap, &len);
	if (job->rc < 0)
		return;
	if (len >= job->raw_len) {
		/* Incompressible: store as is, decoding costs a copy only. */
		job->stored_codec = SNAPFS_CODEC_NONE;
		job->stored = job->raw;
		job->stored_len = job->raw_len;
	} else {
		job->stored_codec = (int)job->codec;
		job->stored = job->out;
		job->stored_len = len;
	}
	job->checksum = blob_checksum(job->stored, job->stored_len);
}

static void *worker_main(void *arg)
{
	struct compress_pool *pool = arg;
	struct codec_ctx *ctx = codec_ctx_new();
	struct compress_job *job;

	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (!pool->head && !pool->stopping)
			pthread_cond_wait(&pool->queued, &pool->lock);
		if (!pool->head)
			break;
		job = pool->head;
		pool->head = job->next;
		if (!pool->head)
			pool->tail = NULL;
		pthread_mutex_unlock(&pool->lock);
		if (ctx)
			run_job(ctx, job);
		else
			job->rc = -ENOMEM;
		pthread_mutex_lock(&pool->lock);
		job->done = true;
		pthread_cond_broadcast(&pool->finished);
	}
	pthread_mutex_unlock(&pool->lock);
	codec_ctx_free(ctx);
	return NULL;
}

int compress_pool_new(unsigned workers, struct compress_pool **ret_pool)
{
	struct compress_pool *pool = calloc(1, sizeof(*pool));
	long cpus;

	if (!pool)
		return -ENOMEM;
	if (workers == 0) {
		cpus = sysconf(_SC_NPROCESSORS_ONLN);
		workers = cpus > 0 ? (unsigned)cpus : 1;
	}
	if (workers > POOL_MAX_WORKERS)
		workers = POOL_MAX_WORKERS;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->queued, NULL);
	pthread_cond_init(&pool->finished, NULL);
	for (unsigned i = 0; i < workers; i++) {
		if (pthread_create(&pool->workers[i], NULL, worker_main, pool) != 0)
			break;
		pool->worker_count++;
	}
	if (pool->worker_count == 0) {
		compress_pool_free(pool);
		return -EAGAIN;
	}
	*ret_pool = pool;
	return 0;
}

void compress_pool_free(struct compress_pool *pool)
{
	if (!pool)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->queued);
	pthread_mutex_unlock(&pool->lock);
	for (unsigned i = 0; i < pool->worker_count; i++)
		pthread_join(pool->workers[i], NULL);
	pthread_cond_destroy(&pool->finished);
	pthread_cond_destroy(&pool->queued);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
}

void compress_pool_submit(struct compress_pool *pool, struct compress_job *job)
{
	job->done = false;
	job->next = NULL;
	pthread_mutex_lock(&pool->lock);
	if (pool->tail)
		pool->tail->next = job;
	else
		pool->head = job;
	pool->tail = job;
	pthread_cond_signal(&pool->queued);
	pthread_mutex_unlock(&pool->lock);
}

void compress_pool_wait(struct compress_pool *pool, struct compress_job *job)
{
	pthread_mutex_lock(&pool->lock);
	while (!job->done)
		pthread_cond_wait(&pool->finished, &pool->lock);
	pthread_mutex_unlock(&pool->lock);
}
