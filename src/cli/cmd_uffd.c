// SPDX-License-Identifier: MIT
/*
 * snapfs uffd STORE NAME --socket PATH: serve a snapshot's memory to a VMM
 * (Firecracker's Uffd memory backend) as a userfaultfd page server. This
 * file makes the socket, claims the snapshot, reads its working set and
 * hands each client to snapfs_uffd_serve().
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"

static const char usage[] = "uffd STORE NAME --socket PATH [--no-prefetch] [--fault-around PAGES] "
			    "[--keep-listening] "
			    "[-v|--verbose] [--quiet]";

struct uffd_args {
	const char *socket;
	bool no_prefetch, keep, verbose;
	struct cli_common c;
	unsigned around;
};

/* Listen on path: a stale socket file is replaced, any other file is
 * left alone. Returns the socket or a negative errno (message printed). */
static int listen_on(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "snapfs: %s: socket '%s': path too long (at most %zu bytes)\n",
			cli_target_text(), path, sizeof(addr.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(addr.sun_path, path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			fprintf(stderr, "snapfs: %s: socket '%s': exists and is not a socket\n",
				cli_target_text(), path);
			return -EEXIST;
		}
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 4) < 0) {
		int err = errno;

		fprintf(stderr, "snapfs: %s: socket '%s': %s\n", cli_target_text(), path,
			snapfs_strerror(-err));
		if (fd >= 0)
			close(fd);
		return -err;
	}
	return fd;
}

/* Wait for a client; -1 when stopped by a signal. */
static int accept_client(int listener)
{
	while (!cli_cancel) {
		struct pollfd pfd = { .fd = listener, .events = POLLIN };

		if (poll(&pfd, 1, 200) <= 0)
			continue;
		int conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);

		if (conn >= 0)
			return conn;
	}
	return -1;
}

static void print_stats(const char *name, const struct snapfs_uffd_stats *s)
{
	fprintf(stderr, "snapfs: uffd '%s': regions %llu, faults %llu (copied %llu, zero %llu, "
		"present %llu, around %llu pages), prefetched %llu pages in %llu ms (present %llu), removes %llu "
		"(%llu bytes), poisoned %llu\n", name, (unsigned long long)s->regions,
		(unsigned long long)s->faults, (unsigned long long)s->fault_pages,
		(unsigned long long)s->fault_zero_pages, (unsigned long long)s->fault_present,
		(unsigned long long)s->fault_around_pages,
		(unsigned long long)s->prefetched_pages, (unsigned long long)s->prefetch_ms,
		(unsigned long long)s->prefetch_present, (unsigned long long)s->removes,
		(unsigned long long)s->removed_bytes, (unsigned long long)s->poisoned_pages);
}

/* Serve clients one after the other until one has gone (or, with
 * --keep-listening, until a signal). */
static int serve(struct snapfs_image *image, const char *name, int listener,
		 const struct snapfs_uffd_opts *opts, const struct uffd_args *a)
{
	int rc = EXIT_OK;

	for (;;) {
		struct snapfs_uffd_stats stats;
		int conn = accept_client(listener), r;

		if (conn < 0)
			break;
		r = snapfs_uffd_serve(image, conn, opts, &stats);
		close(conn);
		if (a->verbose && stats.regions)
			print_stats(name, &stats);
		if (r == -SNAPFS_ECANCELED)
			break;
		if (r < 0) {
			rc = cli_fail(r, "uffd");
			if (!a->keep)
				break;
			rc = EXIT_OK;
			continue;
		}
		if (!a->keep)
			break;
	}
	if (cli_cancel)
		rc = 128 + (int)cli_cancel;
	return rc;
}

/* "--fault-around 16": a power of two from 1 to 256. */
static int parse_around(const char *cmd, const char *option, const char *value, void *target)
{
	char *end;
	unsigned long n = strtoul(value, &end, 10);

	if (*end || end == value || n < 1 || n > 256 || (n & (n - 1)))
		return cli_usage_error("%s: --%s '%s': not a power of two from 1 to 256", cmd,
				       option, value);
	*(unsigned *)target = (unsigned)n;
	return -1;
}

static int parse(int argc, char **argv, struct uffd_args *a)
{
	const struct cli_option own[] = {
		CLI_TEXT("socket", 's', &a->socket),
		CLI_FLAG("no-prefetch", 0, &a->no_prefetch),
		CLI_VALUE("fault-around", &a->around, parse_around),
		CLI_FLAG("keep-listening", 0, &a->keep),
		CLI_FLAG("verbose", 'v', &a->verbose),
		{ 0 },
	};
	int opt = cli_parse(argc, argv, usage, 0, own, &a->c);

	if (opt >= 0)
		return opt;
	opt = cli_check_args(argc, argv, 2, 2, "STORE NAME", usage);
	if (opt >= 0)
		return opt;
	if (!a->socket || !a->socket[0])
		return cli_usage_error("uffd: missing --socket PATH (usage: snapfs %s)", usage);
	if (!snapfs_name_valid(argv[optind + 1]))
		return cli_usage_error("uffd: snapshot '%s': invalid name", argv[optind + 1]);
	return -1;
}

int cmd_uffd(int argc, char **argv)
{
	struct snapfs_uffd_opts opts = { .cancel = &cli_cancel };
	struct snapfs_page_run *runs = NULL;
	struct snapfs_image *image = NULL;
	struct snapfs_store *store;
	struct snapfs_snapshot snap;
	struct uffd_args a = { 0 };
	const char *name;
	size_t run_count = 0;
	int rc, listener;

	rc = parse(argc, argv, &a);
	if (rc >= 0)
		return rc;
	name = argv[optind + 1];
	cli_target("uffd", argv[optind], (const char *const *)argv + optind + 1, 1);
	rc = cli_open_store(argv[optind], SNAPFS_OPEN_READONLY, &store);
	if (rc)
		return rc;
	rc = snapfs_snapshot_get(store, name, &snap);
	if (rc == 0) {
		/* Claimed from here to the end, like a mount's open file. */
		rc = snapfs_image_open(store, snap.id, &image);
		if (rc == 0 && !a.no_prefetch)
			rc = snapfs_working_set_get(store, snap.id, &runs, &run_count);
		snapfs_snapshot_release(&snap);
	}
	if (rc < 0) {
		rc = cli_fail(rc, "uffd");
		goto out_close;
	}
	opts.prefetch = runs;
	opts.fault_around_pages = a.around;
	opts.prefetch_count = run_count;
	listener = listen_on(a.socket);
	if (listener < 0) {
		rc = EXIT_FAILED;
		goto out_close;
	}
	if (a.verbose)
		fprintf(stderr, "snapfs: uffd '%s': listening on '%s' (working set: %zu runs)\n",
			name, a.socket, run_count);
	rc = serve(image, name, listener, &opts, &a);
	close(listener);
	unlink(a.socket);

out_close:
	free(runs);
	snapfs_image_close(image);
	snapfs_store_close(store);
	return rc;
}
