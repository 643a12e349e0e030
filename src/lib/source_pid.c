// SPDX-License-Identifier: MIT
/*
 * The pid source: the memory of a live process ("pid:N"), read while it is
 * frozen. Every thread is taken with PTRACE_SEIZE and stopped with
 * PTRACE_INTERRUPT (no signal is sent, so nothing the process can see),
 * and let go with PTRACE_DETACH when the source is closed: on success, on
 * any error and on cancellation alike. Should snapfs itself die, the
 * kernel detaches its tracees and they run on: a seized process is never
 * left stopped, which SIGSTOP could not promise.
 *
 * The memory file is the address space: /proc/N/smaps gives the mappings
 * (segments labelled with their path, [heap], [stack]...; kind `mapped`
 * when a file backs them, `anonymous` otherwise) and process_vm_readv()
 * their bytes. Private anonymous mappings hold data only in the pages
 * /proc/N/pagemap says are present or swapped; file-backed ones up to the
 * end of their file. Mappings that cannot be read are left out and named
 * in the notes: [vvar], [vsyscall], mappings without read permission
 * (guard pages), I/O and PFN mappings of devices. A page that still
 * cannot be read while saving reads as zeros.
 *
 * While the threads are stopped, pid_notes.c records what a core dump
 * would hold besides the memory: each thread's registers, the process's
 * facts, its auxiliary vector and its file mappings (table core_notes).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "pid_notes.h"
#include "source.h"
#include "source_util.h"

/* How long a thread may take to stop for PTRACE_INTERRUPT. */
#define PID_STOP_TIMEOUT_MS 10000
/* Rounds of looking for new threads before giving up on a process that
 * keeps making them faster than they can be stopped. */
#define PID_SEIZE_ROUNDS 1000
/* Pagemap entries read at once. */
#define PID_PAGEMAP_BATCH 4096
#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)

struct pid_thread {
	pid_t tid;
	int sig;            /* signal it stopped for, given back at detach */
	bool stopped;
	bool gone;          /* exited while we held it */
};

struct pid_source {
	pid_t pid;
	struct pid_thread *threads;
	size_t count, cap;
	int pagemap_fd;
	struct extent_list data;  /* file 0: the process; file_off = address */
};

/* One line of /proc/N/smaps with its VmFlags. */
struct mapping {
	uint64_t start, end, offset;
	char perms[8];
	unsigned long inode;
	char *path;         /* "" when anonymous */
	bool io;            /* VmFlags io or pf */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until t reports its stop (or its end), at most timeout_ms. */
static int wait_stopped(struct source *src, struct pid_thread *t, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	const struct timespec pause = { .tv_nsec = 1000000 };

	for (;;) {
		int status;
		pid_t r = waitpid(t->tid, &status, __WALL | WNOHANG);

		if (r == t->tid) {
			if (WIFSTOPPED(status)) {
				t->stopped = true;
				t->sig = (status >> 16) == PTRACE_EVENT_STOP ? 0 : WSTOPSIG(status);
			} else {
				t->gone = true;
			}
			return 0;
		}
		if (r < 0 && errno != EINTR) {
			if (errno == ECHILD) {
				t->gone = true;
				return 0;
			}
			return error_set(-errno, "source '%s': waiting for thread %d: %s",
					 src->path, (int)t->tid, errno_text(errno));
		}
		if (now_ms() > deadline)
			return error_set(-ETIMEDOUT, "source '%s': thread %d did not stop within "
					 "%d s (stuck in the kernel?)", src->path, (int)t->tid,
					 timeout_ms / 1000);
		nanosleep(&pause, NULL);
	}
}

static bool have_thread(const struct pid_source *ps, pid_t tid)
{
	for (size_t i = 0; i < ps->count; i++)
		if (ps->threads[i].tid == tid)
			return true;
	return false;
}

/* true if thread tid of pid is a zombie (or dead): it holds no memory,
 * cannot be stopped and is left alone. */
static bool thread_dead(pid_t pid, pid_t tid)
{
	char path[64], buf[512], *paren;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return true;
	buf[n] = '\0';
	paren = strrchr(buf, ')');
	return paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
}

/* Seize and stop one thread; *ret_added says whether it was taken. */
static int seize_thread(struct source *src, pid_t tid, bool *ret_added)
{
	struct pid_source *ps = src->impl;
	struct pid_thread *t;

	*ret_added = false;
	if (ps->count == ps->cap) {
		size_t cap = ps->cap ? ps->cap * 2 : 16;
		struct pid_thread *bigger = realloc(ps->threads, cap * sizeof(*bigger));

		if (!bigger)
			return -ENOMEM;
		ps->threads = bigger;
		ps->cap = cap;
	}
	if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) < 0) {
		if (errno == ESRCH)
			return 0;  /* gone before we came */
		if (errno == EPERM)
			return error_set(-EPERM, "source '%s': cannot freeze thread %d: ptrace: "
					 "operation not permitted (traced by a debugger already, "
					 "or CAP_SYS_PTRACE needed)", src->path, (int)tid);
		return error_set(-errno, "source '%s': cannot freeze thread %d: ptrace: %s",
				 src->path, (int)tid, errno_text(errno));
	}
	t = &ps->threads[ps->count++];
	*t = (struct pid_thread){ .tid = tid };
	*ret_added = true;
	if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) < 0) {
		if (errno != ESRCH)
			return error_set(-errno, "source '%s': cannot stop thread %d: ptrace: %s",
					 src->path, (int)tid, errno_text(errno));
		t->gone = true;
		return 0;
	}
	return wait_stopped(src, t, PID_STOP_TIMEOUT_MS);
}

