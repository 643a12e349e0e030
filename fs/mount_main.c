// SPDX-License-Identifier: MIT
/*
 * snapfs_mount_main(): arguments, checks and the daemon around the FUSE
 * session. Everything that can go wrong before serving (bad arguments, not
 * a store, a bad or busy mountpoint, the mount itself) is reported here,
 * in the foreground and with the right exit status; only then does the
 * process detach (unless -f) and run the session loop.
 */
#include "snapfs_fuse.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"
#include "fslog.h"
#include "mountpoint.h"

#ifndef SNAPFS_VERSION
#define SNAPFS_VERSION "unknown"
#endif

enum exit_status {
	EXIT_OK = 0,
	EXIT_FAILED = 1,   /* the mount or the session failed */
	EXIT_USAGE = 2,    /* bad arguments, not a store, newer schema */
};

enum mount_key {
	KEY_CACHE_SIZE,
	KEY_READ_AHEAD,
	KEY_RW,
	KEY_ALLOW_OTHER,
	KEY_RECORD,
	KEY_RECORD_SECONDS,
	KEY_NOPREFETCH,
	KEY_PREFETCH_WAIT,
	KEY_PRIVATE_RW,
	KEY_CACHE_DIR,                   /* a remote store's pack cache: set as */
	KEY_CACHE_DIR_SIZE,              /* SNAPFS_CACHE_DIR / _SIZE, which the core reads */
};

/* What the first pass over the arguments finds. */
struct mount_args {
	const char *store;               /* first non-option argument */
	const char *mountpoint;          /* second */
	size_t cache_bytes;              /* -o cache_size, in bytes */
	bool cache_set;
	unsigned read_ahead_kb;          /* -o read_ahead_kb */
	bool read_ahead_set;
	bool allow_other;
	bool record;                     /* -o record[=SECONDS] */
	unsigned record_seconds;
	bool noprefetch;                 /* -o noprefetch */
	unsigned prefetch_wait_ms;       /* -o prefetch_wait */
	bool private_rw;                 /* -o private_rw */
	char error[256];                 /* first bad argument, if any */
};

