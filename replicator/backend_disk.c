/* Disk-image backend: a file in any format QEMU reads (raw, qcow2 with its backing chain, vmdk,
 * vhdx, vpc), location disk:FORMAT:/path, read as a source; and a qcow2 file written as a
 * received volume (--target-format qcow2), made durable by NBD flush (an fsync of the file and
 * its metadata by qemu-nbd) before the receiver acknowledges anything. Each open runs its own
 * `qemu-nbd --read-only --format=FORMAT` over a private socket (libnbd's socket activation) and
 * reads the guest-visible bytes through NBD, so that the format is always the one given and
 * never what QEMU would guess from the data: a raw image can carry a qcow2 header. Block status
 * (base:allocation) says which ranges read as zeros, so that they are neither read nor sent. */
#include "replicator/backend.h"
#include "common/error.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <libnbd.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* The formats a disk: location may name; any other is refused, never passed to QEMU. */
static const char *const disk_formats[] = {"raw", "qcow2", "vmdk", "vhdx", "vpc"};

struct disk_volume {
	struct nbd_handle *nbd;
	bool zero_known; /* the server answers base:allocation */
};

static bool
disk_format_known(const char *format)
{
	for (size_t i = 0; i < sizeof(disk_formats) / sizeof(disk_formats[0]); i++)
		if (strcmp(format, disk_formats[i]) == 0)
			return true;
	return false;
}

static int
disk_nbd_error(const char *what, const char *path)
{
	return ferry_error_set(FERRY_ERR_IO, "%s %s through qemu-nbd: %s", what, path,
			       nbd_get_error() ? nbd_get_error() : "unknown error");
}

/* "FORMAT:/path" into format and the path within it. */
static int
disk_parse(const char *spec, char *format, size_t size, const char **path)
{
	const char *colon = strchr(spec, ':');

	if (colon == NULL || (size_t)(colon - spec) >= size || colon[1] == '\0')
		return ferry_error_set(
			FERRY_ERR_INVALID,
			"'disk:%.200s' is not disk:FORMAT:/path (FORMAT: raw, qcow2, "
			"vmdk, vhdx or vpc)",
			spec);
	memcpy(format, spec, (size_t)(colon - spec));
	format[colon - spec] = '\0';
	if (!disk_format_known(format))
		return ferry_error_set(FERRY_ERR_INVALID,
				       "disk format '%.32s' of %.200s is not one ferry reads (raw, "
				       "qcow2, vmdk, vhdx, vpc)",
				       format, colon + 1);
	*path = colon + 1;
	return 0;
}

