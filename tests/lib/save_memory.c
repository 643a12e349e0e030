/* SPDX-License-Identifier: MIT */
/*
 * snapfs_save_memory(), as a VMM would call it: guest RAM in anonymous
 * mappings (two regions at guest-physical offsets with a hole between,
 * zero pages, one region labelled and of another kind) saved straight from
 * memory, then read back through the API and compared byte for byte; the
 * segments, SEEK_DATA iteration, an incremental save with a parent (pages
 * shared), and the refusals (overlap, misalignment, name taken, format
 * given) leaving no snapshot behind. Uses <snapfs.h> alone.
 *
 *   save_memory STORE   (an initialised, empty store)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <snapfs.h>

#define P SNAPFS_PAGE_SIZE
#define CHECK(cond, ...) do { if (!(cond)) { fprintf(stderr, "FAIL %s:%d: ", __FILE__, \
	__LINE__); fprintf(stderr, __VA_ARGS__); fprintf(stderr, " (%s)\n", snapfs_errmsg()); \
	exit(1); } } while (0)

static unsigned char *guest(size_t pages, unsigned seed)
{
	unsigned char *p = mmap(NULL, pages * P, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED, "mmap");
	srand(seed);
	for (size_t i = 0; i < pages; i++)
		if (i % 4 != 3)            /* every fourth page stays zero */
			for (size_t k = 0; k < P; k += 8)
				snprintf((char *)p + i * P + k, 9, "%07x", (unsigned)rand() & 0xfffffff);
	return p;
}

/* The memory file's bytes as the regions say, into a buffer of size bytes. */
static unsigned char *expected(const struct snapfs_mem_region *r, size_t n, size_t size)
{
	unsigned char *e = calloc(1, size);

	CHECK(e, "calloc");
	for (size_t i = 0; i < n; i++)
		memcpy(e + r[i].offset, r[i].addr, r[i].len);
	return e;
}

static void compare(struct snapfs_store *store, const char *name, const unsigned char *want,
		    size_t size)
{
	struct snapfs_snapshot snap;
	struct snapfs_image *img;
	unsigned char *got = malloc(size);
	int rc;

	CHECK(got, "malloc");
	rc = snapfs_snapshot_get(store, name, &snap);
	CHECK(rc == 0, "get %s: %d", name, rc);
	CHECK(snap.file_size == size, "%s: file_size %llu, want %zu", name,
	      (unsigned long long)snap.file_size, size);
	CHECK(strcmp(snap.format, "memory") == 0, "%s: format %s", name, snap.format);
	rc = snapfs_image_open(store, snap.id, &img);
	CHECK(rc == 0, "image_open %s: %d", name, rc);
	CHECK(snapfs_image_read(img, got, size, 0) == (ssize_t)size, "read %s", name);
	CHECK(memcmp(got, want, size) == 0, "%s: bytes differ", name);
	snapfs_image_close(img);
	snapfs_snapshot_release(&snap);
	free(got);
}

