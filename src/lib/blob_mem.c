// SPDX-License-Identifier: MIT
/*
 * The pool of blob_mem.h: chunks of 2 MiB, faulted in off the readers'
 * path, cut into slots kept on a stack of free slots (the last one given
 * back is the first one reused: it is the warmest in the CPU's cache). A
 * filler thread (SCHED_IDLE) maps and faults in a chunk whenever fewer
 * than RESERVE_BYTES are free; a reader that finds none maps one itself.
 * Chunks are unmapped only when the pool goes: the cache above bounds how
 * many slots are in use.
 */
#include "blob_mem.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#define BLOB_MEM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BLOB_MEM_ASAN 1
#endif
#endif
#ifdef BLOB_MEM_ASAN
#include <sanitizer/asan_interface.h>
/* A free slot is poisoned: a blob used after it went back is caught. */
#define SLOT_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define SLOT_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define SLOT_POISON(p, n) ((void)(p), (void)(n))
#define SLOT_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define CHUNK_BYTES ((size_t)2 << 20)
#define RESERVE_BYTES ((size_t)4 << 20) /* kept free and faulted in */

struct blob_mem {
	size_t slot_size;
	size_t chunk_slots;          /* slots per chunk */
	size_t reserve_slots;        /* the filler maps while fewer are free */
	pthread_mutex_t lock;        /* guards everything below */
	pthread_cond_t wake;         /* the filler waits on it */
	void **free_slots;           /* a stack; room for every slot */
	size_t free_count;
	void **chunks;
	size_t chunk_count, chunk_cap;
	pthread_t filler;
	bool filler_started;         /* tried: running unless it failed to start */
	bool filler_running;
	bool stopping;
};

struct blob_mem *blob_mem_new(size_t slot_size)
{
	struct blob_mem *m;

	if (slot_size == 0 || slot_size > CHUNK_BYTES)
		return NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->slot_size = slot_size;
	m->chunk_slots = CHUNK_BYTES / slot_size;
	m->reserve_slots = (RESERVE_BYTES + slot_size - 1) / slot_size;
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->wake, NULL);
	return m;
}

/* A chunk, faulted in. The filler touches its pages one by one: each
 * fault holds only the new mapping's lock, where MAP_POPULATE would hold
 * the process's memory map for the whole chunk and stall every reader
 * whose malloc grows a heap meanwhile (seen as a cold read's p99). A
 * reader that maps a chunk itself wants it at once. */
static void *chunk_map(bool filler)
{
	void *p = mmap(NULL, CHUNK_BYTES, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | (filler ? 0 : MAP_POPULATE), -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (filler)
		for (size_t at = 0; at < CHUNK_BYTES; at += 4096)
			((volatile unsigned char *)p)[at] = 0;
	return p;
}

/* Take chunk (mapped by chunk_map()) into the pool, its slots free.
 * Lock held. */
static int chunk_add(struct blob_mem *m, void *chunk)
{
	size_t total = (m->chunk_count + 1) * m->chunk_slots;
	void **slots;

	if (m->chunk_count == m->chunk_cap) {
		size_t cap = m->chunk_cap ? m->chunk_cap * 2 : 8;
		void **chunks = realloc(m->chunks, cap * sizeof(*chunks));

		if (!chunks)
			return -ENOMEM;
		m->chunks = chunks;
		m->chunk_cap = cap;
	}
	slots = realloc(m->free_slots, total * sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	m->free_slots = slots;
	m->chunks[m->chunk_count++] = chunk;
	for (size_t i = m->chunk_slots; i-- > 0;) {
		unsigned char *slot = (unsigned char *)chunk + i * m->slot_size;

		SLOT_POISON(slot, m->slot_size);
		m->free_slots[m->free_count++] = slot;
	}
	return 0;
}

/* Map a chunk with the lock dropped and add it. Lock held. */
static int chunk_grow(struct blob_mem *m, bool filler)
{
	void *chunk;
	int rc;

	pthread_mutex_unlock(&m->lock);
	chunk = chunk_map(filler);
	pthread_mutex_lock(&m->lock);
	if (!chunk)
		return -ENOMEM;
	rc = chunk_add(m, chunk);
	if (rc < 0)
		munmap(chunk, CHUNK_BYTES);
	return rc;
}

static void *filler_main(void *arg)
{
	struct blob_mem *m = arg;
	struct sched_param idle = { 0 };

	/* Only on a core nobody else wants: readers come first. */
	pthread_setschedparam(pthread_self(), SCHED_IDLE, &idle);
	pthread_mutex_lock(&m->lock);
	while (!m->stopping) {
		if (m->free_count >= m->reserve_slots) {
			pthread_cond_wait(&m->wake, &m->lock);
			continue;
		}
		/* Out of memory: readers map (or fail) on their own. */
		if (chunk_grow(m, true) < 0)
			break;
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

/* Lock held. */
static void filler_start(struct blob_mem *m)
{
	if (m->filler_started)
		return;
	m->filler_started = true;
	m->filler_running = pthread_create(&m->filler, NULL, filler_main, m) == 0;
}

void blob_mem_start(struct blob_mem *m)
{
	pthread_mutex_lock(&m->lock);
	filler_start(m);
	pthread_mutex_unlock(&m->lock);
}

void *blob_mem_get(struct blob_mem *m, size_t size)
{
	void *slot;

	if (size != m->slot_size)
		return malloc(size);
	pthread_mutex_lock(&m->lock);
	filler_start(m);
	while (m->free_count == 0) {
		if (chunk_grow(m, false) < 0) {
			pthread_mutex_unlock(&m->lock);
			return NULL;
		}
	}
	slot = m->free_slots[--m->free_count];
	if (m->free_count < m->reserve_slots && m->filler_running)
		pthread_cond_signal(&m->wake);
	pthread_mutex_unlock(&m->lock);
	SLOT_UNPOISON(slot, m->slot_size);
	return slot;
}

void blob_mem_put(struct blob_mem *m, void *p, size_t size)
{
	if (!p)
		return;
	if (size != m->slot_size) {
		free(p);
		return;
	}
	SLOT_POISON(p, m->slot_size);
	pthread_mutex_lock(&m->lock);
	m->free_slots[m->free_count++] = p;
	pthread_mutex_unlock(&m->lock);
}

void blob_mem_free(struct blob_mem *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	m->stopping = true;
	pthread_cond_signal(&m->wake);
	pthread_mutex_unlock(&m->lock);
	if (m->filler_running)
		pthread_join(m->filler, NULL);
	for (size_t i = 0; i < m->chunk_count; i++) {
		SLOT_UNPOISON(m->chunks[i], CHUNK_BYTES);
		munmap(m->chunks[i], CHUNK_BYTES);
	}
	free(m->chunks);
	free(m->free_slots);
	pthread_cond_destroy(&m->wake);
	pthread_mutex_destroy(&m->lock);
	free(m);
}
