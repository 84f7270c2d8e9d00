/* The catalog's own disk: a thin SQLite VFS ("ferry") over the platform's default one, through
 * which every catalog file (the database, its WAL, a journal) is opened by catalog_open().
 *
 * It exists for one rule: a failed fsync of the catalog is fatal for the process. After fsync
 * has failed, Linux may already have dropped the dirty pages and cleared the error, so a second
 * fsync that succeeds proves nothing: retrying would acknowledge data that is not on disk (the
 * PostgreSQL "fsyncgate" lesson). So the shim logs one line naming the file and the cause and
 * ends the process (exit CATALOG_EXIT_FATAL) before SQLite can return from the commit;
 * nothing that the commit was to record is ever acknowledged. At the next start SQLite
 * recovers the catalog from its WAL, keeping only frames whose checksums hold.
 *
 * Built with FERRY_FAULT_INJECTION (the check build), it also fails catalog I/O on demand, as
 * SQLite's own tests do (numbered from the process's start, every catalog file counted):
 *   FERRY_FAULT_CATALOG_WRITE=N        the Nth write fails ...
 *   FERRY_FAULT_CATALOG_WRITE_COUNT=M  ... and the M-1 after it (default 1)
 *   FERRY_FAULT_CATALOG_WRITE_ERROR=   full (default: as ENOSPC, SQLITE_FULL) or io (as EIO)
 *   FERRY_FAULT_CATALOG_SYNC=N         the Nth fsync fails as EIO (and so ends the process)
 *
 * Invariants:
 *  1. Every method delegates to the default VFS's file; only xWrite (faults) and xSync
 *     (faults, and the fatal exit) add behaviour.
 *  2. A failed xSync never returns to SQLite.
 */
#include "catalog/catalog_internal.h"
#include "common/error.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fault_file {
	sqlite3_file base;  /* first: SQLite sees a struct fault_file as a sqlite3_file */
	const char *name;   /* SQLite keeps it valid until xClose */
	sqlite3_file *real; /* the default VFS's file, right after this struct */
};

static sqlite3_vfs *fault_real_vfs;
static sqlite3_vfs fault_vfs;
static pthread_once_t fault_once = PTHREAD_ONCE_INIT;
static int fault_register_rc = SQLITE_OK;

#define FAULT_REAL(file) (((struct fault_file *)(file))->real)

#ifdef FERRY_FAULT_INJECTION
static unsigned long long fault_writes, fault_syncs;

/* The value of a FERRY_FAULT_CATALOG_* variable, or fallback when unset or not a number. */
static int64_t
fault_setting(const char *variable, int64_t fallback)
{
	const char *value = getenv(variable);
	int64_t number = fallback;

	if (value && util_parse_int64(value, 1, INT64_MAX, &number) < 0)
		number = fallback;
	return number;
}

/* The SQLite code the injected write failure stands for, or SQLITE_OK to write. */
static int
fault_write_injected(const char *name)
{
	int64_t first = fault_setting("FERRY_FAULT_CATALOG_WRITE", 0);
	int64_t count = fault_setting("FERRY_FAULT_CATALOG_WRITE_COUNT", 1);
	const char *kind = getenv("FERRY_FAULT_CATALOG_WRITE_ERROR");
	unsigned long long n;

	if (first == 0)
		return SQLITE_OK;
	n = __atomic_add_fetch(&fault_writes, 1, __ATOMIC_SEQ_CST);
	if (n < (unsigned long long)first ||
	    n - (unsigned long long)first >= (unsigned long long)count)
		return SQLITE_OK;
	log_warn("FERRY_FAULT_CATALOG_WRITE: write %llu of the catalog fails (%s, as %s)", n,
		 name ? name : "temporary file",
		 kind && strcmp(kind, "io") == 0 ? "EIO" : "ENOSPC");
	return kind && strcmp(kind, "io") == 0 ? SQLITE_IOERR_WRITE : SQLITE_FULL;
}

