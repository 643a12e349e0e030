// SPDX-License-Identifier: MIT
/*
 * A VMM's side of Firecracker's userfaultfd handler protocol, for the
 * tests and the benchmark of `snapfs uffd`: map guest memory anonymous (in
 * one or more regions), create a userfaultfd with UFFD_FEATURE_EVENT_REMOVE,
 * register the regions for missing faults, connect to the page server's
 * socket and send the regions as JSON with the userfaultfd (SCM_RIGHTS) in
 * one message, as Firecracker does. Then touch pages in the order asked
 * for and compare every byte with the memory file the snapshot was saved
 * from.
 *
 * usage: uffd_client --socket PATH --expect FILE [options]
 *   --regions N         split the memory into N regions (separate mappings)
 *   --fields new|old|page_size   page_size and page_size_kib (Firecracker
 *                       today), page_size_kib alone (older releases), or
 *                       page_size alone
 *   --order seq|random|list:FILE  pages to touch: all in order, all in a
 *                       random order (--seed), or the byte ranges of FILE
 *                       ("0xSTART 0xEND" a line, as `snapfs workingset`
 *                       prints them) in its order
 *   --delay-ms N        wait N ms after the handshake before touching
 *   --remove FIRST:COUNT  after the pass, MADV_DONTNEED those pages (a
 *                       balloon) and touch them again: they must read zeros
 *   --no-catch          do not catch SIGBUS (the process dies of it)
 *   --timing            print the touch latencies (p50, p99) and the total
 * Prints "touched N", "sigbus PAGE" for every page that raised SIGBUS,
 * "timing ..." with --timing. Exit 0 if every page that did not raise
 * SIGBUS had the right bytes, 1 on a wrong byte, 2 on a setup failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096ul

struct region {
	unsigned char *base;
	uint64_t size, offset;
};

static struct region regions[64];
static size_t region_count = 1;
static sigjmp_buf jump;
static volatile sig_atomic_t in_touch;

static void die(const char *what)
{
	fprintf(stderr, "uffd_client: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void on_sigbus(int sig)
{
	(void)sig;
	if (in_touch)
		siglongjmp(jump, 1);
	_exit(3);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static unsigned char *addr_of(uint64_t page)
{
	uint64_t off = page * PAGE;

	for (size_t i = 0; i < region_count; i++)
		if (off >= regions[i].offset && off < regions[i].offset + regions[i].size)
			return regions[i].base + (off - regions[i].offset);
	return NULL;
}

static void map_regions(uint64_t size)
{
	uint64_t pages = size / PAGE, done = 0;

	if (region_count > pages)
		region_count = pages;
	for (size_t i = 0; i < region_count; i++) {
		uint64_t n = pages / region_count + (i < pages % region_count);

		/* A guard page between regions: addresses do not follow
		 * offsets. */
		unsigned char *p = mmap(NULL, (n + 1) * PAGE, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

		if (p == MAP_FAILED)
			die("mmap");
		munmap(p + n * PAGE, PAGE);
		regions[i] = (struct region){ p, n * PAGE, done * PAGE };
		done += n;
	}
}

static int make_uffd(void)
{
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_EVENT_REMOVE };
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		die("userfaultfd");
	if (ioctl(fd, UFFDIO_API, &api) < 0)
		die("UFFDIO_API");
	for (size_t i = 0; i < region_count; i++) {
		struct uffdio_register reg = {
			.range = { (uint64_t)(uintptr_t)regions[i].base, regions[i].size },
			.mode = UFFDIO_REGISTER_MODE_MISSING,
		};

		if (ioctl(fd, UFFDIO_REGISTER, &reg) < 0)
			die("UFFDIO_REGISTER");
	}
	return fd;
}