/* Freeze every thread of the process, new ones too: list the threads
 * until a round finds none that is not stopped already. */
static int freeze(struct source *src)
{
	struct pid_source *ps = src->impl;
	char dir[64];

	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)ps->pid);
	for (int round = 0;; round++) {
		bool added_any = false;
		struct dirent *e;
		DIR *d;
		int rc = 0;

		if (round == PID_SEIZE_ROUNDS)
			return error_set(-EAGAIN, "source '%s': new threads keep appearing; cannot "
					 "freeze the process", src->path);
		d = opendir(dir);
		if (!d)
			return error_set(errno == ENOENT ? -ESRCH : -errno, "source '%s': %s",
					 src->path, errno == ENOENT ? "no such process"
								    : errno_text(errno));
		while (rc == 0 && (e = readdir(d))) {
			char *end;
			long tid = strtol(e->d_name, &end, 10);
			bool added;

			if (*end || tid <= 0 || tid > INT_MAX || have_thread(ps, (pid_t)tid) ||
			    thread_dead(ps->pid, (pid_t)tid))
				continue;
			rc = seize_thread(src, (pid_t)tid, &added);
			added_any |= added;
		}
		closedir(d);
		if (rc < 0)
			return rc;
		if (!added_any)
			break;
	}
	for (size_t i = 0; i < ps->count; i++)
		if (!ps->threads[i].gone)
			return 0;
	return error_set(-ESRCH, "source '%s': no such process (it exited)", src->path);
}

/* Let every thread go, whatever state the freezing reached. */
static void thaw(struct pid_source *ps)
{
	for (size_t i = 0; i < ps->count; i++) {
		struct pid_thread *t = &ps->threads[i];
		int status;

		if (t->gone)
			continue;
		if (ptrace(PTRACE_DETACH, t->tid, NULL, (void *)(long)t->sig) == 0)
			continue;
		if (errno == ESRCH && !t->stopped) {
			/* Seized but not (yet) stopped: stop it, then detach. */
			const struct timespec pause = { .tv_nsec = 1000000 };

			ptrace(PTRACE_INTERRUPT, t->tid, NULL, NULL);
			for (int k = 0; k < 1000; k++) {
				pid_t r = waitpid(t->tid, &status, __WALL | WNOHANG);

				if (r == t->tid || (r < 0 && errno != EINTR))
					break;
				nanosleep(&pause, NULL);
			}
			if (ptrace(PTRACE_DETACH, t->tid, NULL, NULL) == 0)
				continue;
		}
		/* It died while held: collect what its end left for us. */
		waitpid(t->tid, &status, __WALL | WNOHANG);
	}
	ps->count = 0;
}