static int
disk_open(struct repl_volume *volume, const char *spec, enum repl_open_mode mode)
{
	struct disk_volume *disk = NULL;
	char format[16], format_option[32];
	const char *path = NULL;
	struct stat info;
	int64_t size;
	int rc;

	rc = disk_parse(spec, format, sizeof(format), &path);
	if (rc < 0)
		return rc;
	if (mode == REPL_OPEN_WRITE && strcmp(format, "qcow2") != 0)
		return ferry_error_set(
			FERRY_ERR_INVALID,
			"disk:%s is read here, not written: a received volume is a raw "
			"file, a qcow2 file or an RBD image",
			spec);
	if (stat(path, &info) < 0)
		return ferry_error_set(errno == ENOENT ? FERRY_ERR_NOT_FOUND : FERRY_ERR_IO,
				       "cannot open %s: %s", path, strerror(errno));
	disk = calloc(1, sizeof(*disk));
	if (disk == NULL)
		return ferry_error_no_memory();
	snprintf(format_option, sizeof(format_option), "--format=%s", format);
	disk->nbd = nbd_create();
	if (disk->nbd == NULL) {
		rc = disk_nbd_error("cannot start reading", path);
		goto out;
	}
	nbd_add_meta_context(disk->nbd, LIBNBD_CONTEXT_BASE_ALLOCATION);
	{
		/* No shell: the path is one argument whatever bytes it holds. */
		char *reader[] = {"qemu-nbd",	  "--read-only",   format_option, "--shared=1",
				  "--cache=none", "--aio=threads", (char *)path,  NULL};
		/* Written: zeros may become holes (an NBD zero without NO_HOLE, with discard on),
		 * and flushes reach the disk. */
		char *writer[] = {"qemu-nbd",	   format_option,     "--shared=1", "--cache=none",
				  "--aio=threads", "--discard=unmap", (char *)path, NULL};
		char **argv = mode == REPL_OPEN_WRITE ? writer : reader;

		if (nbd_connect_systemd_socket_activation(disk->nbd, argv) < 0) {
			rc = disk_nbd_error("cannot open", path);
			goto out;
		}
	}
	size = nbd_get_size(disk->nbd);
	if (size < 0) {
		rc = disk_nbd_error("cannot read the size of", path);
		goto out;
	}
	disk->zero_known = nbd_can_meta_context(disk->nbd, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1;
	volume->size = (uint64_t)size;
	/* The file's own identity, as for a raw file; a change in a backing file is not seen. */
	rc = util_format(volume->identity, sizeof(volume->identity), "the identity of a disk image",
			 "disk:%s:%llu:%llu:size=%llu:mtime=%lld.%09ld", format,
			 (unsigned long long)info.st_dev, (unsigned long long)info.st_ino,
			 (unsigned long long)size, (long long)info.st_mtim.tv_sec,
			 info.st_mtim.tv_nsec);
	if (rc < 0)
		goto out;
	volume->backend_data = disk;
	disk = NULL;
out:
	if (disk) {
		if (disk->nbd)
			nbd_close(disk->nbd);
		free(disk);
	}
	return rc;
}

/* Runs qemu-img create (no shell: every argument is one word), then makes the new file
 * durable. */
static int
disk_qcow2_make(const char *path, uint64_t size)
{
	char size_text[32];
	char *argv[] = {"qemu-img", "create", "-q", "-f", "qcow2", (char *)path, size_text, NULL};
	pid_t child;
	int status = 0, fd, rc;

	snprintf(size_text, sizeof(size_text), "%llu", (unsigned long long)size);
	rc = posix_spawnp(&child, "qemu-img", NULL, NULL, argv, environ);
	if (rc != 0)
		return ferry_error_set(FERRY_ERR_IO,
				       "cannot run qemu-img to create %s: %s; install qemu-utils",
				       path, strerror(rc));
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return ferry_error_set(FERRY_ERR_IO, "qemu-img could not create %s (status %d)",
				       path, status);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0) {
		rc = ferry_error_set(FERRY_ERR_IO, "cannot sync %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	close(fd);
	return 0;
}

/* A received qcow2 volume: made when it is new (or asked to start over), kept when it exists,
 * so that a resumed transfer writes on into it. */
static int
disk_create(const char *spec, uint64_t size, bool truncate)
{
	char format[16];
	const char *path = NULL;
	struct stat info;
	int rc = disk_parse(spec, format, sizeof(format), &path);

	if (rc < 0)
		return rc;
	if (strcmp(format, "qcow2") != 0)
		return ferry_error_set(FERRY_ERR_INVALID,
				       "disk:%s is only read; a received volume is a raw file, a "
				       "qcow2 file or an RBD image",
				       spec);
	if (!truncate && stat(path, &info) == 0)
		return 0;
	if (unlink(path) < 0 && errno != ENOENT)
		return ferry_error_set(FERRY_ERR_IO, "cannot replace %s: %s", path,
				       strerror(errno));
	return disk_qcow2_make(path, size);
}

static void
disk_close(struct repl_volume *volume)
{
	struct disk_volume *disk = volume->backend_data;

	if (disk == NULL)
		return;
	/* Closing the connection ends qemu-nbd (it serves one client); libnbd reaps it. */
	nbd_shutdown(disk->nbd, 0);
	nbd_close(disk->nbd);
	free(disk);
}

static int
disk_read(struct repl_volume *volume, uint64_t offset, void *buffer, size_t length)
{
	struct disk_volume *disk = volume->backend_data;

	if (nbd_pread(disk->nbd, buffer, length, offset, 0) < 0)
		return disk_nbd_error("cannot read", volume->location);
	return 0;
}

static int
disk_write(struct repl_volume *volume, uint64_t offset, const void *data, size_t length)
{
	struct disk_volume *disk = volume->backend_data;

	if (nbd_pwrite(disk->nbd, data, length, offset, 0) < 0)
		return disk_nbd_error("cannot write", volume->location);
	return 0;
}

static int
disk_write_zeroes(struct repl_volume *volume, uint64_t offset, uint64_t length)
{
	struct disk_volume *disk = volume->backend_data;

	if (nbd_zero(disk->nbd, length, offset, 0) < 0)
		return disk_nbd_error("cannot write zeros to", volume->location);
	return 0;
}

struct disk_zero_walk {
	uint64_t covered; /* bytes from the start of the range known to read as zeros */
	bool data;	  /* some extent holds data */
};

static int
disk_extent(void *context, const char *metacontext, uint64_t offset, uint32_t *entries,
	    size_t count, int *error)
{
	struct disk_zero_walk *walk = context;

	(void)offset;
	(void)error;
	if (strcmp(metacontext, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0)
		return 0;
	/* Pairs of (length, flags); a range reads as zeros when its flags say so. */
	for (size_t i = 0; i + 1 < count && !walk->data; i += 2) {
		if (entries[i + 1] & LIBNBD_STATE_ZERO)
			walk->covered += entries[i];
		else
			walk->data = true;
	}
	return 0;
}

static int
disk_is_hole(struct repl_volume *volume, uint64_t offset, uint64_t length, bool *hole)
{
	struct disk_volume *disk = volume->backend_data;

	*hole = false;
	if (!disk->zero_known)
		return 0;
	/* A server may answer for less than asked: ask again from where it stopped. */
	while (length > 0) {
		struct disk_zero_walk walk = {0, false};
		uint64_t ask = length > (1ull << 30) ? (1ull << 30) : length;

		if (nbd_block_status(
			    disk->nbd, ask, offset,
			    (nbd_extent_callback){.callback = disk_extent, .user_data = &walk},
			    0) < 0)
			return 0; /* cannot tell: read it */
		if (walk.data || walk.covered == 0)
			return 0;
		if (walk.covered >= length)
			break;
		offset += walk.covered;
		length -= walk.covered;
	}
	*hole = true;
	return 0;
}

static int
disk_flush(struct repl_volume *volume)
{
	struct disk_volume *disk = volume->backend_data;

	/* A read-only export has nothing to make durable, and may not take a flush. */
	if (nbd_can_flush(disk->nbd) != 1)
		return 0;
	if (nbd_flush(disk->nbd, 0) < 0)
		return disk_nbd_error("cannot flush", volume->location);
	return 0;
}

const struct repl_backend_ops repl_backend_disk = {
	.scheme = "disk",
	.open = disk_open,
	.create = disk_create,
	.close = disk_close,
	.read = disk_read,
	.write = disk_write,
	.write_zeroes = disk_write_zeroes,
	.is_hole = disk_is_hole,
	.flush = disk_flush,
};