static int handshake(const char *path, int uffd, const char *fields)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char json[64 * 200], cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov;
	struct msghdr msg = { 0 };
	struct cmsghdr *c;
	size_t len = 0;
	int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (sock < 0)
		die("socket");
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	/* The server may still be starting: retry for 10 s. */
	for (int i = 0; connect(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0; i++) {
		if (i == 1000 || (errno != ENOENT && errno != ECONNREFUSED))
			die("connect");
		usleep(10000);
	}
	len += (size_t)snprintf(json + len, sizeof(json) - len, "[");
	for (size_t i = 0; i < region_count; i++) {
		char ps[64];

		if (strcmp(fields, "old") == 0)
			snprintf(ps, sizeof(ps), "\"page_size_kib\":%lu", PAGE);
		else if (strcmp(fields, "page_size") == 0)
			snprintf(ps, sizeof(ps), "\"page_size\":%lu", PAGE);
		else
			snprintf(ps, sizeof(ps), "\"page_size\":%lu,\"page_size_kib\":%lu", PAGE, PAGE);
		len += (size_t)snprintf(json + len, sizeof(json) - len,
					"%s{\"base_host_virt_addr\":%llu,\"size\":%llu,\"offset\":%llu,%s}",
					i ? "," : "", (unsigned long long)(uintptr_t)regions[i].base,
					(unsigned long long)regions[i].size,
					(unsigned long long)regions[i].offset, ps);
	}
	len += (size_t)snprintf(json + len, sizeof(json) - len, "]");
	iov = (struct iovec){ json, len };
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf;
	msg.msg_controllen = sizeof(cbuf);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &uffd, sizeof(int));
	if (sendmsg(sock, &msg, 0) != (ssize_t)len)
		die("sendmsg");
	return sock;             /* kept open while we live, as Firecracker does */
}

/* Pages to touch, into *ret (malloc'ed). */
static size_t make_order(const char *order, uint64_t pages, unsigned seed, uint64_t **ret)
{
	uint64_t *list = malloc((pages ? pages : 1) * sizeof(*list));
	size_t n = 0;

	if (!list)
		die("malloc");
	if (strncmp(order, "list:", 5) == 0) {
		FILE *f = fopen(order + 5, "r");
		unsigned long long a, b;

		if (!f)
			die(order + 5);
		while (fscanf(f, "%llx %llx", &a, &b) == 2)
			for (uint64_t p = a / PAGE; p < (b + PAGE - 1) / PAGE && p < pages && n < pages; p++)
				list[n++] = p;
		fclose(f);
	} else {
		for (uint64_t p = 0; p < pages; p++)
			list[n++] = p;
		if (strcmp(order, "random") == 0) {
			srand(seed);
			for (size_t i = n; i > 1; i--) {
				size_t j = (size_t)rand() % i;
				uint64_t t = list[i - 1];

				list[i - 1] = list[j];
				list[j] = t;
			}
		}
	}
	*ret = list;
	return n;
}

