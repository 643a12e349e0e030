// SPDX-License-Identifier: MIT
/*
 * nullfs: the FUSE transport ceiling for the benchmarks.
 *
 * A low-level libfuse3 server that exposes one read-only file, /memory, of
 * a given size and answers every read with constant bytes from a static
 * buffer: no lookups, no decoding, no copies. It mounts with the options
 * snapfs uses (fs/mount_main.c, fs/snapfs_fuse.c): "-o ro,subtype=...,
 * fsname=...", the multi-threaded session loop with libfuse's defaults,
 * FUSE_CAP_ASYNC_READ on, FUSE_CAP_AUTO_INVAL_DATA off, max_readahead left
 * at the kernel's offer (or, with -o read_ahead_kb=N, the window set the
 * way snapfs sets it), keep_cache and noflush on open, 86400 s attribute
 * and entry timeouts for the file. Whatever snapfs is slower than this is
 * snapfs's own cost, not the kernel's.
 *
 *   nullfs MOUNTPOINT -o size=BYTES [-o read_ahead_kb=N] [-f] [-s] [-d] [-o OPT...]
 *
 * With the environment variable NULLFS_STATS=FILE it writes, on exit, a
 * histogram of the read request sizes the kernel sent (size count), so
 * that the benchmark can tell which request sizes a reader produces.
 *
 * Built by tests/bench/run.sh: cc -O2 nullfs.c $(pkg-config --cflags --libs fuse3)
 */
#define _GNU_SOURCE
#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_AHEAD_KB_MAX 65536

#define FILE_INO 2
#define FILE_NAME "memory"
#define DATA_TIMEOUT 86400.0
#define ROOT_TIMEOUT 0.5
#define BUF_BYTES (4u << 20)       /* more than any request the kernel sends */
#define HIST_SLOTS 256             /* request sizes in 4 KiB steps, up to 1 MiB; larger in the last */

static uint64_t file_size;
static char *constant;            /* BUF_BYTES of one byte value */
static atomic_ulong hist[HIST_SLOTS + 1];
static atomic_ulong odd_reads;    /* sizes that are not a multiple of 4 KiB */
static long read_ahead_kb = -1;   /* -o read_ahead_kb, -1 if not given */

static void fill_stat(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_blksize = 4096;
	if (ino == FUSE_ROOT_ID) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)file_size;
		st->st_blocks = (blkcnt_t)((file_size + 511) / 512);
	}
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* As snapfs: no AUTO_INVAL_DATA, ASYNC_READ when offered, the
	 * kernel's max_readahead kept unless -o read_ahead_kb was given
	 * (the kernel keeps the smaller of the window and this answer). */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	if (read_ahead_kb >= 0)
		conn->max_readahead = (unsigned)read_ahead_kb * 1024;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	if (parent != FUSE_ROOT_ID || strcmp(name, FILE_NAME) != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = FILE_INO;
	fill_stat(FILE_INO, &e.attr);
	e.attr_timeout = DATA_TIMEOUT;
	e.entry_timeout = DATA_TIMEOUT;
	fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	if (ino != FUSE_ROOT_ID && ino != FILE_INO) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_stat(ino, &st);
	fuse_reply_attr(req, &st, ino == FILE_INO ? DATA_TIMEOUT : ROOT_TIMEOUT);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != FILE_INO) {
		fuse_reply_err(req, ino == FUSE_ROOT_ID ? EISDIR : ENOENT);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	fi->keep_cache = 1;
	fi->noflush = 1;
	fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	size_t slot;

	(void)fi;
	if (ino != FILE_INO) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	slot = (size + 4095) / 4096;
	if (slot > HIST_SLOTS)
		slot = HIST_SLOTS;
	atomic_fetch_add_explicit(&hist[slot], 1, memory_order_relaxed);
	if (size % 4096)
		atomic_fetch_add_explicit(&odd_reads, 1, memory_order_relaxed);
	if (off < 0 || (uint64_t)off >= file_size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > file_size - (uint64_t)off)
		size = (size_t)(file_size - (uint64_t)off);
	if (size > BUF_BYTES)
		size = BUF_BYTES;
	fuse_reply_buf(req, constant, size);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	static const char *names[] = { ".", "..", FILE_NAME };
	static const fuse_ino_t inos[] = { FUSE_ROOT_ID, FUSE_ROOT_ID, FILE_INO };
	char *buf;
	size_t used = 0;

	(void)fi;
	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (off_t i = off; i < 3; i++) {
		struct stat st;
		size_t need;

		memset(&st, 0, sizeof(st));
		st.st_ino = inos[i];
		st.st_mode = i < 2 ? S_IFDIR : S_IFREG;
		need = fuse_add_direntry(req, buf + used, size - used, names[i], &st, i + 1);
		if (need > size - used)
			break;
		used += need;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.open = op_open,
	.read = op_read,
	.readdir = op_readdir,
};

struct nullfs_opts {
	char *size;
	char *read_ahead_kb;
};

static const struct fuse_opt opt_spec[] = {
	{ "size=%s", offsetof(struct nullfs_opts, size), 0 },
	{ "read_ahead_kb=%s", offsetof(struct nullfs_opts, read_ahead_kb), 0 },
	FUSE_OPT_END
};

/* A copy of snapfs's mountpoint_set_read_ahead() (fs/mountpoint.c): the
 * window of the device mounted on path, before the session answers INIT.
 * Warns and goes on when it cannot. */
static void set_read_ahead(const char *path, unsigned kb)
{
	char sys[96], value[16];
	struct statx stx;
	int fd, len;

	if (statx(AT_FDCWD, path, AT_STATX_DONT_SYNC, 0, &stx) < 0) {
		fprintf(stderr, "nullfs: mount '%s': read_ahead_kb: %s\n", path,
			strerror(errno));
		return;
	}
	snprintf(sys, sizeof(sys), "/sys/class/bdi/%u:%u/read_ahead_kb",
		 stx.stx_dev_major, stx.stx_dev_minor);
	len = snprintf(value, sizeof(value), "%u\n", kb);
	fd = open(sys, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, value, (size_t)len) != len)
		fprintf(stderr, "nullfs: mount '%s': read_ahead_kb: cannot write "
			"'%s': %s\n", path, sys, strerror(errno));
	if (fd >= 0)
		close(fd);
}

