// SPDX-License-Identifier: MIT
/*
 * Opening a source: choosing the format (given or detected) and the parts
 * every source shares (segment lists, the scan buffer, closing).
 */
#include "source.h"

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"

static const struct format {
	const char *name;
	int (*open)(const char *path, struct source *src);
} formats[] = {
	{ "raw", source_open_raw },
	{ "elf", source_open_elf },
	{ "criu", source_open_criu },
	{ "gvisor", source_open_gvisor },
	{ "pid", source_open_pid },
};

int segment_list_push(struct segment_list *list, const struct snapfs_segment *seg)
{
	if (list->count == list->cap) {
		size_t cap = list->cap ? list->cap * 2 : 16;
		struct snapfs_segment *bigger = realloc(list->segs, cap * sizeof(*bigger));

		if (!bigger)
			return -ENOMEM;
		list->segs = bigger;
		list->cap = cap;
	}
	list->segs[list->count++] = *seg;
	return 0;
}

void segment_list_release(struct segment_list *list)
{
	snapfs_segments_free(list->segs, list->count);
	*list = (struct segment_list){ 0 };
}

static const struct format *format_named(const char *name)
{
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (strcmp(name, formats[i].name) == 0)
			return &formats[i];
	return NULL;
}

bool source_format_known(const char *name)
{
	return format_named(name) != NULL;
}

/* true if the directory dirfd holds a file whose name starts with prefix
 * and ends with suffix. */
static bool dir_has(int dirfd, const char *prefix, const char *suffix)
{
	size_t plen = strlen(prefix), slen = strlen(suffix);
	struct dirent *e;
	bool found = false;
	int fd = dup(dirfd);
	DIR *d;

	if (fd < 0)
		return false;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return false;
	}
	while (!found && (e = readdir(d))) {
		size_t len = strlen(e->d_name);

		found = len > plen + slen && strncmp(e->d_name, prefix, plen) == 0 &&
			strcmp(e->d_name + len - slen, suffix) == 0;
	}
	closedir(d);
	return found;
}

/*
 * The format of path when none was given: "pid:N" is a live process; a
 * directory holding pages_meta.img and pages.img, or checkpoint.img, or
 * fscheckpoint.pb (which the gVisor opener refuses by name) is a gVisor
 * checkpoint,
 * one holding pagemap-*.img a CRIU dump; a file that starts with the ELF
 * magic is a core (source_open_elf() refuses other ELF files and says how
 * to save them raw); anything else is raw.
 */
static int detect(const char *path, const struct format **ret_format)
{
	unsigned char magic[SELFMAG];
	struct stat st;
	int fd;

	*ret_format = format_named("raw");
	if (strncmp(path, "pid:", 4) == 0) {
		*ret_format = format_named("pid");
		return 0;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return 0; /* the raw opener says what is wrong */
	}
	if (S_ISDIR(st.st_mode)) {
		if ((faccessat(fd, "pages_meta.img", F_OK, 0) == 0 &&
		     faccessat(fd, "pages.img", F_OK, 0) == 0) ||
		    faccessat(fd, "checkpoint.img", F_OK, 0) == 0 ||
		    faccessat(fd, "fscheckpoint.pb", F_OK, 0) == 0)
			*ret_format = format_named("gvisor");
		else if (dir_has(fd, "pagemap-", ".img"))
			*ret_format = format_named("criu");
		else {
			close(fd);
			return error_set(-EISDIR, "source '%s': a directory, but neither a "
					 "gVisor checkpoint (checkpoint.img, or pages_meta.img "
					 "with pages.img) nor a CRIU dump (pagemap-*.img)", path);
		}
	} else if (S_ISREG(st.st_mode) && pread(fd, magic, sizeof(magic), 0) == sizeof(magic) &&
		   memcmp(magic, ELFMAG, SELFMAG) == 0) {
		*ret_format = format_named("elf");
	}
	close(fd);
	return 0;
}

int source_open(const char *path, const char *format, struct source *ret_src)
{
	return source_open_keyed(path, format, NULL, ret_src);
}

int source_open_keyed(const char *path, const char *format, const char *key_file,
		      struct source *ret_src)
{
	const struct format *f = NULL;
	struct source src = { 0 };
	int rc;

	if (format) {
		f = format_named(format);
		if (!f)
			return error_set(-EINVAL, "format '%s': not supported", format);
		if (strcmp(path, "-") == 0 && strcmp(format, "raw") != 0)
			return error_set(-EINVAL, "format '%s': standard input ('-') is read as "
					 "a raw image only", format);
	} else if (strcmp(path, "-") == 0) {
		f = format_named("raw");
	} else {
		rc = detect(path, &f);
		if (rc < 0)
			return rc;
	}
	if (key_file && strcmp(f->name, "gvisor") != 0)
		return error_set(-EINVAL, "--key-file is for gVisor checkpoints, not format '%s'",
				 f->name);
	src.path = path;
	src.key_file = key_file;
	src.buf = aligned_alloc(SNAPFS_PAGE_SIZE, SOURCE_BUF_BYTES);
	if (!src.buf)
		return -ENOMEM;
	rc = f->open(path, &src);
	if (rc < 0) {
		source_close(&src);
		return rc;
	}
	if (!src.description)
		src.description = realpath(path, NULL);
	if (!src.description)
		src.description = strdup(path);
	if (!src.description) {
		source_close(&src);
		return -ENOMEM;
	}
	*ret_src = src;
	return 0;
}

void source_close(struct source *src)
{
	if (!src)
		return;
	if (src->ops && src->ops->close)
		src->ops->close(src);
	segment_list_release(&src->segments);
	core_note_list_release(&src->core_notes);
	free(src->description);
	free(src->notes);
	free(src->buf);
	*src = (struct source){ 0 };
}