static bool has_word(const char *line, const char *word)
{
	size_t len = strlen(word);

	for (const char *p = strstr(line, word); p; p = strstr(p + 1, word))
		if ((p == line || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\n' || !p[len]))
			return true;
	return false;
}

static void mappings_free(struct mapping *maps, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(maps[i].path);
	free(maps);
}

/* The mappings of the process from /proc/N/smaps, in address order. */
static int read_mappings(struct source *src, struct mapping **ret_maps, size_t *ret_count)
{
	struct pid_source *ps = src->impl;
	struct mapping *maps = NULL, *m;
	size_t count = 0, cap = 0, linecap = 0;
	char path[64], *line = NULL;
	ssize_t len;
	FILE *f;
	int rc = 0;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)ps->pid);
	f = fopen(path, "re");
	if (!f)
		return error_set(errno == ENOENT ? -ESRCH : -errno, "source '%s': %s: %s",
				 src->path, path, errno_text(errno));
	while ((len = getline(&line, &linecap, f)) > 0) {
		unsigned long long start, end, offset;
		unsigned int major, minor;
		unsigned long inode;
		char perms[8];
		int name_at = 0;

		if (len && line[len - 1] == '\n')
			line[--len] = '\0';
		if (strncmp(line, "VmFlags:", 8) == 0) {
			if (count)
				maps[count - 1].io = has_word(line + 8, "io") ||
						     has_word(line + 8, "pf");
			continue;
		}
		if (sscanf(line, "%llx-%llx %7s %llx %x:%x %lu %n", &start, &end, perms, &offset,
			   &major, &minor, &inode, &name_at) < 7)
			continue;  /* a "Key: value" line */
		if (count == cap) {
			size_t n = cap ? cap * 2 : 64;
			struct mapping *bigger = realloc(maps, n * sizeof(*bigger));

			if (!bigger) {
				rc = -ENOMEM;
				goto out_free;
			}
			maps = bigger;
			cap = n;
		}
		m = &maps[count];
		*m = (struct mapping){ .start = start, .end = end, .offset = offset,
				       .inode = inode };
		snprintf(m->perms, sizeof(m->perms), "%s", perms);
		m->path = strdup(name_at ? line + name_at : "");
		if (!m->path) {
			rc = -ENOMEM;
			goto out_free;
		}
		count++;
	}
	if (ferror(f)) {
		rc = error_set(-EIO, "source '%s': %s: read error", src->path, path);
		goto out_free;
	}
	if (count == 0) {
		rc = error_set(-ESRCH, "source '%s': no mappings (a kernel thread, or it exited)",
			       src->path);
		goto out_free;
	}
	*ret_maps = maps;
	*ret_count = count;
	maps = NULL;
	count = 0;
out_free:
	mappings_free(maps, count);
	free(line);
	fclose(f);
	return rc;
}

/* Data of a private anonymous mapping: its present or swapped pages. */
static int anon_data(struct source *src, const struct mapping *m)
{
	struct pid_source *ps = src->impl;
	uint64_t entries[PID_PAGEMAP_BATCH];
	uint64_t run_start = 0;
	bool in_run = false;
	int rc;

	for (uint64_t at = m->start; at < m->end;) {
		uint64_t pages = (m->end - at) / SNAPFS_PAGE_SIZE;
		size_t want = pages < PID_PAGEMAP_BATCH ? (size_t)pages : PID_PAGEMAP_BATCH;
		ssize_t n = pread_full(ps->pagemap_fd, entries, want * sizeof(entries[0]),
				       at / SNAPFS_PAGE_SIZE * sizeof(entries[0]));

		if (n < 0 || (size_t)n != want * sizeof(entries[0])) {
			/* No page map: take the whole mapping. */
			return extent_list_push(&ps->data, in_run ? run_start : at, m->end, 0,
						in_run ? run_start : at);
		}
		for (size_t i = 0; i < want; i++, at += SNAPFS_PAGE_SIZE) {
			bool data = entries[i] & (PM_PRESENT | PM_SWAPPED);

			if (data && !in_run) {
				run_start = at;
				in_run = true;
			} else if (!data && in_run) {
				rc = extent_list_push(&ps->data, run_start, at, 0, run_start);
				if (rc < 0)
					return rc;
				in_run = false;
			}
		}
	}
	return in_run ? extent_list_push(&ps->data, run_start, m->end, 0, run_start) : 0;
}

/* Where the data of a file-backed mapping ends: at the end of its file
 * (pages past it cannot be touched), or at the mapping's end. */
static uint64_t file_data_end(const struct source *src, const struct mapping *m)
{
	const struct pid_source *ps = src->impl;
	char link[96];
	struct stat st;
	uint64_t size, end;

	snprintf(link, sizeof(link), "/proc/%d/map_files/%llx-%llx", (int)ps->pid,
		 (unsigned long long)m->start, (unsigned long long)m->end);
	if (stat(link, &st) < 0 && stat(m->path, &st) < 0)
		return m->end;
	if (!S_ISREG(st.st_mode))
		return m->end;
	size = (uint64_t)st.st_size;
	if (size <= m->offset)
		return m->start;
	if (size - m->offset >= m->end - m->start)
		return m->end;
	end = m->start + page_round_up(size - m->offset);
	return end < m->end ? end : m->end;
}