static int by_value(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Touch page p and compare it with want (NULL: zeros). Returns 0 if
 * right, 1 if wrong, 2 if it raised SIGBUS; *ret_ns the time of the first
 * touch. */
static int touch(uint64_t p, const unsigned char *want_in, uint64_t *ret_ns)
{
	const unsigned char *volatile want = want_in;
	static const unsigned char zeros[PAGE];
	volatile unsigned char *a = addr_of(p);
	uint64_t t0;

	if (sigsetjmp(jump, 1)) {
		in_touch = 0;
		return 2;
	}
	in_touch = 1;
	t0 = now_ns();
	(void)a[0];
	*ret_ns = now_ns() - t0;
	int wrong = memcmp((const void *)a, want ? want : zeros, PAGE) != 0;

	in_touch = 0;
	return wrong;
}

int main(int argc, char **argv)
{
	const char *sock_path = NULL, *expect = NULL, *order = "seq", *fields = "new";
	unsigned long long rm_first = 0, rm_count = 0;
	bool catch_sigbus = true, timing = false;
	unsigned seed = 1, delay_ms = 0;
	uint64_t size, pages, *list, *lat, total0, total_ns;
	size_t n, wrong = 0, bus = 0;
	unsigned char *want;
	struct stat st;
	int fd, uffd;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--no-catch") == 0) {
			catch_sigbus = false;
			continue;
		}
		if (strcmp(a, "--timing") == 0) {
			timing = true;
			continue;
		}
		if (!v) {
			fprintf(stderr, "uffd_client: %s: needs a value\n", a);
			return 2;
		}
		i++;
		if (strcmp(a, "--socket") == 0)
			sock_path = v;
		else if (strcmp(a, "--expect") == 0)
			expect = v;
		else if (strcmp(a, "--regions") == 0)
			region_count = strtoul(v, NULL, 10);
		else if (strcmp(a, "--fields") == 0)
			fields = v;
		else if (strcmp(a, "--order") == 0)
			order = v;
		else if (strcmp(a, "--seed") == 0)
			seed = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--delay-ms") == 0)
			delay_ms = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--remove") == 0 && sscanf(v, "%llu:%llu", &rm_first, &rm_count) == 2)
			;
		else {
			fprintf(stderr, "uffd_client: unknown option %s\n", a);
			return 2;
		}
	}
	if (!sock_path || !expect || region_count < 1 || region_count > 64) {
		fprintf(stderr, "usage: uffd_client --socket PATH --expect FILE [options]\n");
		return 2;
	}
	fd = open(expect, O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0)
		die(expect);
	size = ((uint64_t)st.st_size + PAGE - 1) / PAGE * PAGE;
	pages = size / PAGE;
	want = calloc(pages ? pages : 1, PAGE);
	if (!want)
		die("calloc");
	for (uint64_t off = 0; off < (uint64_t)st.st_size;) {
		ssize_t r = pread(fd, want + off, (size_t)((uint64_t)st.st_size - off), (off_t)off);

		if (r <= 0)
			die("pread");
		off += (uint64_t)r;
	}
	close(fd);
	if (catch_sigbus) {
		struct sigaction sa = { .sa_handler = on_sigbus, .sa_flags = SA_NODEFER };

		sigemptyset(&sa.sa_mask);
		sigaction(SIGBUS, &sa, NULL);
	}
	map_regions(size);
	uffd = make_uffd();
	handshake(sock_path, uffd, fields);
	if (delay_ms)
		usleep(delay_ms * 1000u);

	n = make_order(order, pages, seed, &list);
	lat = calloc(n ? n : 1, sizeof(*lat));
	if (!lat)
		die("calloc");
	total0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		int r = touch(list[i], want + list[i] * PAGE, &lat[i]);

		if (r == 2) {
			printf("sigbus %llu\n", (unsigned long long)list[i]);
			bus++;
		} else if (r) {
			printf("wrong %llu\n", (unsigned long long)list[i]);
			wrong++;
		}
	}
	total_ns = now_ns() - total0;
	printf("touched %zu\n", n);
	if (timing && n) {
		qsort(lat, n, sizeof(*lat), by_value);
		printf("timing touches %zu p50_us %.1f p99_us %.1f total_ms %.2f\n", n,
		       (double)lat[n / 2] / 1e3, (double)lat[(n * 99) / 100] / 1e3,
		       (double)total_ns / 1e6);
	}
	if (rm_count) {
		unsigned char *a = addr_of(rm_first);
		uint64_t ns;

		if (!a || rm_first + rm_count > pages || !addr_of(rm_first + rm_count - 1) ||
		    addr_of(rm_first + rm_count - 1) != a + (rm_count - 1) * PAGE) {
			fprintf(stderr, "uffd_client: --remove: not within one region\n");
			return 2;
		}
		if (madvise(a, rm_count * PAGE, MADV_DONTNEED) < 0)
			die("madvise");
		for (uint64_t p = rm_first; p < rm_first + rm_count; p++) {
			int r = touch(p, NULL, &ns);

			if (r)
				printf("%s %llu (removed)\n", r == 2 ? "sigbus" : "wrong",
				       (unsigned long long)p);
			wrong += r != 0;
		}
		/* The neighbours are still the snapshot's. */
		uint64_t near[2] = { rm_first - 1, rm_first + rm_count };

		for (size_t k = 0; k < 2; k++) {
			uint64_t p = near[k];

			if ((k == 0 && rm_first == 0) || p >= pages)
				continue;
			if (touch(p, want + p * PAGE, &ns)) {
				printf("wrong %llu (next to the removed pages)\n",
				       (unsigned long long)p);
				wrong++;
			}
		}
		printf("removed %llu\n", rm_count);
	}
	printf("sigbus_pages %zu wrong_pages %zu\n", bus, wrong);
	fflush(stdout);
	free(lat);
	free(list);
	free(want);
	return wrong ? 1 : 0;
}