static bool
fault_sync_injected(void)
{
	int64_t wanted = fault_setting("FERRY_FAULT_CATALOG_SYNC", 0);

	return wanted > 0 &&
	       __atomic_add_fetch(&fault_syncs, 1, __ATOMIC_SEQ_CST) == (unsigned long long)wanted;
}
#endif

static int
fault_close(sqlite3_file *file)
{
	sqlite3_file *real = FAULT_REAL(file);

	return real->pMethods ? real->pMethods->xClose(real) : SQLITE_OK;
}

static int
fault_read(sqlite3_file *file, void *buffer, int amount, sqlite3_int64 offset)
{
	sqlite3_file *real = FAULT_REAL(file);

	return real->pMethods->xRead(real, buffer, amount, offset);
}

static int
fault_write(sqlite3_file *file, const void *buffer, int amount, sqlite3_int64 offset)
{
	sqlite3_file *real = FAULT_REAL(file);

#ifdef FERRY_FAULT_INJECTION
	int injected = fault_write_injected(((struct fault_file *)file)->name);

	if (injected != SQLITE_OK)
		return injected;
#endif
	return real->pMethods->xWrite(real, buffer, amount, offset);
}

static int
fault_truncate(sqlite3_file *file, sqlite3_int64 size)
{
	sqlite3_file *real = FAULT_REAL(file);

	return real->pMethods->xTruncate(real, size);
}

/* Invariant 2: a failed fsync ends the process here. */
static int
fault_sync(sqlite3_file *file, int flags)
{
	sqlite3_file *real = FAULT_REAL(file);
	const char *name = ((struct fault_file *)file)->name;
	int rc, cause, last = 0;

#ifdef FERRY_FAULT_INJECTION
	if (fault_sync_injected()) {
		log_warn("FERRY_FAULT_CATALOG_SYNC: this fsync of the catalog fails as EIO");
		rc = SQLITE_IOERR_FSYNC;
		errno = EIO;
	} else
#endif
		rc = real->pMethods->xSync(real, flags);
	if (rc == SQLITE_OK)
		return rc;
	/* The unix VFS keeps the failed call's errno; ours is a fallback (the injected EIO). */
	cause = errno;
	if (real->pMethods->xFileControl(real, SQLITE_FCNTL_LAST_ERRNO, &last) == SQLITE_OK &&
	    last != 0)
		cause = last;
	log_error("catalog %s: fsync failed (%s): its last commit may not be on disk and a retried "
		  "fsync cannot tell, so this process stops now (exit %d) without acknowledging "
		  "it; check the disk, then start it again: the catalog recovers from its WAL",
		  name ? name : "temporary file", strerror(cause), CATALOG_EXIT_FATAL);
	_exit(CATALOG_EXIT_FATAL);
}

static int
fault_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
	sqlite3_file *real = FAULT_REAL(file);

	return real->pMethods->xFileSize(real, size);
}

static int
fault_lock(sqlite3_file *file, int level)
{
	sqlite3_file *real = FAULT_REAL(file);

	return real->pMethods->xLock(real, level);
}

static int
fault_unlock(sqlite3_file *file, int level)
{
	sqlite3_file *real = FAULT_REAL(file);

	return real->pMethods->xUnlock(real, level);
}

static int
fault_check_reserved_lock(sqlite3_file *file, int *reserved)
{
	sqlite3_file *real = FAULT_REAL(file);

	return real->pMethods->xCheckReservedLock(real, reserved);
}

static int
fault_file_control(sqlite3_file *file, int op, void *argument)
{
	sqlite3_file *real = FAULT_REAL(file);

	return real->pMethods->xFileControl(real, op, argument);
}

static int
fault_sector_size(sqlite3_file *file)
{
	sqlite3_file *real = FAULT_REAL(file);

	return real->pMethods->xSectorSize(real);
}

static int
fault_device_characteristics(sqlite3_file *file)
{
	sqlite3_file *real = FAULT_REAL(file);

	return real->pMethods->xDeviceCharacteristics(real);
}

static int
fault_shm_map(sqlite3_file *file, int region, int size, int extend, void volatile **out)
{
	sqlite3_file *real = FAULT_REAL(file);

	return real->pMethods->xShmMap(real, region, size, extend, out);
}