int main(int argc, char **argv)
{
	struct snapfs_save_opts opts = { .codec = SNAPFS_CODEC_ZSTD };
	struct snapfs_save_result res;
	struct snapfs_store *store;
	struct snapfs_snapshot snap;
	struct snapfs_segment *segs;
	struct snapfs_image *img;
	size_t nseg, size = 64 * P, snaps;
	unsigned char *low = guest(16, 1), *high = guest(24, 2), *want;
	/* Listed out of order: the library sorts them. */
	struct snapfs_mem_region r[2] = {
		{ .addr = high, .offset = 32 * P, .len = 24 * P, .kind = "tmpfs", .label = "ram-high" },
		{ .addr = low, .offset = 0, .len = 16 * P },
	};
	int64_t a, b;
	int rc;

	CHECK(argc == 2, "usage: save_memory STORE");
	rc = snapfs_store_open(argv[1], 0, &store);
	CHECK(rc == 0, "store_open: %d", rc);

	/* 64 pages: 0-15 low, 16-31 hole, 32-55 high, 56-63 hole. */
	rc = snapfs_save_memory(store, "vm1", r, 2, size, &opts, &res);
	CHECK(rc == 0, "save_memory: %d %s", rc, snapfs_strerror(rc));
	CHECK(res.file_size == size && res.data_pages == 30 && res.zero_pages == 10,
	      "result: file_size %llu data %llu zero %llu", (unsigned long long)res.file_size,
	      (unsigned long long)res.data_pages, (unsigned long long)res.zero_pages);
	want = expected(r, 2, size);
	compare(store, "vm1", want, size);

	rc = snapfs_snapshot_get(store, "vm1", &snap);
	CHECK(rc == 0, "get");
	rc = snapfs_segments_get(store, snap.id, &segs, &nseg);
	CHECK(rc == 0 && nseg == 2, "segments: %d, %zu", rc, nseg);
	CHECK(segs[0].start == 0 && segs[0].end == 16 * P && strcmp(segs[0].kind, "anonymous") == 0 &&
	      !segs[0].label, "segment 0");
	CHECK(segs[1].start == 32 * P && segs[1].end == 56 * P && strcmp(segs[1].kind, "tmpfs") == 0 &&
	      segs[1].label && strcmp(segs[1].label, "ram-high") == 0, "segment 1");
	snapfs_segments_free(segs, nseg);
	/* SEEK_DATA / SEEK_HOLE: the data pages, zero pages are holes. */
	rc = snapfs_image_open(store, snap.id, &img);
	CHECK(rc == 0, "image_open");
	a = snapfs_image_seek(img, 0, SEEK_DATA);
	b = snapfs_image_seek(img, (uint64_t)a, SEEK_HOLE);
	CHECK(a == 0 && b == 3 * P, "first data range [%lld, %lld)", (long long)a, (long long)b);
	a = snapfs_image_seek(img, 16 * P, SEEK_DATA);
	CHECK(a == 32 * P, "data after the hole at %lld", (long long)a);
	CHECK(snapfs_image_seek(img, 56 * P, SEEK_DATA) == -ENXIO, "data past the last region");
	snapfs_image_close(img);

	/* Incremental: one page changed, the rest shared with the parent. */
	low[5 * P] ^= 0xff;
	opts.parent = "vm1";
	rc = snapfs_save_memory(store, "vm2", r, 2, 0, &opts, &res);
	CHECK(rc == 0, "save vm2: %d", rc);
	CHECK(res.file_size == 56 * P, "file_size 0 ends at the last region: %llu",
	      (unsigned long long)res.file_size);
	CHECK(res.new_pages == 1 && res.dedup_pages == 29, "vm2: new %llu dedup %llu",
	      (unsigned long long)res.new_pages, (unsigned long long)res.dedup_pages);
	free(want);
	want = expected(r, 2, 56 * P);
	compare(store, "vm2", want, 56 * P);
	opts.parent = NULL;

	/* Refusals: nothing saved. */
	{
		struct snapfs_mem_region bad[2] = { r[0], r[1] };

		bad[1].offset = 30 * P;          /* 30..46 meets 32.. */
		bad[1].len = 16 * P;
		rc = snapfs_save_memory(store, "bad1", bad, 2, 0, &opts, NULL);
		CHECK(rc == -EINVAL && strstr(snapfs_errmsg(), "overlap"), "overlap: %d", rc);
		bad[1] = r[1];
		bad[1].offset = 100;
		rc = snapfs_save_memory(store, "bad2", bad, 2, 0, &opts, NULL);
		CHECK(rc == -EINVAL && strstr(snapfs_errmsg(), "aligned"), "unaligned: %d", rc);
		bad[1] = r[1];
		bad[1].kind = "bogus";
		rc = snapfs_save_memory(store, "bad3", bad, 2, 0, &opts, NULL);
		CHECK(rc == -EINVAL && strstr(snapfs_errmsg(), "bogus"), "kind: %d", rc);
		rc = snapfs_save_memory(store, "bad4", r, 2, 40 * P, &opts, NULL);
		CHECK(rc == -EINVAL && strstr(snapfs_errmsg(), "past"), "past the size: %d", rc);
		rc = snapfs_save_memory(store, "vm1", r, 2, 0, &opts, NULL);
		CHECK(rc == -EEXIST, "name taken: %d", rc);
		opts.format = "raw";
		rc = snapfs_save_memory(store, "bad5", r, 2, 0, &opts, NULL);
		CHECK(rc == -EINVAL, "format given: %d", rc);
		opts.format = NULL;
	}
	{
		struct snapfs_snapshot *list;

		rc = snapfs_snapshot_list(store, &list, &snaps);
		CHECK(rc == 0 && snaps == 2, "snapshots after the refusals: %zu", snaps);
		snapfs_snapshot_list_free(list, snaps);
	}
	snapfs_snapshot_release(&snap);
	snapfs_store_close(store);
	free(want);
	printf("save_memory: ok\n");
	return 0;
}
