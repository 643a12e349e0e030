// SPDX-License-Identifier: MIT
/*
 * replay: touch the pages of a fault trace through a private mapping, as a
 * VMM resuming a guest touches its RAM.
 *
 *   replay FILE TRACE
 *
 * TRACE is a text file of page numbers (byte offset / 4096), decimal, one
 * a line, in fault order. The trace is read first; then the clock starts,
 * FILE is opened and mapped MAP_PRIVATE with PROT_READ | PROT_WRITE (as
 * Firecracker's File backend and QEMU's memory-backend-file with share=off
 * map guest RAM), and one byte of each page is read in trace order. Prints
 * one line of JSON: the page count, the elapsed seconds (open, mmap and
 * every first touch), the median and 99th percentile of the first touches
 * (p50_us, p99_us: the cold fault latency) and a checksum (FNV-1a over the
 * bytes read) so that the caller can check every system returned the same
 * bytes.
 *
 * Built by tests/bench/run.sh: cc -O2 replay.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u

static int read_trace(const char *path, uint64_t **ret_pages, size_t *ret_count)
{
	uint64_t *pages = NULL, *bigger, page;
	size_t count = 0, cap = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return -errno;
	while (fscanf(f, "%" SCNu64, &page) == 1) {
		if (count == cap) {
			cap = cap ? cap * 2 : 4096;
			bigger = realloc(pages, cap * sizeof(*pages));
			if (!bigger) {
				free(pages);
				fclose(f);
				return -ENOMEM;
			}
			pages = bigger;
		}
		pages[count++] = page;
	}
	if (!feof(f)) {
		free(pages);
		fclose(f);
		return -EINVAL;
	}
	fclose(f);
	*ret_pages = pages;
	*ret_count = count;
	return 0;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	uint64_t *pages = NULL, hash = 1469598103934665603ull;
	volatile const uint8_t *map;
	size_t count = 0, len;
	struct stat st;
	double t0, t1, *lat;
	int fd, rc;

	if (argc != 3) {
		fprintf(stderr, "usage: replay FILE TRACE\n");
		return 2;
	}
	rc = read_trace(argv[2], &pages, &count);
	if (rc < 0) {
		fprintf(stderr, "replay: trace '%s': %s\n", argv[2], strerror(-rc));
		return 1;
	}
	lat = calloc(count ? count : 1, sizeof(*lat));
	if (!lat)
		return 1;
	t0 = now_s();
	fd = open(argv[1], O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "replay: '%s': %s\n", argv[1], strerror(errno));
		return 1;
	}
	len = (size_t)st.st_size;
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		fprintf(stderr, "replay: mmap '%s': %s\n", argv[1], strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < count; i++) {
		if (pages[i] >= (len + PAGE - 1) / PAGE) {
			fprintf(stderr, "replay: page %" PRIu64 " is past the end of '%s'\n",
				pages[i], argv[1]);
			return 1;
		}
		double t = now_s();

		hash = (hash ^ map[pages[i] * PAGE]) * 1099511628211ull;
		lat[i] = now_s() - t;
	}
	t1 = now_s();
	munmap((void *)map, len);
	close(fd);
	qsort(lat, count, sizeof(*lat), by_value);
	printf("{\"count\": %zu, \"seconds\": %.6f, \"p50_us\": %.1f, \"p99_us\": %.1f, "
	       "\"hash\": \"%016" PRIx64 "\"}\n", count, t1 - t0,
	       count ? lat[count / 2] * 1e6 : 0.0, count ? lat[count * 99 / 100] * 1e6 : 0.0, hash);
	free(lat);
	free(pages);
	return 0;
}
