// SPDX-License-Identifier: MIT
/*
 * randread: random 4 KiB preads of a file, each one timed.
 *
 *   randread FILE OFFSETS THREADS
 *
 * OFFSETS is a text file of byte offsets, one a line. THREADS threads share
 * the list (thread t reads entries t, t + THREADS, ...), each with its own
 * descriptor opened before the clock starts. Prints one line of JSON: the
 * count, the wall time, the latency percentiles in microseconds (also the
 * median of the first and of the last fifth of the list), and a
 * content hash (sum over reads of FNV-1a of the page and its offset) so
 * that the caller can check every system returned the same bytes.
 *
 * Built by tests/bench/run.sh: cc -O2 -pthread randread.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define READ_SIZE 4096

struct worker {
	pthread_t thread;
	int fd;
	const uint64_t *offsets;
	size_t count, first, step;
	double *lat_us;              /* one per read, indexed like offsets */
	uint64_t hash;
	int error;
};

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static uint64_t fnv1a(const unsigned char *p, size_t n, uint64_t seed)
{
	uint64_t h = 0xcbf29ce484222325ull ^ seed;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	unsigned char *buf = aligned_alloc(4096, READ_SIZE);

	if (!buf) {
		w->error = ENOMEM;
		return NULL;
	}
	for (size_t i = w->first; i < w->count; i += w->step) {
		double t0 = now_us();
		ssize_t n = pread(w->fd, buf, READ_SIZE, (off_t)w->offsets[i]);
		double t1 = now_us();

		if (n != READ_SIZE) {
			w->error = n < 0 ? errno : EIO;
			break;
		}
		w->lat_us[i] = t1 - t0;
		w->hash += fnv1a(buf, READ_SIZE, w->offsets[i]);
	}
	free(buf);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(const double *sorted, size_t n, double p)
{
	/* nearest rank */
	size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);

	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return sorted[k - 1];
}

int main(int argc, char **argv)
{
	uint64_t *offsets = NULL, hash = 0;
	size_t count = 0, cap = 0, threads;
	struct worker *w;
	double *lat, *first, *last, t0, t1;
	size_t fifth;
	char line[64];
	FILE *f;

	if (argc != 4) {
		fprintf(stderr, "usage: randread FILE OFFSETS THREADS\n");
		return 2;
	}
	threads = strtoul(argv[3], NULL, 10);
	if (threads < 1 || threads > 256)
		return 2;
	f = fopen(argv[2], "r");
	if (!f) {
		perror(argv[2]);
		return 1;
	}
	while (fgets(line, sizeof(line), f)) {
		if (count == cap) {
			cap = cap ? cap * 2 : 1024;
			offsets = realloc(offsets, cap * sizeof(*offsets));
			if (!offsets)
				return 1;
		}
		offsets[count++] = strtoull(line, NULL, 0);
	}
	fclose(f);
	lat = calloc(count ? count : 1, sizeof(*lat));
	w = calloc(threads, sizeof(*w));
	if (!lat || !w)
		return 1;
	for (size_t t = 0; t < threads; t++) {
		w[t].fd = open(argv[1], O_RDONLY);
		if (w[t].fd < 0) {
			perror(argv[1]);
			return 1;
		}
		w[t].offsets = offsets;
		w[t].count = count;
		w[t].first = t;
		w[t].step = threads;
		w[t].lat_us = lat;
	}
	t0 = now_us();
	for (size_t t = 0; t < threads; t++)
		pthread_create(&w[t].thread, NULL, run, &w[t]);
	for (size_t t = 0; t < threads; t++) {
		pthread_join(w[t].thread, NULL);
		if (w[t].error) {
			fprintf(stderr, "randread: %s: %s\n", argv[1], strerror(w[t].error));
			return 1;
		}
		hash += w[t].hash;
	}
	t1 = now_us();
	/* The first and the last fifth of the list on their own: a system
	 * whose reads warm a cache (its own or the kernel's) for later ones
	 * shows it here. */
	fifth = count / 5 ? count / 5 : 1;
	first = malloc(fifth * sizeof(*first));
	last = malloc(fifth * sizeof(*last));
	if (!first || !last || count == 0)
		return 1;
	memcpy(first, lat, fifth * sizeof(*first));
	memcpy(last, lat + count - fifth, fifth * sizeof(*last));
	qsort(first, fifth, sizeof(*first), cmp_double);
	qsort(last, fifth, sizeof(*last), cmp_double);
	qsort(lat, count, sizeof(*lat), cmp_double);
	printf("{\"count\": %zu, \"threads\": %zu, \"wall_s\": %.6f, "
	       "\"p50_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f, "
	       "\"first_fifth_p50_us\": %.1f, \"last_fifth_p50_us\": %.1f, "
	       "\"hash\": \"%016" PRIx64 "\"}\n",
	       count, threads, (t1 - t0) / 1e6, pct(lat, count, 50), pct(lat, count, 90),
	       pct(lat, count, 99), lat[count - 1], pct(first, fifth, 50),
	       pct(last, fifth, 50), hash);
	return 0;
}