static const struct fuse_opt mount_opt_spec[] = {
	FUSE_OPT_KEY("cache_size=", KEY_CACHE_SIZE),
	FUSE_OPT_KEY("read_ahead_kb=", KEY_READ_AHEAD),
	FUSE_OPT_KEY("rw", KEY_RW),
	FUSE_OPT_KEY("allow_other", KEY_ALLOW_OTHER),
	FUSE_OPT_KEY("record", KEY_RECORD),
	FUSE_OPT_KEY("record=", KEY_RECORD_SECONDS),
	FUSE_OPT_KEY("noprefetch", KEY_NOPREFETCH),
	FUSE_OPT_KEY("prefetch_wait=", KEY_PREFETCH_WAIT),
	FUSE_OPT_KEY("private_rw", KEY_PRIVATE_RW),
	FUSE_OPT_KEY("cache_dir=", KEY_CACHE_DIR),
	FUSE_OPT_KEY("cache_dir_size=", KEY_CACHE_DIR_SIZE),
	/* Always read-only: "ro" is added below. */
	FUSE_OPT_KEY("ro", FUSE_OPT_KEY_DISCARD),
	/* fstab words that mean nothing to a running mount. */
	FUSE_OPT_KEY("defaults", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("auto", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("noauto", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("nofail", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("_netdev", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_END
};

static void set_error(struct mount_args *ma, const char *fmt, const char *arg)
{
	if (!ma->error[0])
		snprintf(ma->error, sizeof(ma->error), fmt, arg);
}

/* The largest readahead window -o read_ahead_kb takes: 64 MiB. */
#define READ_AHEAD_KB_MAX 65536

/* "NAME=N" with N a whole number from min to max, in *ret (left alone
 * otherwise). false, with the error recorded, when it is not. */
static bool parse_number(struct mount_args *ma, const char *arg,
			 unsigned long long min, unsigned long long max,
			 const char *unit, unsigned long long *ret)
{
	const char *value = strchr(arg, '=') + 1;
	unsigned long long n;
	char *end;

	errno = 0;
	n = strtoull(value, &end, 10);
	if (errno || end == value || *end || value[0] == '-' || value[0] == '+' ||
	    n < min || n > max) {
		if (!ma->error[0])
			snprintf(ma->error, sizeof(ma->error),
				 "option '%s': expected a whole number of %s from %llu to %llu",
				 arg, unit, min, max);
		return false;
	}
	*ret = n;
	return true;
}

static int parse_cache_size(struct mount_args *ma, const char *arg)
{
	unsigned long long mib;

	if (parse_number(ma, arg, 0, SIZE_MAX >> 20, "MiB", &mib)) {
		ma->cache_bytes = (size_t)mib << 20;
		ma->cache_set = true;
	}
	return 0;
}

static int parse_read_ahead(struct mount_args *ma, const char *arg)
{
	unsigned long long kb;

	if (parse_number(ma, arg, 0, READ_AHEAD_KB_MAX, "KiB", &kb)) {
		ma->read_ahead_kb = (unsigned)kb;
		ma->read_ahead_set = true;
	}
	return 0;
}

static int parse_record(struct mount_args *ma, const char *arg)
{
	unsigned long long sec;

	if (parse_number(ma, arg, 1, WORKSET_MAX_SECONDS, "seconds", &sec)) {
		ma->record = true;
		ma->record_seconds = (unsigned)sec;
	}
	return 0;
}

static int parse_prefetch_wait(struct mount_args *ma, const char *arg)
{
	unsigned long long ms;

	if (parse_number(ma, arg, 0, WORKSET_MAX_WAIT_MS, "milliseconds", &ms))
		ma->prefetch_wait_ms = (unsigned)ms;
	return 0;
}

/* "1073741824", "512M", "1g": digits and at most one of K M G T (either case). */
static bool size_text_valid(const char *text)
{
	size_t digits = strspn(text, "0123456789");

	return digits > 0 && digits <= 15 &&
	       (!text[digits] || (strchr("KMGTkmgt", text[digits]) && !text[digits + 1]));
}

static bool is_cmdline_option(const char *arg)
{
	static const char *const known[] = { "-h", "--help", "-V", "--version", "-d", "-f",
					     "-s", "-o" };

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(arg, known[i]) == 0)
			return true;
	return false;
}

/* fuse_opt_parse() callback: keep what libfuse should see (1), take the
 * rest (0). Errors are recorded and reported once STORE is known. */
static int opt_proc(void *data, const char *arg, int key,
		    struct fuse_args *outargs)
{
	struct mount_args *ma = data;

	(void)outargs;
	switch (key) {
	case FUSE_OPT_KEY_OPT:
		/* Options on the command line (those of -o come without
		 * the dash): only the ones fuse_parse_cmdline() knows. */
		if (arg[0] == '-' && !is_cmdline_option(arg))
			set_error(ma, "unknown option '%s' (see 'snapfs mount --help')", arg);
		return 1;
	case FUSE_OPT_KEY_NONOPT:
		if (!ma->store)
			ma->store = arg;
		else if (!ma->mountpoint)
			ma->mountpoint = arg;
		else
			set_error(ma, "unexpected argument '%s' (see 'snapfs mount --help')", arg);
		return 0;
	case KEY_CACHE_SIZE:
		return parse_cache_size(ma, arg);
	case KEY_READ_AHEAD:
		return parse_read_ahead(ma, arg);
	case KEY_RW:
		fprintf(stderr, "snapfs: warning: mount: option 'rw' ignored: "
			"snapfs mounts are read-only; mounting read-only\n");
		return 0;
	case KEY_ALLOW_OTHER:
		ma->allow_other = true;
		return 1;
	case KEY_RECORD:
		ma->record = true;
		ma->record_seconds = WORKSET_DEFAULT_SECONDS;
		return 0;
	case KEY_RECORD_SECONDS:
		return parse_record(ma, arg);
	case KEY_NOPREFETCH:
		ma->noprefetch = true;
		return 0;
	case KEY_PREFETCH_WAIT:
		return parse_prefetch_wait(ma, arg);
	case KEY_PRIVATE_RW:
		ma->private_rw = true;
		return 0;
	case KEY_CACHE_DIR:
		/* arg lives only as long as this call: set the variable now. */
		if (!arg[strlen("cache_dir=")])
			set_error(ma, "option '%s': expected a directory", arg);
		else if (setenv("SNAPFS_CACHE_DIR", arg + strlen("cache_dir="), 1) < 0)
			set_error(ma, "option '%s': out of memory", arg);
		return 0;
	case KEY_CACHE_DIR_SIZE:
		if (!size_text_valid(arg + strlen("cache_dir_size=")))
			set_error(ma, "option '%s': expected a size in bytes, with K, M, G or T "
				  "for KiB, MiB, GiB, TiB", arg);
		else if (setenv("SNAPFS_CACHE_SIZE", arg + strlen("cache_dir_size="), 1) < 0)
			set_error(ma, "option '%s': out of memory", arg);
		return 0;
	default:
		return 1;
	}
}

/* fuse_session_new() with what libfuse prints caught, so that a user
 * gets one line of ours: on failure its first line ("fuse: " cut) is in
 * why; on success whatever it said goes to standard error as it was. */
static struct fuse_session *session_new(struct fuse_args *args, struct fs *fs,
					char *why, size_t cap)
{
	struct fuse_session *se;
	FILE *caught = tmpfile();
	char line[512];
	int saved = -1;

	why[0] = '\0';
	fflush(stderr);
	if (caught) {
		saved = dup(STDERR_FILENO);
		if (saved >= 0 && dup2(fileno(caught), STDERR_FILENO) < 0) {
			close(saved);
			saved = -1;
		}
	}
	se = fuse_session_new(args, &fs_ops, sizeof(fs_ops), fs);
	if (saved >= 0) {
		fflush(stderr);
		dup2(saved, STDERR_FILENO);
		close(saved);
	}
	if (!caught)
		return se;
	rewind(caught);
	while (fgets(line, sizeof(line), caught)) {
		const char *text = strncmp(line, "fuse: ", 6) == 0 ? line + 6 : line;

		if (se) {
			fputs(line, stderr);
		} else if (!why[0]) {
			snprintf(why, cap, "%s", text);
			why[strcspn(why, "\n")] = '\0';
		}
	}
	fclose(caught);
	return se;
}

static void print_help(void)
{
	printf("usage: snapfs mount STORE MOUNTPOINT [options]\n"
	       "       snapfs STORE MOUNTPOINT -o OPT[,OPT...]  (the form mount.fuse3 uses)\n"
	       "\n"
	       "Mount the snapshots of STORE read-only on MOUNTPOINT: one directory a\n"
	       "snapshot, holding 'memory' (the memory file, read on demand), 'segments'\n"
	       "(the usage set), 'info' (the metadata) and 'regions/' (one file per\n"
	       "segment, START-END-LABEL, its bytes only: for a process's snapshot, whose\n"
	       "memory file spans the address space). Unmount with 'fusermount3 -u\n"
	       "MOUNTPOINT'.\n"
	       "\n"
	       "snapfs options:\n"
	       "    -o cache_size=MiB      decoded-page cache, shared by all files (default %zu)\n"
	       "    -o read_ahead_kb=N     the mount's readahead window in KiB, 0..65536 (root\n"
	       "                           only; the kernel's default is 128): 1024 lets\n"
	       "                           sequential reads come in 1 MiB requests\n"
	       "    -o record[=SECONDS]    record each snapshot's working set: the pages of\n"
	       "                           its memory file read in the first SECONDS (default\n"
	       "                           %d) after the mount first opens it, in first-touch\n"
	       "                           order, saved to the store at the end of the window\n"
	       "                           (or when the file is closed, or at unmount); the\n"
	       "                           store must be writable; nothing is prefetched\n"
	       "    -o noprefetch          do not prefetch recorded working sets (by default,\n"
	       "                           the first open of a memory file whose snapshot has\n"
	       "                           one pushes its pages into the page cache)\n"
	       "    -o prefetch_wait=MS    how long that open waits for the prefetch, 0..60000\n"
	       "                           (default %d); it goes on in the background after\n"
	       "                           (an O_RDWR open under private_rw never waits: its\n"
	       "                           prefetch starts at the first read)\n"
	       "    -o allow_other         let other users in (permissions are then checked)\n"
	       "    -o private_rw          for VMMs that open guest RAM O_RDWR and map it\n"
	       "                           MAP_PRIVATE (QEMU's memory-backend-file,\n"
	       "                           share=off): open(O_RDWR) of a memory file\n"
	       "                           succeeds; write(2) on it fails with EROFS and\n"
	       "                           any MAP_SHARED mapping of it with ENODEV, at\n"
	       "                           once. The store is never written.\n"
	       "    -o cache_dir=DIR       a remote store's cache of pack bytes (default\n"
	       "                           STORE/cache; as SNAPFS_CACHE_DIR, shared with\n"
	       "                           restore and uffd when they are given the same)\n"
	       "    -o cache_dir_size=SIZE its bound in bytes, K/M/G/T suffixes, 0: no\n"
	       "                           cache (as SNAPFS_CACHE_SIZE; default 1G)\n"
	       "    -o ro                  accepted; the mount is always read-only\n"
	       "                           (with private_rw the kernel sees a rw mount and\n"
	       "                           the daemon refuses every change itself)\n"
	       "\n",
	       SNAPFS_DEFAULT_CACHE_SIZE >> 20, WORKSET_DEFAULT_SECONDS,
	       WORKSET_DEFAULT_WAIT_MS);
	fuse_cmdline_help();
	fuse_lowlevel_help();
}

/* "-o ro,subtype=snapfs,fsname=STORE[,default_permissions]". Without
 * "ro" under -o private_rw: on a read-only mount the kernel refuses
 * open(O_RDWR) before the daemon sees it. */
static int add_fixed_opts(struct fuse_args *args, const char *store,
			  bool allow_other, bool private_rw)
{
	char *opts = NULL, *fsname = NULL;
	int rc = -ENOMEM;

	if (asprintf(&fsname, "fsname=%s", store) < 0) {
		fsname = NULL;
		goto out_free;
	}
	if (fuse_opt_add_opt(&opts, private_rw ? "rw" : "ro") == -1 ||
	    fuse_opt_add_opt(&opts, "subtype=snapfs") == -1 ||
	    fuse_opt_add_opt_escaped(&opts, fsname) == -1)
		goto out_free;
	/* With others let in, the kernel must check the modes. */
	if (allow_other && fuse_opt_add_opt(&opts, "default_permissions") == -1)
		goto out_free;
	if (fuse_opt_add_arg(args, "-o") == -1 ||
	    fuse_opt_add_arg(args, opts) == -1)
		goto out_free;
	rc = 0;
out_free:
	free(opts);
	free(fsname);
	return rc;
}

/* mount.fuse3's drop_privileges passes an open /dev/fuse as /dev/fd/N. */
static bool is_fuse_fd(const char *mountpoint)
{
	unsigned fd;
	char rest;

	return sscanf(mountpoint, "/dev/fd/%u%c", &fd, &rest) == 1;
}

static int run_session(struct fuse_session *se,
		       const struct fuse_cmdline_opts *opts)
{
	int rc;

	if (opts->singlethread)
		return fuse_session_loop(se);
#if FUSE_USE_VERSION >= FUSE_MAKE_VERSION(3, 12)
	struct fuse_loop_config *config = fuse_loop_cfg_create();

	if (!config)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(config, (unsigned)opts->clone_fd);
	fuse_loop_cfg_set_max_threads(config, opts->max_threads);
	if (opts->max_idle_threads != UINT_MAX)   /* -1: not given */
		fuse_loop_cfg_set_idle_threads(config, opts->max_idle_threads);
	rc = fuse_session_loop_mt(se, config);
	fuse_loop_cfg_destroy(config);
#else
	struct fuse_loop_config config = {
		.clone_fd = opts->clone_fd,
		.max_idle_threads = opts->max_idle_threads,
	};

	rc = fuse_session_loop_mt(se, &config);
#endif
	return rc;
}

/* The library's detail for a failed open of dir, without the "'DIR': " or
 * "store 'DIR': " the message names already. */
static const char *store_detail(int rc, const char *dir)
{
	const char *d = snapfs_errmsg();
	size_t n = strlen(dir);

	if (!d[0])
		return snapfs_strerror(rc);
	if (strncmp(d, "store '", 7) == 0 && strncmp(d + 7, dir, n) == 0 &&
	    strncmp(d + 7 + n, "': ", 3) == 0)
		return d + 10 + n;
	if (d[0] == '\'' && strncmp(d + 1, dir, n) == 0 && strncmp(d + 1 + n, "': ", 3) == 0)
		return d + 4 + n;
	return d;
}

int snapfs_mount_main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	char store_path[PATH_MAX], mnt_path[PATH_MAX], why[PATH_MAX + 256];
	struct fuse_cmdline_opts opts;
	struct mount_args ma;
	struct fuse_session *se;
	struct fs fs;
	const char *store;
	bool ws_live = false;
	int rc, status = EXIT_USAGE;

	memset(&opts, 0, sizeof(opts));
	memset(&ma, 0, sizeof(ma));
	ma.prefetch_wait_ms = WORKSET_DEFAULT_WAIT_MS;
	memset(&fs, 0, sizeof(fs));
	/* The daemon's memory is the blob cache plus what the FUSE threads
	 * hold. glibc gives each thread an arena of its own; blobs decoded in
	 * one and freed from another leave free chunks that only their own
	 * thread reuses. Two arenas for every thread: 10-15 MiB less peak RSS
	 * with 8 random readers, and no slower (measured, BENCHMARKS.md). */
	mallopt(M_ARENA_MAX, 2);
	if (fuse_opt_parse(&args, &ma, mount_opt_spec, opt_proc) == -1)
		goto out_free_args;     /* libfuse said why */
	store = ma.store;
	/* Threads of the daemon open the store later, after chdir("/"). */
	if (store && realpath(store, store_path))
		store = store_path;
	if (store && add_fixed_opts(&args, store, ma.allow_other,
				    ma.private_rw) < 0) {
		fprintf(stderr, "snapfs: mount '%s': out of memory\n", ma.store);
		status = EXIT_FAILED;
		goto out_free_args;
	}
	if (fuse_parse_cmdline(&args, &opts) != 0)
		goto out_free_args;
	if (opts.show_help) {
		print_help();
		status = EXIT_OK;
		goto out_free_args;
	}
	if (opts.show_version) {
		printf("snapfs %s\n", SNAPFS_VERSION);
		fflush(stdout);         /* before fusermount3 --version writes */
		fuse_lowlevel_version();
		status = EXIT_OK;
		goto out_free_args;
	}
	if (ma.error[0] && ma.store) {
		fprintf(stderr, "snapfs: mount '%s': %s\n", ma.store, ma.error);
		goto out_free_args;
	}
	if (ma.error[0]) {
		fprintf(stderr, "snapfs: mount: %s\n", ma.error);
		goto out_free_args;
	}
	if (!ma.store) {
		fprintf(stderr, "snapfs: mount: missing STORE and MOUNTPOINT "
			"(see 'snapfs mount --help')\n");
		goto out_free_args;
	}
	if (!ma.mountpoint) {
		fprintf(stderr, "snapfs: mount '%s': missing MOUNTPOINT "
			"(see 'snapfs mount --help')\n", ma.store);
		goto out_free_args;
	}

	se = session_new(&args, &fs, why, sizeof(why));
	if (!se) {
		fprintf(stderr, "snapfs: mount '%s': bad mount options%s%s "
			"(see 'snapfs mount --help')\n", ma.store, why[0] ? ": " : "", why);
		goto out_free_args;
	}

	/* Not a store, or a newer one: the command cannot be carried out as
	 * given (2), whatever else is wrong. */
	rc = snapfs_store_open(store, SNAPFS_OPEN_READONLY, &fs.store);
	if (rc < 0) {
		fprintf(stderr, "snapfs: mount '%s': %s\n", ma.store,
			store_detail(rc, store));
		if (rc != -SNAPFS_ENOTSTORE && rc != -SNAPFS_ENEWER)
			status = EXIT_FAILED;
		goto out_destroy_session;
	}
	/* -o record writes: find out now, in the foreground, whether it can.
	 * The handle that writes is opened later, in the daemon. */
	if (ma.record) {
		struct snapfs_store *writer;

		rc = snapfs_store_open(store, 0, &writer);
		if (rc < 0) {
			fprintf(stderr, "snapfs: mount '%s': -o record: %s\n",
				ma.store, store_detail(rc, store));
			status = EXIT_FAILED;
			snapfs_store_close(fs.store);
			goto out_destroy_session;
		}
		snapfs_store_close(writer);
	}
	workset_init(&fs.workset, fs.store, store, se, ma.record,
		     ma.record_seconds, !ma.noprefetch, ma.prefetch_wait_ms);
	ws_live = true;
	if (ma.cache_set)
		snapfs_store_set_cache_size(fs.store, ma.cache_bytes);
	fs.read_ahead_kb = ma.read_ahead_kb;
	fs.read_ahead_set = ma.read_ahead_set;
	fs.private_rw = ma.private_rw;
	listing_cache_init(&fs.listings, fs.store);
	fs.uid = getuid();
	fs.gid = getgid();

	status = EXIT_FAILED;
	if (is_fuse_fd(ma.mountpoint)) {
		snprintf(mnt_path, sizeof(mnt_path), "%s", ma.mountpoint);
	} else {
		rc = mountpoint_check(ma.mountpoint, mnt_path, why,
				      sizeof(why));
		if (rc < 0) {
			fprintf(stderr, "snapfs: mount '%s': mountpoint '%s': %s\n",
				ma.store, ma.mountpoint, why);
			goto out_close_store;
		}
	}

	if (fuse_set_signal_handlers(se) != 0) {
		fprintf(stderr, "snapfs: mount '%s': cannot set signal "
			"handlers\n", ma.store);
		goto out_close_store;
	}
	if (fuse_session_mount(se, mnt_path) != 0) {
		fprintf(stderr, "snapfs: mount '%s': cannot mount on '%s' "
			"(see above)\n", ma.store, ma.mountpoint);
		goto out_remove_handlers;
	}
	/* Before the session answers INIT, which keeps the smaller of this
	 * window and the one op_init() gives. A failure is not fatal. */
	if (ma.read_ahead_set) {
		if (is_fuse_fd(mnt_path)) {
			rc = -ENOENT;
			snprintf(why, sizeof(why), "the mountpoint is not known "
				 "(mounted through '%s')", mnt_path);
		} else {
			rc = mountpoint_set_read_ahead(mnt_path, ma.read_ahead_kb,
						       why, sizeof(why));
		}
		if (rc < 0)
			fprintf(stderr, "snapfs: warning: mount '%s': -o read_ahead_kb: %s; "
				"mounting with the kernel's readahead window\n", ma.store, why);
	}
	if (fuse_daemonize(opts.foreground) != 0) {
		fprintf(stderr, "snapfs: mount '%s': cannot go to the "
			"background (see above)\n", ma.store);
		goto out_unmount;
	}
	fslog_use_syslog(!opts.foreground);

	rc = run_session(se, &opts);
	if (rc < 0)
		fslog_error("mount '%s' on '%s': %s", ma.store, mnt_path,
			    snapfs_strerror(rc));
	/* 0: unmounted; > 0: the signal that stopped it. Both are clean. */
	status = rc < 0 ? EXIT_FAILED : EXIT_OK;

out_unmount:
	/* Before the unmount closes the session's fd: the prefetch writes
	 * to it. A worker that does not stop (stuck in the kernel on a page
	 * whose read will never be answered) is left to the process exit,
	 * with everything it uses. */
	ws_live = false;
	if (!workset_stop(&fs.workset))
		return status;
	fuse_session_unmount(se);
out_remove_handlers:
	fuse_remove_signal_handlers(se);
out_close_store:
	if (ws_live)
		workset_stop(&fs.workset);
	listing_cache_release(&fs.listings);
	snapfs_store_close(fs.store);
out_destroy_session:
	fuse_session_destroy(se);
out_free_args:
	fuse_opt_free_args(&args);
	free(opts.mountpoint);
	return status;
}