static bool is_shared_anon(const char *path)
{
	return strncmp(path, "/dev/zero", 9) == 0 || strncmp(path, "/SYSV", 5) == 0;
}

/* Segments, extents and notes for the mappings. */
static int lay_out(struct source *src, const struct mapping *maps, size_t count,
		   struct note_list *notes)
{
	struct pid_source *ps = src->impl;
	uint64_t prev_end = 0;
	int rc;

	for (size_t i = 0; i < count; i++) {
		const struct mapping *m = &maps[i];
		const char *why = NULL, *label = m->path[0] ? m->path : NULL;
		bool file_backed = m->path[0] == '/' && m->inode && !is_shared_anon(m->path);
		/* [vdso] pages are there whether touched or not (pagemap may
		 * call them absent): read it whole, as a debugger will. */
		bool anon_private = m->inode == 0 && m->perms[3] == 'p' &&
				    strcmp(m->path, "[vdso]") != 0;
		uint64_t data_end;

		if (!strcmp(m->path, "[vvar]") || !strcmp(m->path, "[vvar_vclock]") ||
		    !strcmp(m->path, "[vsyscall]"))
			why = "unreadable";
		else if (m->perms[0] != 'r')
			why = "no read permission";
		else if (m->io)
			why = "I/O mapping";
		else if (m->end > SOURCE_MAX_OFFSET)
			why = "address too high to keep";
		else if (m->start < prev_end || m->start >= m->end ||
			 m->start % SNAPFS_PAGE_SIZE || m->end % SNAPFS_PAGE_SIZE)
			why = "out of order";
		if (why) {
			rc = note_add(notes, "skipped: %s%s0x%llx-0x%llx (%s)", label ? label : "",
				      label ? " " : "", (unsigned long long)m->start,
				      (unsigned long long)m->end, why);
			if (rc < 0)
				return rc;
			continue;
		}
		rc = source_add_segment(src, m->start, m->end, file_backed ? "mapped" : "anonymous",
					0, true, label);
		if (rc < 0)
			return rc;
		prev_end = m->end;
		if (anon_private) {
			rc = anon_data(src, m);
		} else {
			data_end = m->inode ? file_data_end(src, m) : m->end;
			if (data_end < m->end) {
				rc = note_add(notes, "skipped: %s 0x%llx-0x%llx (past the end of the "
					      "file)", m->path, (unsigned long long)data_end,
					      (unsigned long long)m->end);
				if (rc < 0)
					return rc;
			}
			rc = extent_list_push(&ps->data, m->start, data_end, 0, m->start);
		}
		if (rc < 0)
			return rc;
	}
	src->size = prev_end;
	src->has_segments = true;
	return 0;
}

static int pid_read_piece(void *ctx, const struct extent *ext, unsigned char *buf,
			  size_t len, uint64_t addr)
{
	struct source *src = ctx;
	struct pid_source *ps = src->impl;
	size_t done = 0;

	(void)ext;
	while (done < len) {
		struct iovec local = { .iov_base = buf + done, .iov_len = len - done };
		struct iovec remote = { .iov_base = (void *)(uintptr_t)(addr + done),
					.iov_len = len - done };
		ssize_t n = process_vm_readv(ps->pid, &local, 1, &remote, 1, 0);

		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ESRCH)
			return error_set(-ESRCH, "source '%s': the process exited while being read",
					 src->path);
		if (n < 0 && errno != EFAULT && errno != EIO)
			return error_set(-errno, "source '%s': read at 0x%llx: %s", src->path,
					 (unsigned long long)(addr + done), errno_text(errno));
		/* This page cannot be read: it stays zeros; go on after it. */
		done = (size_t)(page_down(addr + done) + SNAPFS_PAGE_SIZE - addr);
	}
	return 0;
}

static int pid_next_data(struct source *src, uint64_t off, uint64_t *ret_start,
			 uint64_t *ret_end)
{
	struct pid_source *ps = src->impl;

	return extent_list_next_data(&ps->data, off, ret_start, ret_end);
}

static int pid_read(struct source *src, unsigned char *buf, size_t len, uint64_t off)
{
	struct pid_source *ps = src->impl;

	return extent_list_read(&ps->data, buf, len, off, pid_read_piece, src);
}

