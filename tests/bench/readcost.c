// SPDX-License-Identifier: MIT
/*
 * readcost: what snapfs itself spends on a cold random 4 KiB read, without
 * the disk and without FUSE: the reads of randread's offsets through
 * libsnapfs, with the store's packs in the page cache (a first, untimed
 * pass reads every offset; the store is opened read-write, whose random
 * reads go through the page cache, not O_DIRECT as the mount's) and a
 * decoded-blob cache too small to keep a blob from one read to the next
 * (every timed read finds its blob, reads its stored bytes from the page
 * cache, checks and decodes it).
 *
 *   readcost STORE NAME OFFSETS
 *
 * A cold read through the mount costs at least this plus a FUSE round trip
 * (the null FUSE server's read) plus a disk read (the plain file's cold
 * read): the floor the benchmark sets beside its random-read targets.
 * Prints one line of JSON: count, p50_us, p90_us, p99_us.
 *
 * Built by meson (tests/bench/meson.build) against the public header;
 * run.sh takes build-bench's.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snapfs.h"

#define READ_SIZE 4096
/* Room for the blob being read and little more. */
#define TINY_CACHE ((size_t)64 << 10)

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int load_offsets(const char *path, uint64_t **ret, size_t *ret_count)
{
	FILE *f = fopen(path, "r");
	uint64_t *offs = NULL, v;
	size_t n = 0, cap = 0;

	if (!f)
		return -errno;
	while (fscanf(f, "%" SCNu64, &v) == 1) {
		if (n == cap) {
			uint64_t *more = realloc(offs, (cap = cap ? cap * 2 : 1024) * sizeof(*offs));

			if (!more) {
				free(offs);
				fclose(f);
				return -ENOMEM;
			}
			offs = more;
		}
		offs[n++] = v;
	}
	fclose(f);
	*ret = offs;
	*ret_count = n;
	return n ? 0 : -EINVAL;
}

int main(int argc, char **argv)
{
	static unsigned char buf[READ_SIZE];
	struct snapfs_store *store;
	struct snapfs_snapshot snap;
	struct snapfs_image *img;
	uint64_t *offs = NULL;
	double *lat;
	size_t n = 0;
	int rc;

	if (argc != 4) {
		fprintf(stderr, "usage: readcost STORE NAME OFFSETS\n");
		return 2;
	}
	rc = load_offsets(argv[3], &offs, &n);
	if (rc < 0) {
		fprintf(stderr, "readcost: %s: %s\n", argv[3], strerror(-rc));
		return 1;
	}
	/* Read-write: a writer reads random blobs through the page cache,
	 * where a read-only open (the mount's) reads them O_DIRECT from the
	 * disk, which this helper leaves out. Nothing is written. */
	rc = snapfs_store_open(argv[1], 0, &store);
	if (rc == 0)
		rc = snapfs_snapshot_get(store, argv[2], &snap);
	if (rc == 0)
		rc = snapfs_image_open(store, snap.id, &img);
	if (rc < 0) {
		fprintf(stderr, "readcost: %s %s: %s\n", argv[1], argv[2], snapfs_errmsg());
		return 1;
	}
	snapfs_store_set_cache_size(store, TINY_CACHE);
	lat = calloc(n, sizeof(*lat));
	if (!lat)
		return 1;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++) {
			double t = now_us();
			ssize_t got = snapfs_image_read(img, buf, READ_SIZE, offs[i]);

			if (got < 0) {
				fprintf(stderr, "readcost: read at %" PRIu64 ": %s\n", offs[i],
					snapfs_errmsg());
				return 1;
			}
			lat[i] = now_us() - t;
		}
	}
	qsort(lat, n, sizeof(*lat), by_value);
	printf("{\"count\": %zu, \"p50_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f}\n", n,
	       lat[n / 2], lat[n * 9 / 10], lat[n * 99 / 100]);
	snapfs_image_close(img);
	snapfs_snapshot_release(&snap);
	snapfs_store_close(store);
	free(lat);
	free(offs);
	return 0;
}
