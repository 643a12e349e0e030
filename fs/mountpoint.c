// SPDX-License-Identifier: MIT
/*
 * Mountpoint checks: it must exist, be a directory, and not already carry
 * a FUSE mount. Mounting over a live FUSE mount would hide it (the kernel
 * allows stacking), and a dead one makes the directory unusable until it
 * is unmounted; both are almost always a mistake, so both are refused.
 * Mounts of other kinds (a tmpfs on /mnt, say) are fine to mount over.
 * Once mounted, the device's readahead window can be set here too.
 */
#include "mountpoint.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* strerror(err) as messages want it: "no such file or directory". */
static const char *err_text(int err, char *buf, size_t size)
{
	snprintf(buf, size, "%s", strerror(err));
	buf[0] = (char)tolower((unsigned char)buf[0]);
	return buf;
}

static void put_errno(char *why, size_t why_size, int err)
{
	err_text(err, why, why_size);
}

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
	char *out = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 |
					(s[3] - '0'));
			s += 4;
		} else {
			*out++ = *s++;
		}
	}
	*out = '\0';
}

/* The type ("fuse.snapfs") and source of the topmost mount on path, if
 * it is a FUSE mount. */
static bool fuse_mounted_on(const char *path, char *type, size_t type_size,
			    char *source, size_t source_size)
{
	char *line = NULL;
	size_t cap = 0;
	bool found = false;
	FILE *f;

	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return false;
	while (getline(&line, &cap, f) > 0) {
		char *save = NULL, *field, *mnt = NULL, *dash;
		int i = 0;

		/* id parent major:minor root MOUNT_POINT options ... - TYPE SOURCE opts */
		dash = strstr(line, " - ");
		if (!dash)
			continue;
		*dash = '\0';
		for (field = strtok_r(line, " ", &save); field;
		     field = strtok_r(NULL, " ", &save))
			if (++i == 5)
				mnt = field;
		if (!mnt)
			continue;
		unescape(mnt);
		if (strcmp(mnt, path) != 0)
			continue;
		save = NULL;
		field = strtok_r(dash + 3, " \n", &save);
		found = field && (strcmp(field, "fuse") == 0 ||
				  strncmp(field, "fuse.", 5) == 0 ||
				  strcmp(field, "fuseblk") == 0);
		if (found) {
			snprintf(type, type_size, "%s", field);
			field = strtok_r(NULL, " \n", &save);
			snprintf(source, source_size, "%s", field ? field : "?");
			unescape(source);
		}
	}
	free(line);
	fclose(f);
	return found;
}

int mountpoint_check(const char *path, char *ret_resolved, char *why,
		     size_t why_size)
{
	char resolved[PATH_MAX], type[64], source[PATH_MAX];
	struct stat st;

	if (stat(path, &st) < 0) {
		int err = errno;

		if (err == ENOTCONN)
			snprintf(why, why_size,
				 "transport endpoint is not connected: a dead "
				 "FUSE mount is in the way (unmount it with "
				 "'fusermount3 -u %s')", path);
		else
			put_errno(why, why_size, err);
		return -err;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, why_size, "not a directory");
		return -ENOTDIR;
	}
	if (!realpath(path, resolved)) {
		int err = errno;

		put_errno(why, why_size, err);
		return -err;
	}
	if (fuse_mounted_on(resolved, type, sizeof(type), source,
			    sizeof(source))) {
		snprintf(why, why_size,
			 "already mounted (%s from '%s'); unmount it first "
			 "with 'fusermount3 -u %s'", type, source, path);
		return -EBUSY;
	}
	memcpy(ret_resolved, resolved, strlen(resolved) + 1);
	return 0;
}

int mountpoint_set_read_ahead(const char *path, unsigned kb, char *why,
			      size_t why_size)
{
	char sys[96], value[16], err_buf[128];
	struct statx stx;
	ssize_t n;
	int fd, len, err;

	/* AT_STATX_DONT_SYNC: the attributes the kernel has, with no
	 * GETATTR sent to a session that is not answering yet. */
	if (statx(AT_FDCWD, path, AT_STATX_DONT_SYNC, 0, &stx) < 0) {
		err = errno;
		snprintf(why, why_size, "cannot stat the mountpoint: %s",
			 err_text(err, err_buf, sizeof(err_buf)));
		return -err;
	}
	snprintf(sys, sizeof(sys), "/sys/class/bdi/%u:%u/read_ahead_kb",
		 stx.stx_dev_major, stx.stx_dev_minor);
	len = snprintf(value, sizeof(value), "%u\n", kb);
	fd = open(sys, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		goto out_why;
	}
	n = write(fd, value, (size_t)len);
	err = n == len ? 0 : n < 0 ? errno : EIO;
	close(fd);
	if (err)
		goto out_why;
	return 0;

out_why:
	snprintf(why, why_size, "cannot write '%s': %s", sys,
		 err_text(err, err_buf, sizeof(err_buf)));
	return -err;
}
