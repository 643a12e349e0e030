// SPDX-License-Identifier: MIT
/*
 * snapfs_restore(): write a snapshot's memory file back out, byte for byte,
 * through the same read path as the mount. Regular files come out sparse
 * (only data pages are written) via a temporary file that is renamed into
 * place, so a failure never leaves a partial output behind.
 * snapfs_export() writes the same way either that or the snapshot's core
 * file (core_file.c), read through the same image.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "errors.h"
#include "snapfs.h"

/* Bytes per read from the image and write to the output. */
#define RESTORE_CHUNK ((size_t)1 << 20)

struct restore_job {
	struct snapfs_image *img;
	struct snapfs_core *core;      /* export --format elf: the core file */
	const char *output;            /* as the user named it */
	int fd;
	bool sparse;                   /* skip holes (seekable regular file) */
	const struct snapfs_progress *progress;
	uint64_t done, total;
	unsigned char *buf;            /* the core file's bytes on their way */
};

/* Write the count buffers of iov (changed as they go out), which hold
 * the output's bytes from off. */
static int write_full(struct restore_job *job, struct iovec *iov, int count, uint64_t off)
{
	while (count > 0) {
		int n_iov = count < IOV_MAX ? count : IOV_MAX;
		ssize_t n = job->sparse ? pwritev(job->fd, iov, n_iov, (off_t)off)
					: writev(job->fd, iov, n_iov);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return error_set(-errno, "output '%s': write at offset 0x%llx: %s",
					 job->output, (unsigned long long)off, errno_text(errno));
		}
		off += (uint64_t)n;
		/* Past what went out: whole buffers, then part of one. */
		while (count > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			count--;
		}
		if (count > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

/* Write len bytes of the image at off straight from the cache of
 * decoded blobs (the mount's zero-copy slices): no copy in between. */
static int copy_slices(struct restore_job *job, size_t len, uint64_t off)
{
	struct snapfs_read_slices s;
	int rc;

	rc = snapfs_image_read_slices(job->img, off, len, &s);
	if (rc < 0)
		return error_set(rc, "read at offset 0x%llx: %s", (unsigned long long)off,
				 snapfs_strerror(rc));
	if (s.len != len)
		rc = error_set(-EIO, "read at offset 0x%llx: short read", (unsigned long long)off);
	else
		rc = write_full(job, s.iov, (int)s.count, off);
	snapfs_read_slices_release(&s);
	return rc;
}

static int64_t job_seek(struct restore_job *job, uint64_t off, int whence)
{
	return job->core ? snapfs_core_seek(job->core, off, whence)
			 : snapfs_image_seek(job->img, off, whence);
}

static uint64_t job_size(const struct restore_job *job)
{
	return job->core ? snapfs_core_size(job->core) : snapfs_image_size(job->img);
}

/* Copy [start, end) of the image to the output. */
static int copy_range(struct restore_job *job, uint64_t start, uint64_t end)
{
	for (uint64_t at = start; at < end;) {
		size_t len = end - at < RESTORE_CHUNK ? (size_t)(end - at) : RESTORE_CHUNK;
		ssize_t n;
		int rc;

		if (job->progress->cancel && *job->progress->cancel)
			return error_set(-SNAPFS_ECANCELED, "interrupted");
		if (!job->core) {
			rc = copy_slices(job, len, at);
		} else {
			struct iovec iov = { .iov_base = job->buf, .iov_len = len };

			n = snapfs_core_read(job->core, job->buf, len, at);
			if (n < 0)
				return error_set((int)n, "read at offset 0x%llx: %s",
						 (unsigned long long)at, snapfs_strerror((int)n));
			if ((size_t)n != len)
				return error_set(-EIO, "read at offset 0x%llx: short read",
						 (unsigned long long)at);
			rc = write_full(job, &iov, 1, at);
		}
		if (rc < 0)
			return rc;
		at += len;
		job->done += len;
		if (job->progress->fn)
			job->progress->fn(job->progress->data, job->done, job->total);
	}
	return 0;
}

static int copy_image(struct restore_job *job)
{
	uint64_t size = job_size(job), off = 0;

	if (!job->sparse)
		return copy_range(job, 0, size);
	if (ftruncate(job->fd, (off_t)size) < 0)
		return error_set(-errno, "output '%s': cannot make a file of %llu bytes: %s",
				 job->output, (unsigned long long)size, errno_text(errno));
	while (off < size) {
		int64_t data = job_seek(job, off, SEEK_DATA), hole;
		int rc;

		if (data == -ENXIO)
			break;
		if (data < 0)
			return (int)data;
		hole = job_seek(job, (uint64_t)data, SEEK_HOLE);
		if (hole < 0)
			return (int)hole;
		rc = copy_range(job, (uint64_t)data, (uint64_t)hole);
		if (rc < 0)
			return rc;
		off = (uint64_t)hole;
	}
	return 0;
}

/* Create a temporary file next to path; its name in *ret_tmp. */
static int create_temp(const char *path, char **ret_tmp, int *ret_fd)
{
	char *copy_dir = strdup(path), *copy_base = strdup(path), *tmp = NULL;
	mode_t mask;
	int fd, rc = 0;

	if (!copy_dir || !copy_base) {
		rc = -ENOMEM;
		goto out_free;
	}
	if (asprintf(&tmp, "%s/.%s.snapfs-XXXXXX", dirname(copy_dir), basename(copy_base)) < 0) {
		tmp = NULL;
		rc = -ENOMEM;
		goto out_free;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = error_set(-errno, "output '%s': %s", path, errno_text(errno));
		free(tmp);
		goto out_free;
	}
	mask = umask(0);
	umask(mask);
	fchmod(fd, 0666 & ~mask);
	*ret_tmp = tmp;
	*ret_fd = fd;
out_free:
	free(copy_dir);
	free(copy_base);
	return rc;
}

static int restore_to_stdout(struct restore_job *job)
{
	job->fd = STDOUT_FILENO;
	job->sparse = false;
	return copy_image(job);
}

static int restore_to_path(struct restore_job *job, const struct snapfs_restore_opts *opts)
{
	struct stat st;
	char *tmp = NULL;
	int rc;

	if (lstat(job->output, &st) == 0) {
		if (!opts->force)
			return error_set(-EEXIST, "output '%s': exists (use --force to replace it)",
					 job->output);
		if (S_ISDIR(st.st_mode))
			return error_set(-EISDIR, "output '%s': is a directory", job->output);
		if (!S_ISREG(st.st_mode)) {
			/* A device or pipe named with --force: write into it. */
			job->fd = open(job->output, O_WRONLY | O_CLOEXEC);
			if (job->fd < 0)
				return error_set(-errno, "output '%s': %s", job->output,
						 errno_text(errno));
			job->sparse = false;
			rc = copy_image(job);
			close(job->fd);
			return rc;
		}
	}
	rc = create_temp(job->output, &tmp, &job->fd);
	if (rc < 0)
		return rc;
	job->sparse = true;
	rc = copy_image(job);
	if (close(job->fd) < 0 && rc == 0)
		rc = error_set(-errno, "output '%s': %s", job->output, errno_text(errno));
	if (rc == 0) {
		if (opts->force)
			rc = rename(tmp, job->output) < 0 ? -errno : 0;
		else
			rc = renameat2(AT_FDCWD, tmp, AT_FDCWD, job->output, RENAME_NOREPLACE) < 0
				     ? -errno : 0;
		if (rc < 0)
			error_set(rc, "output '%s': %s", job->output, errno_text(-rc));
	}
	if (rc < 0)
		unlink(tmp);
	free(tmp);
	return rc;
}

/* Write snapshot name's memory file (core false) or core file to output;
 * what names the operation in messages ("restore", "export"). */
static int write_out(struct snapfs_store *store, const char *name, bool core,
		     const char *output, const struct snapfs_restore_opts *opts,
		     const char *what)
{
	struct restore_job job = { .output = output, .fd = -1,
				   .progress = &opts->progress };
	struct snapfs_snapshot snap;
	int rc;

	error_clear();
	if (!snapfs_name_valid(name))
		return error_set(-SNAPFS_EBADNAME, "snapshot '%s': invalid name", name);
	rc = snapfs_snapshot_get(store, name, &snap);
	if (rc < 0)
		return rc;
	rc = snapfs_image_open(store, snap.id, &job.img);
	if (rc == 0 && core)
		rc = snapfs_core_open(store, &snap, job.img, &job.core);
	snapfs_snapshot_release(&snap);
	if (rc < 0)
		goto out_close;
	job.total = job.core ? snapfs_core_data_bytes(job.core)
			     : snapfs_image_data_pages(job.img) * SNAPFS_PAGE_SIZE;
	/* The memory file goes out from the cache itself (copy_slices()). */
	job.buf = job.core ? malloc(RESTORE_CHUNK) : NULL;
	if (job.core && !job.buf) {
		rc = -ENOMEM;
		goto out_close;
	}
	if (strcmp(output, "-") == 0) {
		job.total = job_size(&job);
		rc = restore_to_stdout(&job);
	} else {
		rc = restore_to_path(&job, opts);
	}
out_close:
	if (rc < 0)
		error_prefix(rc, "%s '%s'", what, name);
	free(job.buf);
	snapfs_core_close(job.core);
	snapfs_image_close(job.img);
	return rc;
}

int snapfs_restore(struct snapfs_store *store, const char *name,
		   const char *output, const struct snapfs_restore_opts *opts)
{
	return write_out(store, name, false, output, opts, "restore");
}

int snapfs_export(struct snapfs_store *store, const char *name, const char *format,
		  const char *output, const struct snapfs_restore_opts *opts)
{
	error_clear();
	if (strcmp(format, "raw") == 0)
		return write_out(store, name, false, output, opts, "export");
	if (strcmp(format, "elf") == 0)
		return write_out(store, name, true, output, opts, "export");
	return error_set(-EINVAL, "export '%s': unknown format '%s' (raw or elf)", name, format);
}