static void write_stats(void)
{
	const char *path = getenv("NULLFS_STATS");
	FILE *f;

	if (!path || !*path)
		return;
	f = fopen(path, "w");
	if (!f)
		return;
	for (size_t i = 0; i <= HIST_SLOTS; i++) {
		unsigned long n = atomic_load(&hist[i]);

		if (n)
			fprintf(f, "%zu %lu\n", i * 4096, n);
	}
	fprintf(f, "odd %lu\n", (unsigned long)atomic_load(&odd_reads));
	fclose(f);
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct nullfs_opts nopts = { 0 };
	struct fuse_cmdline_opts opts;
	struct fuse_session *se;
	char *end;
	int rc = 1;

	if (fuse_opt_parse(&args, &nopts, opt_spec, NULL) == -1)
		return 2;
	if (!nopts.size) {
		fprintf(stderr, "usage: nullfs MOUNTPOINT -o size=BYTES [-f] [-o OPT]\n");
		return 2;
	}
	errno = 0;
	file_size = strtoull(nopts.size, &end, 10);
	if (errno || *end) {
		fprintf(stderr, "nullfs: bad size '%s'\n", nopts.size);
		return 2;
	}
	if (nopts.read_ahead_kb) {
		read_ahead_kb = strtol(nopts.read_ahead_kb, &end, 10);
		if (!isdigit((unsigned char)nopts.read_ahead_kb[0]) || *end ||
		    read_ahead_kb > READ_AHEAD_KB_MAX) {
			fprintf(stderr, "nullfs: option 'read_ahead_kb=%s': expected a "
				"whole number of KiB from 0 to 65536\n", nopts.read_ahead_kb);
			return 2;
		}
	}
	constant = malloc(BUF_BYTES);
	if (!constant)
		return 1;
	memset(constant, 0x5a, BUF_BYTES);
	/* The fixed options snapfs adds. */
	if (fuse_opt_add_arg(&args, "-o") == -1 ||
	    fuse_opt_add_arg(&args, "ro,subtype=nullfs,fsname=nullfs") == -1)
		return 1;
	if (fuse_parse_cmdline(&args, &opts) != 0)
		return 2;
	if (!opts.mountpoint) {
		fprintf(stderr, "nullfs: missing MOUNTPOINT\n");
		return 2;
	}
	se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se)
		goto out_args;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, opts.mountpoint) != 0)
		goto out_handlers;
	if (read_ahead_kb >= 0)
		set_read_ahead(opts.mountpoint, (unsigned)read_ahead_kb);
	if (fuse_daemonize(opts.foreground) != 0)
		goto out_unmount;
	if (opts.singlethread) {
		rc = fuse_session_loop(se);
	} else {
		/* As snapfs's run_session(): libfuse's defaults. */
		struct fuse_loop_config *config = fuse_loop_cfg_create();

		fuse_loop_cfg_set_clone_fd(config, (unsigned)opts.clone_fd);
		fuse_loop_cfg_set_max_threads(config, opts.max_threads);
		if (opts.max_idle_threads != UINT_MAX)
			fuse_loop_cfg_set_idle_threads(config, opts.max_idle_threads);
		rc = fuse_session_loop_mt(se, config);
		fuse_loop_cfg_destroy(config);
	}
	rc = rc < 0 ? 1 : 0;
	write_stats();
out_unmount:
	fuse_session_unmount(se);
out_handlers:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_args:
	free(opts.mountpoint);
	fuse_opt_free_args(&args);
	free(constant);
	return rc;
}
