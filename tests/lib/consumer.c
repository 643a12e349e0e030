/* SPDX-License-Identifier: MIT */
/*
 * A program that uses libsnapfs as an installed library would: only
 * <snapfs.h>, built with `cc consumer.c $(pkg-config --cflags --libs snapfs)`.
 *
 *   consumer STORE NAME OFFSET LENGTH OUTPUT
 *
 * Prints one line per snapshot of STORE ("NAME SIZE"), then writes LENGTH
 * bytes of snapshot NAME's memory from OFFSET to the file OUTPUT.
 * tests/lib/test_consumer.py compares them with `snapfs list` and dd.
 */
#include <snapfs.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	struct snapfs_store *store = NULL;
	struct snapfs_snapshot *snaps = NULL, snap;
	struct snapfs_image *image = NULL;
	size_t count = 0, len;
	uint64_t off;
	char *buf = NULL;
	ssize_t got;
	FILE *out;
	int rc;

	if (argc != 6) {
		fprintf(stderr, "usage: consumer STORE NAME OFFSET LENGTH OUTPUT\n");
		return 2;
	}
	off = strtoull(argv[3], NULL, 0);
	len = strtoull(argv[4], NULL, 0);

	rc = snapfs_store_open(argv[1], SNAPFS_OPEN_READONLY, &store);
	if (rc < 0)
		goto fail;
	rc = snapfs_snapshot_list(store, &snaps, &count);
	if (rc < 0)
		goto fail;
	for (size_t i = 0; i < count; i++)
		printf("%s %llu\n", snaps[i].name, (unsigned long long)snaps[i].file_size);
	snapfs_snapshot_list_free(snaps, count);

	rc = snapfs_snapshot_get(store, argv[2], &snap);
	if (rc < 0)
		goto fail;
	rc = snapfs_image_open(store, snap.id, &image);
	snapfs_snapshot_release(&snap);
	if (rc < 0)
		goto fail;
	buf = malloc(len ? len : 1);
	if (!buf)
		return 1;
	got = snapfs_image_read(image, buf, len, off);
	if (got < 0) {
		rc = (int)got;
		goto fail;
	}
	out = fopen(argv[5], "wb");
	if (!out || fwrite(buf, 1, (size_t)got, out) != (size_t)got || fclose(out) != 0) {
		perror(argv[5]);
		return 1;
	}
	free(buf);
	snapfs_image_close(image);
	snapfs_store_close(store);
	return 0;

fail:
	fprintf(stderr, "consumer: %s: %s\n", snapfs_strerror(rc), snapfs_errmsg());
	free(buf);
	snapfs_image_close(image);
	snapfs_store_close(store);
	return 1;
}