static int
fault_shm_lock(sqlite3_file *file, int offset, int count, int flags)
{
	sqlite3_file *real = FAULT_REAL(file);

	return real->pMethods->xShmLock(real, offset, count, flags);
}

static void
fault_shm_barrier(sqlite3_file *file)
{
	sqlite3_file *real = FAULT_REAL(file);

	real->pMethods->xShmBarrier(real);
}

static int
fault_shm_unmap(sqlite3_file *file, int delete_flag)
{
	sqlite3_file *real = FAULT_REAL(file);

	return real->pMethods->xShmUnmap(real, delete_flag);
}

static int
fault_fetch(sqlite3_file *file, sqlite3_int64 offset, int amount, void **out)
{
	sqlite3_file *real = FAULT_REAL(file);

	return real->pMethods->xFetch(real, offset, amount, out);
}

static int
fault_unfetch(sqlite3_file *file, sqlite3_int64 offset, void *pointer)
{
	sqlite3_file *real = FAULT_REAL(file);

	return real->pMethods->xUnfetch(real, offset, pointer);
}

/* Version 3 methods; fault_open() only hands them out over a real file of version 3. */
static const sqlite3_io_methods fault_methods = {
	.iVersion = 3,
	.xClose = fault_close,
	.xRead = fault_read,
	.xWrite = fault_write,
	.xTruncate = fault_truncate,
	.xSync = fault_sync,
	.xFileSize = fault_file_size,
	.xLock = fault_lock,
	.xUnlock = fault_unlock,
	.xCheckReservedLock = fault_check_reserved_lock,
	.xFileControl = fault_file_control,
	.xSectorSize = fault_sector_size,
	.xDeviceCharacteristics = fault_device_characteristics,
	.xShmMap = fault_shm_map,
	.xShmLock = fault_shm_lock,
	.xShmBarrier = fault_shm_barrier,
	.xShmUnmap = fault_shm_unmap,
	.xFetch = fault_fetch,
	.xUnfetch = fault_unfetch,
};

static int
fault_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file, int flags, int *flags_out)
{
	struct fault_file *wrapper = (struct fault_file *)file;
	int rc;

	(void)vfs;
	wrapper->name = name;
	wrapper->real = (sqlite3_file *)(wrapper + 1);
	rc = fault_real_vfs->xOpen(fault_real_vfs, name, wrapper->real, flags, flags_out);
	/* SQLite calls xClose whenever pMethods is set, even after a failed open: mirror the
	 * real file's. */
	wrapper->base.pMethods = wrapper->real->pMethods ? &fault_methods : NULL;
	/* The shim forwards version 3 methods (the unix VFS's): refuse a file with fewer rather
	 * than call a method it lacks. */
	if (rc == SQLITE_OK && wrapper->real->pMethods->iVersion < 3)
		rc = SQLITE_CANTOPEN;
	return rc;
}

static void
fault_register_once(void)
{
	fault_real_vfs = sqlite3_vfs_find(NULL);
	if (fault_real_vfs == NULL) {
		fault_register_rc = SQLITE_ERROR;
		return;
	}
	/* A copy of the default VFS (its pAppData, path limits and other methods unchanged: they
	 * take the vfs only to reach those) with files that are wrapped. */
	fault_vfs = *fault_real_vfs;
	fault_vfs.pNext = NULL;
	fault_vfs.zName = CATALOG_VFS_NAME;
	fault_vfs.szOsFile = (int)sizeof(struct fault_file) + fault_real_vfs->szOsFile;
	fault_vfs.xOpen = fault_open;
	fault_register_rc = sqlite3_vfs_register(&fault_vfs, 0);
}

int
catalog_vfs_register(const char *path)
{
	pthread_once(&fault_once, fault_register_once);
	if (fault_register_rc != SQLITE_OK)
		return ferry_error_set(FERRY_ERR_INTERNAL,
				       "cannot open catalog %s: registering its VFS failed: %s",
				       path, sqlite3_errstr(fault_register_rc));
	return 0;
}
