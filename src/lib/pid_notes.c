// SPDX-License-Identifier: MIT
/*
 * The notes of a live process, taken while its threads are stopped under
 * ptrace (source_pid.c holds them): what the kernel would write into its
 * core dump. In the kernel's order: the first thread's NT_PRSTATUS, then
 * NT_PRPSINFO, NT_AUXV and NT_FILE, then the first thread's NT_PRFPREG,
 * then each other thread's NT_PRSTATUS and NT_PRFPREG; and first of all
 * snapfs's row naming the machine.
 */
#include "pid_notes.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/procfs.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core_notes.h"
#include "snapfs.h"

#ifndef NT_FILE
#define NT_FILE 0x46494c45
#endif

/* Most bytes of /proc/N/auxv read. */
#define PID_AUXV_MAX ((size_t)64 << 10)

#if defined(__x86_64__)
#define PID_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define PID_MACHINE EM_AARCH64
#else
#define PID_MACHINE EM_NONE
#endif

/* Facts of /proc/N/stat. */
struct pid_stat {
	char state;
	int ppid, pgrp, sid;
	long nice;
	unsigned long flags;
	char comm[16];
};

/* Read at most cap bytes of a /proc file (their size says nothing). */
static ssize_t read_proc(const char *path, void *buf, size_t cap)
{
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	while (got < cap) {
		ssize_t n = read(fd, (char *)buf + got, cap - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			close(fd);
			return -e;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	return (ssize_t)got;
}

static int read_stat(pid_t pid, pid_t tid, struct pid_stat *ret)
{
	char path[64], buf[1024], *open_paren, *close_paren;
	struct pid_stat s = { .state = 'R' };
	ssize_t n;
	size_t len;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	n = read_proc(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return (int)n;
	buf[n] = '\0';
	open_paren = strchr(buf, '(');
	close_paren = strrchr(buf, ')');
	if (!open_paren || !close_paren || close_paren < open_paren)
		return -EINVAL;
	len = (size_t)(close_paren - open_paren - 1);
	if (len >= sizeof(s.comm))
		len = sizeof(s.comm) - 1;
	memcpy(s.comm, open_paren + 1, len);
	/* state ppid pgrp session tty tpgid flags minflt cminflt majflt
	 * cmajflt utime stime cutime cstime priority nice */
	if (sscanf(close_paren + 1, " %c %d %d %d %*d %*d %lu %*u %*u %*u %*u %*u %*u %*d "
		   "%*d %*d %ld", &s.state, &s.ppid, &s.pgrp, &s.sid, &s.flags, &s.nice) != 6)
		return -EINVAL;
	*ret = s;
	return 0;
}

static int add_prstatus(pid_t pid, pid_t tid, int sig, struct core_note_list *notes)
{
	struct elf_prstatus pr;
	struct pid_stat st = { 0 };
	struct iovec iov = { .iov_base = &pr.pr_reg, .iov_len = sizeof(pr.pr_reg) };

	memset(&pr, 0, sizeof(pr));
	if (ptrace(PTRACE_GETREGSET, tid, (void *)(long)NT_PRSTATUS, &iov) < 0)
		return 0;  /* gone, or no registers to be had: no note */
	read_stat(pid, tid, &st);
	pr.pr_info.si_signo = sig;
	pr.pr_cursig = (short)sig;
	pr.pr_pid = tid;
	pr.pr_ppid = st.ppid;
	pr.pr_pgrp = st.pgrp;
	pr.pr_sid = st.sid;
	return core_note_list_add(notes, "CORE", NT_PRSTATUS, &pr, sizeof(pr));
}

/* The thread's floating-point registers (when the kernel gives them).
 * The x86-64 extended state (NT_X86_XSTATE, AVX) is not recorded: gdb
 * wants it in the size of the dumping kernel's own layout, which ptrace
 * does not promise. */
static int add_fpregs(pid_t tid, struct core_note_list *notes)
{
	elf_fpregset_t fp;
	struct iovec iov = { .iov_base = &fp, .iov_len = sizeof(fp) };
	int rc = 0;

	if (ptrace(PTRACE_GETREGSET, tid, (void *)(long)NT_PRFPREG, &iov) == 0)
		rc = core_note_list_add(notes, "CORE", NT_PRFPREG, &fp, iov.iov_len);
	return rc;
}

static int add_prpsinfo(pid_t pid, struct core_note_list *notes)
{
	static const char states[] = "RSDTZW";
	struct elf_prpsinfo ps;
	struct pid_stat st = { 0 };
	char path[64];
	struct stat sb;
	ssize_t n;

	memset(&ps, 0, sizeof(ps));
	if (read_stat(pid, pid, &st) == 0) {
		const char *at = strchr(states, st.state);

		ps.pr_sname = st.state;
		ps.pr_state = at ? (char)(at - states) : 0;
		ps.pr_zomb = st.state == 'Z';
		ps.pr_nice = (char)st.nice;
		ps.pr_flag = st.flags;
		ps.pr_ppid = st.ppid;
		ps.pr_pgrp = st.pgrp;
		ps.pr_sid = st.sid;
		memcpy(ps.pr_fname, st.comm, sizeof(ps.pr_fname) < sizeof(st.comm) ?
		       sizeof(ps.pr_fname) : sizeof(st.comm));
	}
	ps.pr_pid = pid;
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	if (stat(path, &sb) == 0) {
		ps.pr_uid = sb.st_uid;
		ps.pr_gid = sb.st_gid;
	}
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	n = read_proc(path, ps.pr_psargs, sizeof(ps.pr_psargs) - 1);
	for (ssize_t i = 0; i < n; i++)
		if (ps.pr_psargs[i] == '\0')
			ps.pr_psargs[i] = ' ';
	while (n > 0 && ps.pr_psargs[n - 1] == ' ')
		ps.pr_psargs[--n] = '\0';
	return core_note_list_add(notes, "CORE", NT_PRPSINFO, &ps, sizeof(ps));
}

static int add_auxv(pid_t pid, struct core_note_list *notes)
{
	char path[64];
	void *buf = malloc(PID_AUXV_MAX);
	ssize_t n;
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	snprintf(path, sizeof(path), "/proc/%d/auxv", (int)pid);
	n = read_proc(path, buf, PID_AUXV_MAX);
	if (n > 0)
		rc = core_note_list_add(notes, "CORE", NT_AUXV, buf, (size_t)n);
	free(buf);
	return rc;
}

/* NT_FILE as fs/binfmt_elf.c writes it: count, page size, (start, end,
 * offset in pages) each, then the paths. */
static int add_files(const struct pid_file_map *maps, size_t count,
		     struct core_note_list *notes)
{
	size_t len = 16 + count * 24, at;
	unsigned char *d;
	uint64_t v;
	int rc;

	for (size_t i = 0; i < count; i++)
		len += strlen(maps[i].path) + 1;
	if (count == 0 || len > CORE_NOTE_DESCR_MAX)
		return 0;
	d = malloc(len);
	if (!d)
		return -ENOMEM;
	v = count;
	memcpy(d, &v, 8);
	v = SNAPFS_PAGE_SIZE;
	memcpy(d + 8, &v, 8);
	at = 16 + count * 24;
	for (size_t i = 0; i < count; i++) {
		uint64_t t[3] = { maps[i].start, maps[i].end, maps[i].offset / SNAPFS_PAGE_SIZE };
		size_t plen = strlen(maps[i].path) + 1;

		memcpy(d + 16 + i * 24, t, sizeof(t));
		memcpy(d + at, maps[i].path, plen);
		at += plen;
	}
	rc = core_note_list_add(notes, "CORE", NT_FILE, d, len);
	free(d);
	return rc;
}

int pid_notes_collect(pid_t pid, const struct pid_thread_regs *threads, size_t count,
		      const struct pid_file_map *maps, size_t map_count,
		      struct core_note_list *notes)
{
	int rc = core_note_list_add_machine(notes, PID_MACHINE);

	for (size_t i = 0; rc == 0 && i < count; i++) {
		size_t before = notes->count;

		rc = add_prstatus(pid, threads[i].tid, threads[i].sig, notes);
		if (rc < 0 || notes->count == before)
			continue;  /* no registers: none of the rest either */
		if (i == 0) {
			rc = add_prpsinfo(pid, notes);
			if (rc == 0)
				rc = add_auxv(pid, notes);
			if (rc == 0)
				rc = add_files(maps, map_count, notes);
		}
		if (rc == 0)
			rc = add_fpregs(threads[i].tid, notes);
	}
	return rc;
}
