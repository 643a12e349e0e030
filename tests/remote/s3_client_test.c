// SPDX-License-Identifier: MIT
/*
 * The core's S3 client (src/lib/s3.c) against a real radosgw, driven by
 * test_s3_client.py, which starts the cluster and sets the AWS variables.
 *
 *   s3_client_test mkbucket URL         create the bucket
 *   s3_client_test basic URL            put/get/range/head/list/delete/404
 *   s3_client_test eacces URL SECRET    refused credentials, no secret in the message
 *   s3_client_test ifabsent URL         conditional create, also 8 racing threads
 *   s3_client_test put URL KEY SIZE     put SIZE pseudo-random bytes (seed = SIZE)
 *   s3_client_test get URL KEY SIZE     read them back in 4 KiB ranges, check them
 *   s3_client_test churn URL N          N rounds of put 64 KiB, read back, compare
 *   s3_client_test fail URL KEY MS      a read must fail with EIO within MS (+ slack)
 *   s3_client_test bench URL KEY N      N random 4 KiB ranged GETs: p50/p99
 *   s3_client_test putfile URL KEY FILE put FILE's bytes as object KEY
 *   s3_client_test stream URL KEY CHUNK read KEY whole in ranged GETs of CHUNK
 *                                       bytes, one after the other: MB/s
 *   s3_client_test ls URL PREFIX        objects under PREFIX: "KEY SIZE" a line
 *
 * Exit 0 when every check holds; each failure prints "FAIL: ...".
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "s3.h"
#include "snapfs.h"

static int failures;

#define CHECK(cond, ...)                                                              \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);          \
			fprintf(stderr, __VA_ARGS__);                                 \
			fprintf(stderr, " [errmsg: %s]\n", snapfs_errmsg());          \
			failures++;                                                   \
		}                                                                     \
	} while (0)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fill(unsigned char *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char)x;
	}
}

static struct s3 *open_or_die(const char *url)
{
	struct s3 *s3;
	int rc = s3_open(url, &s3);

	if (rc) {
		fprintf(stderr, "FAIL: s3_open: %s\n", snapfs_errmsg());
		exit(1);
	}
	return s3;
}

struct listed {
	unsigned n;
	char keys[64][64];
	uint64_t sizes[64];
};

static int on_key(const char *key, uint64_t size, void *arg)
{
	struct listed *l = arg;

	if (l->n < 64) {
		snprintf(l->keys[l->n], sizeof(l->keys[0]), "%s", key);
		l->sizes[l->n] = size;
	}
	l->n++;
	return 0;
}

static int stop_at_3(const char *key, uint64_t size, void *arg)
{
	unsigned *n = arg;

	(void)key;
	(void)size;
	return ++*n == 3 ? 77 : 0;
}

static int basic(const char *url)
{
	struct s3 *s3 = open_or_die(url);
	size_t size = 1 << 20;
	unsigned char *data = malloc(size), *buf = malloc(size);
	struct listed l = { 0 };
	uint64_t got_size = 0;
	unsigned n = 0;
	int rc;

	fill(data, size, 1);
	rc = s3_put(s3, "packs/p1", data, size, false);
	CHECK(rc == 0, "put: %d", rc);
	rc = s3_get_range(s3, "packs/p1", 0, size, buf);
	CHECK(rc == 0 && memcmp(buf, data, size) == 0, "whole get: %d", rc);
	rc = s3_get_range(s3, "packs/p1", 0, 1, buf);
	CHECK(rc == 0 && buf[0] == data[0], "first byte: %d", rc);
	rc = s3_get_range(s3, "packs/p1", size - 1, 1, buf);
	CHECK(rc == 0 && buf[0] == data[size - 1], "last byte: %d", rc);
	rc = s3_get_range(s3, "packs/p1", 12345, 4096, buf);
	CHECK(rc == 0 && memcmp(buf, data + 12345, 4096) == 0, "middle: %d", rc);
	memset(buf, 0xAA, 8192);
	rc = s3_get_range(s3, "packs/p1", size - 4096, 8192, buf);
	CHECK(rc == -EIO, "range across the end: %d, want -EIO", rc);
	CHECK(strstr(snapfs_errmsg(), "shorter"), "message '%s'", snapfs_errmsg());
	rc = s3_get_range(s3, "packs/p1", size, 1, buf);
	CHECK(rc == -EIO, "range past the end: %d, want -EIO", rc);
	rc = s3_get_range(s3, "packs/p1", size + 100000, 10, buf);
	CHECK(rc == -EIO, "range far past the end: %d, want -EIO", rc);
	rc = s3_head(s3, "packs/p1", &got_size);
	CHECK(rc == 0 && got_size == size, "head: %d size %" PRIu64, rc, got_size);
	rc = s3_put(s3, "empty", "", 0, false);
	CHECK(rc == 0, "put empty: %d", rc);
	got_size = 99;
	rc = s3_head(s3, "empty", &got_size);
	CHECK(rc == 0 && got_size == 0, "head empty: %d size %" PRIu64, rc, got_size);

	/* 404 */
	got_size = 99;
	rc = s3_head(s3, "no-such-key", &got_size);
	CHECK(rc == -ENOENT && got_size == 99, "head missing: %d", rc);
	rc = s3_get_range(s3, "no-such-key", 0, 10, buf);
	CHECK(rc == -ENOENT, "get missing: %d", rc);
	CHECK(strstr(snapfs_errmsg(), "no-such-key") && strstr(snapfs_errmsg(), "404"),
	      "404 message '%s'", snapfs_errmsg());

	/* list with pagination: 23 keys, 5 a page; odd names too */
	for (int i = 0; i < 23; i++) {
		char key[64];

		snprintf(key, sizeof(key), "list/k %02d+=&%%", i);
		rc = s3_put(s3, key, data, (size_t)i, false);
		CHECK(rc == 0, "put %s: %d", key, rc);
	}
	rc = s3_put(s3, "listx", data, 1, false);	/* outside the list/ prefix */
	CHECK(rc == 0, "put listx: %d", rc);
	s3_set_page_size(s3, 5);
	rc = s3_list(s3, "list/", on_key, &l);
	CHECK(rc == 0 && l.n == 23, "list: %d, %u keys", rc, l.n);
	for (unsigned i = 0; i < 23 && i < l.n; i++) {
		char key[64];

		snprintf(key, sizeof(key), "list/k %02u+=&%%", i);
		CHECK(strcmp(l.keys[i], key) == 0 && l.sizes[i] == i, "key %u: '%s' %" PRIu64,
		      i, l.keys[i], l.sizes[i]);
	}
	rc = s3_list(s3, "list/", stop_at_3, &n);
	CHECK(rc == 77 && n == 3, "list stopped by the callback: %d after %u", rc, n);
	memset(&l, 0, sizeof(l));
	rc = s3_list(s3, "", on_key, &l);
	CHECK(rc == 0 && l.n == 26, "list all: %d, %u keys", rc, l.n);
	memset(&l, 0, sizeof(l));
	rc = s3_list(s3, "nothing-here/", on_key, &l);
	CHECK(rc == 0 && l.n == 0, "list empty: %d, %u keys", rc, l.n);

	/* delete */
	rc = s3_delete(s3, "packs/p1");
	CHECK(rc == 0, "delete: %d", rc);
	rc = s3_head(s3, "packs/p1", &got_size);
	CHECK(rc == -ENOENT, "head after delete: %d", rc);
	rc = s3_delete(s3, "packs/p1");
	CHECK(rc == 0 || rc == -ENOENT, "delete again: %d", rc);
	s3_close(s3);
	free(data);
	free(buf);
	return failures;
}