static void pid_close(struct source *src)
{
	struct pid_source *ps = src->impl;

	if (!ps)
		return;
	thaw(ps);
	if (ps->pagemap_fd >= 0)
		close(ps->pagemap_fd);
	free(ps->threads);
	extent_list_release(&ps->data);
	free(ps);
	src->impl = NULL;
}

static const struct source_ops pid_ops = {
	.format = "pid",
	.next_data = pid_next_data,
	.read = pid_read,
	.close = pid_close,
};

/* "pid:N" (or plain "N" when --format pid says what it is). */
static int parse_pid(const char *path, pid_t *ret_pid)
{
	const char *digits = strncmp(path, "pid:", 4) == 0 ? path + 4 : path;
	char *end;
	long v;

	errno = 0;
	v = strtol(digits, &end, 10);
	if (errno || end == digits || *end || v <= 0 || v > INT_MAX || digits[0] == '+')
		return error_set(-EINVAL, "source '%s': not a process: write pid:N", path);
	*ret_pid = (pid_t)v;
	return 0;
}

/* "pid:N /path/of/its/executable" for snapshots.source. */
static int describe(struct source *src)
{
	struct pid_source *ps = src->impl;
	char link[64], exe[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/%d/exe", (int)ps->pid);
	n = readlink(link, exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	if (asprintf(&src->description, n > 0 ? "pid:%d %s" : "pid:%d%s", (int)ps->pid,
		     exe) < 0) {
		src->description = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* The notes of the process (pid_notes.c): the main thread first. */
static int collect_notes(struct source *src, const struct mapping *maps, size_t count)
{
	struct pid_source *ps = src->impl;
	struct pid_thread_regs *threads = calloc(ps->count ? ps->count : 1, sizeof(*threads));
	struct pid_file_map *files = calloc(count ? count : 1, sizeof(*files));
	size_t n = 0, nfiles = 0;
	int rc;

	if (!threads || !files) {
		rc = -ENOMEM;
		goto out_free;
	}
	for (size_t i = 0; i < ps->count; i++) {
		const struct pid_thread *t = &ps->threads[i];

		if (t->gone || !t->stopped)
			continue;
		threads[n] = (struct pid_thread_regs){ .tid = t->tid, .sig = t->sig };
		if (t->tid == ps->pid && n > 0) {
			struct pid_thread_regs first = threads[0];

			threads[0] = threads[n];
			threads[n] = first;
		}
		n++;
	}
	for (size_t i = 0; i < count; i++)
		if (maps[i].path[0] == '/' && maps[i].inode)
			files[nfiles++] = (struct pid_file_map){ maps[i].start, maps[i].end,
								 maps[i].offset, maps[i].path };
	rc = pid_notes_collect(ps->pid, threads, n, files, nfiles, &src->core_notes);
out_free:
	free(threads);
	free(files);
	return rc;
}

int source_open_pid(const char *path, struct source *src)
{
	struct note_list notes = { 0 };
	struct mapping *maps = NULL;
	struct pid_source *ps;
	size_t count = 0;
	char pagemap[64];
	pid_t pid = 0;
	int rc;

	rc = parse_pid(path, &pid);
	if (rc < 0)
		return rc;
	if (pid == getpid())
		return error_set(-EINVAL, "source '%s': snapfs cannot save itself", path);
	ps = calloc(1, sizeof(*ps));
	if (!ps)
		return -ENOMEM;
	ps->pid = pid;
	ps->pagemap_fd = -1;
	src->ops = &pid_ops;
	src->impl = ps;
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return error_set(-ESRCH, "source '%s': no such process", path);
	rc = freeze(src);
	if (rc < 0)
		return rc;
	rc = read_mappings(src, &maps, &count);
	if (rc < 0)
		return rc;
	snprintf(pagemap, sizeof(pagemap), "/proc/%d/pagemap", (int)pid);
	ps->pagemap_fd = open(pagemap, O_RDONLY | O_CLOEXEC);
	rc = lay_out(src, maps, count, &notes);
	if (rc < 0)
		goto out_free;
	rc = describe(src);
	if (rc < 0)
		goto out_free;
	rc = collect_notes(src, maps, count);
	if (rc < 0)
		goto out_free;
	rc = note_list_finish(&notes, src);
out_free:
	mappings_free(maps, count);
	note_list_release(&notes);
	return rc;
}
