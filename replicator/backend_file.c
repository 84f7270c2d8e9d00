/* File backend: raw images and block devices. Sources are read with pread; received images are
 * kept sparse (zero blocks become holes, zero records punch holes) and made durable with
 * fdatasync before the receiver acknowledges anything. */
#include "replicator/backend.h"
#include "common/error.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

struct file_volume {
	int fd;
	bool punch_supported;
};

static int
file_error(int error_number, const char *what, const char *path)
{
	return ferry_error_set(error_number == ENOSPC || error_number == EDQUOT ? FERRY_ERR_NO_SPACE
			       : error_number == ENOENT ? FERRY_ERR_NOT_FOUND
							: FERRY_ERR_IO,
			       "%s %s: %s", what, path, strerror(error_number));
}

static int
file_open(struct repl_volume *volume, const char *path, enum repl_open_mode mode)
{
	struct file_volume *file = NULL;
	struct stat info;
	int rc = -1;

	file = calloc(1, sizeof(*file));
	if (file == NULL)
		return ferry_error_no_memory();
	file->punch_supported = true;
	file->fd = open(path, (mode == REPL_OPEN_WRITE ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (file->fd < 0) {
		rc = file_error(errno, "cannot open", path);
		goto out;
	}
	if (fstat(file->fd, &info) < 0) {
		rc = file_error(errno, "cannot stat", path);
		goto out;
	}
	if (S_ISBLK(info.st_mode)) {
		uint64_t size = 0;

		if (ioctl(file->fd, BLKGETSIZE64, &size) < 0) {
			rc = file_error(errno, "cannot read the size of block device", path);
			goto out;
		}
		volume->size = size;
		snprintf(volume->identity, sizeof(volume->identity), "block:%u:%u:size=%llu",
			 major(info.st_rdev), minor(info.st_rdev), (unsigned long long)size);
	} else if (S_ISREG(info.st_mode)) {
		volume->size = (uint64_t)info.st_size;
		snprintf(volume->identity, sizeof(volume->identity),
			 "file:%llu:%llu:size=%llu:mtime=%lld.%09ld",
			 (unsigned long long)info.st_dev, (unsigned long long)info.st_ino,
			 (unsigned long long)info.st_size, (long long)info.st_mtim.tv_sec,
			 info.st_mtim.tv_nsec);
	} else {
		rc = ferry_error_set(FERRY_ERR_INVALID,
				     "%s is neither a regular file nor a block device", path);
		goto out;
	}
	if (mode == REPL_OPEN_READ)
		posix_fadvise(file->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	volume->backend_data = file;
	file = NULL;
	rc = 0;
out:
	if (file) {
		if (file->fd >= 0)
			close(file->fd);
		free(file);
	}
	return rc;
}

static int
file_create(const char *path, uint64_t size, bool truncate)
{
	int fd, rc = 0;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return file_error(errno, "cannot create", path);
	if (truncate && ftruncate(fd, 0) < 0)
		rc = file_error(errno, "cannot truncate", path);
	if (rc == 0 && ftruncate(fd, (off_t)size) < 0)
		rc = file_error(errno, "cannot size", path);
	if (rc == 0 && fsync(fd) < 0)
		rc = file_error(errno, "cannot sync", path);
	close(fd);
	return rc;
}

static void
file_close(struct repl_volume *volume)
{
	struct file_volume *file = volume->backend_data;

	if (file == NULL)
		return;
	close(file->fd);
	free(file);
	volume->backend_data = NULL;
}

static int
file_read(struct repl_volume *volume, uint64_t offset, void *buffer, size_t length)
{
	struct file_volume *file = volume->backend_data;
	size_t done = 0;

	while (done < length) {
		ssize_t got = pread(file->fd, (char *)buffer + done, length - done,
				    (off_t)(offset + done));

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return file_error(errno, "cannot read", volume->location);
		if (got == 0)
			return ferry_error_set(FERRY_ERR_CONFLICT,
					       "%s ended at %llu while reading %zu bytes at %llu: "
					       "the source shrank during the copy",
					       volume->location,
					       (unsigned long long)(offset + done), length,
					       (unsigned long long)offset);
		done += (size_t)got;
	}
	return 0;
}

static int
file_write_all(struct repl_volume *volume, uint64_t offset, const void *data, size_t length)
{
	struct file_volume *file = volume->backend_data;
	size_t done = 0;

	while (done < length) {
		ssize_t put = pwrite(file->fd, (const char *)data + done, length - done,
				     (off_t)(offset + done));

		if (put < 0 && errno == EINTR)
			continue;
		if (put < 0)
			return file_error(errno, "cannot write", volume->location);
		done += (size_t)put;
	}
	return 0;
}

static int
file_write_zeroes(struct repl_volume *volume, uint64_t offset, uint64_t length)
{
	static const char zeroes[SEGMENT_SPARSE_BLOCK * 16];
	struct file_volume *file = volume->backend_data;

	if (file->punch_supported) {
		if (fallocate(file->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset,
			      (off_t)length) == 0)
			return 0;
		if (errno != EOPNOTSUPP)
			return file_error(errno, "cannot punch a hole in", volume->location);
		file->punch_supported = false; /* e.g. a block device: write real zeroes */
	}
	while (length > 0) {
		size_t step = length < sizeof(zeroes) ? (size_t)length : sizeof(zeroes);
		int rc = file_write_all(volume, offset, zeroes, step);

		if (rc < 0)
			return rc;
		offset += step;
		length -= step;
	}
	return 0;
}

static int
file_is_hole(struct repl_volume *volume, uint64_t offset, uint64_t length, bool *hole)
{
	struct file_volume *file = volume->backend_data;
	off_t data = lseek(file->fd, (off_t)offset, SEEK_DATA);

	if (data < 0) {
		/* ENXIO: no data at or after offset. Anything else: we cannot tell, so read. */
		*hole = errno == ENXIO;
		return 0;
	}
	*hole = (uint64_t)data >= offset + length;
	return 0;
}

static int
file_flush(struct repl_volume *volume)
{
	struct file_volume *file = volume->backend_data;

	if (fdatasync(file->fd) < 0)
		return file_error(errno, "cannot flush", volume->location);
	return 0;
}

const struct repl_backend_ops repl_backend_file = {
	.scheme = "file",
	.open = file_open,
	.create = file_create,
	.close = file_close,
	.read = file_read,
	.write = file_write_all,
	.write_zeroes = file_write_zeroes,
	.is_hole = file_is_hole,
	.flush = file_flush,
};