static int eacces(const char *url, const char *secret)
{
	struct s3 *s3 = open_or_die(url);
	char buf[16];
	int rc;

	rc = s3_get_range(s3, "packs/p1", 0, 1, buf);
	CHECK(rc == -EACCES, "get with a wrong secret: %d", rc);
	CHECK(!strstr(snapfs_errmsg(), secret), "secret in the message '%s'", snapfs_errmsg());
	printf("message: %s\n", snapfs_errmsg());
	rc = s3_put(s3, "x", "x", 1, false);
	CHECK(rc == -EACCES, "put with a wrong secret: %d", rc);
	CHECK(!strstr(snapfs_errmsg(), secret), "secret in the message '%s'", snapfs_errmsg());
	s3_close(s3);
	return failures;
}

struct racer {
	struct s3 *s3;
	int id, rc;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	char data[64];

	snprintf(data, sizeof(data), "writer %d", r->id);
	r->rc = s3_put(r->s3, "race/manifest", data, strlen(data), true);
	return NULL;
}

static int ifabsent(const char *url)
{
	struct s3 *s3 = open_or_die(url);
	struct racer rs[8];
	pthread_t th[8];
	char buf[64] = { 0 };
	int rc, won = 0, lost = 0;

	rc = s3_put(s3, "cond/a", "first", 5, true);
	CHECK(rc == 0, "conditional create of a new key: %d", rc);
	rc = s3_put(s3, "cond/a", "secnd", 5, true);
	printf("conditional create of an existing key: %d (%s)\n", rc,
	       rc ? snapfs_errmsg() : "accepted");
	CHECK(rc == -EEXIST, "conditional create of an existing key: %d, want -EEXIST", rc);
	rc = s3_get_range(s3, "cond/a", 0, 5, buf);
	CHECK(rc == 0 && memcmp(buf, "first", 5) == 0, "the first write stays: '%.5s'", buf);
	for (int i = 0; i < 8; i++) {
		rs[i] = (struct racer){ .s3 = s3, .id = i };
		pthread_create(&th[i], NULL, race, &rs[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		won += rs[i].rc == 0;
		lost += rs[i].rc == -EEXIST;
	}
	printf("8 racing conditional creates: %d won, %d got EEXIST\n", won, lost);
	CHECK(won == 1 && lost == 7, "racing creates: %d won, %d EEXIST", won, lost);
	s3_close(s3);
	return failures;
}

static int put_obj(const char *url, const char *key, size_t size)
{
	struct s3 *s3 = open_or_die(url);
	unsigned char *data = malloc(size);
	int rc;

	fill(data, size, size);
	rc = s3_put(s3, key, data, size, false);
	CHECK(rc == 0, "put %s: %d", key, rc);
	s3_close(s3);
	free(data);
	return failures;
}

static int get_obj(const char *url, const char *key, size_t size)
{
	struct s3 *s3 = open_or_die(url);
	unsigned char *data = malloc(size), buf[4096];
	int rc = 0;

	fill(data, size, size);
	for (size_t off = 0; off < size && !rc; off += sizeof(buf)) {
		size_t n = size - off < sizeof(buf) ? size - off : sizeof(buf);

		rc = s3_get_range(s3, key, off, n, buf);
		CHECK(rc == 0 && memcmp(buf, data + off, n) == 0, "get %s at %zu: %d", key,
		      off, rc);
	}
	s3_close(s3);
	free(data);
	return failures;
}

/* n rounds of: put 64 KiB as churn/I (a conditional create every other
 * round), read it back whole, compare. Survives a radosgw restart within
 * SNAPFS_S3_TIMEOUT: PUTs are sent again on fresh connections. */
static int churn(const char *url, int n)
{
	struct s3 *s3 = open_or_die(url);
	size_t size = 64 << 10;
	unsigned char *data = malloc(size), *buf = malloc(size);
	int rc;

	for (int i = 0; i < n && !failures; i++) {
		char key[32];

		snprintf(key, sizeof(key), "churn/%d", i);
		fill(data, size, (uint64_t)i + 1000);
		rc = s3_put(s3, key, data, size, i % 2 == 1);
		CHECK(rc == 0, "put %s: %d", key, rc);
		rc = s3_get_range(s3, key, 0, size, buf);
		CHECK(rc == 0 && memcmp(buf, data, size) == 0, "get %s: %d", key, rc);
	}
	s3_close(s3);
	free(data);
	free(buf);
	return failures;
}

static int fail_in_time(const char *url, const char *key, long ms)
{
	struct s3 *s3 = open_or_die(url);
	unsigned char buf[4096];
	double t = now_s(), took;
	int rc;

	rc = s3_get_range(s3, key, 0, sizeof(buf), buf);
	took = now_s() - t;
	printf("read with radosgw stopped: %d after %.2f s: %s\n", rc, took, snapfs_errmsg());
	CHECK(rc == -EIO, "read with radosgw stopped: %d, want -EIO", rc);
	CHECK(took <= (double)ms / 1000 + 1.0, "took %.2f s, bound %ld ms", took, ms);
	CHECK(took >= (double)ms / 1000 * 0.9, "gave up after %.2f s only (bound %ld ms)", took,
	      ms);
	s3_close(s3);
	return failures;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int bench(const char *url, const char *key, int n)
{
	struct s3 *s3 = open_or_die(url);
	double *t = calloc((size_t)n, sizeof(*t));
	unsigned char buf[4096];
	uint64_t size = 0;
	int rc;

	rc = s3_head(s3, key, &size);
	CHECK(rc == 0 && size > sizeof(buf), "head %s: %d", key, rc);
	if (rc)
		return failures;
	srandom(1);
	for (int i = 0; i < n; i++) {
		uint64_t off = (uint64_t)random() % (size - sizeof(buf));
		double t0 = now_s();

		rc = s3_get_range(s3, key, off, sizeof(buf), buf);
		t[i] = now_s() - t0;
		CHECK(rc == 0, "bench get: %d", rc);
	}
	qsort(t, (size_t)n, sizeof(*t), cmp_double);
	printf("4 KiB ranged GET through s3.c (keep-alive), %d reads: p50 %.2f ms p99 %.2f ms\n",
	       n, t[n / 2] * 1e3, t[(n * 99) / 100] * 1e3);
	free(t);
	s3_close(s3);
	return failures;
}

/* The benchmarks' reference: a file as one object. */
static int put_file(const char *url, const char *key, const char *path)
{
	struct s3 *s3 = open_or_die(url);
	FILE *f = fopen(path, "rb");
	unsigned char *data = NULL;
	long size = -1;
	int rc;

	if (f && fseek(f, 0, SEEK_END) == 0)
		size = ftell(f);
	CHECK(f && size > 0, "%s: cannot read it", path);
	if (size > 0 && fseek(f, 0, SEEK_SET) == 0 && (data = malloc((size_t)size)) &&
	    fread(data, 1, (size_t)size, f) == (size_t)size) {
		rc = s3_put(s3, key, data, (size_t)size, false);
		CHECK(rc == 0, "put %s: %d", key, rc);
	}
	free(data);
	if (f)
		fclose(f);
	s3_close(s3);
	return failures;
}

/* The benchmarks' reference for a sequential read: the object's bytes in
 * ranged GETs of chunk bytes, each after the one before. */
static int stream(const char *url, const char *key, size_t chunk)
{
	struct s3 *s3 = open_or_die(url);
	unsigned char *buf = malloc(chunk ? chunk : 1);
	uint64_t size = 0, off;
	double t0;
	int rc;

	rc = s3_head(s3, key, &size);
	CHECK(rc == 0 && size > 0 && chunk > 0 && buf, "head %s: %d", key, rc);
	if (failures)
		goto out;
	t0 = now_s();
	for (off = 0; off < size && rc == 0; off += chunk)
		rc = s3_get_range(s3, key, off, size - off < chunk ? size - off : chunk, buf);
	CHECK(rc == 0, "stream get: %d", rc);
	if (rc == 0)
		printf("stream %" PRIu64 " bytes in %.6f s\n", size, now_s() - t0);
out:
	free(buf);
	s3_close(s3);
	return failures;
}

static int print_key(const char *key, uint64_t size, void *arg)
{
	(void)arg;
	printf("%s %" PRIu64 "\n", key, size);
	return 0;
}

/* What the benchmarks count as uploaded: the objects under prefix. */
static int list_keys(const char *url, const char *prefix)
{
	struct s3 *s3 = open_or_die(url);
	int rc = s3_list(s3, prefix, print_key, NULL);

	CHECK(rc == 0, "list %s: %d", prefix, rc);
	s3_close(s3);
	return failures;
}

int main(int argc, char **argv)
{
	struct s3 *s3;
	int rc;

	if (argc < 3) {
		fprintf(stderr, "usage: s3_client_test CMD URL [ARGS]\n");
		return 2;
	}
	if (strcmp(argv[1], "mkbucket") == 0) {
		s3 = open_or_die(argv[2]);
		rc = s3_create_bucket(s3);
		CHECK(rc == 0, "create bucket: %d", rc);
		rc = s3_create_bucket(s3);
		printf("create bucket again: %d (%s)\n", rc, rc ? snapfs_errmsg() : "ok");
		s3_close(s3);
	} else if (strcmp(argv[1], "basic") == 0) {
		basic(argv[2]);
	} else if (strcmp(argv[1], "eacces") == 0 && argc == 4) {
		eacces(argv[2], argv[3]);
	} else if (strcmp(argv[1], "ifabsent") == 0) {
		ifabsent(argv[2]);
	} else if (strcmp(argv[1], "put") == 0 && argc == 5) {
		put_obj(argv[2], argv[3], strtoull(argv[4], NULL, 0));
	} else if (strcmp(argv[1], "get") == 0 && argc == 5) {
		get_obj(argv[2], argv[3], strtoull(argv[4], NULL, 0));
	} else if (strcmp(argv[1], "churn") == 0 && argc == 4) {
		churn(argv[2], atoi(argv[3]));
	} else if (strcmp(argv[1], "fail") == 0 && argc == 5) {
		fail_in_time(argv[2], argv[3], strtol(argv[4], NULL, 0));
	} else if (strcmp(argv[1], "bench") == 0 && argc == 5) {
		bench(argv[2], argv[3], atoi(argv[4]));
	} else if (strcmp(argv[1], "putfile") == 0 && argc == 5) {
		put_file(argv[2], argv[3], argv[4]);
	} else if (strcmp(argv[1], "ls") == 0 && argc == 4) {
		list_keys(argv[2], argv[3]);
	} else if (strcmp(argv[1], "stream") == 0 && argc == 5) {
		stream(argv[2], argv[3], strtoull(argv[4], NULL, 0));
	} else {
		fprintf(stderr, "s3_client_test: unknown command '%s'\n", argv[1]);
		return 2;
	}
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	else
		printf("ok %s\n", argv[1]);
	return failures ? 1 : 0;
}
